// What the consistency controls cost a unit when none is set: the per-unit paths that #18
// touched, timed in a loop. Not a test. Uses only interfaces that predate the controls, so
// the same source builds against the commit before them (build it there with
// `make BUILD=build-base build-base/bench/controls_cost`) and the two binaries time the same
// work, old code against new. Prints one line per path: nanoseconds per call, the median of
// the repetitions, and the repetitions themselves.
//
//   classify      ClassifyCache::classify() of a cached text (the cutter's call per Query)
//   classify_hint the same for a text that starts with a /* pgrouter: ... */ comment
//   changes       collect_changes() of that unit (no SET in it)
//   route         route() of a read, session without controls, a master and two standbys
//   finish        SessionState::finish() of the finished unit
//   unit          all of the above for one read, as a session does them per transaction
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "pgrouter/os/shm.h"
#include "pgrouter/route/classify.h"
#include "pgrouter/route/classify_cache.h"
#include "pgrouter/route/router.h"
#include "pgrouter/worker/session_state.h"

using namespace pgrouter;

namespace {

// Keeps the optimiser from dropping a result.
template <class T>
void keep(const T& v) {
    asm volatile("" : : "g"(&v) : "memory");
}

std::vector<BackendView> cluster() {
    std::vector<BackendView> out(3);
    for (int i = 0; i < 3; ++i) {
        BackendView& b = out[static_cast<std::size_t>(i)];
        b.slot = i;
        b.spec.active = true;
        b.spec.weight = 100;
        b.spec.lag_threshold = 1 << 20;
        b.health.status = BackendStatus::Ok;
        b.health.role = i == 0 ? BackendRole::Master : BackendRole::Slave;
        b.health.lsn = 0x3000000;
        b.health.sampled_at_ns = 1;
    }
    return out;
}

template <class F>
double ns_per_call(long n, F&& f) {
    auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) f(i);
    std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    return took.count() / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
    long n = argc > 1 ? std::atol(argv[1]) : 2'000'000;
    int reps = argc > 2 ? std::atoi(argv[2]) : 7;
    const std::string plain = "SELECT abalance FROM pgbench_accounts WHERE aid = 4711";
    const std::string hinted = "/* pgrouter: max_staleness=1s */ " + plain;
    Classifier classifier;
    ClassifyCache cache;
    (void)cache.classify(plain, classifier);
    (void)cache.classify(hinted, classifier);
    std::vector<BackendView> backends = cluster();
    RouteSession rs;
    SessionState state;
    std::vector<SessionChange> changes;
    std::uint64_t draw = 0x9e3779b97f4a7c15ULL;
    auto next_draw = [&] { return draw = draw * 6364136223846793005ULL + 1442695040888963407ULL; };

    struct Path {
        const char* name;
        std::vector<double> ns;
    };
    std::vector<Path> paths = {{"classify", {}}, {"classify_hint", {}}, {"changes", {}},
                               {"route", {}},    {"finish", {}},        {"unit", {}}};
    Classification cls = cache.classify(plain, classifier);
    for (int r = 0; r < reps; ++r) {
        paths[0].ns.push_back(ns_per_call(n, [&](long) {
            Classification c = cache.classify(plain, classifier);
            keep(c);
        }));
        paths[1].ns.push_back(ns_per_call(n, [&](long) {
            Classification c = cache.classify(hinted, classifier);
            keep(c);
        }));
        paths[2].ns.push_back(ns_per_call(n, [&](long) {
            changes.clear();
            collect_changes(plain, cls, changes);
            keep(changes);
        }));
        paths[3].ns.push_back(ns_per_call(n, [&](long) {
            RouteDecision d = route(cls, rs, backends, next_draw());
            keep(d);
        }));
        paths[4].ns.push_back(ns_per_call(n, [&](long) {
            UnitOutcome u;
            u.status = proto::TransactionStatus::Idle;
            u.slot = 1;
            u.tag = "SELECT 1";
            u.cls = &cls;
            u.changes = &changes;
            bool pins = state.finish(u);
            keep(pins);
        }));
        paths[5].ns.push_back(ns_per_call(n, [&](long) {
            Classification c = cache.classify(plain, classifier);
            changes.clear();
            collect_changes(plain, c, changes);
            RouteDecision d = route(c, state.route(), backends, next_draw());
            UnitOutcome u;
            u.status = proto::TransactionStatus::Idle;
            u.slot = d.slot;
            u.tag = "SELECT 1";
            u.cls = &c;
            u.changes = &changes;
            bool pins = state.finish(u);
            keep(pins);
        }));
    }
    std::printf("# %ld calls per repetition, %d repetitions; ns per call\n", n, reps);
    for (Path& p : paths) {
        std::vector<double> sorted = p.ns;
        std::sort(sorted.begin(), sorted.end());
        std::printf("%-14s median %7.1f  [", p.name, sorted[sorted.size() / 2]);
        for (std::size_t i = 0; i < p.ns.size(); ++i) {
            std::printf("%s%.1f", i == 0 ? "" : " ", p.ns[i]);
        }
        std::printf("]\n");
    }
    return 0;
}
