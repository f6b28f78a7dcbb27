// A client session: the PostgreSQL front door (startup packet, HBA, authentication),
// the backend login on the client's behalf, cancel requests, and then the exchange of
// messages with the backend. One coroutine per client on its worker's event loop.
#pragma once

#include <memory>
#include <random>

#include "pgrouter/access.h"
#include "pgrouter/asio.h"
#include "pgrouter/classify.h"
#include "pgrouter/classify_cache.h"
#include "pgrouter/shm.h"
#include "pgrouter/shm_layout.h"

namespace boost::asio::ssl {
class context;
}

namespace pgrouter {

// What every session of one worker shares.
struct WorkerEnv {
    WorkerEnv(Segment& s, WorkerSlot& w, int index) : seg(s), slot(w), worker(index) {}
    Segment& seg;
    WorkerSlot& slot;
    int worker = 0;
    std::shared_ptr<const AccessRules> access;  // replaced on reload; sessions keep theirs
    // The client-facing TLS context; null without a `tls` block. Replaced on reload (new
    // certificates for new connections); a handshake in progress keeps the one it started with.
    std::shared_ptr<boost::asio::ssl::context> tls;
    std::uint64_t next_session_id = 1;
    Classifier classifier;
    ClassifyCache cache;  // query text → classification, shared by the worker's sessions
    std::mt19937_64 rng{std::random_device{}()};
    Snapshot snapshot;  // the backend table as last read by one of the sessions
};

asio::awaitable<void> run_session(tcp::socket client, WorkerEnv& env);

}  // namespace pgrouter
