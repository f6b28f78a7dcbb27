// The shared segment's life cycle and its two directions of traffic: the supervisor
// publishes configuration into it, every process reads consistent snapshots out of it.
// Creation maps an anonymous POSIX object (unlinked at once, so nothing is left behind by a
// crash); children inherit the mapping through fork().
#pragma once

#include <memory>
#include <vector>

#include "pgrouter/config/config.h"
#include "pgrouter/os/shm_layout.h"

namespace boost::interprocess {
class mapped_region;
}

namespace pgrouter {

class SharedMemory {
  public:
    // Creates and maps a fresh segment. Null with errno-style message logged on failure.
    static std::unique_ptr<SharedMemory> create();
    ~SharedMemory();
    SharedMemory(const SharedMemory&) = delete;
    SharedMemory& operator=(const SharedMemory&) = delete;

    Segment& segment() { return *segment_; }

  private:
    SharedMemory(std::unique_ptr<boost::interprocess::mapped_region> region, Segment* segment);
    std::unique_ptr<boost::interprocess::mapped_region> region_;
    Segment* segment_;
};

// Supervisor only. Publishes `config` as a new generation. A backend that keeps its
// host:port keeps its slot (and so its health); a new one gets a free slot with a new epoch.
// Returns false (nothing changed) when the backends do not fit in the table.
[[nodiscard]] bool publish_config(Segment& seg, const Config& config, int workers);

// A backend as readers see it: what is configured and what the watcher last measured.
// health.status is Starting when the watcher has not checked this occupant of the slot.
struct BackendView {
    int slot = -1;
    BackendSpec spec;
    BackendHealth health;
};

// Everything: the cold settings and the backend table. For the watcher, the monitor and
// the rare reader (a cancel request); a session's routing reads a RoutingView instead.
struct Snapshot {
    SharedSettings settings;
    std::vector<BackendView> backends;  // active slots, in configuration order
};

// Any process. False when a writer is stuck mid-update (it died; retry later).
[[nodiscard]] bool take_snapshot(const Segment& seg, Snapshot& out);

// What routing reads: the backend table and the hot settings, never the cold ones. Kept
// between refreshes with the generation (sequence count) each part was read at, so that a
// refresh copies only what a writer changed since: nothing at all in the steady state.
struct RoutingView {
    RoutingSettings settings;
    std::vector<BackendView> backends;      // active slots, in configuration order
    std::uint64_t settings_seq = ~0ULL;     // of the settings and specs above; ~0: never read
    std::vector<std::uint64_t> health_seq;  // of each entry's health
};

// Any process. Brings `view` up to date; false (view unchanged) when the supervisor is stuck
// mid-update. A health record a writer keeps busy reads as not yet checked, as in
// take_snapshot.
[[nodiscard]] bool refresh_routing_view(const Segment& seg, RoutingView& view);

// Supervisor only, after a child died: zero the dead worker's counters and cancel slots.
void reset_worker_slot(Segment& seg, int worker);
// Supervisor only, after the watcher died: repair what it may have left half-written.
void repair_after_watcher_death(Segment& seg);

}  // namespace pgrouter
