// The backends' side of a client session (see session_class.h): the response pump passes
// each in-flight unit's answer from its backend to the client, in order, hands finished
// units to the session state, passes on what idle backends say, and answers for lost ones.
#include "session_class.h"

namespace pgrouter::session_impl {

asio::awaitable<void> Session::response_pump(std::shared_ptr<Session> self) {
    co_await self->forward_responses();
}

asio::awaitable<void> Session::forward_responses() {
    for (;;) {
        if (closed_) co_return;
        if (inflight_.empty()) {
            forward_idle_messages();
            park_servers();                        // transaction pooling: between two transactions
            bool ending = at_shutdown_boundary();  // decided once: flush() yields
            if (ending) {
                // PostgreSQL's own words on a fast shutdown. The backends learn of it
                // by their connections' end (outside a transaction: nothing to undo).
                error_to_client("FATAL", proto::kSqlstateAdminShutdown,
                                "terminating connection due to administrator command");
            }
            boost::system::error_code sent;
            if (!client_.flush_now(sent)) sent = co_await client_.flush();
            if (sent) co_return close("client connection lost", Closing::Abnormal);
            if (close_after_flush_) {
                co_return close("pinned session state lost", Closing::Abnormal);
            }
            if (ending) co_return close("shutting down", Closing::Normal);
            if (inflight_.empty()) {
                idle_watch_due();
                co_await wait_wakeup();
            }
            continue;
        }
        idle_watch_cancel();
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
        boost::system::error_code sent;
        if (!client_.flush_now(sent)) sent = co_await client_.flush();
        if (sent) co_return close("client connection lost", Closing::Abnormal);
        if (co_await wire.fill(16384)) {
            if (closed_) co_return;
            co_await backend_lost(server, "closed");
            if (closed_) co_return;
        }
    }
}

bool Session::at_shutdown_boundary() const {
    return env_.draining && inflight_.empty() && !dispatching_ &&
           state_.txn_status() == proto::TransactionStatus::Idle;
}

void Session::arm_idle_watches() {
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
                raw->conn->wire.mark_readable();  // fill() must not wait for it again
                raw->watched = false;
                self->wake();
            }
        });
    }
}

void Session::idle_watch_due() {
    bool unwatched = std::any_of(servers_.begin(), servers_.end(), [](const auto& s) {
        return !s.second->broken && !s.second->watched;
    });
    if (!unwatched && !client_.holds_idle_memory()) return idle_watch_cancel();
    if (!idle_listed_) {
        env_.idle_unwatched.insert(&wakeup_);
        idle_listed_ = true;
    } else if (!env_.idle_unwatched.contains(&wakeup_)) {
        idle_listed_ = false;  // the sweep took it off: idle long enough
        arm_idle_watches();
        client_.release_idle_memory();  // a busy session keeps its buffers from unit to unit
    }
}

void Session::idle_watch_cancel() {
    if (!idle_listed_) return;
    env_.idle_unwatched.erase(&wakeup_);
    idle_listed_ = false;
}

void Session::forward_idle_messages() {
    bool spoke = false;  // an idle backend said something: it may say more soon
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
            spoke = true;
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
    if (spoke) arm_idle_watches();  // a burst of notifications is passed on as it comes
}

void Session::idle_backend_gone(int slot, Server& server, std::string_view reason) {
    close(reason, Closing::Normal, &server);
    if (state_.pins() != 0 && state_.route().pinned_slot == slot && !close_after_flush_) {
        proto::encode_error_response(client_.output(), "FATAL", proto::kSqlstateAdminShutdown,
                                     "terminating connection because its session state "
                                     "was lost with the old master");
        close_after_flush_ = true;
    }
}

bool Session::on_backend_message(const proto::Message& m, Server& server) {
    std::string params;
    if (const std::string* name = inflight_.answers_describe(m, params)) {
        described(*name, m, params, server);
    }
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
                PGR_SESSION_DEBUG(id_,
                                  "standby %s lacks the session's state; replaying on "
                                  "the master",
                                  server.conn->address.c_str());
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
            // All of it again next time (SETs are idempotent), after DISCARD ALL again when
            // it came with another session's state (that DISCARD ALL may be what failed).
            server.applied = {};
            server.applied.discard = server.foreign;
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
        case Answer::AdvisoryLocks: {
            auto text = proto::parse_data_row_first(m.payload);
            std::optional<bool> held = text ? advisory_locks_held(*text) : std::nullopt;
            // None left: the unit behind the question ends unpinned (and, pooled, parked).
            if (held == false && state_.advisory_locks_gone()) pins_changed();
            if (held == true) state_.advisory_check_sent();
            return false;
        }
        case Answer::Done:
            finish_unit(m);
            return true;
        case Answer::Complete:
            // All of an unsynced Parse/Describe batch is answered: nothing of it is in
            // flight. The rest of the batch still goes to the same backend (which described
            // the statement to the client), but as a unit of its own: a read there can be
            // held and replayed on the master after a 25006.
            client_.output().append(m.bytes());
            statements_.settle(inflight_.front().completes, inflight_.front().completed);
            inflight_.pop_front();
            wake();
            return true;
        case Answer::Lost: {
            auto fields = proto::parse_error_fields(m.payload);
            PGR_SESSION_LOG(LogLevel::Info, id_, "backend %s is going away: %s",
                            server.conn->address.c_str(), fields ? fields->message.c_str() : "?");
            going_away_ = true;  // forward_responses() takes it as the backend's loss
            return true;
        }
    }
    return false;
}

void Session::described(const std::string& name, const proto::Message& m, const std::string& params,
                        Server& server) {
    std::string& shape = shape_scratch_;
    if (!m.is(BackendMsg::RowDescription)) {
        shape.clear();  // NoData
    } else if (!proto::result_shape(m.payload, shape)) {
        return;
    }
    if (!inflight_.front().verifies_shape) return statements_.note_shape(name, shape, params);
    const Statement* st = statements_.find(name);
    bool params_differ = st != nullptr && !st->params.empty() && st->params != params;
    if (st != nullptr && st->described && (st->shape != shape || params_differ)) {
        PGR_SESSION_DEBUG(id_, "statement \"%s\" re-parsed on %s has other types", name.c_str(),
                          server.conn->address.c_str());
        server.shape_changed = true;
    }
}

void Session::finish_unit(const proto::Message& m) {
    InFlight& f = inflight_.front();
    if (!f.ghost) {
        statements_.settle(f.completes, f.completed);  // what the server took of its Parses
        if (f.hold) inflight_.release_held(client_.output());
        const BackendView* view = view_of(f.slot);
        UnitOutcome u;
        u.status = proto::parse_ready_for_query(m.payload).value_or(proto::TransactionStatus::Idle);
        stats_.unit_done(f.slot, f.sent_ns, u.status);
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
        share_commits();  // before its ReadyForQuery reaches the client
        movable_.finished(was_in_block, state_.in_block(),
                          view != nullptr && view->health.role == BackendRole::Slave, f.error,
                          f.modes_text);
        if (in_sync) it->second->applied.sets = state_.log().head();
        for (const SessionChange& c : f.changes) {
            if (c.action == NamedAction::Deallocate && !u.error) {
                statements_.deallocated(f.slot, c.name);
            }
        }
        if (it != servers_.end() && !it->second->startup.empty() && !u.error) {
            // The client's own RESET (ALL) or DISCARD ALL returned that connection to its
            // login's startup values: the client's are SET again before its next unit there.
            for (const SessionChange& c : f.changes) {
                bool reset = c.action == NamedAction::ResetAll ||
                             (c.action == NamedAction::Reset &&
                              std::any_of(it->second->startup.begin(), it->second->startup.end(),
                                          [&](const auto& p) { return p.first == c.name; }));
                if (reset) it->second->applied.startup = false;
            }
        }
        client_.output().append(m.bytes());
    }
    inflight_.pop_front();
    wake();
}

void Session::pins_changed() {
    if (state_.pins() != 0 && !pinned_counted_) pinned_counted_.emplace(env_.slot.pinned);
    if (state_.pins() == 0) pinned_counted_.reset();
    stats_.pins(state_.pins());
    PGR_SESSION_DEBUG(id_, "%s", state_.pins() != 0 ? "pinned to the master" : "no longer pinned");
}

asio::awaitable<void> Session::backend_lost(Server& server, std::string_view how) {
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

}  // namespace pgrouter::session_impl
