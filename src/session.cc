// The client session (see session.h). The front door runs under one deadline: startup
// packet, protocol negotiation, HBA, authentication, backend login. Then two pumps move
// messages: client→backend frames and checks every message (limits, Terminate) while
// streaming it on; backend→client forwards whole read buffers. Every close goes through
// close() with a reason.
#include "pgrouter/session.h"

#include "pgrouter/auth.h"
#include "pgrouter/backend.h"
#include "pgrouter/cancel.h"
#include "pgrouter/counted.h"
#include "pgrouter/deadline.h"
#include "pgrouter/log.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/shm.h"
#include "pgrouter/startup.h"

namespace pgrouter {

namespace {

using namespace std::chrono_literals;
using proto::FrontendMsg;

constexpr auto kStartupTimeout = 10s;  // PostgreSQL's authentication_timeout default
constexpr auto kCancelTimeout = 5s;

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket socket, WorkerEnv& env)
        : env_(env), access_(env.access), id_(env.next_session_id++), client_(std::move(socket)),
          counted_(env.slot.clients) {}

    ~Session() { cancel_release(env_.seg, cancel_); }

    asio::awaitable<void> run() {
        bool ready;
        {
            Deadline deadline(client_.socket(), kStartupTimeout);
            ready = co_await front_door();
            if (!ready && deadline.expired()) {
                PGR_DEBUG("session %llu: startup timed out", ull(id_));
            }
        }
        if (!ready) {
            close("startup ended");
            co_return;
        }
        asio::co_spawn(client_.socket().get_executor(), pump_backend(shared_from_this()),
                       asio::detached);
        co_await pump_client();
    }

private:
    static unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

    void close(std::string_view reason) {
        if (closed_) return;
        closed_ = true;
        PGR_DEBUG("session %llu closed: %.*s", ull(id_), static_cast<int>(reason.size()),
                  reason.data());
        client_.close();
        if (backend_) backend_->wire.close();
    }

    // Sends a FATAL ErrorResponse and ends the session.
    asio::awaitable<bool> fatal(std::string_view sqlstate, std::string_view message,
                                std::string_view hint = {}) {
        proto::encode_error_response(client_.output(), "FATAL", sqlstate, message, {}, hint);
        co_await client_.flush();
        close(message);
        co_return false;
    }

    // The first packets up to StartupMessage; false when the session ends here.
    asio::awaitable<bool> read_startup() {
        for (;;) {
            std::string_view data = client_.input().data();
            StartupFrameResult frame = frame_startup(data);
            if (auto* err = std::get_if<StartupError>(&frame)) {
                if (!err->send_to_client) {
                    close(err->message);
                    co_return false;
                }
                co_return co_await fatal(err->sqlstate, err->message, err->hint);
            }
            if (std::holds_alternative<proto::NeedMore>(frame) ||
                data.size() < std::get<StartupFrame>(frame).size) {
                if (co_await client_.fill(512)) {
                    close("client closed the connection before its startup packet");
                    co_return false;
                }
                continue;
            }
            std::size_t size = std::get<StartupFrame>(frame).size;
            StartupResult parsed = parse_startup(data.substr(0, size));
            client_.input().consume(size);
            if (auto* err = std::get_if<StartupError>(&parsed)) {
                co_return co_await fatal(err->sqlstate, err->message, err->hint);
            }
            StartupPacket& packet = std::get<StartupPacket>(parsed);
            switch (packet.kind) {
                case StartupKind::SslRequest:
                case StartupKind::GssEncRequest:
                    if (co_await client_.send("N")) co_return false;
                    continue;
                case StartupKind::CancelRequest:
                    co_await forward_cancel(packet.cancel_pid, packet.cancel_key);
                    close("cancel request handled");
                    co_return false;
                case StartupKind::Startup: params_ = std::move(packet.startup); co_return true;
            }
        }
    }

    asio::awaitable<void> forward_cancel(std::int32_t pid, std::int32_t key) {
        std::optional<CancelTarget> target = cancel_lookup(env_.seg, pid, key);
        if (!target) co_return;  // unknown keys are ignored silently, as in PostgreSQL
        Snapshot snap;
        if (!take_snapshot(env_.seg, snap)) co_return;
        for (const BackendView& b : snap.backends) {
            if (b.slot != target->backend_slot) continue;
            PGR_DEBUG("forwarding a cancel request to backend %s",
                      Endpoint{b.spec.host, b.spec.port}.to_string().c_str());
            co_await backend_cancel(b.spec.host, b.spec.port, target->pid, target->key,
                                    kCancelTimeout);
        }
    }

    asio::awaitable<bool> front_door() {
        if (!co_await read_startup()) co_return false;
        if (params_.needs_negotiation()) {
            proto::encode_negotiate_protocol_version(
                client_.output(), StartupParams::negotiate_version(), params_.protocol_options);
        }
        if (params_.replication != ReplicationMode::None) {
            co_return co_await fatal(proto::kSqlstateFeatureNotSupported,
                                     "pgrouter does not route replication connections",
                                     "Connect to the server directly for replication.");
        }
        boost::system::error_code ec;
        auto peer = client_.socket().remote_endpoint(ec);
        if (ec) {
            close("client vanished");
            co_return false;
        }
        std::string host = peer.address().to_string();
        auto address = IpAddress::parse(host);
        const HbaRule* rule =
            address ? match_hba(access_->hba, *address, false, params_.database, params_.user)
                    : nullptr;
        if (rule == nullptr) {
            co_return co_await fatal(
                proto::kSqlstateInvalidAuthorization,
                hba_no_entry_message(host, params_.user, params_.database, false));
        }
        if (rule->method == HbaMethod::Reject) {
            co_return co_await fatal(
                proto::kSqlstateInvalidAuthorization,
                hba_reject_message(host, params_.user, params_.database, false));
        }
        AuthOutcome auth =
            co_await authenticate_client(client_, rule->method, params_.user, access_->authdb);
        if (!auth.ok) {
            if (auth.client_gone) {
                close(auth.log_detail);
                co_return false;
            }
            PGR_NOTICE("session %llu: authentication failed for user \"%s\" from %s: %s",
                       ull(id_), params_.user.c_str(), host.c_str(), auth.log_detail.c_str());
            co_return co_await fatal(auth.sqlstate, auth.message);
        }
        credentials_ = std::move(auth.credentials);
        PGR_DEBUG("session %llu: user \"%s\" database \"%s\" from %s authenticated (%s)",
                  ull(id_), params_.user.c_str(), params_.database.c_str(), host.c_str(),
                  hba_method_name(rule->method).data());
        co_return co_await login_first_backend();
    }

    asio::awaitable<bool> login_first_backend() {
        Snapshot snap;
        const BackendView* master = take_snapshot(env_.seg, snap) ? pick_master(snap) : nullptr;
        if (master == nullptr) {
            co_return co_await fatal(proto::kSqlstateConnectionFailure,
                                     "no master backend is available right now");
        }
        LoginParams login{params_.user, params_.database, params_.params};
        std::chrono::milliseconds timeout(std::max<std::int64_t>(snap.settings.health_timeout_ms, 1));
        LoginResult r = co_await backend_login(master->spec, master->slot, login, credentials_,
                                               timeout);
        if (!r.connection) {
            if (!r.failure.backend_error.empty()) {
                // The backend's own refusal (wrong database, ...) reaches the client verbatim.
                client_.output() += static_cast<char>(proto::BackendMsg::ErrorResponse);
                auto len = static_cast<std::uint32_t>(r.failure.backend_error.size() + 4);
                for (int shift = 24; shift >= 0; shift -= 8) {
                    client_.output() += static_cast<char>((len >> shift) & 0xff);
                }
                client_.output() += r.failure.backend_error;
                co_await client_.flush();
                close("backend refused the login");
                co_return false;
            }
            if (r.failure.sqlstate == proto::kSqlstateConnectionFailure) env_.seg.recheck.post();
            PGR_WARNING("session %llu: %s", ull(id_), r.failure.message.c_str());
            co_return co_await fatal(r.failure.sqlstate, r.failure.message);
        }
        backend_ = std::move(r.connection);
        backend_counted_.emplace(env_.slot.connections);
        auto handle = cancel_register(env_.seg, env_.worker);
        if (!handle) co_return co_await fatal(proto::kSqlstateTooManyConnections,
                                              "sorry, too many clients already");
        cancel_ = *handle;
        cancel_set_backend(env_.seg, cancel_, backend_->slot, backend_->pid, backend_->key);
        std::string& out = client_.output();
        for (const auto& [name, value] : backend_->parameters) {
            proto::encode_parameter_status(out, name, value);
        }
        proto::encode_backend_key_data(out, cancel_.pid, cancel_.key);
        proto::encode_ready_for_query(out, proto::TransactionStatus::Idle);
        if (co_await client_.flush()) {
            close("client went away at login");
            co_return false;
        }
        PGR_DEBUG("session %llu: logged in to backend %s", ull(id_), backend_->address.c_str());
        co_return true;
    }

    // Client → backend: frames every message (type and length checked against the limits)
    // and streams it on without waiting for its end; Terminate ends the session.
    asio::awaitable<void> pump_client() {
        std::size_t passthrough = 0;  // bytes of the current message still to forward
        for (;;) {
            std::string_view data = client_.input().data();
            std::size_t ready = 0;
            bool terminate = false;
            std::optional<proto::ProtoError> error;
            while (ready < data.size()) {
                if (passthrough > 0) {
                    std::size_t n = std::min(passthrough, data.size() - ready);
                    ready += n;
                    passthrough -= n;
                    continue;
                }
                proto::DecodeResult r = proto::decode_frontend(data.substr(ready));
                if (auto* m = std::get_if<proto::Message>(&r)) {
                    if (m->is(FrontendMsg::Terminate)) {
                        terminate = true;
                        break;
                    }
                    ready += m->size;
                } else if (auto* e = std::get_if<proto::ProtoError>(&r)) {
                    error = *e;
                    break;
                } else {
                    std::size_t whole = std::get<proto::NeedMore>(r).size;
                    if (whole <= 5) break;  // the header is not complete yet
                    passthrough = whole;
                }
            }
            if (ready > 0) {
                if (co_await backend_->wire.send(data.substr(0, ready))) {
                    co_return close("backend connection lost");
                }
                client_.input().consume(ready);
            }
            if (terminate) {
                std::string bye;
                proto::encode_terminate(bye);
                co_await backend_->wire.send(bye);
                co_return close("client terminated the session");
            }
            if (error) {
                backend_->wire.close();
                PGR_NOTICE("session %llu: %s", ull(id_), error->message.c_str());
                co_await fatal(error->sqlstate, error->message);
                co_return;
            }
            if (co_await client_.fill(passthrough > 0 ? 16384 : 4096)) {
                co_return close("client closed the connection");
            }
            if (passthrough == 0 && client_.input().empty()) client_.release_idle_memory();
        }
    }

    // Backend → client: whole read buffers, as they come.
    static asio::awaitable<void> pump_backend(std::shared_ptr<Session> self) {
        Wire& from = self->backend_->wire;
        for (;;) {
            if (co_await from.fill(8192)) break;
            std::string_view data = from.input().data();
            if (co_await self->client_.send(data)) break;
            from.input().consume(data.size());
            from.release_idle_memory();
        }
        self->close("backend connection closed");
    }

    WorkerEnv& env_;
    std::shared_ptr<const AccessRules> access_;
    std::uint64_t id_;
    Wire client_;
    Counted counted_;
    StartupParams params_;
    BackendCredentials credentials_;
    std::unique_ptr<BackendConnection> backend_;
    std::optional<Counted> backend_counted_;
    CancelHandle cancel_;
    bool closed_ = false;
};

}  // namespace

asio::awaitable<void> run_session(tcp::socket client, WorkerEnv& env) {
    boost::system::error_code ec;
    client.set_option(tcp::no_delay(true), ec);
    auto session = std::make_shared<Session>(std::move(client), env);
    co_await session->run();
}

}  // namespace pgrouter
