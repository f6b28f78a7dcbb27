// The front door (see frontdoor.h), PostgreSQL's ProcessStartupPacket and ClientAuthentication
// in pgrouter's terms. The caller puts the whole of it under the startup deadline.
#include "pgrouter/worker/frontdoor.h"

#include "pgrouter/auth/auth.h"
#include "pgrouter/base/clock.h"
#include "pgrouter/base/log.h"
#include "pgrouter/net/tls.h"
#include "pgrouter/os/counters.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/worker/cancel.h"
#include "pgrouter/worker/console.h"
#include "pgrouter/worker/session_log.h"

namespace pgrouter {

namespace {

using namespace std::chrono_literals;
constexpr auto kCancelTimeout = 5s;

asio::awaitable<void> forward_cancel(Segment& seg, std::int32_t pid, std::int32_t key) {
    std::optional<CancelTarget> target = cancel_lookup(seg, pid, key);
    if (!target) co_return;  // unknown keys are ignored silently, as in PostgreSQL
    Snapshot snap;
    if (!take_snapshot(seg, snap)) co_return;
    for (const BackendView& b : snap.backends) {
        if (b.slot != target->backend_slot) continue;
        PGR_DEBUG("forwarding a cancel request to backend %s",
                  Endpoint{b.spec.host, b.spec.port}.to_string().c_str());
        co_await backend_cancel(b.spec.host, b.spec.port, target->pid, target->key, kCancelTimeout);
    }
}

// Runs the TLS handshake as the server; false when the connection is to be closed.
// `already_read`: the start of a ClientHello sent without an SSLRequest (direct TLS), which
// must then agree on ALPN "postgresql", as PostgreSQL 17 requires.
asio::awaitable<bool> start_tls(Wire& client, std::shared_ptr<ssl::context> ctx,
                                std::string already_read, std::uint64_t id) {
    bool direct = !already_read.empty();
    boost::system::error_code ec = co_await client.handshake_server(*ctx, already_read);
    if (ec) {
        log_tls_failure(id, client_address(client), ec.message());
        co_return false;
    }
    if (direct && tls_alpn_selected(client.ssl()) != kAlpnPostgresql) {
        log_tls_failure(id, client_address(client),
                        "direct TLS connection without ALPN \"postgresql\"");
        co_return false;
    }
    PGR_SESSION_DEBUG(id, "TLS %s (%s)%s", SSL_get_version(client.ssl()),
                      SSL_get_cipher_name(client.ssl()), direct ? ", direct negotiation" : "");
    co_return true;
}

// The first packets up to StartupMessage; nullopt when the session ends there.
asio::awaitable<std::optional<StartupParams>> read_startup(Wire& client, WorkerEnv& env,
                                                           std::uint64_t id) {
    std::shared_ptr<ssl::context> tls = env.tls;
    bool first_packet = true;
    for (;;) {
        std::string_view data = client.input().data();
        if (first_packet && tls && !data.empty() && data[0] == kTlsHandshakeRecord) {
            std::string hello(data);
            client.input().consume(hello.size());
            if (!co_await start_tls(client, tls, std::move(hello), id)) co_return std::nullopt;
            first_packet = false;
            continue;
        }
        StartupFrameResult frame = frame_startup(data);
        if (auto* err = std::get_if<StartupError>(&frame)) {
            log_dropped(env, id, client_address(client), err->message);
            if (err->send_to_client) co_await send_fatal(client, err->sqlstate, err->message);
            co_return std::nullopt;
        }
        if (std::holds_alternative<proto::NeedMore>(frame) ||
            data.size() < std::get<StartupFrame>(frame).size) {
            if (co_await client.fill(512)) co_return std::nullopt;
            continue;
        }
        std::size_t size = std::get<StartupFrame>(frame).size;
        StartupResult parsed = parse_startup(data.substr(0, size));
        client.input().consume(size);
        if (auto* err = std::get_if<StartupError>(&parsed)) {
            log_dropped(env, id, client_address(client), err->message);
            co_await send_fatal(client, err->sqlstate, err->message, err->hint);
            co_return std::nullopt;
        }
        StartupPacket& packet = std::get<StartupPacket>(parsed);
        first_packet = false;
        switch (packet.kind) {
            case StartupKind::SslRequest:
                if (tls && !client.tls()) {
                    if (co_await client.send("S")) co_return std::nullopt;
                    if (!client.input().empty()) {
                        // Bytes sent before the handshake would pass as if encrypted
                        // (CVE-2021-23214); PostgreSQL refuses them the same way.
                        log_dropped(env, id, client_address(client),
                                    "unencrypted data after SSL request");
                        co_await send_fatal(client, proto::kSqlstateProtocolViolation,
                                            "received unencrypted data after SSL request");
                        co_return std::nullopt;
                    }
                    if (!co_await start_tls(client, tls, {}, id)) co_return std::nullopt;
                    continue;
                }
                if (co_await client.send("N")) co_return std::nullopt;
                continue;
            case StartupKind::GssEncRequest:
                if (co_await client.send("N")) co_return std::nullopt;
                continue;
            case StartupKind::CancelRequest:
                co_await forward_cancel(env.seg, packet.cancel_pid, packet.cancel_key);
                co_return std::nullopt;
            case StartupKind::Startup:
                co_return std::move(packet.startup);
        }
    }
}

}  // namespace

std::string client_address(Wire& client) {
    boost::system::error_code ec;
    auto peer = client.socket().remote_endpoint(ec);
    return ec ? std::string("a client") : peer.address().to_string();
}

void log_dropped(WorkerEnv& env, std::uint64_t id, std::string_view peer, std::string_view why) {
    RateLimit::Verdict v = env.dropped_log.admit(now_ns());
    if (v.suppressed != 0) {
        PGR_INFO("connections dropped before login: suppressed %llu similar messages",
                 static_cast<unsigned long long>(v.suppressed));
    }
    if (v.log) {
        PGR_SESSION_INFO(id, "dropped connection from %.*s before login: %.*s",
                         static_cast<int>(peer.size()), peer.data(), static_cast<int>(why.size()),
                         why.data());
    } else {
        PGR_SESSION_DEBUG(id, "%.*s", static_cast<int>(why.size()), why.data());
    }
}

asio::awaitable<void> send_fatal(Wire& client, std::string_view sqlstate, std::string_view message,
                                 std::string_view hint) {
    proto::encode_error_response(client.output(), "FATAL", sqlstate, message, {}, hint);
    co_await client.flush();
}

asio::awaitable<std::optional<ClientLogin>> front_door(Wire& client, WorkerEnv& env,
                                                       std::uint64_t id) {
    std::shared_ptr<const AccessRules> access = env.access;
    std::optional<StartupParams> params = co_await read_startup(client, env, id);
    if (!params) co_return std::nullopt;
    if (params->needs_negotiation()) {
        proto::encode_negotiate_protocol_version(
            client.output(), StartupParams::negotiate_version(), params->protocol_options);
    }
    if (params->replication != ReplicationMode::None) {
        co_await send_fatal(client, proto::kSqlstateFeatureNotSupported,
                            "pgrouter does not route replication connections",
                            "Connect to the server directly for replication.");
        co_return std::nullopt;
    }
    boost::system::error_code ec;
    auto peer = client.socket().remote_endpoint(ec);
    if (ec) co_return std::nullopt;
    ClientLogin login;
    login.host = peer.address().to_string();
    auto address = IpAddress::parse(login.host);
    bool ssl = client.tls();
    if (env.log_connections) {
        PGR_SESSION_INFO(id, "connection received: host=%s port=%u", login.host.c_str(),
                         static_cast<unsigned>(peer.port()));
    }
    const HbaRule* rule =
        address ? match_hba(access->hba, *address, ssl, params->database, params->user) : nullptr;
    if (rule == nullptr || rule->method == HbaMethod::Reject) {
        std::string why =
            rule == nullptr ? hba_no_entry_message(login.host, params->user, params->database, ssl)
                            : hba_reject_message(login.host, params->user, params->database, ssl);
        PGR_SESSION_NOTICE(id, "%s", why.c_str());
        bump(env.counters.auth_failures);
        co_await send_fatal(client, proto::kSqlstateInvalidAuthorization, why);
        co_return std::nullopt;
    }
    if (auto mode = rule->option("clientcert")) {
        std::string why = client_cert_problem(client.ssl(), *mode, params->user);
        if (!why.empty()) {
            PGR_SESSION_NOTICE(id, "%s", why.c_str());
            bump(env.counters.auth_failures);
            co_await send_fatal(client, proto::kSqlstateInvalidAuthorization, why);
            co_return std::nullopt;
        }
    }
    std::string end_point = ssl ? tls_server_end_point(SSL_get_certificate(client.ssl())) : "";
    AuthOutcome auth =
        co_await authenticate_client(client, rule->method, params->user, access->authdb, end_point);
    if (!auth.ok) {
        if (auth.client_gone) co_return std::nullopt;
        PGR_SESSION_NOTICE(id, "authentication failed for user \"%s\" from %s: %s",
                           params->user.c_str(), login.host.c_str(), auth.log_detail.c_str());
        bump(env.counters.auth_failures);
        co_await send_fatal(client, auth.sqlstate, auth.message);
        co_return std::nullopt;
    }
    PGR_SESSION_DEBUG(id, "user \"%s\" database \"%s\" from %s authenticated (%s)",
                      params->user.c_str(), params->database.c_str(), login.host.c_str(),
                      hba_method_name(rule->method).data());
    if (env.log_connections) {
        PGR_SESSION_INFO(id, "connection authorized: user=%s database=%s host=%s%s%s",
                         params->user.c_str(), params->database.c_str(), login.host.c_str(),
                         ssl ? " SSL enabled, protocol=" : "",
                         ssl ? SSL_get_version(client.ssl()) : "");
    }
    login.params = std::move(*params);
    login.credentials = std::move(auth.credentials);
    if (login.params.database == kConsoleDatabase) {
        co_await run_console(client, env, id, login);  // never a backend: the session ends here
        co_return std::nullopt;
    }
    co_return login;
}

}  // namespace pgrouter
