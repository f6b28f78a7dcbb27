// A client session (see session.h): the front door, then statement routing. Two coroutines
// share the session: the client pump reads the client's messages, cuts them into units (a
// Query, or extended messages up to Sync), asks the router where each goes, logs in to that
// backend if needed and sends the unit; the response pump forwards each in-flight unit's
// responses from its backend, in order, and learns the transaction state from ReadyForQuery.
// Only the client pump writes to backends; only the response pump reads from them.
#include "pgrouter/worker/session.h"

#include <cctype>
#include <map>
#include <set>

#include "pgrouter/base/clock.h"
#include "pgrouter/base/counted.h"
#include "pgrouter/base/deadline.h"
#include "pgrouter/base/log.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/proto/payload.h"
#include "pgrouter/route/router.h"
#include "pgrouter/worker/backend.h"
#include "pgrouter/worker/cancel.h"
#include "pgrouter/worker/frontdoor.h"

namespace pgrouter {

namespace {

using namespace std::chrono_literals;
using proto::BackendMsg;
using proto::FrontendMsg;

constexpr auto kStartupTimeout = 10s;  // PostgreSQL's authentication_timeout default

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

// A named (or the unnamed) prepared statement as the client defined it.
struct Statement {
    std::string parse;     // the client's whole Parse message, to repeat on other backends
    std::string_view sql;  // its query text, inside `parse`
    Classification cls;
    std::uint64_t version = 0;  // a new Parse of the same name is a new version
};

// One backend connection of the session and what it has seen of the session's state.
struct Server {
    Server(std::unique_ptr<BackendConnection> c, WorkerSlot& slot)
        : conn(std::move(c)), counted(slot.connections) {}
    std::unique_ptr<BackendConnection> conn;
    Counted counted;
    std::map<std::string, std::uint64_t, std::less<>> statements;  // name → Parse version
    std::set<std::string, std::less<>> to_close;  // statements the client closed elsewhere
    std::size_t sets_applied = 0;                 // entries of the session's SET log replayed here
    bool broken = false;
    bool watched = false;   // an idle wait for readability is pending
    bool readable = false;  // that wait fired
};

// A unit sent to a backend whose responses have not all come back yet.
struct InFlight {
    int slot = -1;
    int swallow = 0;     // ParseComplete/CloseComplete of injected messages, dropped
    bool ghost = false;  // injected by pgrouter (SET replay): nothing reaches the client
    bool hold = false;   // a read on a standby: hold responses back while a replay is possible
    bool sync = true;    // ends with ReadyForQuery (false after a Flush: the batch goes on)
    bool error = false;  // an ErrorResponse came back
    Classification cls;
    std::string tag;      // the last CommandComplete tag ("COMMIT", "ROLLBACK", ...)
    std::string sql;      // a simple Query's text (savepoints are tracked by it)
    std::string set_sql;  // a SET to remember once it succeeded outside a transaction
};

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket socket, WorkerEnv& env)
        : env_(env),
          id_(env.next_session_id++),
          client_(std::move(socket)),
          counted_(env.slot.clients),
          wakeup_(client_.socket().get_executor()) {
        wakeup_.expires_at(asio::steady_timer::time_point::max());
    }

    ~Session() { cancel_release(env_.seg, cancel_); }

    asio::awaitable<void> run() {
        std::optional<ClientLogin> login;
        {
            Deadline deadline(client_.socket(), kStartupTimeout);
            login = co_await front_door(client_, env_, id_);
            if (login) {
                login_ = std::move(*login);
                if (!co_await first_login()) login.reset();
            }
        }
        if (!login) {
            close("startup ended");
            co_return;
        }
        asio::co_spawn(client_.socket().get_executor(), response_pump(shared_from_this()),
                       asio::detached);
        co_await client_pump();
    }

  private:
    // ---- lifecycle -----------------------------------------------------------------------

    void close(std::string_view reason) {
        if (closed_) return;
        closed_ = true;
        PGR_DEBUG("session %llu closed: %.*s", ull(id_), static_cast<int>(reason.size()),
                  reason.data());
        client_.close();
        for (auto& [slot, server] : servers_) server->conn->wire.close();
        wake();
    }

    void wake() { wakeup_.cancel(); }

    asio::awaitable<void> wait_wakeup() {
        boost::system::error_code ec;
        co_await wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        wakeup_.expires_at(asio::steady_timer::time_point::max());
    }

    // The ReadyForQuery-free error for a unit that cannot be placed.
    void error_to_client(std::string_view severity, std::string_view sqlstate,
                         std::string_view message, std::string_view detail = {}) {
        proto::encode_error_response(client_.output(), severity, sqlstate, message, detail);
    }

    // ---- backends ------------------------------------------------------------------------

    bool refresh_snapshot() { return refresh_routing_view(env_.seg, snap_); }

    const BackendView* view_of(int slot) const {
        for (const BackendView& b : snap_.backends) {
            if (b.slot == slot) return &b;
        }
        return nullptr;
    }

    std::chrono::milliseconds login_timeout() const {
        return std::chrono::milliseconds(
            std::max<std::int64_t>(snap_.settings.health_timeout_ms, 1));
    }

    // The connection to `slot`, logging in when there is none. Null with the reason in
    // `failure` when the backend cannot be reached.
    asio::awaitable<Server*> server_for(int slot, LoginFailure& failure) {
        auto it = servers_.find(slot);
        if (it != servers_.end() && !it->second->broken) co_return it->second.get();
        if (it != servers_.end()) servers_.erase(it);
        const BackendView* view = view_of(slot);
        if (view == nullptr) {
            failure = LoginFailure{{},
                                   std::string(proto::kSqlstateConnectionFailure),
                                   "backend left the configuration"};
            co_return nullptr;
        }
        LoginParams params{login_.params.user, login_.params.database, login_.params.params};
        BackendSpec spec = view->spec;  // the shared snapshot may change while we wait
        LoginResult r = co_await backend_login(spec, params, login_.credentials, login_timeout());
        if (!r.connection) {
            if (r.failure.sqlstate == proto::kSqlstateConnectionFailure) env_.seg.recheck.post();
            failure = std::move(r.failure);
            co_return nullptr;
        }
        PGR_DEBUG("session %llu: logged in to backend %s", ull(id_), r.connection->address.c_str());
        // Its ParameterStatus matter only for the first login (sent to the client then).
        if (cancel_.index >= 0) {
            std::vector<std::pair<std::string, std::string>>().swap(r.connection->parameters);
        }
        auto server = std::make_unique<Server>(std::move(r.connection), env_.slot);
        Server* raw = server.get();
        servers_[slot] = std::move(server);
        co_return raw;
    }

    // The first backend: the master (a wrong database fails at login, as with PostgreSQL),
    // or a standby when there is no master. Its ParameterStatus goes to the client.
    asio::awaitable<bool> first_login() {
        Classification read;
        read.kind = StatementKind::Read;
        int slot = -1;
        // Right after a start the watcher has no verdict yet: wait for one, up to a timeout.
        asio::steady_timer pause(client_.socket().get_executor());
        refresh_snapshot();
        for (std::int64_t until = now_ns() + login_timeout().count() * 1000000;
             refresh_snapshot() && now_ns() < until &&
             std::all_of(snap_.backends.begin(), snap_.backends.end(), [](const BackendView& b) {
                 return b.health.status == BackendStatus::Starting;
             });) {
            pause.expires_after(10ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
        if (refresh_snapshot()) {
            int master = find_master(snap_.backends);
            if (master >= 0) {
                slot = snap_.backends[static_cast<std::size_t>(master)].slot;
            } else {
                RouteDecision d = route(read, rs_, snap_.backends, rng_());
                slot = d.ok() ? d.slot : -1;
            }
        }
        if (slot < 0) {
            co_await send_fatal(client_, proto::kSqlstateConnectionFailure,
                                "no backend is available right now");
            co_return false;
        }
        LoginFailure failure;
        Server* server = co_await server_for(slot, failure);
        if (server == nullptr) {
            if (!failure.backend_error.empty()) {
                // The backend's own refusal (wrong database, ...) reaches the client verbatim.
                proto::MessageBuilder(client_.output(), BackendMsg::ErrorResponse)
                    .bytes(failure.backend_error);
                co_await client_.flush();
            } else {
                PGR_WARNING("session %llu: %s", ull(id_), failure.message.c_str());
                co_await send_fatal(client_, failure.sqlstate, failure.message);
            }
            co_return false;
        }
        auto handle = cancel_register(env_.seg, env_.worker);
        if (!handle) {
            co_await send_fatal(client_, proto::kSqlstateTooManyConnections,
                                "sorry, too many clients already");
            co_return false;
        }
        cancel_ = *handle;
        cancel_set_backend(env_.seg, cancel_, slot, server->conn->pid, server->conn->key);
        std::string& out = client_.output();
        for (const auto& [name, value] : server->conn->parameters) {
            proto::encode_parameter_status(out, name, value);
        }
        proto::encode_backend_key_data(out, cancel_.pid, cancel_.key);
        std::vector<std::pair<std::string, std::string>>().swap(server->conn->parameters);
        proto::encode_ready_for_query(out, proto::TransactionStatus::Idle);
        co_return !co_await client_.flush();
    }

    // ---- client → backends -----------------------------------------------------------------

    asio::awaitable<void> client_pump() {
        std::string unit;
        Classification cls;
        bool have_cls = false;
        std::vector<std::string> uses;  // statement names the unit refers to
        for (;;) {
            if (!client_.output().empty() && co_await client_.flush()) {
                co_return close("client connection lost");
            }
            WireRead r = co_await client_.read_frontend();
            if (closed_) co_return;
            if (std::holds_alternative<WireClosed>(r)) {
                co_return close("client closed the connection");
            }
            if (auto* e = std::get_if<proto::ProtoError>(&r)) {
                PGR_NOTICE("session %llu: %s", ull(id_), e->message.c_str());
                co_await send_fatal(client_, e->sqlstate, e->message);
                co_return close(e->message);
            }
            proto::Message m = std::get<proto::Message>(r);
            char type = m.type;
            std::string_view bytes = m.bytes();
            if (m.is(FrontendMsg::Terminate)) {
                client_.consume(m);
                co_await terminate_backends();
                co_return close("client terminated the session");
            }
            if (m.is(FrontendMsg::CopyData) || m.is(FrontendMsg::CopyDone) ||
                m.is(FrontendMsg::CopyFail)) {
                co_await copy_to_backend(bytes);
                client_.consume(m);
                continue;
            }
            unit.append(bytes);
            if (m.is(FrontendMsg::Query)) {
                // The text, inside the unit's own copy of the message.
                std::string_view sql = std::string_view(unit).substr(unit.size() - m.payload.size(),
                                                                     m.payload.find('\0'));
                cls = env_.cache.classify(sql, env_.classifier);
                have_cls = true;
                client_.consume(m);
                co_await dispatch(unit, cls, uses, true, sql);
            } else if (m.is(FrontendMsg::FunctionCall)) {
                cls = Classification{};  // Write: the master
                client_.consume(m);
                co_await dispatch(unit, cls, uses, true, {});
            } else {
                note_extended(m, cls, have_cls, uses);
                client_.consume(m);
                if (type == static_cast<char>(FrontendMsg::Sync) ||
                    type == static_cast<char>(FrontendMsg::Flush)) {
                    if (!have_cls) cls.kind = StatementKind::Read;  // Describe/Close only
                    co_await dispatch(unit, cls, uses, type == static_cast<char>(FrontendMsg::Sync),
                                      {});
                } else {
                    continue;
                }
            }
            unit.clear();
            uses.clear();
            have_cls = false;
            cls = Classification{};
            if (closed_) co_return;
        }
    }

    static Classification combine(const Classification& a, const Classification& b) {
        Classification c = a;
        if (b.kind != StatementKind::Read && c.kind == StatementKind::Read) c.kind = b.kind;
        if (b.kind == StatementKind::Write) c.kind = StatementKind::Write;
        c.pins |= b.pins;
        c.unpins |= b.unpins;
        c.set = c.set || b.set;
        c.set_local = c.set_local || b.set_local;
        c.multi = true;
        return c;
    }

    // Remembers statements and what the extended messages of a unit refer to.
    void note_extended(const proto::Message& m, Classification& cls, bool& have_cls,
                       std::vector<std::string>& uses) {
        proto::PayloadReader in(m.payload);
        std::string_view name;
        auto use = [&](std::string_view statement) {
            auto it = statements_.find(statement);
            if (it == statements_.end()) return;
            uses.emplace_back(statement);
            cls = have_cls ? combine(cls, it->second.cls) : it->second.cls;
            have_cls = true;
        };
        if (m.is(FrontendMsg::Parse)) {
            std::string_view sql;
            if (!in.read_cstr(name) || !in.read_cstr(sql)) return;
            Classification parsed = env_.cache.classify(sql, env_.classifier);
            Statement& st = statements_[std::string(name)];
            st = Statement{std::string(m.bytes()), {}, parsed, ++statement_versions_};
            // The text inside the stored message: type, length, name and its NUL come first.
            st.sql = std::string_view(st.parse).substr(5 + name.size() + 1, sql.size());
            cls = have_cls ? combine(cls, parsed) : parsed;
            have_cls = true;
            parsed_in_unit_.insert(std::string(name));
        } else if (m.is(FrontendMsg::Bind)) {
            std::string_view portal;
            if (in.read_cstr(portal) && in.read_cstr(name)) {
                use(name);
                // A SET through the extended protocol (a prepared SET, pgJDBC, psycopg):
                // remembered by its text, like a simple one.
                auto it = statements_.find(name);
                if (it != statements_.end() && it->second.cls.set && !it->second.cls.set_local) {
                    if (!unit_sets_.empty()) unit_sets_ += "; ";
                    unit_sets_.append(it->second.sql);
                }
            }
        } else if (m.is(FrontendMsg::Describe) || m.is(FrontendMsg::Close)) {
            std::uint8_t what = 0;
            if (!in.read_u8(what) || !in.read_cstr(name) || what != 'S') return;
            use(name);
            if (m.is(FrontendMsg::Close)) closed_in_unit_.insert(std::string(name));
        }
    }

    asio::awaitable<void> copy_to_backend(std::string_view bytes) {
        int slot = !inflight_.empty() ? inflight_.back().slot : last_slot_;
        auto it = servers_.find(slot);
        if (it == servers_.end()) co_return;  // no COPY in progress: the backend ignores it
        if (co_await it->second->conn->wire.send(bytes)) it->second->broken = true;
    }

    asio::awaitable<void> terminate_backends() {
        std::string bye;
        proto::encode_terminate(bye);
        for (auto& [slot, server] : servers_) co_await server->conn->wire.send(bye);
    }

    // Places one unit: chooses the backend, logs in if needed, injects what that backend is
    // missing (SETs, prepared statements), sends it, and for a replayable read waits for
    // its outcome (replaying it on the master after a 25006).
    asio::awaitable<void> dispatch(std::string& unit, const Classification& cls,
                                   const std::vector<std::string>& uses, bool sync,
                                   std::string_view sql) {
        refresh_snapshot();
        int slot = -1;
        std::string_view reason;
        if (sticky_slot_ >= 0) {
            slot = sticky_slot_;
            reason = "rest of a flushed batch";
        } else if (!inflight_.empty()) {
            slot = inflight_.back().slot;
            reason = "follows the units in flight";
        } else {
            if (rs_.ryw.commit_at_ns != 0)
                rs_.ryw = settle_read_your_writes(rs_.ryw, snap_.backends);
            Classification routed = cls;
            if (serializable_default_ && routed.kind == StatementKind::TransactionBegin) {
                routed.read_only = false;  // SERIALIZABLE: a standby cannot run it
                routed.read_write = true;
            }
            RouteDecision d = route(routed, rs_, snap_.backends, rng_());
            if (!d.ok()) {
                PGR_DEBUG("session %llu: cannot route (%.*s): %.*s", ull(id_),
                          static_cast<int>(kind_name(cls.kind).size()), kind_name(cls.kind).data(),
                          static_cast<int>(d.message.size()), d.message.data());
                if (d.fatal) {
                    co_await send_fatal(client_, d.sqlstate, d.message);
                    co_return close(d.message);
                }
                error_to_client("ERROR", d.sqlstate, d.message, d.detail);
                if (sync) proto::encode_ready_for_query(client_.output(), txn_status_);
                co_return;
            }
            slot = d.slot;
            reason = d.reason;
        }
        co_await send_unit(slot, unit, cls, uses, sync, sql, reason, true);
    }

    asio::awaitable<void> send_unit(int slot, std::string& unit, const Classification& cls,
                                    const std::vector<std::string>& uses, bool sync,
                                    std::string_view sql, std::string_view reason, bool may_hold) {
        LoginFailure failure;
        Server* server = co_await server_for(slot, failure);
        if (server == nullptr && may_hold && inflight_.empty() &&
            txn_status_ == proto::TransactionStatus::Idle && cls.kind != StatementKind::Write &&
            cls.pins == 0) {
            // A standby that cannot be reached for a read: the master serves it instead.
            refresh_snapshot();
            int master = find_master(snap_.backends);
            int master_slot =
                master < 0 ? -1 : snap_.backends[static_cast<std::size_t>(master)].slot;
            if (master_slot >= 0 && master_slot != slot) {
                co_await send_unit(master_slot, unit, cls, uses, sync, sql,
                                   "standby unreachable, master", false);
                co_return;
            }
        }
        if (server == nullptr) {
            std::string message = failure.message;
            if (message.empty()) {
                auto fields = proto::parse_error_fields(failure.backend_error);
                message = fields ? fields->message : "backend refused the login";
            }
            error_to_client("ERROR", proto::kSqlstateConnectionFailure, message);
            if (sync) proto::encode_ready_for_query(client_.output(), txn_status_);
            co_return;
        }
        if (log_enabled(LogLevel::Debug)) {
            PGR_DEBUG("session %llu: %s unit → %s (%.*s)", ull(id_), kind_name(cls.kind).data(),
                      server->conn->address.c_str(), static_cast<int>(reason.size()),
                      reason.data());
        }
        std::string& out = server->conn->wire.output();
        bool nothing_in_flight = inflight_.empty();  // before the ghosts below
        // SETs the session made elsewhere, as ghost units.
        while (server->sets_applied < set_log_.size()) {
            proto::encode_query(out, set_log_[server->sets_applied++]);
            InFlight ghost;
            ghost.slot = slot;
            ghost.ghost = true;
            inflight_.push_back(std::move(ghost));
        }
        InFlight f;
        f.slot = slot;
        f.cls = cls;
        f.sync = sync;
        for (const std::string& name : server->to_close) {
            proto::MessageBuilder(out, FrontendMsg::Close).u8('S').cstr(name);
            f.swallow += 1;
        }
        server->to_close.clear();
        for (const std::string& name : uses) {
            auto it = statements_.find(name);
            if (it == statements_.end() || parsed_in_unit_.count(name) != 0) continue;
            auto have = server->statements.find(name);
            if (have != server->statements.end() && have->second == it->second.version) continue;
            out += it->second.parse;  // this backend has not seen the statement
            server->statements[name] = it->second.version;
            f.swallow += 1;
        }
        for (const std::string& name : parsed_in_unit_) {
            auto it = statements_.find(name);
            if (it != statements_.end()) server->statements[name] = it->second.version;
        }
        for (const std::string& name : closed_in_unit_) {
            server->statements.erase(name);
            for (auto& [other_slot, other] : servers_) {
                if (other.get() != server && other->statements.erase(name) != 0) {
                    other->to_close.insert(name);
                }
            }
            if (name.empty() || !parsed_in_unit_.count(name)) statements_.erase(name);
        }
        parsed_in_unit_.clear();
        closed_in_unit_.clear();

        const BackendView* view = view_of(slot);
        bool standby = view != nullptr && view->health.role == BackendRole::Slave;
        f.hold = may_hold && standby && sync && nothing_in_flight &&
                 txn_status_ == proto::TransactionStatus::Idle;

        if (cls.set && !cls.set_local) f.set_sql = sql.empty() ? unit_sets_ : std::string(sql);
        unit_sets_.clear();
        if (txn_status_ != proto::TransactionStatus::Idle) f.sql = sql;
        out += unit;
        if (co_await server->conn->wire.flush()) {
            server->broken = true;
            error_to_client("ERROR", proto::kSqlstateConnectionFailure,
                            "lost the connection to backend " + server->conn->address);
            if (sync) proto::encode_ready_for_query(client_.output(), txn_status_);
            co_return;
        }
        cancel_set_backend(env_.seg, cancel_, slot, server->conn->pid, server->conn->key);
        last_slot_ = slot;
        sticky_slot_ = sync ? -1 : slot;
        bool hold = f.hold;
        if (!inflight_.empty() && !inflight_.back().sync && inflight_.back().slot == slot) {
            // The rest of a flushed batch: one unit, one ReadyForQuery.
            InFlight& batch = inflight_.back();
            batch.sync = f.sync;
            batch.swallow += f.swallow;
            batch.cls = combine(batch.cls, f.cls);
        } else {
            inflight_.push_back(std::move(f));
        }
        wake();
        if (!hold) co_return;
        // A read on a standby: wait for its outcome; replay it on the master after a 25006
        // (or a standby that died) when nothing of it reached the client.
        while (!inflight_.empty() && !closed_) co_await wait_wakeup();
        if (!replay_ || closed_) co_return;
        replay_ = false;
        refresh_snapshot();
        int master = find_master(snap_.backends);
        if (master < 0) {
            error_to_client("ERROR", proto::kSqlstateReadOnlySqlTransaction,
                            "no master backend is available right now");
            proto::encode_ready_for_query(client_.output(), txn_status_);
            co_return;
        }
        Classification write = cls;
        if (replay_wrote_) write.kind = StatementKind::Write;
        std::vector<std::string> none;
        co_await send_unit(snap_.backends[static_cast<std::size_t>(master)].slot, unit, write, none,
                           true, {}, "replay on the master", false);
    }

    // ---- backends → client -----------------------------------------------------------------

    static asio::awaitable<void> response_pump(std::shared_ptr<Session> self) {
        co_await self->forward_responses();
    }

    asio::awaitable<void> forward_responses() {
        for (;;) {
            if (closed_) co_return;
            if (inflight_.empty()) {
                forward_idle_messages();
                if (!client_.output().empty() && co_await client_.flush()) {
                    co_return close("client connection lost");
                }
                if (close_after_flush_) co_return close("pinned session state lost");
                if (inflight_.empty()) {
                    arm_idle_watches();
                    co_await wait_wakeup();
                }
                continue;
            }
            int slot = inflight_.front().slot;
            auto it = servers_.find(slot);
            if (it == servers_.end()) {
                inflight_.erase(inflight_.begin());
                continue;
            }
            Server& server = *it->second;
            Wire& wire = server.conn->wire;
            bool progressed = false;
            for (;;) {
                proto::DecodeResult r = proto::decode_backend(wire.input().data());
                auto* m = std::get_if<proto::Message>(&r);
                if (m == nullptr) break;
                progressed = true;
                bool unit_done = on_backend_message(*m, server);
                wire.consume(*m);
                if (unit_done) break;
                if (inflight_.empty() || inflight_.front().slot != slot) break;
            }
            if (progressed) continue;
            if (!client_.output().empty() && co_await client_.flush()) {
                co_return close("client connection lost");
            }
            if (co_await wire.fill(16384)) {
                if (closed_) co_return;
                co_await backend_lost(server);
                if (closed_) co_return;
            }
        }
    }

    // While no unit is in flight, a backend can still speak: NOTIFY for a LISTEN, a notice,
    // a ParameterStatus, or its end (a FATAL before an administrator's shutdown). Each idle
    // backend socket is watched; what arrives is read and passed on at once.
    void arm_idle_watches() {
        for (auto& [slot, server] : servers_) {
            if (server->broken || server->watched) continue;
            server->watched = true;
            std::weak_ptr<Session> weak = weak_from_this();
            Server* raw = server.get();
            raw->conn->wire.async_wait_readable([weak, raw](boost::system::error_code ec) {
                // Aborted: the connection is being closed (raw may be gone already).
                if (ec == asio::error::operation_aborted) return;
                if (auto self = weak.lock()) {
                    raw->readable = true;
                    raw->watched = false;
                    self->wake();
                }
            });
        }
    }

    void forward_idle_messages() {
        for (auto& [slot, server] : servers_) {
            if (server->broken || !server->readable) continue;
            server->readable = false;
            Wire& wire = server->conn->wire;
            // The wait may have fired for a unit's answer that was read since: read only
            // what is there, without blocking. End of file means the backend left.
            boost::system::error_code ec = wire.read_now();  // through TLS when present
            if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
            if (ec) {
                PGR_DEBUG("session %llu: idle backend %s closed its connection", ull(id_),
                          server->conn->address.c_str());
                idle_backend_gone(slot, *server);
                continue;
            }
            for (;;) {
                proto::DecodeResult r = proto::decode_backend(wire.input().data());
                auto* m = std::get_if<proto::Message>(&r);
                if (m == nullptr) break;
                bool going = m->is(BackendMsg::ErrorResponse);
                if (m->is(BackendMsg::NoticeResponse)) {
                    // "terminating connection due to ... shutdown" (57P01..57P03): the backend
                    // is going away; that is pgrouter's business, not the client's.
                    auto fields = proto::parse_error_fields(m->payload);
                    going = fields && fields->sqlstate.rfind("57P0", 0) == 0;
                }
                if (going) {
                    idle_backend_gone(slot, *server);
                } else if (m->is(BackendMsg::NotificationResponse) ||
                           m->is(BackendMsg::NoticeResponse) ||
                           m->is(BackendMsg::ParameterStatus)) {
                    client_.output().append(m->bytes());
                }
                wire.consume(*m);
            }
        }
    }

    // An idle backend left. The session carries on elsewhere, unless state that cannot be
    // copied lived there: then the client is told, as PostgreSQL would tell it, and leaves.
    void idle_backend_gone(int slot, Server& server) {
        server.broken = true;
        env_.seg.recheck.post();
        if (pins_ != 0 && rs_.pinned_slot == slot && !close_after_flush_) {
            proto::encode_error_response(client_.output(), "FATAL", proto::kSqlstateAdminShutdown,
                                         "terminating connection because its session state "
                                         "was lost with the old master");
            close_after_flush_ = true;
        }
    }

    // Handles one message of the head unit. True when the head unit is finished.
    bool on_backend_message(const proto::Message& m, Server& server) {
        InFlight& f = inflight_.front();
        if (f.swallow > 0 && (m.is(BackendMsg::ParseComplete) || m.is(BackendMsg::CloseComplete))) {
            f.swallow -= 1;
            return false;
        }
        if (m.is(BackendMsg::ErrorResponse)) {
            f.error = true;
            if (f.ghost || f.hold) {
                auto fields = proto::parse_error_fields(m.payload);
                std::string code = fields ? fields->sqlstate : "";
                // 25006: a write a standby refuses; 0A000: what a hot standby cannot do at
                // all (SERIALIZABLE). Either way the master can, and nothing was sent yet.
                if (f.hold && (code == proto::kSqlstateReadOnlySqlTransaction ||
                               code == proto::kSqlstateFeatureNotSupported)) {
                    replay_ = true;
                    replay_wrote_ =
                        code == proto::kSqlstateReadOnlySqlTransaction;  // it writes: ryw applies
                    held_.clear();
                    f.ghost = true;  // drop the rest of the standby's answer
                    PGR_DEBUG(
                        "session %llu: standby %s refused a write (%s); replaying on "
                        "the master",
                        ull(id_), server.conn->address.c_str(), code.c_str());
                    return false;
                }
                if (f.ghost) {
                    PGR_WARNING("session %llu: replaying session state on %s failed: %s", ull(id_),
                                server.conn->address.c_str(),
                                fields ? fields->message.c_str() : "?");
                    return false;
                }
            }
        }
        if (m.is(BackendMsg::ReadyForQuery)) return finish_unit(m, f);
        if (m.is(BackendMsg::CommandComplete))
            f.tag.assign(m.payload.substr(0, m.payload.find('\0')));
        if (f.ghost) return false;
        if (f.hold) {
            held_.append(m.bytes());
            if (m.is(BackendMsg::DataRow) || m.is(BackendMsg::CommandComplete) ||
                m.is(BackendMsg::CopyOutResponse) || m.is(BackendMsg::CopyInResponse) ||
                m.is(BackendMsg::EmptyQueryResponse) || m.is(BackendMsg::PortalSuspended) ||
                m.is(BackendMsg::ErrorResponse)) {
                release_held(f);
            }
            return false;
        }
        client_.output().append(m.bytes());
        return false;
    }

    void release_held(InFlight& f) {
        client_.output() += held_;
        held_.clear();
        f.hold = false;
    }

    bool finish_unit(const proto::Message& m, InFlight& f) {
        auto status =
            proto::parse_ready_for_query(m.payload).value_or(proto::TransactionStatus::Idle);
        bool ghost = f.ghost;
        if (!ghost) {
            if (f.hold) release_held(f);
            bool was_in_block = txn_status_ != proto::TransactionStatus::Idle;
            txn_status_ = status;
            rs_.block_slot = status == proto::TransactionStatus::Idle ? -1 : f.slot;
            const BackendView* view = view_of(f.slot);
            bool on_master = view != nullptr && view->health.role == BackendRole::Master;
            // Only writes count: BEGIN/COMMIT of a block that only read leave reads free.
            bool wrote = on_master && (f.cls.kind == StatementKind::Write || f.cls.pins != 0);
            if (status != proto::TransactionStatus::Idle) {
                block_wrote_ = block_wrote_ || wrote;
            } else {
                if (wrote || block_wrote_) note_commit(rs_.ryw, now_ns());
                block_wrote_ = false;
            }
            if (!f.error) {
                note_session_state(f, view, was_in_block);
            } else if (status == proto::TransactionStatus::Idle) {
                pending_sets_.clear();
            }
            client_.output().append(m.bytes());
        }
        inflight_.erase(inflight_.begin());
        wake();
        return true;
    }

    // SAVEPOINT / ROLLBACK TO / RELEASE in a block: a savepoint is a marker ("\1name") among
    // the block's pending SETs; rolling back to it drops the SETs made after it.
    void track_savepoint(std::string_view sql) {
        auto words = lower_words(sql, 4);
        if (words.empty()) return;
        if (words[0] == "savepoint" && words.size() >= 2) {
            pending_sets_.push_back("\1" + words[1]);
        } else if (words[0] == "rollback" && words.size() >= 3 && words[1] == "to") {
            std::string name =
                "\1" + (words[2] == "savepoint" && words.size() >= 4 ? words[3] : words[2]);
            for (std::size_t i = pending_sets_.size(); i-- > 0;) {
                if (pending_sets_[i] == name) {
                    pending_sets_.resize(i + 1);
                    break;
                }
            }
        }
    }

    // A hot standby refuses SERIALIZABLE transactions, and a session whose default is
    // SERIALIZABLE (SET default_transaction_isolation, SET SESSION CHARACTERISTICS) makes
    // every transaction one: its transaction blocks then start on the master.
    void note_isolation_default(std::string_view set) {
        std::string lower;
        for (char ch : set)
            lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (lower.find("isolation") != std::string::npos) {
            serializable_default_ = lower.find("serializable") != std::string::npos;
        } else if (lower.find("reset all") != std::string::npos ||
                   lower.find("discard all") != std::string::npos) {
            serializable_default_ = false;
        }
    }

    // The first `n` words of `sql`, lower-cased, without a trailing semicolon.
    static std::vector<std::string> lower_words(std::string_view sql, std::size_t n) {
        std::vector<std::string> words;
        std::string word;
        for (char ch : sql) {
            if (std::isspace(static_cast<unsigned char>(ch)) || ch == ';') {
                if (!word.empty()) words.push_back(std::move(word));
                word.clear();
                if (words.size() == n || ch == ';') break;
                continue;
            }
            word += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        }
        if (!word.empty() && words.size() < n) words.push_back(word);
        return words;
    }

    // A SET made outside a block holds at once; one made inside a block holds only if the
    // block commits (a rolled-back SET must not reach the session's other backends).
    void note_session_state(const InFlight& f, const BackendView* view, bool was_in_block) {
        bool in_block = txn_status_ != proto::TransactionStatus::Idle;
        if (in_block) track_savepoint(f.sql);
        if (!f.set_sql.empty()) pending_sets_.push_back(f.set_sql);
        if (!in_block && !pending_sets_.empty()) {
            bool keep = !was_in_block || f.tag == "COMMIT" || f.tag.empty();
            auto it = servers_.find(f.slot);
            bool in_sync = it != servers_.end() && it->second->sets_applied == set_log_.size();
            if (keep) {
                for (std::string& set : pending_sets_) {
                    if (set.empty() || set[0] == '\1') continue;
                    note_isolation_default(set);
                    set_log_.push_back(std::move(set));
                }
                // They ran on this backend already.
                if (in_sync) it->second->sets_applied = set_log_.size();
            }
            pending_sets_.clear();
        }
        if (!in_block) pending_sets_.clear();
        if (f.cls.read_only_default == ReadOnlyDefault::On) rs_.read_only_default = true;
        if (f.cls.read_only_default == ReadOnlyDefault::Off) rs_.read_only_default = false;
        std::uint16_t pins = static_cast<std::uint16_t>((pins_ & ~f.cls.unpins) | f.cls.pins);
        if (pins != pins_) {
            if (pins_ == 0) pinned_counted_.emplace(env_.slot.pinned);
            if (pins == 0) pinned_counted_.reset();
            pins_ = pins;
            rs_.pinned_slot = pins_ != 0 ? f.slot : -1;
            rs_.pinned_epoch = pins_ != 0 && view != nullptr ? view->spec.epoch : 0;
            PGR_DEBUG("session %llu: %s", ull(id_),
                      pins_ != 0 ? "pinned to the master" : "no longer pinned");
        }
    }

    // The head unit's backend closed. A held read is replayed elsewhere; otherwise the client
    // gets the error and the session ends (its state on that backend is gone).
    asio::awaitable<void> backend_lost(Server& server) {
        server.broken = true;
        env_.seg.recheck.post();
        InFlight& f = inflight_.front();
        if (f.hold) {
            PGR_INFO("session %llu: backend %s closed during a read; replaying it elsewhere",
                     ull(id_), server.conn->address.c_str());
            replay_ = true;
            replay_wrote_ = false;
            held_.clear();
            // Everything still in flight went to that backend: all of it is lost.
            inflight_.clear();
            wake();
            co_return;
        }
        std::string message = "lost the connection to backend " + server.conn->address;
        PGR_WARNING("session %llu: %s", ull(id_), message.c_str());
        if (pins_ != 0 && rs_.pinned_slot == f.slot) {
            co_await send_fatal(client_, proto::kSqlstateAdminShutdown,
                                "terminating connection because its session state was lost "
                                "with the old master");
            co_return close(message);
        }
        // Nothing of the session's own state lived only there: the units in flight fail,
        // as a crashed server's statements do, and the session goes on elsewhere.
        for (const InFlight& lost : inflight_) {
            if (lost.ghost || !lost.sync) continue;
            error_to_client("ERROR", proto::kSqlstateConnectionFailure, message,
                            txn_status_ != proto::TransactionStatus::Idle
                                ? "The transaction was lost with the backend."
                                : "");
            proto::encode_ready_for_query(client_.output(), proto::TransactionStatus::Idle);
        }
        held_.clear();
        inflight_.clear();
        txn_status_ = proto::TransactionStatus::Idle;
        rs_.block_slot = -1;
        block_wrote_ = false;
        pending_sets_.clear();
        sticky_slot_ = -1;
        wake();
    }

    WorkerEnv& env_;
    std::uint64_t id_;
    Wire client_;
    Counted counted_;
    ClientLogin login_;
    CancelHandle cancel_;
    bool closed_ = false;

    asio::steady_timer wakeup_;         // "something changed" between the two pumps
    RoutingView& snap_ = env_.routing;  // the worker's; refreshed before each decision
    std::mt19937_64& rng_ = env_.rng;
    RouteSession rs_;
    proto::TransactionStatus txn_status_ = proto::TransactionStatus::Idle;
    std::uint16_t pins_ = 0;
    bool block_wrote_ = false;               // the open transaction block wrote on the master
    std::optional<Counted> pinned_counted_;  // in the monitor's "pinned" while pinned
    bool close_after_flush_ = false;
    bool serializable_default_ = false;

    std::map<int, std::unique_ptr<Server>> servers_;  // by backend slot
    // Units in flight, oldest first: rarely more than two, so a vector (which, unlike a
    // deque, costs nothing while empty) serves as the queue.
    std::vector<InFlight> inflight_;
    std::string held_;           // responses of a held read
    bool replay_ = false;        // the held read must run again, on the master
    bool replay_wrote_ = false;  // ... because it writes (25006), not for lack of a feature
    int sticky_slot_ = -1;       // after a Flush: where the rest of the batch goes
    int last_slot_ = -1;

    std::map<std::string, Statement, std::less<>> statements_;  // the client's statements
    std::uint64_t statement_versions_ = 0;
    std::string unit_sets_;  // SET statements executed by the extended unit being cut
    std::set<std::string, std::less<>> parsed_in_unit_;
    std::set<std::string, std::less<>> closed_in_unit_;
    std::vector<std::string> set_log_;       // SETs in force, in order, to replay elsewhere
    std::vector<std::string> pending_sets_;  // SETs of the open block, kept if it commits
};

}  // namespace

asio::awaitable<void> run_session(tcp::socket client, WorkerEnv& env) {
    boost::system::error_code ec;
    client.set_option(tcp::no_delay(true), ec);
    auto session = std::make_shared<Session>(std::move(client), env);
    co_await session->run();
}

}  // namespace pgrouter
