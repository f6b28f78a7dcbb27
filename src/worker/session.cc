// A client session (see session.h): the I/O glue between the client, the backends and the
// pure pieces beside it. Two coroutines share the session: the client pump reads the
// client's messages, lets the cutter (unit.h) cut them into units, asks the router where
// each goes, logs in to that backend if needed, brings it up to date (the SET log of
// session_state.h, the prepared statements of statements.h) and sends the unit; the
// response pump passes each in-flight unit's answer (inflight.h) from its backend to the
// client, in order, and hands finished units to the session state. Only the client pump
// writes to backends; only the response pump reads from them.
#include "pgrouter/worker/session.h"

#include <exception>
#include <map>

#include "pgrouter/base/clock.h"
#include "pgrouter/base/counted.h"
#include "pgrouter/base/deadline.h"
#include "pgrouter/health/health.h"
#include "pgrouter/net/relay.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/proto/payload.h"
#include "pgrouter/route/router.h"
#include "pgrouter/worker/backend.h"
#include "pgrouter/worker/cancel.h"
#include "pgrouter/worker/frontdoor.h"
#include "pgrouter/worker/ghosts.h"
#include "pgrouter/worker/inflight.h"
#include "pgrouter/worker/session_log.h"
#include "pgrouter/worker/session_state.h"
#include "pgrouter/worker/statements.h"
#include "pgrouter/worker/unit.h"

namespace pgrouter {

namespace {

using namespace std::chrono_literals;
using proto::BackendMsg;
using proto::FrontendMsg;

constexpr auto kStartupTimeout = 10s;  // PostgreSQL's authentication_timeout default

// Abnormal closes are logged at INFO, the others at DEBUG.
enum class Closing : bool { Normal, Abnormal };

int len(std::string_view s) { return static_cast<int>(s.size()); }

// One backend connection of the session and how far it has replayed the session's SETs.
struct Server {
    Server(std::unique_ptr<BackendConnection> c, WorkerSlot& slot)
        : conn(std::move(c)), counted(slot.connections) {}
    std::unique_ptr<BackendConnection> conn;
    Counted counted;
    StateApplied applied;       // how far the session's state was replayed here
    bool state_failed = false;  // a replay failed (what failed: state_error)
    bool shape_changed = false;  // a statement re-parsed here describes another result
    std::string state_error;
    bool broken = false;
    bool watched = false;   // an idle wait for readability is pending
    bool readable = false;  // that wait fired
};

// A detached coroutine of session `id` ended with an exception: say so, never silently.
void log_escaped(std::uint64_t id, const char* what, const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        PGR_SESSION_LOG(LogLevel::Error, id, "%s ended with an exception: %s", what, ex.what());
    } catch (...) {
        PGR_SESSION_LOG(LogLevel::Error, id, "%s ended with an unknown exception", what);
    }
}

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket socket, WorkerEnv& env)
        : env_(env),
          id_(env.next_session_id++),
          client_(std::move(socket)),
          counted_(env.slot.clients),
          wakeup_(client_.socket().get_executor()),
          cutter_(statements_, [&env](std::string_view sql) {
              return env.cache.classify(sql, env.classifier);
          }) {
        wakeup_.expires_at(asio::steady_timer::time_point::max());
        env_.wakeups.insert(&wakeup_);  // SIGTERM wakes the session (WorkerEnv::draining)
    }

    ~Session() {
        env_.wakeups.erase(&wakeup_);
        cancel_release(env_.seg, cancel_);
    }

    std::uint64_t id() const { return id_; }

    asio::awaitable<void> run() {
        std::optional<ClientLogin> login;
        {
            Deadline deadline(client_.socket(), kStartupTimeout);
            std::string peer = client_address(client_);  // gone once the deadline closes it
            login = co_await front_door(client_, env_, id_);
            if (!login && deadline.expired()) {
                log_dropped(env_, id_, peer, "timeout expired during startup");
            }
            if (login) {
                login_ = std::move(*login);
                if (!co_await first_login()) login.reset();
            }
        }
        if (!login) {
            close("startup ended", Closing::Normal);
            co_return;
        }
        asio::co_spawn(client_.socket().get_executor(), response_pump(shared_from_this()),
                       [weak = weak_from_this(), id = id_](const std::exception_ptr& e) {
                           if (!e) return;
                           log_escaped(id, "the response pump", e);
                           if (auto self = weak.lock()) {
                               self->close("response pump failed", Closing::Abnormal);
                           }
                       });
        co_await client_pump();
    }

    // The one way the session's connections close: one backend connection (`backend`; the
    // session goes on without it), or the client and every backend. Logs why.
    void close(std::string_view reason, Closing how, Server* backend = nullptr) {
        LogLevel level = how == Closing::Abnormal ? LogLevel::Info : LogLevel::Debug;
        if (backend != nullptr) {
            if (backend->broken) return;
            backend->broken = true;
            env_.seg.recheck.post();  // the watcher should look at that backend now
            PGR_SESSION_LOG(level, id_, "backend %s closed: %.*s", backend->conn->address.c_str(),
                            len(reason), reason.data());
            backend->conn->wire.close();
            return;
        }
        if (closed_) return;
        closed_ = true;
        PGR_SESSION_LOG(level, id_, "closed: %.*s", len(reason), reason.data());
        client_.close();
        for (auto& [slot, server] : servers_) server->conn->wire.close();
        wake();
    }

  private:
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

    // The error of a unit that cannot be placed, with its ReadyForQuery when it has one.
    void unit_error_to_client(std::string_view sqlstate, std::string_view message, bool sync) {
        error_to_client("ERROR", sqlstate, message);
        if (sync) proto::encode_ready_for_query(client_.output(), state_.txn_status());
    }

    // ---- the backend table: every read of the shared snapshot is here -------------------

    bool refresh_snapshot() { return refresh_routing_view(env_.seg, snap_); }

    const BackendView* view_of(int slot) const {
        for (const BackendView& b : snap_.backends) {
            if (b.slot == slot) return &b;
        }
        return nullptr;
    }

    // The master's slot in the last snapshot; -1 when there is none.
    int master_slot() const {
        int master = find_master(snap_.backends);
        return master < 0 ? -1 : snap_.backends[static_cast<std::size_t>(master)].slot;
    }

    bool all_starting() const {
        return std::all_of(snap_.backends.begin(), snap_.backends.end(), [](const BackendView& b) {
            return b.health.status == BackendStatus::Starting;
        });
    }

    std::chrono::milliseconds login_timeout() const {
        return std::chrono::milliseconds(
            std::max<std::int64_t>(snap_.settings.health_timeout_ms, 1));
    }

    // ---- backends ------------------------------------------------------------------------

    // The connection to `slot`, logging in when there is none. Null with the reason in
    // `failure` when the backend cannot be reached.
    asio::awaitable<Server*> server_for(int slot, LoginFailure& failure) {
        auto it = servers_.find(slot);
        if (it != servers_.end() && !it->second->broken) co_return it->second.get();
        if (it != servers_.end()) {
            servers_.erase(it);
            statements_.forget_backend(slot);
        }
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
        PGR_SESSION_DEBUG(id_, "logged in to backend %s", r.connection->address.c_str());
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
             refresh_snapshot() && now_ns() < until && all_starting();) {
            pause.expires_after(10ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
        if (refresh_snapshot()) {
            slot = master_slot();
            if (slot < 0) {
                RouteDecision d = route(read, state_.route(), snap_.backends, rng_());
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
                PGR_SESSION_WARNING(id_, "%s", failure.message.c_str());
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
        for (;;) {
            if (!client_.output().empty() && co_await client_.flush()) {
                co_return close("client connection lost", Closing::Abnormal);
            }
            proto::DecodeLimits limits;  // max-message-size and classify-limit, as published
            limits.data = snap_.settings.max_message_size;
            WireRead r = co_await client_.read_frontend(limits, snap_.settings.classify_limit);
            if (auto* head = std::get_if<WireLongMessage>(&r)) {
                bool copy = head->type == static_cast<char>(FrontendMsg::CopyData);
                if (!closed_ && (copy || UnitCutter::takes_long(head->type))) {
                    if (copy) {
                        co_await copy_to_backend(head->size);
                    } else {
                        co_await dispatch_long(*head);
                    }
                    if (closed_) co_return;
                    continue;
                }
                r = co_await client_.read_frontend(limits);  // any other type is read whole
            }
            if (closed_) co_return;
            if (std::holds_alternative<WireClosed>(r)) {
                co_return close("client closed the connection", Closing::Normal);
            }
            if (auto* e = std::get_if<proto::ProtoError>(&r)) {
                PGR_SESSION_NOTICE(id_, "%s", e->message.c_str());
                co_await send_fatal(client_, e->sqlstate, e->message);
                co_return close(e->message, Closing::Abnormal);
            }
            proto::Message m = std::get<proto::Message>(r);
            if (m.is(FrontendMsg::Terminate)) {
                client_.consume(m);
                co_await terminate_backends();
                co_return close("client terminated the session", Closing::Normal);
            }
            if (m.is(FrontendMsg::CopyData) || m.is(FrontendMsg::CopyDone) ||
                m.is(FrontendMsg::CopyFail)) {
                co_await copy_to_backend(m.size);
                if (closed_) co_return;
                continue;
            }
            bool complete = cutter_.add(m);
            client_.consume(m);
            if (!complete) continue;
            dispatching_ = true;
            co_await dispatch(cutter_.unit());
            dispatching_ = false;
            if (closed_) co_return;
            if (env_.draining) wake();  // the unit may have ended the transaction
        }
    }

    // A Query or Parse too long to classify: its unit goes where the cutter says with
    // what has arrived of it, and the rest follows as it arrives, never held whole.
    asio::awaitable<void> dispatch_long(const WireLongMessage& head) {
        std::string_view first = client_.input().data();
        Unit& unit = cutter_.add_long(head.type, first);
        std::size_t rest = head.size - first.size();
        client_.input().consume(first.size());
        int before = last_slot_;
        last_slot_ = -1;
        co_await dispatch(unit);
        std::string().swap(unit.bytes);  // sent (or refused): not kept while the rest comes
        Server* to = nullptr;
        if (auto it = servers_.find(last_slot_); it != servers_.end() && !it->second->broken) {
            to = it->second.get();
        }
        if (last_slot_ < 0) last_slot_ = before;  // not sent: the client has the error
        co_await relay_to(to, rest, "lost while sending a unit");
    }

    // The client's next `n` bytes, a Copy message (whole or as it arrives), go to the
    // backend of the COPY in progress.
    asio::awaitable<void> copy_to_backend(std::size_t n) {
        int slot = !inflight_.empty() ? inflight_.back().slot : last_slot_;
        auto it = servers_.find(slot);
        // None: no COPY in progress; the bytes are dropped, as a backend would ignore them.
        Server* to = it != servers_.end() ? it->second.get() : nullptr;
        co_await relay_to(to, n, "lost while sending COPY data");
    }

    // The client's next `n` bytes go to `to` (or nowhere) as they arrive.
    asio::awaitable<void> relay_to(Server* to, std::size_t n, std::string_view lost) {
        RelayResult r = co_await relay(client_, to != nullptr ? &to->conn->wire : nullptr, n);
        if (r.from_lost) co_return close("client closed the connection", Closing::Normal);
        if (r.to_lost && to != nullptr) close(lost, Closing::Abnormal, to);
    }

    asio::awaitable<void> terminate_backends() {
        std::string bye;
        proto::encode_terminate(bye);
        for (auto& [slot, server] : servers_) co_await server->conn->wire.send(bye);
    }

    // Places one unit: chooses the backend, and sends the unit there.
    asio::awaitable<void> dispatch(Unit& unit) {
        refresh_snapshot();
        int slot = -1;
        std::string_view reason;
        if (sticky_slot_ >= 0) {
            slot = sticky_slot_;
            reason = "rest of a flushed batch";
        } else if (const InFlight* last = inflight_.last_answering()) {
            slot = last->slot;
            reason = "follows the units in flight";
        } else {
            RouteSession& rs = state_.route();
            if (rs.ryw.commit_at_ns != 0) rs.ryw = settle_read_your_writes(rs.ryw, snap_.backends);
            Classification routed = unit.cls;
            bool serializable = state_.log().serializable_default() ||
                                routed.isolation == Isolation::Serializable;
            if (serializable && routed.kind == StatementKind::TransactionBegin) {
                routed.read_only = false;  // SERIALIZABLE: a standby cannot run it
                routed.read_write = true;
            }
            RouteDecision d = route(routed, rs, snap_.backends, rng_());
            if (!d.ok()) {
                PGR_SESSION_DEBUG(id_, "cannot route (%.*s): %.*s", len(kind_name(unit.cls.kind)),
                                  kind_name(unit.cls.kind).data(), len(d.message),
                                  d.message.data());
                if (d.fatal) {
                    co_await send_fatal(client_, d.sqlstate, d.message);
                    co_return close(d.message, Closing::Abnormal);
                }
                error_to_client("ERROR", d.sqlstate, d.message, d.detail);
                if (unit.sync) proto::encode_ready_for_query(client_.output(), state_.txn_status());
                co_return;
            }
            slot = d.slot;
            reason = d.reason;
        }
        co_await send_unit(slot, unit, unit.refs, unit.cls, reason, true);
    }

    int replay_state(int slot, Server& server, bool standby) {
        return queue_state_replay(inflight_, server.conn->wire.output(), slot, state_.log(),
                                  state_.catalog_lsn(), standby, server.applied);
    }

    // Waits for the state replays sent to `server` to be answered. False when they failed
    // (or the connection did): the unit must not run there.
    asio::awaitable<bool> state_applied(int slot, Server& server) {
        wake();  // the response pump reads their answers
        if (co_await server.conn->wire.flush()) {
            close("lost while replaying session state", Closing::Abnormal, &server);
        }
        while (inflight_.replaying_state(slot) && !server.broken && !closed_) {
            co_await wait_wakeup();
        }
        bool ok = !server.broken && !server.state_failed;
        server.state_failed = false;
        co_return ok;
    }

    // The statements `refs` uses that backend `slot` lacks and whose result the client saw
    // described: parsed there afresh (with a Describe and a Sync of their own, whose answers
    // the client never sees), they must describe the result the client knows, or the unit
    // fails as it would on one server: 0A000 "cached plan must not change result type".
    asio::awaitable<bool> shapes_match(int slot, Server& server, const StatementRefs& refs) {
        std::vector<std::string> names = statements_.to_verify(slot, refs);
        if (names.empty() || sticky_slot_ == slot) co_return true;  // not inside a batch
        Wire& wire = server.conn->wire;
        statements_.reparse(slot, names, wire.output());
        for (const std::string& name : names) {
            proto::MessageBuilder(wire.output(), FrontendMsg::Describe).u8('S').cstr(name);
        }
        proto::MessageBuilder(wire.output(), FrontendMsg::Sync);
        InFlight g;
        g.slot = slot;
        g.ghost = true;
        g.verifies_shape = true;
        std::vector<std::string> g_names = names;
        g.described = std::move(names);
        inflight_.push(std::move(g));
        wake();
        server.shape_changed = false;
        if (!co_await state_applied(slot, server) || !server.shape_changed) co_return true;
        // Parsed there with another result: closed again, so that every later use fails
        // the same way, as the client's statement does on the backend that prepared it.
        statements_.close_on(slot, g_names, wire.output());
        proto::MessageBuilder(wire.output(), FrontendMsg::Sync);
        queue_ghost(inflight_, wire.output(), slot, {});
        wake();
        if (co_await wire.flush()) close("lost while closing a statement", Closing::Abnormal, &server);
        co_return false;
    }

    // Sends `unit` to `slot` and, for a read held on a standby, waits for its outcome and
    // replays it on the master after a refusal (25006) or the standby's loss. `refs` is what
    // the unit does with prepared statements.
    asio::awaitable<void> send_unit(int slot, Unit& unit, const StatementRefs& refs,
                                    const Classification& cls, std::string_view reason,
                                    bool may_hold) {
        LoginFailure failure;
        Server* server = co_await server_for(slot, failure);
        bool answering = inflight_.last_answering() != nullptr;
        if (server == nullptr && may_hold && !answering && !state_.in_block() &&
            cls.kind != StatementKind::Write && cls.pins == 0) {
            // A standby that cannot be reached for a read: the master serves it instead.
            refresh_snapshot();
            int master = master_slot();
            if (master >= 0 && master != slot) {
                co_await send_unit(master, unit, refs, cls, "standby unreachable, master", false);
                co_return;
            }
        }
        if (server == nullptr) {
            std::string message = failure.message;
            if (message.empty()) {
                auto fields = proto::parse_error_fields(failure.backend_error);
                message = fields ? fields->message : "backend refused the login";
            }
            co_return unit_error_to_client(proto::kSqlstateConnectionFailure, message, unit.sync);
        }
        if (log_enabled(LogLevel::Debug)) {
            PGR_SESSION_DEBUG(id_, "%s unit → %s (%.*s)", kind_name(cls.kind).data(),
                              server->conn->address.c_str(), len(reason), reason.data());
        }
        const BackendView* view = view_of(slot);
        bool standby = view != nullptr && view->health.role == BackendRole::Slave;
        // Outside a block, or at the start of one that can still move to the master.
        bool hold = may_hold && standby && unit.sync && !answering &&
                    (!state_.in_block() || movable_.movable());
        if (replay_state(slot, *server, standby) > 0 && !hold && !co_await state_applied(slot, *server)) {
            // The session's state did not apply there, and the unit could not be taken back
            // once sent: it does not run there. A read goes to the master instead.
            if (closed_) co_return;
            refresh_snapshot();
            int master = master_slot();
            if (master >= 0 && master != slot && !answering && !state_.in_block() &&
                !server->broken) {
                co_await send_unit(master, unit, refs, cls, "session state refused, master",
                                   false);
                co_return;
            }
            co_return unit_error_to_client(
                proto::kSqlstateConnectionFailure,
                "could not apply the session's settings on backend " + server->conn->address +
                    (server->state_error.empty() ? "" : ": " + server->state_error),
                unit.sync);
        }
        if (!co_await shapes_match(slot, *server, refs)) {
            if (closed_) co_return;
            co_return unit_error_to_client(proto::kSqlstateFeatureNotSupported,
                                           "cached plan must not change result type", unit.sync);
        }
        InFlight f;
        f.slot = slot;
        f.cls = cls;
        f.sync = unit.sync;
        f.described = unit.described;
        f.swallow = statements_.prepare(slot, refs, server->conn->wire.output());
        f.hold = hold;
        f.changes = unit.changes;
        if (standby && cls.transaction_modes && unit.sync && unit.bytes.front() == 'Q') {
            f.modes_text = unit.bytes;
        }
        // In flight before a byte goes out: an answer that comes back at once must find
        // its unit (the response pump takes what an idle backend says for idle chatter).
        cancel_set_backend(env_.seg, cancel_, slot, server->conn->pid, server->conn->key);
        last_slot_ = slot;
        sticky_slot_ = unit.sync ? -1 : slot;
        inflight_.push(std::move(f));
        Wire& wire = server->conn->wire;
        wire.output() += unit.bytes;
        if (cls.names_objects && unit.sync && !standby && cls.kind != StatementKind::Write) {
            // Not after a Write: it may be a COPY FROM, which a Query would break.
            queue_lsn_capture(inflight_, wire.output(), slot);
        }
        wake();
        if (co_await wire.flush()) {
            // The response pump finds the connection closed and answers for what was lost
            // (or replays a held read elsewhere).
            close("lost while sending a unit", Closing::Abnormal, server);
        }
        if (!hold) co_return;
        // A read on a standby: wait for its outcome; replay it on the master after a 25006
        // (or a standby that died) when nothing of it reached the client.
        while (!inflight_.empty() && !closed_) co_await wait_wakeup();
        bool wrote = false;
        if (!inflight_.take_replay(wrote) || closed_) co_return;
        refresh_snapshot();
        int master = master_slot();
        if (master < 0) {
            error_to_client("ERROR", proto::kSqlstateReadOnlySqlTransaction,
                            "no master backend is available right now");
            proto::encode_ready_for_query(client_.output(), state_.txn_status());
            co_return;
        }
        if (state_.in_block() && movable_.movable()) co_await move_block_start(slot, master);
        Classification write = cls;
        if (wrote) write.kind = StatementKind::Write;
        // The same statement references: the master gets a Parse for what it lacks (and
        // not for what it has), and the registry learns what the unit parsed there.
        co_await send_unit(master, unit, refs, write, "replay on the master", false);
    }

    // The block that began on standby `standby` moves to the master: the standby's block
    // ends, and its start (BEGIN, SET TRANSACTION) runs again on the master, unseen, before
    // the unit that the standby refused.
    asio::awaitable<void> move_block_start(int standby, int master) {
        auto it = servers_.find(standby);
        if (it != servers_.end() && !it->second->broken) {
            std::string rollback;
            proto::encode_query(rollback, "ROLLBACK");
            Wire& wire = it->second->conn->wire;
            queue_ghost(inflight_, wire.output(), standby, rollback);
            if (co_await wire.flush()) {
                close("lost while ending a block", Closing::Abnormal, it->second.get());
            }
        }
        LoginFailure failure;
        if (Server* server = co_await server_for(master, failure)) {
            replay_state(master, *server, false);  // SETs before the block, not inside it
            for (const std::string& text : movable_.start()) {
                queue_ghost(inflight_, server->conn->wire.output(), master, text);
            }
        }
        movable_.clear();
        PGR_SESSION_DEBUG(id_, "the block moves from a standby to the master");
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
                bool ending = at_shutdown_boundary();  // decided once: flush() yields
                if (ending) {
                    // PostgreSQL's own words on a fast shutdown. The backends learn of it
                    // by their connections' end (outside a transaction: nothing to undo).
                    error_to_client("FATAL", proto::kSqlstateAdminShutdown,
                                    "terminating connection due to administrator command");
                }
                if (!client_.output().empty() && co_await client_.flush()) {
                    co_return close("client connection lost", Closing::Abnormal);
                }
                if (close_after_flush_) {
                    co_return close("pinned session state lost", Closing::Abnormal);
                }
                if (ending) co_return close("shutting down", Closing::Normal);
                if (inflight_.empty()) {
                    arm_idle_watches();
                    co_await wait_wakeup();
                }
                continue;
            }
            int slot = inflight_.front().slot;
            auto it = servers_.find(slot);
            if (it == servers_.end()) {
                inflight_.pop_front();
                continue;
            }
            Server& server = *it->second;
            Wire& wire = server.conn->wire;
            bool progressed = false;
            const proto::ProtoError* violated = nullptr;
            proto::DecodeResult r;
            for (;;) {
                r = proto::decode_backend(wire.input().data(), snap_.settings.max_message_size);
                violated = std::get_if<proto::ProtoError>(&r);
                auto* m = std::get_if<proto::Message>(&r);
                if (m == nullptr) break;
                progressed = true;
                bool unit_done = on_backend_message(*m, server);
                wire.consume(*m);
                if (unit_done) break;
                if (inflight_.empty() || inflight_.front().slot != slot) break;
            }
            if (violated || going_away_) {
                // A FATAL, a length word over max-message-size, a type no server sends: the
                // connection is as good as lost.
                if (violated) {
                    PGR_SESSION_NOTICE(id_, "backend %s: %s", server.conn->address.c_str(),
                                       violated->message.c_str());
                }
                going_away_ = false;
                co_await backend_lost(server, violated ? "broke the protocol" : "sent FATAL");
                if (closed_) co_return;
                continue;
            }
            if (progressed) continue;
            if (!client_.output().empty() && co_await client_.flush()) {
                co_return close("client connection lost", Closing::Abnormal);
            }
            if (co_await wire.fill(16384)) {
                if (closed_) co_return;
                co_await backend_lost(server, "closed");
                if (closed_) co_return;
            }
        }
    }

    // After SIGTERM a session ends between transactions: nothing in flight, the last
    // ReadyForQuery idle ('I'), and no unit on its way to a backend (the client pump waits
    // for the client, so nothing the client sent is left unanswered but a part of a unit).
    bool at_shutdown_boundary() const {
        return env_.draining && inflight_.empty() && !dispatching_ &&
               state_.txn_status() == proto::TransactionStatus::Idle;
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
            Wire& wire = server->conn->wire;
            // What came in the same read as the last ReadyForQuery is already buffered.
            bool buffered = !wire.input().empty();
            if (server->broken || (!server->readable && !buffered)) continue;
            if (server->readable) {
                server->readable = false;
                // The wait may have fired for a unit's answer that was read since: read only
                // what is there, without blocking. End of file means the backend left.
                boost::system::error_code ec = wire.read_now();  // through TLS when present
                bool nothing = ec == asio::error::would_block || ec == asio::error::try_again;
                if (nothing && !buffered) continue;
                if (ec && !nothing) {
                    idle_backend_gone(slot, *server, "idle backend closed its connection");
                    continue;
                }
            }
            for (;;) {
                proto::DecodeResult r =
                    proto::decode_backend(wire.input().data(), snap_.settings.max_message_size);
                if (auto* e = std::get_if<proto::ProtoError>(&r)) {
                    idle_backend_gone(slot, *server, e->message);
                    break;
                }
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
                    wire.consume(*m);
                    idle_backend_gone(slot, *server, "idle backend is shutting down");
                    break;
                }
                if (m->is(BackendMsg::NotificationResponse) || m->is(BackendMsg::NoticeResponse) ||
                    m->is(BackendMsg::ParameterStatus)) {
                    client_.output().append(m->bytes());
                }
                wire.consume(*m);
            }
        }
    }

    // An idle backend left. The session carries on elsewhere, unless state that cannot be
    // copied lived there: then the client is told, as PostgreSQL would tell it, and leaves.
    void idle_backend_gone(int slot, Server& server, std::string_view reason) {
        close(reason, Closing::Normal, &server);
        if (state_.pins() != 0 && state_.route().pinned_slot == slot && !close_after_flush_) {
            proto::encode_error_response(client_.output(), "FATAL", proto::kSqlstateAdminShutdown,
                                         "terminating connection because its session state "
                                         "was lost with the old master");
            close_after_flush_ = true;
        }
    }

    // Handles one message of the head unit. True when the head unit is finished.
    bool on_backend_message(const proto::Message& m, Server& server) {
        if (const std::string* name = inflight_.answers_describe(m)) described(*name, m, server);
        switch (inflight_.on_message(m)) {
            case Answer::Forward:
                client_.output().append(m.bytes());
                return false;
            case Answer::Release:
                inflight_.release_held(client_.output());
                return false;
            case Answer::Swallow:
            case Answer::Hold:
            case Answer::Drop:
                return false;
            case Answer::Replay: {
                if (!m.is(BackendMsg::ErrorResponse)) {
                    PGR_SESSION_DEBUG(id_, "standby %s lacks the session's state; replaying on "
                                      "the master", server.conn->address.c_str());
                    return false;
                }
                auto fields = proto::parse_error_fields(m.payload);
                PGR_SESSION_DEBUG(id_, "standby %s refused a write (%s); replaying on the master",
                                  server.conn->address.c_str(),
                                  fields ? fields->sqlstate.c_str() : "?");
                return false;
            }
            case Answer::StateFailed: {
                auto fields = proto::parse_error_fields(m.payload);
                server.state_error = fields ? fields->message : "?";
                PGR_SESSION_WARNING(id_,
                                    "could not apply the session's state on %s (%s): %s; it "
                                    "does not serve the session until it can",
                                    server.conn->address.c_str(),
                                    fields ? fields->sqlstate.c_str() : "?",
                                    server.state_error.c_str());
                server.state_failed = true;
                server.applied = {};  // all of it again next time (SETs are idempotent)
                state_.state_refused();
                return false;
            }
            case Answer::Lsn: {
                auto text = proto::parse_data_row_first(m.payload);
                if (auto lsn = text ? parse_lsn(*text) : std::nullopt) {
                    state_.catalog_seen(wal_record_end(*lsn));
                }
                return false;
            }
            case Answer::Done:
                finish_unit(m);
                return true;
            case Answer::Lost: {
                auto fields = proto::parse_error_fields(m.payload);
                PGR_SESSION_LOG(LogLevel::Info, id_, "backend %s is going away: %s",
                                server.conn->address.c_str(),
                                fields ? fields->message.c_str() : "?");
                going_away_ = true;  // forward_responses() takes it as the backend's loss
                return true;
            }
        }
        return false;
    }

    // `m` describes statement `name`: the client's view of its result, or (after a re-parse
    // elsewhere) what that backend makes of it now.
    void described(const std::string& name, const proto::Message& m, Server& server) {
        std::optional<std::string> shape =
            m.is(BackendMsg::RowDescription) ? proto::result_shape(m.payload) : std::string();
        if (!shape) return;
        if (!inflight_.front().verifies_shape) return statements_.note_shape(name, *shape);
        const Statement* st = statements_.find(name);
        if (st != nullptr && st->described && st->shape != *shape) {
            PGR_SESSION_DEBUG(id_, "statement \"%s\" re-parsed on %s has another result type",
                              name.c_str(), server.conn->address.c_str());
            server.shape_changed = true;
        }
    }

    void finish_unit(const proto::Message& m) {
        InFlight& f = inflight_.front();
        if (!f.ghost) {
            if (f.hold) inflight_.release_held(client_.output());
            const BackendView* view = view_of(f.slot);
            UnitOutcome u;
            u.status =
                proto::parse_ready_for_query(m.payload).value_or(proto::TransactionStatus::Idle);
            u.slot = f.slot;
            u.on_master = view != nullptr && view->health.role == BackendRole::Master;
            u.epoch = view != nullptr ? view->spec.epoch : 0;
            u.error = f.error;
            u.tag = f.tag;
            u.cls = &f.cls;
            u.changes = &f.changes;
            u.now_ns = now_ns();
            bool was_in_block = state_.in_block();
            // The SETs it made ran on its backend: if that one was up to date, it still is.
            auto it = servers_.find(f.slot);
            bool in_sync = it != servers_.end() && it->second->applied.sets == state_.log().head();
            if (state_.finish(u)) pins_changed();
            movable_.finished(was_in_block, state_.in_block(),
                              view != nullptr && view->health.role == BackendRole::Slave, f.error,
                              f.modes_text);
            if (in_sync) it->second->applied.sets = state_.log().head();
            client_.output().append(m.bytes());
        }
        inflight_.pop_front();
        wake();
    }

    void pins_changed() {
        if (state_.pins() != 0 && !pinned_counted_) pinned_counted_.emplace(env_.slot.pinned);
        if (state_.pins() == 0) pinned_counted_.reset();
        PGR_SESSION_DEBUG(id_, "%s",
                          state_.pins() != 0 ? "pinned to the master" : "no longer pinned");
    }

    // The head unit's backend closed (`how`: "closed", "sent FATAL"). A held read is replayed
    // elsewhere, whether or not the ghosts of its SET replay were still in front of it;
    // otherwise the client gets the error and the session ends (its state on that backend
    // is gone).
    //
    // Only a held read is replayed: it is alone in flight (with its ghosts), outside a
    // transaction block, ends with a Sync, and nothing of it reached the client. Any other
    // unit is not safe to run again: inside a transaction its snapshot and locks died with
    // the backend; behind other units in flight (a pipeline) the units before it may have
    // answered in part or changed the session, and replaying it alone would reorder them;
    // the first part of a Flush batch would have to be replayed with the rest, which the
    // client has not sent yet. Those fail with PostgreSQL's error for a lost connection.
    asio::awaitable<void> backend_lost(Server& server, std::string_view how) {
        InFlight& f = inflight_.front();
        if (inflight_.holds_read()) {
            std::string reason = std::string(how) + " during a read; replaying it elsewhere";
            close(reason, Closing::Abnormal, &server);
            // Everything still in flight went to that backend: all of it is lost.
            inflight_.held_read_lost();
            wake();
            co_return;
        }
        std::string message = "lost the connection to backend " + server.conn->address;
        close(std::string(how) + " while a unit was in flight", Closing::Abnormal, &server);
        if (state_.pins() != 0 && state_.route().pinned_slot == f.slot) {
            co_await send_fatal(client_, proto::kSqlstateAdminShutdown,
                                "terminating connection because its session state was lost "
                                "with the old master");
            co_return close(message, Closing::Abnormal);
        }
        // Nothing of the session's own state lived only there: the units in flight fail,
        // as a crashed server's statements do, and the session goes on elsewhere.
        for (const InFlight& lost : inflight_.units()) {
            if (lost.ghost || !lost.sync) continue;
            error_to_client("ERROR", proto::kSqlstateConnectionFailure, message,
                            state_.in_block() ? "The transaction was lost with the backend." : "");
            proto::encode_ready_for_query(client_.output(), proto::TransactionStatus::Idle);
        }
        inflight_.clear();
        state_.block_lost();
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
    SessionState state_;
    MovableBlock movable_;  // the start of a block on a standby, while it can still move
    std::optional<Counted> pinned_counted_;  // in the monitor's "pinned" while pinned
    bool close_after_flush_ = false;
    bool going_away_ = false;   // the head unit's backend sent FATAL: handle as its loss
    bool dispatching_ = false;  // the client pump is placing a unit

    std::map<int, std::unique_ptr<Server>> servers_;  // by backend slot
    InflightQueue inflight_;
    int sticky_slot_ = -1;  // after a Flush: where the rest of the batch goes
    int last_slot_ = -1;
    Statements statements_;  // the client's prepared statements, per backend
    UnitCutter cutter_;      // after statements_, which it updates
};

}  // namespace

asio::awaitable<void> run_session(tcp::socket client, WorkerEnv& env) {
    boost::system::error_code ec;
    client.set_option(tcp::no_delay(true), ec);
    auto session = std::make_shared<Session>(std::move(client), env);
    try {
        co_await session->run();
    } catch (...) {
        log_escaped(session->id(), "the session", std::current_exception());
        session->close("session failed", Closing::Abnormal);
    }
}

}  // namespace pgrouter
