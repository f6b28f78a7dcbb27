// Time lag from the master's sampled positions (see time_lag.h).
#include "pgrouter/health/time_lag.h"

#include <algorithm>

#include "pgrouter/health/health.h"

namespace pgrouter {

void MasterHistory::record(std::uint64_t lsn, std::int64_t at_ns) {
    // A standby's replay stops at the end of the last record, where the master's insert
    // position on an idle page start is past the page header: compare record ends.
    lsn = wal_record_end(lsn);
    if (!runs_.empty() && lsn < runs_.back().lsn) runs_.clear();
    if (!runs_.empty() && lsn == runs_.back().lsn) {
        runs_.back().last_ns = std::max(runs_.back().last_ns, at_ns);
        return;
    }
    if (!runs_.empty() && at_ns < runs_.back().last_ns) return;  // out of order: drop it
    runs_.push_back(Run{lsn, at_ns, at_ns});
    if (runs_.size() > kMaxRuns) runs_.pop_front();
}

std::int64_t MasterHistory::lag_ns(std::uint64_t replay_lsn, std::int64_t at_ns) const {
    if (runs_.empty() || replay_lsn >= runs_.back().lsn) return 0;
    // The standby has everything the master had while the master was at or below its
    // position: it is as stale as the last moment the master was there.
    auto after = std::upper_bound(runs_.begin(), runs_.end(), replay_lsn,
                                  [](std::uint64_t lsn, const Run& r) { return lsn < r.lsn; });
    std::int64_t left_ns = after->first_ns;
    if (after != runs_.begin()) {
        // Between the last sample at or below the position and the first past it, the
        // master is taken to have written at a steady rate.
        const Run& before = *(after - 1);
        double share = static_cast<double>(replay_lsn - before.lsn) /
                       static_cast<double>(after->lsn - before.lsn);
        left_ns =
            before.last_ns + static_cast<std::int64_t>(
                                 share * static_cast<double>(after->first_ns - before.last_ns));
    }
    return std::max<std::int64_t>(0, at_ns - left_ns);
}

}  // namespace pgrouter
