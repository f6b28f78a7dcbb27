// What every session of one worker shares: the segment, the worker's slot, the access rules
// and TLS context of the current generation, the classifier and its cache, the random source.
// Owned by the worker's loop; sessions only borrow it.
#pragma once

#include <memory>
#include <random>

#include "pgrouter/auth/access.h"
#include "pgrouter/base/asio.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/os/shm_layout.h"
#include "pgrouter/route/classify.h"
#include "pgrouter/route/classify_cache.h"

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
    RoutingView routing;  // the backend table as last refreshed by one of the sessions
};

}  // namespace pgrouter
