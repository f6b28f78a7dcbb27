// A worker's server connection pools: idle logged-in BackendConnections kept by (backend
// slot, epoch, database, user) and reused by clients whose startup parameters are the same; `size`
// enforced across all workers through the segment's pool table. A client that finds its pool full
// waits (FIFO in this worker) up to wait-timeout. A connection given back is reset with DISCARD ALL
// and kept only when that answers cleanly and idle. Never hands out a connection that is broken,
// spoke while idle, outlived `lifetime` or belongs to a backend that is down or fenced. Owns no
// client state. In transaction mode a session parks its connections between transactions as they
// are (BackendConnection::owner says whose state they carry); the session that takes one carrying
// another's state resets it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <string>

#include "pgrouter/auth/credentials.h"
#include "pgrouter/base/asio.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/os/shm_layout.h"
#include "pgrouter/worker/backend.h"

namespace pgrouter {

class ServerPool {
  public:
    ServerPool(Segment& seg, WorkerSlot& slot, WorkerCounters& counters, int worker);
    ~ServerPool();
    ServerPool(const ServerPool&) = delete;
    ServerPool& operator=(const ServerPool&) = delete;

    // Starts the maintenance timer (idle-timeout, lifetime, backends down, other workers'
    // waiters). The settings are read from the segment on every tick.
    void start(asio::io_context& io);

    bool enabled() const { return settings_.enabled; }

    // A logged-in connection to `slot` for `params`: an idle one of its pool, a new login
    // when the pool has room, or the first one that frees up within wait-timeout and before
    // `wait_until_ns` (CLOCK_MONOTONIC; 0: no wait), else 53300. Without a `pool` block: a
    // plain login. Of the idle ones, the one parked under lease `owner` comes first, then
    // one that carries no session's state, then the one idle longest.
    asio::awaitable<LoginResult> connect(int slot, const BackendSpec& spec,
                                         const LoginParams& params,
                                         const BackendCredentials& credentials,
                                         std::chrono::milliseconds login_timeout,
                                         std::int64_t wait_until_ns, std::uint64_t owner = 0);

    // Whether a client's connection may go back to the pool (it came from one, nothing is
    // buffered either way); the session adds what it knows (nothing in flight).
    bool may_keep(BackendConnection& conn) const;

    // The client left: DISCARD ALL on `conn`, then idle in its pool; closed when that fails,
    // answers anything but an idle ReadyForQuery, or the connection is too old.
    void give_back(std::unique_ptr<BackendConnection> conn);

    // Transaction mode, between two transactions of the client: idle in its pool as it is,
    // its `owner` set by the session; closed when the pool cannot keep it.
    void park(std::unique_ptr<BackendConnection> conn);

    struct Hold;  // server_pool.cc: a connection's place in its pool
    struct Kept;
    struct Waiter;
    struct List;

  private:
    List* list_for(const PoolKey& key);
    void released(const PoolKey& key);
    asio::awaitable<void> reset_and_keep(std::unique_ptr<BackendConnection> conn);
    void keep(List& list, std::unique_ptr<BackendConnection> conn, bool watched);
    std::unique_ptr<BackendConnection> take_idle(List& list, const std::string& params,
                                                 std::uint64_t owner);
    bool close_other_idle(List& list, const std::string& params);
    // A client of another worker has waited for this pool since before `since_ns`.
    bool waits_elsewhere_since(const List& list, std::int64_t since_ns) const;
    // ... since before any client of this worker waiting for it (or one waits, none here).
    bool wanted_elsewhere(const List& list) const;
    void watch(List& list, BackendConnection* conn);
    void drop_idle(List& list, BackendConnection* conn, const char* why);
    void publish(List& list);
    void wake_head(List& list);
    void tick();
    bool backend_usable(int slot, std::uint32_t epoch) const;

    Segment& seg_;
    WorkerSlot& slot_;
    WorkerCounters& counters_;
    int worker_;
    asio::io_context* io_ = nullptr;
    std::unique_ptr<asio::steady_timer> timer_;
    PoolSettings settings_;
    RoutingView view_;
    std::map<std::string, std::unique_ptr<List>> lists_;  // by encoded PoolKey
    std::shared_ptr<ServerPool*> self_;                   // holds reach the pool through it
};

}  // namespace pgrouter
