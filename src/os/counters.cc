// The counters' label sets, the supervisor's fold of reaped workers and the readers' sum (see
// counters.h). The fold and the sum run under retired_seq: a reader that overlaps a fold
// retries, so the totals it returns never go down when a worker is replaced.
#include "pgrouter/os/counters.h"

#include <signal.h>

#include <array>
#include <cerrno>
#include <limits>

#include "pgrouter/os/seqlock.h"

namespace pgrouter {

namespace {

struct ReasonName {
    std::string_view reason;
    int label;
};

// Every reason the router (route/router.cc) and the session (worker/session.cc) give.
constexpr std::array kReasons = {
    ReasonName{"read: weighted standby", kReasonRead},
    ReasonName{"write", kReasonWrite},
    ReasonName{"inside a transaction block", kReasonTransaction},
    ReasonName{"inside a transaction block (backend no longer configured)", kReasonTransaction},
    ReasonName{"read-write transaction", kReasonTransaction},
    ReasonName{"read: own write not yet sampled, master", kReasonReadYourWrites},
    ReasonName{"read: no eligible standby, master", kReasonLagFallback},
    ReasonName{"read: no master, lagging standby", kReasonLagFallback},
    ReasonName{"session pinned to the master", kReasonPinned},
    ReasonName{"unit pins the session to the master", kReasonPinned},
    ReasonName{"server_local: the master answers", kReasonServerLocal},
    ReasonName{"SET: the master first", kReasonSet},
    ReasonName{"rest of a flushed batch", kReasonBatch},
    ReasonName{"follows the units in flight", kReasonBatch},
    ReasonName{"standby unreachable, master", kReasonMasterFallback},
    ReasonName{"session state refused, master", kReasonMasterFallback},
    ReasonName{"replay on the master", kReasonReplay},
};

constexpr std::array<std::string_view, kReasonLabels> kReasonLabelNames = {
    "read",         "write", "transaction", "read_your_writes", "lag_fallback", "pinned",
    "server_local", "set",   "batch",       "master_fallback",  "replay",       "other"};

constexpr std::array<double, kDurationBuckets - 1> kBucketBounds = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

constexpr std::array<std::int64_t, kDurationBuckets - 1> kBucketBoundsNs = {
    500'000,       1'000'000,     2'500'000,     5'000'000,     10'000'000,
    25'000'000,    50'000'000,    100'000'000,   250'000'000,   500'000'000,
    1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

constexpr std::array<std::string_view, kReplayLabels> kReplayNames = {"25006", "0A000", "55000",
                                                                      "08006", "other"};

std::uint64_t load(const std::atomic<std::uint64_t>& c) {
    return c.load(std::memory_order_relaxed);
}

void add_block(const WorkerCounters& w, CounterTotals& out, bool gauges) {
    for (int b = 0; b < kMaxBackends; ++b) {
        const BackendCounters& in = w.backends[b];
        BackendTotals& t = out.backends[b];
        for (int r = 0; r < kReasonLabels; ++r) t.units[r] += load(in.units[r]);
        for (int k = 0; k < kDurationBuckets; ++k) t.duration[k] += load(in.duration[k]);
        t.duration_ns += load(in.duration_ns);
        t.logins += load(in.logins);
        if (gauges) {
            t.connections +=
                std::max<std::int64_t>(0, in.connections.load(std::memory_order_relaxed));
        }
    }
    for (int r = 0; r < kReplayLabels; ++r) out.replays[r] += load(w.replays[r]);
    out.auth_failures += load(w.auth_failures);
    out.accepted += load(w.accepted);
}

void fold(std::atomic<std::uint64_t>& into, std::atomic<std::uint64_t>& from) {
    bump(into, from.load(std::memory_order_relaxed));
    from.store(0, std::memory_order_relaxed);
}

bool alive(pid_t pid) { return pid > 0 && !(kill(pid, 0) != 0 && errno == ESRCH); }

}  // namespace

int reason_label(std::string_view reason) {
    for (const ReasonName& r : kReasons) {
        if (r.reason == reason) return r.label;
    }
    return kReasonOther;
}

std::string_view reason_label_name(int label) {
    return label >= 0 && label < kReasonLabels ? kReasonLabelNames[label] : "other";
}

int duration_bucket(std::int64_t ns) {
    for (int k = 0; k < kDurationBuckets - 1; ++k) {
        if (ns <= kBucketBoundsNs[k]) return k;
    }
    return kDurationBuckets - 1;
}

double duration_bucket_bound(int bucket) {
    if (bucket >= 0 && bucket < kDurationBuckets - 1) return kBucketBounds[bucket];
    return std::numeric_limits<double>::infinity();
}

int replay_label(std::string_view sqlstate) {
    for (int r = 0; r < kReplayLabels - 1; ++r) {
        if (kReplayNames[r] == sqlstate) return r;
    }
    return kReplayLabels - 1;
}

std::string_view replay_label_name(int label) {
    return label >= 0 && label < kReplayLabels ? kReplayNames[label] : "other";
}

std::uint64_t BackendTotals::unit_count() const {
    std::uint64_t n = 0;
    for (std::uint64_t u : units) n += u;
    return n;
}

bool sum_counters(const Segment& seg, CounterTotals& out) {
    return seq_read_with(seg.retired_seq, [&] {
        out = CounterTotals{};
        add_block(seg.retired.workers, out, false);
        for (int w = 0; w < kMaxWorkers; ++w) {
            const WorkerSlot& slot = seg.workers[w];
            add_block(seg.counters[w], out, alive(slot.pid.load(std::memory_order_relaxed)));
            out.accepted += slot.accepted.load(std::memory_order_relaxed);
        }
        out.worker_restarts = load(seg.retired.worker_restarts);
        out.reloads_ok = load(seg.retired.reloads_ok);
        out.reloads_error = load(seg.retired.reloads_error);
    });
}

void fold_worker_counters(Segment& seg, int worker) {
    WorkerCounters& w = seg.counters[worker];
    WorkerCounters& r = seg.retired.workers;
    seq_write_begin(seg.retired_seq);
    for (int b = 0; b < kMaxBackends; ++b) {
        BackendCounters& in = w.backends[b];
        BackendCounters& to = r.backends[b];
        for (int u = 0; u < kReasonLabels; ++u) fold(to.units[u], in.units[u]);
        for (int k = 0; k < kDurationBuckets; ++k) fold(to.duration[k], in.duration[k]);
        fold(to.duration_ns, in.duration_ns);
        fold(to.logins, in.logins);
        in.connections.store(0, std::memory_order_relaxed);
    }
    for (int u = 0; u < kReplayLabels; ++u) fold(r.replays[u], w.replays[u]);
    fold(r.auth_failures, w.auth_failures);
    std::atomic<std::uint64_t>& accepted = seg.workers[worker].accepted;
    bump(r.accepted, accepted.load(std::memory_order_relaxed));
    accepted.store(0, std::memory_order_relaxed);
    seq_write_end(seg.retired_seq);
}

void count_worker_restart(Segment& seg) { bump(seg.retired.worker_restarts); }

void count_reload(Segment& seg, bool ok) {
    bump(ok ? seg.retired.reloads_ok : seg.retired.reloads_error);
}

}  // namespace pgrouter
