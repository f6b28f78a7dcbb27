// The watcher's pure logic: from check results to each backend's published health. No
// sockets, no clock, no shared memory: the watcher feeds in samples and failures with their
// times, and publishes the records this model computes. It decides status, role, lag, the
// master among split-brain candidates, the fencing of foreign servers and of standbys that
// do not follow the master, and says what to log (each change once; a split brain once per
// check interval until it is gone).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgrouter/base/lsn.h"
#include "pgrouter/config/config.h"
#include "pgrouter/health/time_lag.h"
#include "pgrouter/os/shm_layout.h"

namespace pgrouter {

// Bytes a standby trails the master: the master's current position minus the standby's
// replay position, never negative (samples are taken at slightly different instants).
std::uint64_t standby_lag(std::uint64_t master_lsn, std::uint64_t replay_lsn);

// The figures of one successful check.
struct HealthSample {
    bool in_recovery = false;
    std::uint64_t lsn = 0;          // master: current WAL position; standby: replay position
    std::uint64_t receive_lsn = 0;  // standby: last received position, 0 if none
    bool streaming = false;         // standby: its WAL receiver is streaming
    std::uint32_t timeline = 0;
    std::uint64_t system_identifier = 0;  // 0 when this check did not read it (lag sample)
};

struct HealthLogLine {
    LogLevel level = LogLevel::Info;
    std::string text;
};

class HealthModel {
  public:
    // Starts tracking backend `key` (its slot) as a fresh STARTING record; an existing key is
    // reset, as when the slot gets a new occupant. `order` is its place in the configuration
    // (ties go to the backend configured first).
    void track(int key, std::string name, std::uint32_t epoch, int order);
    void untrack(int key);
    void set_order(int key, int order);
    [[nodiscard]] bool tracked(int key) const { return find(key) != nullptr; }

    // A sample of a query sent at now_ns and answered at answered_ns (0: at now_ns).
    void record_sample(int key, const HealthSample& sample, std::int64_t now_ns, bool full,
                       std::int64_t answered_ns = 0);
    void record_failure(int key, std::string reason, std::int64_t now_ns);
    // Takes `published` (the record found in the segment, written by a watcher that died) as
    // the backend's last known state, so a new watcher publishes the same verdicts until its
    // own checks say otherwise. Ignored unless it is for the backend's current epoch.
    void adopt(int key, const BackendHealth& published);

    // Recomputes every verdict from the latest results and returns the lines to log.
    // A split brain is logged again when `repeat_ns` passed since it was last logged.
    std::vector<HealthLogLine> evaluate(std::int64_t now_ns, std::int64_t repeat_ns);

    // The record to publish for `key`, as of the last evaluate(); null if not tracked.
    [[nodiscard]] const BackendHealth* health(int key) const;
    // Slot of the master chosen by the last evaluate(), -1 if none.
    int master() const { return master_; }
    // Bumped each time the master moves from one backend to another: every standby is then
    // fenced until a sample taken after the move shows it following the new master.
    std::uint64_t master_changes() const { return master_changes_; }

  private:
    using Fence = FenceReason;

    struct Tracked {
        int key = -1;
        std::string name;
        std::uint32_t epoch = 0;
        int order = 0;
        // What the checks measured.
        BackendStatus measured = BackendStatus::Starting;
        bool has_sample = false;
        HealthSample sample;                  // the last successful one
        std::uint64_t system_identifier = 0;  // last known
        std::string failure;
        std::int64_t sampled_at_ns = 0;
        std::int64_t answered_at_ns = 0;
        std::int64_t checked_at_ns = 0;
        bool advancing = false;  // the last sample replayed further than the one before
        // The verdict.
        Fence fence = Fence::None;
        std::string not_following;  // why, when fenced as NotFollowing; "" while unverified
        BackendHealth published;
        // What was logged, so each change is logged once.
        BackendStatus logged_status = BackendStatus::Starting;
        BackendRole logged_role = BackendRole::Unknown;
        Fence logged_fence = Fence::None;
        std::string logged_failure;
        std::int64_t fence_logged_ns = 0;
    };

    Tracked* find(int key);
    const Tracked* find(int key) const;
    std::uint64_t decide_system_identifier() const;
    int choose_master(std::uint64_t cluster_id) const;
    std::optional<std::string> why_not_following(const Tracked& standby,
                                                 const Tracked& master) const;
    void log_changes(Tracked& t, const Tracked* master, std::uint64_t cluster_id,
                     std::int64_t now_ns, std::int64_t repeat_ns, std::vector<HealthLogLine>& out);

    std::vector<Tracked> backends_;
    int master_ = -1;
    int previous_master_ = -1;           // the last master ever chosen: wins timeline ties
    bool no_master_logged_ = false;      // the "no master" warning is out
    std::uint64_t last_master_lsn_ = 0;  // reference for lag while there is no master
    std::uint64_t master_changes_ = 0;
    std::int64_t master_since_ns_ = 0;  // standbys sampled earlier are not verified
    MasterHistory history_;             // the current master's positions, for time lag
};

}  // namespace pgrouter
