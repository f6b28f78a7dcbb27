// The counters behind the metrics endpoint and the admin console's SHOW STATS: the fixed label
// sets (router reasons, duration buckets, replay SQLSTATEs), the one-writer increment, the
// supervisor's fold of a reaped worker into the retired totals, and the readers' sum. The
// layout itself is in shm_layout.h. Nothing here locks; the fold and the sum agree through
// retired_seq, so that a sum never counts a reaped worker twice or not at all.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "pgrouter/os/shm_layout.h"

namespace pgrouter {

// One writer per counter: a load and a store, no locked read-modify-write on the hot path.
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// The short label of a routing reason (RouteDecision::reason, or the session's own reasons
// for where a unit goes: the rest of a batch, the master after a standby failed, a replay).
// Unknown reasons are "other".
enum ReasonLabel : int {
    kReasonRead,
    kReasonWrite,
    kReasonTransaction,
    kReasonReadYourWrites,
    kReasonLagFallback,
    kReasonPinned,
    kReasonServerLocal,
    kReasonSet,
    kReasonBatch,
    kReasonMasterFallback,
    kReasonReplay,
    kReasonOther,
};
static_assert(kReasonOther + 1 == kReasonLabels);
[[nodiscard]] int reason_label(std::string_view reason);
[[nodiscard]] std::string_view reason_label_name(int label);

// The unit duration histogram: upper bounds in seconds, the last bucket is +Inf.
[[nodiscard]] int duration_bucket(std::int64_t ns);
[[nodiscard]] double duration_bucket_bound(int bucket);  // seconds; +Inf for the last

// Replays on the master by the standby's SQLSTATE: 25006, 0A000, 55000, 08006 (the standby
// was lost during the read), anything else "other".
[[nodiscard]] int replay_label(std::string_view sqlstate);
[[nodiscard]] std::string_view replay_label_name(int label);

// A plain copy of the counters, summed over the live workers and the retired totals.
struct BackendTotals {
    std::uint64_t units[kReasonLabels] = {};
    std::uint64_t duration[kDurationBuckets] = {};  // per bucket, not cumulative
    std::uint64_t duration_ns = 0;
    std::uint64_t logins = 0;
    std::int64_t connections = 0;  // live workers only
    [[nodiscard]] std::uint64_t unit_count() const;
};

struct CounterTotals {
    BackendTotals backends[kMaxBackends];  // by shm slot
    std::uint64_t replays[kReplayLabels] = {};
    std::uint64_t auth_failures = 0;
    std::uint64_t accepted = 0;  // client connections ever accepted
    std::uint64_t worker_restarts = 0;
    std::uint64_t reloads_ok = 0;
    std::uint64_t reloads_error = 0;
};

// Any process. False when the supervisor stayed mid-fold for too long (it died).
[[nodiscard]] bool sum_counters(const Segment& seg, CounterTotals& out);

// Supervisor only, when a worker was reaped (before its slot is zeroed): its counters and its
// accepted count go into the retired totals, and its block is zeroed for its successor.
void fold_worker_counters(Segment& seg, int worker);

// Supervisor only.
void count_worker_restart(Segment& seg);
void count_reload(Segment& seg, bool ok);

}  // namespace pgrouter
