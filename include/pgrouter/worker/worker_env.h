// What every session of one worker shares: the segment, the worker's slot, the access rules
// and TLS context of the current generation, the classifier and its cache, the random source,
// the shutdown flag and the rate limit of the log lines about hostile connections. Owned by
// the worker's loop; sessions only borrow it.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "pgrouter/auth/access.h"
#include "pgrouter/base/asio.h"
#include "pgrouter/base/rate_limit.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/os/shm_layout.h"
#include "pgrouter/route/classify.h"
#include "pgrouter/route/classify_cache.h"
#include "pgrouter/worker/server_pool.h"

namespace boost::asio::ssl {
class context;
}

namespace pgrouter {

// What every session of one worker shares.
struct WorkerEnv {
    WorkerEnv(Segment& s, WorkerSlot& w, int index)
        : seg(s),
          slot(w),
          counters(s.counters[index]),
          worker(index),
          pool(s, w, counters, index) {}
    Segment& seg;
    WorkerSlot& slot;
    WorkerCounters& counters;  // this worker's block of the metrics counters (os/counters.h)
    int worker = 0;
    ServerPool pool;  // idle server connections by (backend, database, user); `pool` block
    // Of the current generation: log-connections, and who may open the admin console.
    bool log_connections = false;
    std::vector<std::string> admin_users;
    std::shared_ptr<const AccessRules> access;  // replaced on reload; sessions keep theirs
    // The client-facing TLS context; null without a `tls` block. Replaced on reload (new
    // certificates for new connections); a handshake in progress keeps the one it started with.
    std::shared_ptr<boost::asio::ssl::context> tls;
    std::uint64_t next_session_id = 1;
    std::uint64_t next_lease = 0;  // transaction pooling: a parked connection's tag (session.cc)
    Classifier classifier;
    ClassifyCache cache;  // query text → classification, shared by the worker's sessions
    // Parsing takes about 0.1 ms per kB of SQL: a long statement is classified on this
    // thread (pg_query keeps its parser memory per thread), so that no session holds the
    // loop for more than a few milliseconds. Started in the worker process, after the fork.
    asio::thread_pool parse_pool{1};
    std::mt19937_64 rng{std::random_device{}()};
    RoutingView routing;  // the backend table as last refreshed by one of the sessions
    // SIGTERM: each session ends at its next transaction boundary. The worker sets it and
    // fires every session's wake-up timer (registered here while the session lives), so
    // that idle ones notice at once.
    bool draining = false;
    std::unordered_set<asio::steady_timer*> wakeups;
    // Sessions gone idle whose backend sockets are not watched yet (for NOTIFY, notices,
    // a backend's end): the worker's idle sweep (kIdleWatchDelay) takes them out and wakes
    // them to arm their watches. A busy session leaves before that and never arms any.
    std::unordered_set<asio::steady_timer*> idle_unwatched;
    // Connections dropped before login (garbage, oversized startup, timeout): logged at
    // INFO, 10 a second per worker, the rest counted (frontdoor.h: log_dropped()).
    RateLimit dropped_log{10, 1'000'000'000};
};

}  // namespace pgrouter
