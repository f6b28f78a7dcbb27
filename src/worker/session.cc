// A client session (see session.h): the I/O glue between the client, the backends and the
// pure pieces beside it. Two coroutines share the session: the client pump reads the
// client's messages, lets the cutter (unit.h) cut them into units, asks the router where
// each goes, logs in to that backend if needed, brings it up to date (the SET log of
// session_state.h, the prepared statements of statements.h) and sends the unit; the
// response pump passes each in-flight unit's answer (inflight.h) from its backend to the
// client, in order, and hands finished units to the session state. Only the client pump
// writes to backends; only the response pump reads from them.
#include "pgrouter/worker/session.h"

#include "session_class.h"

namespace pgrouter {

namespace session_impl {

namespace {

constexpr auto kStartupTimeout = 10s;  // PostgreSQL's authentication_timeout default

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

}  // namespace

asio::awaitable<bool> Session::start() {
    Deadline deadline(client_.socket(), kStartupTimeout);
    std::string peer = client_address(client_);  // gone once the deadline closes it
    std::optional<ClientLogin> login = co_await front_door(client_, env_, id_);
    if (!login && deadline.expired()) {
        log_dropped(env_, id_, peer, "timeout expired during startup");
    }
    if (!login) co_return false;
    login_ = std::move(*login);
    co_return co_await first_login();
}

asio::awaitable<void> Session::run() {
    // The start-up's frame (the login, its deadline) is gone before the session's life.
    if (!co_await start()) {
        close("startup ended", Closing::Normal);
        co_return;
    }
    client_.release_idle_memory();  // the login's messages
    park_servers();
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

void Session::close(std::string_view reason, Closing how, Server* backend) {
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
    stats_.ended(id_, login_, reason, client_);
    client_.close();
    for (auto& [slot, server] : servers_) {
        // Idle with nothing in flight: back to the pool (in the destructor) after DISCARD ALL.
        server->pooled = !server->broken && inflight_.empty() && !dispatching_ &&
                         sticky_slot_ != slot && env_.pool.may_keep(*server->conn);
        if (!server->pooled) server->conn->wire.close();
    }
    wake();
}

asio::awaitable<void> Session::wait_wakeup() {
    boost::system::error_code ec;
    co_await wakeup_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    wakeup_.expires_at(asio::steady_timer::time_point::max());
}

void Session::error_to_client(std::string_view severity, std::string_view sqlstate,
                              std::string_view message, std::string_view detail) {
    proto::encode_error_response(client_.output(), severity, sqlstate, message, detail);
}

void Session::unit_error_to_client(std::string_view sqlstate, std::string_view message, bool sync) {
    error_to_client("ERROR", sqlstate, message);
    if (sync) proto::encode_ready_for_query(client_.output(), state_.txn_status());
}

const BackendView* Session::view_of(int slot) const {
    for (const BackendView& b : snap_.backends) {
        if (b.slot == slot) return &b;
    }
    return nullptr;
}

int Session::master_slot() const {
    int master = find_master(snap_.backends);
    return master < 0 ? -1 : snap_.backends[static_cast<std::size_t>(master)].slot;
}

int Session::master_instead_of(int slot) {
    refresh_snapshot();
    int master = master_slot();
    return master != slot ? master : -1;
}

bool Session::all_starting() const {
    return std::all_of(snap_.backends.begin(), snap_.backends.end(), [](const BackendView& b) {
        return b.health.status == BackendStatus::Starting;
    });
}

std::chrono::milliseconds Session::login_timeout() const {
    return std::chrono::milliseconds(std::max<std::int64_t>(snap_.settings.health_timeout_ms, 1));
}

Server* Session::connected(int slot) {
    auto it = servers_.find(slot);
    return it != servers_.end() && !it->second->broken ? it->second.get() : nullptr;
}

asio::awaitable<Server*> Session::server_for(int slot, LoginFailure& failure) {
    if (Server* server = connected(slot)) co_return server;
    auto it = servers_.find(slot);
    if (it != servers_.end()) {
        servers_.erase(it);
        statements_.forget_backend(slot);
    }
    const BackendView* view = view_of(slot);
    if (view == nullptr) {
        failure = LoginFailure{
            {}, std::string(proto::kSqlstateConnectionFailure), "backend left the configuration"};
        co_return nullptr;
    }
    LoginParams params{login_.params.user, login_.params.database, login_.params.params};
    BackendSpec spec = view->spec;  // the shared snapshot may change while we wait
    // A full pool: the master's (or, without a master, any) connection is waited for; a
    // standby's is not, so that a read goes to the master instead (send_unit). At login, the
    // wait ends in time to tell the client why, before the startup timeout cuts it.
    std::int64_t wait_until = slot == master_slot() || master_slot() < 0 ? INT64_MAX : 0;
    if (cancel_.index < 0) {
        wait_until = std::min(wait_until, stats_.started_ns() + (kStartupTimeout - 500ms) /
                                                                    std::chrono::nanoseconds(1));
    }
    LoginResult r =
        co_await env_.pool.connect(slot, spec, params, login_.credentials, login_timeout(),
                                   wait_until, parked_on(slot) ? parked_on(slot)->lease : 0);
    if (!r.connection) {
        if (r.failure.sqlstate == proto::kSqlstateConnectionFailure) env_.seg.recheck.post();
        failure = std::move(r.failure);
        co_return nullptr;
    }
    bool reused = r.connection->reused;
    PGR_SESSION_DEBUG(id_, "%s backend %s", reused ? "pooled connection to" : "logged in to",
                      r.connection->address.c_str());
    // Its ParameterStatus matter only for the first login (sent to the client then), and
    // to the pool (for the next client of the connection).
    if (cancel_.index >= 0 && r.connection->pool_hold == nullptr) {
        std::vector<std::pair<std::string, std::string>>().swap(r.connection->parameters);
    }
    auto& gauge = reused && slot >= 0 && slot < kMaxBackends
                      ? env_.counters.backends[slot].connections
                      : stats_.logged_in(slot);
    auto server = std::make_unique<Server>(std::move(r.connection), env_.slot, gauge);
    Server* raw = server.get();
    adopt(slot, *raw);
    servers_[slot] = std::move(server);
    co_return raw;
}

const Session::Parked* Session::parked_on(int slot) const {
    auto it = std::find_if(parked_.begin(), parked_.end(),
                           [slot](const Parked& p) { return p.slot == slot; });
    return it != parked_.end() ? &*it : nullptr;
}

void Session::adopt(int slot, Server& server) {
    BackendConnection& conn = *server.conn;
    auto mine = std::find_if(parked_.begin(), parked_.end(),
                             [slot](const Parked& p) { return p.slot == slot; });
    server.startup = startup_difference(conn.login_params, login_.params.params);
    // Only the very connection it parked last is as the session left it: one it parked
    // before that (its tag is another lease) has older state, and is reset like a stranger.
    if (mine != parked_.end() && mine->lease != 0 && conn.owner == mine->lease) {
        server.applied = mine->applied;  // the one this session parked: as it left it
    } else {
        statements_.forget_backend(slot);  // what it had of the session is elsewhere
        server.foreign = conn.owner != 0;
        server.applied.discard = server.foreign;
        server.applied.startup = server.startup.empty();
    }
    if (mine != parked_.end()) parked_.erase(mine);
}

void Session::park_servers() {
    if (!snap_.settings.pool.transaction || closed_ || dispatching_ || !inflight_.empty() ||
        sticky_slot_ >= 0 || state_.in_block() || state_.pins() != 0 || servers_.empty()) {
        return;
    }
    for (auto it = servers_.begin(); it != servers_.end();) {
        Server& server = *it->second;
        // A broken one goes at the next unit; one with bytes buffered (an idle message being
        // read) stays until they are passed on.
        if (server.broken || !env_.pool.may_keep(*server.conn)) {
            ++it;
            continue;
        }
        // A session that never SET anything, sent the startup values of its login and has no
        // named statement there leaves nothing of its own on it (what else a session can
        // leave behind pins it, and a pinned session parks nothing): any client may take it
        // without DISCARD ALL. Otherwise it is tagged with a lease of its own.
        bool clean = state_.log().head() == 0 && server.startup.empty() &&
                     !statements_.backend_has_named(it->first);
        std::uint64_t lease = clean ? 0 : ++env_.next_lease;
        server.conn->owner = lease;
        parked_.push_back(Parked{it->first, lease, server.applied});
        env_.pool.park(std::move(server.conn));
        it = servers_.erase(it);
    }
    // A cancel must not reach the statement another client runs on it next.
    cancel_set_backend(env_.seg, cancel_, -1, 0, 0);
}

asio::awaitable<bool> Session::first_login() {
    floor_index_ = commit_floor_index(login_.params.user, login_.params.database);
    if (auto refused = start_controls()) {
        co_await send_fatal(client_, refused->sqlstate, refused->message, refused->hint);
        co_return false;
    }
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
    stats_.opened(cancel_.index, id_, login_, client_.tls());
    cancel_set_backend(env_.seg, cancel_, slot, server->conn->pid, server->conn->key);
    // A pooled connection logged in with other startup values (or carrying another client's
    // state): brought to this client's now, so that its ParameterStatus are the client's.
    std::vector<std::pair<std::string, std::string>> reported = server->conn->parameters;
    if (!server->applied.startup || server->applied.discard) {
        std::vector<std::string> statements;
        if (server->applied.discard) statements.emplace_back("DISCARD ALL");
        for (const auto& [name, value] : server->startup) {
            statements.push_back(set_startup_param_query(name, value));
        }
        if (!co_await run_quietly(*server->conn, statements, login_timeout(), reported)) {
            PGR_SESSION_WARNING(id_, "could not set the client's startup parameters on %s",
                                server->conn->address.c_str());
            co_await send_fatal(client_, proto::kSqlstateConnectionFailure,
                                "could not apply the session's startup parameters on backend " +
                                    server->conn->address);
            co_return false;
        }
        server->applied.discard = false;
        server->applied.startup = true;
    }
    std::string& out = client_.output();
    for (const auto& [name, value] : reported) {
        proto::encode_parameter_status(out, name, value);
    }
    proto::encode_backend_key_data(out, cancel_.pid, cancel_.key);
    if (server->conn->pool_hold == nullptr) {
        std::vector<std::pair<std::string, std::string>>().swap(server->conn->parameters);
    }
    proto::encode_ready_for_query(out, proto::TransactionStatus::Idle);
    co_return !co_await client_.flush();
}

asio::awaitable<void> Session::client_pump() {
    for (;;) {
        if (!client_.output().empty() && co_await client_.flush()) {
            co_return close("client connection lost", Closing::Abnormal);
        }
        proto::DecodeLimits limits;  // max-message-size and classify-limit, as published
        limits.data = snap_.settings.max_message_size;
        WireRead r = co_await read_client(limits);
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
        if ((m.is(FrontendMsg::Query) || m.is(FrontendMsg::Parse)) &&
            m.payload.size() > kParseOnLoop) {
            co_await classify_long_sql(m);
            if (closed_) co_return;
        }
        bool complete = cutter_.add(m);
        client_.consume(m);
        if (!complete) continue;
        dispatching_ = true;
        co_await dispatch(cutter_.unit());
        dispatching_ = false;
        if (closed_) co_return;
        park_servers();  // a read held on a standby was answered while the unit was placed
        if (env_.draining) wake();  // the unit may have ended the transaction
    }
}

asio::awaitable<WireRead> Session::read_client(const proto::DecodeLimits& limits) {
    std::size_t long_above = snap_.settings.classify_limit;
    if (client_.tls()) co_return co_await client_.read_frontend(limits, long_above);
    // Read in place, waiting only for readability: no read coroutines under this one.
    for (;;) {
        if (auto r = client_.poll_frontend(limits, long_above)) co_return std::move(*r);
        boost::system::error_code ec;
        co_await client_.readable(ec);
        if (ec) co_return WireClosed{ec};
    }
}

asio::awaitable<void> Session::dispatch_long(const WireLongMessage& head) {
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

asio::awaitable<void> Session::copy_to_backend(std::size_t n) {
    int slot = !inflight_.empty() ? inflight_.back().slot : last_slot_;
    auto it = servers_.find(slot);
    // None: no COPY in progress; the bytes are dropped, as a backend would ignore them.
    Server* to = it != servers_.end() ? it->second.get() : nullptr;
    // The whole Copy messages already read after this one go in the same write (a client
    // that sends one CopyData per row must not cost a system call per row).
    constexpr std::size_t kCopyBatch = 256 * 1024;
    n = std::max(n, proto::copy_messages_run(client_.input().data(), kCopyBatch));
    co_await relay_to(to, n, "lost while sending COPY data");
}

asio::awaitable<void> Session::relay_to(Server* to, std::size_t n, std::string_view lost) {
    RelayResult r = co_await relay(client_, to != nullptr ? &to->conn->wire : nullptr, n);
    if (r.from_lost) co_return close("client closed the connection", Closing::Normal);
    if (r.to_lost && to != nullptr) close(lost, Closing::Abnormal, to);
}

asio::awaitable<void> Session::terminate_backends() {
    std::string bye;
    proto::encode_terminate(bye);
    for (auto& [slot, server] : servers_) {
        if (inflight_.empty() && sticky_slot_ != slot && env_.pool.may_keep(*server->conn)) {
            continue;  // goes back to the pool
        }
        co_await server->conn->wire.send(bye);
    }
}

asio::awaitable<void> Session::classify_long_sql(const proto::Message& m) {
    proto::PayloadReader in(m.payload);
    std::string_view name, sql;
    if (m.is(FrontendMsg::Parse) && !in.read_cstr(name)) co_return;
    if (!in.read_cstr(sql)) co_return;
    // The message stays in the client's input buffer (only this pump reads it) meanwhile.
    const Classifier& classifier = env_.classifier;  // const, and reentrant across threads
    Classification c = co_await asio::co_spawn(
        env_.parse_pool,
        [sql, &classifier]() -> asio::awaitable<Classification> {
            co_return classifier.classify(sql);
        },
        asio::use_awaitable);
    classified_ = std::make_unique<Classification>(std::move(c));
    PGR_SESSION_DEBUG(id_, "%zu kB of SQL classified off the event loop", sql.size() / 1024);
}

asio::awaitable<void> Session::dispatch(Unit& unit) {
    if (unit.cls.names_controls) {
        bool answered = co_await answer_controls(unit);
        if (answered) co_return;
    }
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
        share_commits();
        if (rs.ryw.commit_at_ns != 0) rs.ryw = settle_read_your_writes(rs.ryw, snap_.backends);
        Classification routed = unit.cls;
        bool serializable =
            state_.log().serializable_default() || routed.isolation == Isolation::Serializable;
        if (serializable && routed.kind == StatementKind::TransactionBegin) {
            routed.read_only = false;  // SERIALIZABLE: a standby cannot run it
            routed.read_write = true;
        }
        RouteDecision d = route(routed, rs, snap_.backends, rng_());
        if (!d.ok()) {
            PGR_SESSION_DEBUG(id_, "cannot route (%.*s): %.*s", len(kind_name(unit.cls.kind)),
                              kind_name(unit.cls.kind).data(), len(d.message), d.message.data());
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

void Session::share_commits() {
    if (!snap_.settings.ryw_user) return;
    ReadYourWrites& ryw = state_.route().ryw;
    if (ryw.commit_at_ns > floor_seen_ns_) {  // a commit of this session, not shared yet
        raise_commit_floor(env_.seg.commit_floors, floor_index_, ryw.commit_at_ns);
        floor_seen_ns_ = ryw.commit_at_ns;
    }
    std::int64_t floor = commit_floor(env_.seg.commit_floors, floor_index_);
    if (floor > floor_seen_ns_) {  // another session's, after any this one saw
        floor_seen_ns_ = floor;
        note_commit(ryw, std::max(floor, ryw.commit_at_ns));
    }
}

int Session::replay_state(int slot, Server& server, bool standby) {
    return queue_state_replay(inflight_, server.conn->wire.output(), slot, state_.log(),
                              state_.catalog_lsn(), standby, server.applied, server.startup);
}

asio::awaitable<bool> Session::state_applied(int slot, Server& server) {
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

asio::awaitable<bool> Session::shapes_match(int slot, Server& server,
                                            const std::vector<std::string>& names) {
    Wire& wire = server.conn->wire;
    queue_shape_check(inflight_, wire.output(), slot, statements_, names);
    server.shape_changed = false;
    if (!co_await state_applied(slot, server) || !server.shape_changed) co_return true;
    // Parsed there with another result: closed again, so that every later use fails
    // the same way, as the client's statement does on the backend that prepared it.
    queue_statement_close(inflight_, wire.output(), slot, statements_, names);
    wake();
    if (co_await wire.flush()) close("lost while closing a statement", Closing::Abnormal, &server);
    co_return false;
}

asio::awaitable<void> Session::send_unit(int slot, Unit& unit, const StatementRefs& refs,
                                         const Classification& cls, std::string_view reason,
                                         bool may_hold) {
    LoginFailure failure;
    Server* server = connected(slot);  // most units: no login, no coroutine frame
    if (server == nullptr) server = co_await server_for(slot, failure);
    bool answering = inflight_.last_answering() != nullptr;
    if (server == nullptr && may_hold && !answering && !state_.in_block() &&
        cls.kind != StatementKind::Write && cls.pins == 0) {
        // A standby that cannot be reached for a read: the master serves it instead.
        if (int master = master_instead_of(slot); master >= 0) {
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
        // A full pool is 53300, as pgrouter.conf(5) says; any other failure is the link's.
        bool full = failure.sqlstate == proto::kSqlstateTooManyConnections;
        co_return unit_error_to_client(
            full ? proto::kSqlstateTooManyConnections : proto::kSqlstateConnectionFailure, message,
            unit.sync);
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
    if (replay_state(slot, *server, standby) > 0 && !hold &&
        !co_await state_applied(slot, *server)) {
        // The session's state did not apply there, and the unit could not be taken back
        // once sent: it does not run there. A read goes to the master instead.
        if (closed_) co_return;
        int master = master_instead_of(slot);
        if (master >= 0 && !answering && !state_.in_block() && !server->broken) {
            co_await send_unit(master, unit, refs, cls, "session state refused, master", false);
            co_return;
        }
        co_return unit_error_to_client(
            proto::kSqlstateConnectionFailure,
            "could not apply the session's settings on backend " + server->conn->address +
                (server->state_error.empty() ? "" : ": " + server->state_error),
            unit.sync);
    }
    // Statements this backend has from another Parse than the client's: checked (not
    // inside a batch).
    std::vector<std::string> verify = statements_.to_verify(slot, refs);
    if (!verify.empty() && sticky_slot_ != slot && !co_await shapes_match(slot, *server, verify)) {
        if (closed_) co_return;
        // As PostgreSQL words it, with the file and routine drivers look at (asyncpg
        // re-prepares on RevalidateCachedQuery's error, and only on it).
        proto::ErrorFields e;
        e.severity = e.severity_nonlocalized = "ERROR";
        e.sqlstate = proto::kSqlstateFeatureNotSupported;
        e.message = "cached plan must not change result type";
        e.other = {{'F', "plancache.c"}, {'R', "RevalidateCachedQuery"}};
        proto::encode_error_response(client_.output(), e);
        if (unit.sync) proto::encode_ready_for_query(client_.output(), state_.txn_status());
        co_return;
    }
    if (state_.advisory_check_due() && inflight_.empty() && !standby &&
        slot == state_.route().pinned_slot) {
        // In the same write, in front of the unit (and of its Parses): does the session
        // still hold an advisory lock? If not, the unit ends unpinned.
        queue_advisory_check(inflight_, server->conn->wire.output(), slot);
        state_.advisory_check_sent();
    }
    InFlight f;
    f.slot = slot;
    f.sent_ns = stats_.unit_sent(slot, reason);
    f.cls = cls;
    f.sync = unit.sync;
    f.described = unit.described;
    f.answers_left = unit.answers;
    f.swallow = statements_.prepare(slot, refs, server->conn->wire.output());
    f.completes = refs.completes;
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
    if (unit.sync && !answering && !standby && state_.advisory_check_behind(cls)) {
        // Behind an unlock (or a try-lock): its answer ends the pin before the client's
        // next unit, or while the client idles.
        queue_advisory_check(inflight_, wire.output(), slot);
    }
    wake();
    boost::system::error_code sent;
    if (!wire.flush_now(sent)) sent = co_await wire.flush();
    if (sent) {
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
    stats_.replayed(inflight_.replay_sqlstate());
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

asio::awaitable<void> Session::move_block_start(int standby, int master) {
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

}  // namespace session_impl

using session_impl::Closing;
using session_impl::Session;

asio::awaitable<void> run_session(tcp::socket client, WorkerEnv& env) {
    boost::system::error_code ec;
    client.set_option(tcp::no_delay(true), ec);
    auto session = std::make_shared<Session>(std::move(client), env);
    try {
        co_await session->run();
    } catch (...) {
        session_impl::log_escaped(session->id(), "the session", std::current_exception());
        session->close("session failed", Closing::Abnormal);
    }
}

}  // namespace pgrouter
