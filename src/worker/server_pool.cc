// The worker's server connection pools (see server_pool.h). Everything runs on the worker's
// event loop; the segment's pool table (os/pool_table.h) is the only thing other workers see.
// A connection's Hold gives its place in the pool back whenever the connection goes, however
// it goes (a session's close, a broken socket, an idle close), so the counts cannot drift.
#include "pgrouter/worker/server_pool.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "pgrouter/base/clock.h"
#include "pgrouter/base/counted.h"
#include "pgrouter/base/deadline.h"
#include "pgrouter/base/log.h"
#include "pgrouter/os/pool_table.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/proto/payload.h"
#include "pgrouter/proto/sqlstate.h"
#include "pgrouter/worker/startup_params.h"

namespace pgrouter {

using namespace std::chrono_literals;
using proto::BackendMsg;

namespace {

constexpr auto kTick = 100ms;     // idle-timeout, lifetime, backends down, others' waiters
constexpr auto kWaitPoll = 20ms;  // a waiter looks again (a worker elsewhere may have freed one)
constexpr std::int64_t kMs = 1'000'000;

std::string encode_key(const PoolKey& k) {
    std::string s = std::to_string(k.slot) + ":" + std::to_string(k.epoch) + ":";
    s += k.database;
    s += '\0';
    s += k.user;
    return s;
}

std::atomic<std::int64_t>& backend_gauge(WorkerCounters& c, int slot) {
    static std::atomic<std::int64_t> nowhere{0};
    return slot >= 0 && slot < kMaxBackends ? c.backends[slot].connections : nowhere;
}

// A pooled connection closes with a Terminate, as a well-behaved client's does (the server
// logs no "unexpected EOF"); best effort, never blocking.
void close_politely(BackendConnection& conn) {
    if (!conn.wire.tls() && conn.wire.socket().is_open()) {
        static constexpr char kTerminate[] = {'X', 0, 0, 0, 4};
        ::send(conn.wire.socket().native_handle(), kTerminate, sizeof kTerminate,
               MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    conn.wire.close();
}

// Nothing arrived on an idle connection since its last ReadyForQuery (a backend that was
// terminated has sent its FATAL and closed: readable).
bool quiet(BackendConnection& conn) {
    if (!conn.wire.input().empty() || !conn.wire.socket().is_open()) return false;
    char byte;
    ssize_t n = ::recv(conn.wire.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

struct ServerPool::Hold {
    Hold(std::weak_ptr<ServerPool*> p, Segment& s, int i, int w, PoolKey k, std::string ps)
        : pool(std::move(p)),
          seg(s),
          index(i),
          worker(w),
          key(std::move(k)),
          params(std::move(ps)) {}
    ~Hold() {
        pool_release(seg.pools, index, worker);
        if (auto p = pool.lock()) (*p)->released(key);
    }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    std::weak_ptr<ServerPool*> pool;
    Segment& seg;
    int index;
    int worker;
    PoolKey key;
    std::string params;
};

// A connection the pool has (idle, or being reset): counted as a server connection, as the
// monitor's `connections` and pgrouter_server_connections say.
struct ServerPool::Kept {
    Kept(std::unique_ptr<BackendConnection> c, WorkerSlot& slot, std::atomic<std::int64_t>& gauge)
        : conn(std::move(c)), counted(slot.connections), counted_backend(gauge) {}
    ~Kept() {
        if (conn) close_politely(*conn);
    }
    std::unique_ptr<BackendConnection> conn;
    Counted counted;
    Counted counted_backend;
    std::int64_t since_ns = 0;  // idle since
};

struct ServerPool::Waiter {
    explicit Waiter(asio::io_context& io) : timer(io) {}
    asio::steady_timer timer;
    std::int64_t since_ns = now_ns();
};

struct ServerPool::List {
    PoolKey key;
    int index = -1;
    std::list<std::unique_ptr<Kept>> idle;  // oldest first
    std::deque<Waiter*> waiters;            // FIFO
};

ServerPool::ServerPool(Segment& seg, WorkerSlot& slot, WorkerCounters& counters, int worker)
    : seg_(seg),
      slot_(slot),
      counters_(counters),
      worker_(worker),
      self_(std::make_shared<ServerPool*>(this)) {}

ServerPool::~ServerPool() { self_.reset(); }

void ServerPool::start(asio::io_context& io) {
    io_ = &io;
    timer_ = std::make_unique<asio::steady_timer>(io);
    tick();
}

bool ServerPool::backend_usable(int slot, std::uint32_t epoch) const {
    for (const BackendView& b : view_.backends) {
        if (b.slot != slot) continue;
        return b.spec.epoch == epoch && b.health.status == BackendStatus::Ok && !b.health.fenced;
    }
    return false;
}

ServerPool::List* ServerPool::list_for(const PoolKey& key) {
    std::unique_ptr<List>& list = lists_[encode_key(key)];
    if (!list) {
        list = std::make_unique<List>();
        list->key = key;
    }
    if (list->index < 0) list->index = pool_find(seg_.pools, key);
    return list->index >= 0 ? list.get() : nullptr;
}

bool ServerPool::waits_elsewhere_since(const List& list, std::int64_t since_ns) const {
    std::int64_t oldest = pool_oldest_wait_elsewhere(seg_.pools, list.index, worker_);
    return oldest != 0 && oldest < since_ns;
}

bool ServerPool::wanted_elsewhere(const List& list) const {
    return waits_elsewhere_since(list,
                                 list.waiters.empty() ? INT64_MAX : list.waiters.front()->since_ns);
}

void ServerPool::released(const PoolKey& key) {
    auto it = lists_.find(encode_key(key));
    if (it != lists_.end()) wake_head(*it->second);
}

void ServerPool::wake_head(List& list) {
    if (!list.waiters.empty()) list.waiters.front()->timer.cancel();
}

void ServerPool::publish(List& list) {
    pool_set_idle(seg_.pools, list.index, worker_, static_cast<std::int32_t>(list.idle.size()));
    pool_set_waiting(seg_.pools, list.index, worker_,
                     static_cast<std::int32_t>(list.waiters.size()),
                     list.waiters.empty() ? 0 : list.waiters.front()->since_ns);
}

std::unique_ptr<BackendConnection> ServerPool::take_idle(List& list, const std::string& params,
                                                         std::uint64_t owner) {
    std::int64_t now = now_ns();
    for (;;) {
        // The one `owner` parked (its state is there already), else the most recently used
        // clean one (the others may reach idle-timeout), else the one parked longest ago
        // (its owner is the least likely to be back for it).
        auto best = list.idle.end();
        int rank = 3;
        for (auto it = list.idle.end(); it != list.idle.begin();) {
            --it;
            const BackendConnection& conn = *(*it)->conn;
            if (static_cast<Hold*>(conn.pool_hold.get())->params != params) continue;
            int r = owner != 0 && conn.owner == owner ? 0 : conn.owner == 0 ? 1 : 2;
            if (r < rank || (r == 2 && rank == 2)) {
                best = it;
                rank = r;
            }
            if (r == 0) break;
        }
        if (best == list.idle.end()) break;
        BackendConnection& conn = *(*best)->conn;
        const char* why = nullptr;
        if (!backend_usable(list.key.slot, list.key.epoch)) {
            why = "backend not usable";
        } else if (settings_.lifetime_ms > 0 && now - conn.born_ns > settings_.lifetime_ms * kMs) {
            why = "lifetime reached";
        } else if (!quiet(conn)) {
            why = "spoke while idle";
        }
        if (why != nullptr) {
            PGR_DEBUG("pool: closing idle connection to %s: %s", conn.address.c_str(), why);
            list.idle.erase(best);
            continue;
        }
        boost::system::error_code ignored;
        conn.wire.socket().cancel(ignored);  // the idle watch
        std::unique_ptr<BackendConnection> out = std::move((*best)->conn);
        list.idle.erase(best);
        out->reused = true;
        publish(list);
        return out;
    }
    publish(list);
    return nullptr;
}

bool ServerPool::close_other_idle(List& list, const std::string& params) {
    for (auto it = list.idle.begin(); it != list.idle.end(); ++it) {
        auto* hold = static_cast<Hold*>((*it)->conn->pool_hold.get());
        if (hold->params == params) continue;
        list.idle.erase(it);  // its Hold frees its place
        publish(list);
        return true;
    }
    return false;
}

asio::awaitable<LoginResult> ServerPool::connect(int slot, const BackendSpec& spec,
                                                 const LoginParams& params,
                                                 const BackendCredentials& credentials,
                                                 std::chrono::milliseconds login_timeout,
                                                 std::int64_t wait_until_ns, std::uint64_t owner) {
    if (refresh_routing_view(seg_, view_)) settings_ = view_.settings.pool;
    if (!settings_.enabled || io_ == nullptr) {
        co_return co_await backend_login(spec, params, credentials, login_timeout);
    }
    LoginResult out;
    PoolKey key{slot, spec.epoch, params.database, params.user};
    List* list = list_for(key);
    std::string address = Endpoint{spec.host, spec.port}.to_string();
    if (list == nullptr) {
        out.failure = {
            {},
            std::string(proto::kSqlstateTooManyConnections),
            "too many server connection pools (at most " + std::to_string(kMaxPools) + ")"};
        co_return out;
    }
    // Only a client whose startup parameters match the login's, but for the values of those
    // any session may SET, reuses a connection (startup_params.h): nothing of another
    // client's startup reaches it; the session SETs its own values.
    std::string wanted = pool_params_key(params.params);
    Waiter me(*io_);
    bool queued = false;
    std::int64_t deadline = std::min(now_ns() + settings_.wait_timeout_ms * kMs, wait_until_ns);
    for (;;) {
        if (list->waiters.empty() || list->waiters.front() == &me) {
            // A connection, or a place, goes to the client that has waited longest in any
            // worker: one of this worker's that came later waits behind it, and what this
            // worker keeps idle closes for the other (else the worker whose clients come
            // back at once keeps the pool, and the others' clients time out).
            bool behind = waits_elsewhere_since(*list, me.since_ns);
            if (behind) {
                if (!list->idle.empty() &&
                    pool_figures(seg_.pools, list->index).held >= settings_.size) {
                    list->idle.pop_front();  // its Hold frees its place
                    publish(*list);
                }
            } else if (auto conn = take_idle(*list, wanted, owner)) {
                out.connection = std::move(conn);
                break;
            }
            bool room =
                !behind && pool_acquire(seg_.pools, list->index, key, worker_, settings_.size);
            if (!room && !behind && close_other_idle(*list, wanted)) {
                room = pool_acquire(seg_.pools, list->index, key, worker_, settings_.size);
            }
            if (!room && !queued) {
                list->index = pool_find(seg_.pools, key);  // the entry may have been reclaimed
                if (list->index < 0) list = list_for(key);
                if (list == nullptr) break;
            }
            if (room) {
                auto hold =
                    std::make_shared<Hold>(self_, seg_, list->index, worker_, list->key, wanted);
                if (queued) {
                    // Not waiting while it logs in: the next one may take what frees up.
                    list->waiters.pop_front();
                    queued = false;
                    publish(*list);
                    wake_head(*list);
                }
                out = co_await backend_login(spec, params, credentials, login_timeout);
                if (out.connection) {
                    out.connection->pool_hold = std::move(hold);
                    out.connection->born_ns = now_ns();
                }
                break;
            }
        }
        std::int64_t left = deadline - now_ns();
        if (left <= 0) {
            out.failure = {{},
                           std::string(proto::kSqlstateTooManyConnections),
                           "server connection pool of backend " + address + " is full"};
            break;
        }
        if (!queued) {
            list->waiters.push_back(&me);
            queued = true;
            publish(*list);
        }
        me.timer.expires_after(
            std::min<std::chrono::nanoseconds>(kWaitPoll, std::chrono::nanoseconds(left)));
        boost::system::error_code ec;
        co_await me.timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (queued && list != nullptr) {
        list->waiters.erase(std::find(list->waiters.begin(), list->waiters.end(), &me));
        publish(*list);
        wake_head(*list);
    }
    if (list == nullptr && !out.connection && out.failure.sqlstate.empty()) {
        out.failure = {{},
                       std::string(proto::kSqlstateTooManyConnections),
                       "too many server connection pools"};
    }
    co_return out;
}

bool ServerPool::may_keep(BackendConnection& conn) const {
    return settings_.enabled && conn.pool_hold != nullptr && conn.wire.output().empty() &&
           conn.wire.input().empty() && conn.wire.socket().is_open();
}

void ServerPool::give_back(std::unique_ptr<BackendConnection> conn) {
    if (io_ == nullptr || !conn || conn->pool_hold == nullptr) return;
    boost::system::error_code ignored;
    conn->wire.socket().cancel(ignored);  // whatever the session still waited for
    asio::co_spawn(*io_, reset_and_keep(std::move(conn)), [](const std::exception_ptr& e) {
        if (!e) return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            PGR_ERROR("pool: resetting a connection failed: %s", ex.what());
        } catch (...) {
            PGR_ERROR("pool: resetting a connection failed");
        }
    });
}

asio::awaitable<void> ServerPool::reset_and_keep(std::unique_ptr<BackendConnection> conn) {
    auto* hold = static_cast<Hold*>(conn->pool_hold.get());
    List* list = list_for(hold->key);
    int slot = hold->key.slot;
    auto kept = std::make_unique<Kept>(std::move(conn), slot_, backend_gauge(counters_, slot));
    BackendConnection& c = *kept->conn;
    if (list == nullptr || !settings_.enabled || !backend_usable(slot, hold->key.epoch) ||
        (settings_.lifetime_ms > 0 && now_ns() - c.born_ns > settings_.lifetime_ms * kMs)) {
        co_return;  // closed by ~Kept
    }
    // DISCARD ALL: the session's SETs, temp tables, prepared statements, advisory locks,
    // LISTENs and cursors go; inside a transaction block it fails, and the connection goes.
    std::int64_t timeout = std::max<std::int64_t>(view_.settings.health_timeout_ms, 1000);
    std::vector<std::string> discard(1, "DISCARD ALL");
    bool ok = co_await run_quietly(c, discard, std::chrono::milliseconds(timeout), c.parameters);
    if (!ok || !c.wire.input().empty()) {
        PGR_DEBUG("pool: connection to %s not reusable after DISCARD ALL; closed",
                  c.address.c_str());
        co_return;
    }
    c.wire.release_idle_memory();
    c.owner = 0;
    keep(*list, std::move(kept->conn), true);
}

void ServerPool::park(std::unique_ptr<BackendConnection> conn) {
    if (io_ == nullptr || !conn || conn->pool_hold == nullptr) return;
    auto* hold = static_cast<Hold*>(conn->pool_hold.get());
    List* list = list_for(hold->key);
    bool old = settings_.lifetime_ms > 0 && now_ns() - conn->born_ns > settings_.lifetime_ms * kMs;
    // A client of another worker waits for this pool and none here does: the place goes to
    // it now (it logs in), not at this worker's next tick, which a busy pool may never give.
    bool elsewhere = list != nullptr && wanted_elsewhere(*list);
    if (list == nullptr || !settings_.enabled || old || elsewhere || !may_keep(*conn) ||
        !backend_usable(hold->key.slot, hold->key.epoch)) {
        close_politely(*conn);
        return;  // its Hold frees its place
    }
    boost::system::error_code ignored;
    conn->wire.socket().cancel(ignored);  // whatever the session still waited for
    // Not watched: it is most likely taken again within milliseconds, and take_idle() looks
    // at it (quiet()) before handing it out; the tick closes it when its backend goes.
    keep(*list, std::move(conn), false);
}

void ServerPool::keep(List& list, std::unique_ptr<BackendConnection> conn, bool watched) {
    auto kept =
        std::make_unique<Kept>(std::move(conn), slot_, backend_gauge(counters_, list.key.slot));
    kept->since_ns = now_ns();
    BackendConnection* raw = kept->conn.get();
    list.idle.push_back(std::move(kept));
    if (watched) watch(list, raw);
    publish(list);
    wake_head(list);
}

void ServerPool::watch(List& list, BackendConnection* conn) {
    std::weak_ptr<ServerPool*> weak = self_;
    std::string key = encode_key(list.key);
    conn->wire.async_wait_readable([weak, key, conn](boost::system::error_code ec) {
        if (ec == asio::error::operation_aborted) return;
        auto self = weak.lock();
        if (!self) return;
        auto it = (*self)->lists_.find(key);
        if (it != (*self)->lists_.end()) (*self)->drop_idle(*it->second, conn, "spoke while idle");
    });
}

void ServerPool::drop_idle(List& list, BackendConnection* conn, const char* why) {
    auto it = std::find_if(list.idle.begin(), list.idle.end(),
                           [conn](const auto& k) { return k->conn.get() == conn; });
    if (it == list.idle.end()) return;  // handed out since
    PGR_DEBUG("pool: closing idle connection to %s: %s", conn->address.c_str(), why);
    list.idle.erase(it);
    publish(list);
}

void ServerPool::tick() {
    if (refresh_routing_view(seg_, view_)) settings_ = view_.settings.pool;
    std::int64_t now = now_ns();
    for (auto& [name, list_ptr] : lists_) {
        List& list = *list_ptr;
        if (list.idle.empty() && list.waiters.empty()) continue;
        PoolFigures figures = pool_figures(seg_.pools, list.index);
        std::int64_t held = figures.held;
        std::int64_t idle_all = figures.idle;
        bool usable = backend_usable(list.key.slot, list.key.epoch);
        // Clients of other workers wait for this pool (longer than any here): as many idle
        // ones close (each frees a place there).
        std::int64_t others_wait =
            wanted_elsewhere(list) ? pool_waiting_elsewhere(seg_.pools, list.index, worker_) : 0;
        for (auto it = list.idle.begin(); it != list.idle.end();) {
            const Kept& k = **it;
            const char* why = nullptr;
            if (!settings_.enabled) {
                why = "pooling turned off";
            } else if (!usable) {
                why = "backend down, fenced or gone";
            } else if (settings_.lifetime_ms > 0 &&
                       now - k.conn->born_ns > settings_.lifetime_ms * kMs) {
                why = "lifetime reached";
            } else if (held > static_cast<std::int64_t>(settings_.size)) {
                why = "pool size lowered";
            } else if (others_wait > 0) {
                why = "a client of another worker waits for the pool";
                --others_wait;
            } else if (settings_.idle_timeout_ms > 0 &&
                       now - k.since_ns > settings_.idle_timeout_ms * kMs &&
                       idle_all > static_cast<std::int64_t>(settings_.min_idle)) {
                why = "idle-timeout";
            }
            if (why == nullptr) {
                ++it;
                continue;
            }
            PGR_DEBUG("pool: closing idle connection to %s: %s", k.conn->address.c_str(), why);
            it = list.idle.erase(it);
            --held;
            --idle_all;
        }
        publish(list);
    }
    timer_->expires_after(kTick);
    timer_->async_wait([this](const boost::system::error_code& ec) {
        if (!ec) tick();
    });
}

}  // namespace pgrouter
