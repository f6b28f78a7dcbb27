// Time lag: how long ago the master was at the position a standby has replayed up to,
// interpolated from the watcher's samples of the master (position, time). Unlike
// pg_last_xact_replay_timestamp(), it does not grow while an idle master writes nothing: a
// standby that has replayed everything is 0 behind, however old the last commit is; a
// standby whose replay is paused while the master writes falls behind at the clock's rate.
// Pure: the watcher feeds in samples and their (monotonic) times.
#pragma once

#include <cstdint>
#include <deque>

namespace pgrouter {

class MasterHistory {
  public:
    // Enough runs for minutes of a master that writes between every sample.
    static constexpr std::size_t kMaxRuns = 1024;

    // The master was at WAL position `lsn` at `at_ns`. A position lower than the last one
    // (another master, a restore) starts a new history.
    void record(std::uint64_t lsn, std::int64_t at_ns);
    void clear() { runs_.clear(); }

    // How long before `at_ns` the master was last at or below `replay_lsn` (a standby there
    // has everything the master had then); 0 when the master's last known position is not
    // beyond it (or nothing is known). A position older than the whole history gets the age
    // of its oldest sample: a lower bound.
    [[nodiscard]] std::int64_t lag_ns(std::uint64_t replay_lsn, std::int64_t at_ns) const;

    [[nodiscard]] std::size_t runs() const { return runs_.size(); }

  private:
    // Samples at one position: the master was there from `first_ns` to `last_ns` at least.
    struct Run {
        std::uint64_t lsn = 0;
        std::int64_t first_ns = 0;
        std::int64_t last_ns = 0;
    };
    std::deque<Run> runs_;
};

}  // namespace pgrouter
