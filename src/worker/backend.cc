// Backend login on a client's behalf (see backend.h). The deadline closes the socket, which
// ends any pending read or write; secrets are never logged.
#include "pgrouter/worker/backend.h"

#include <algorithm>

#include "pgrouter/auth/md5auth.h"
#include "pgrouter/base/deadline.h"
#include "pgrouter/base/log.h"
#include "pgrouter/net/tls.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/proto/payload.h"

namespace pgrouter {

namespace {

using proto::AuthCode;
using proto::BackendMsg;

asio::awaitable<boost::system::error_code> connect_to(tcp::socket& sock, const std::string& host,
                                                      std::uint16_t port) {
    boost::system::error_code ec;
    tcp::resolver resolver(sock.get_executor());
    auto endpoints = co_await resolver.async_resolve(host, std::to_string(port),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return ec;
    co_await asio::async_connect(sock, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) sock.set_option(tcp::no_delay(true), ec);
    co_return ec;
}

LoginFailure local_failure(std::string_view sqlstate, std::string message) {
    return LoginFailure{{}, std::string(sqlstate), std::move(message)};
}

// Answers the backend's authentication requests; returns a failure or nullopt when done.
class Authenticator {
  public:
    Authenticator(const LoginParams& params, const BackendCredentials& creds,
                  const std::string& address)
        : params_(params), creds_(creds), address_(address) {}

    // Appends the answer to `out`; a failure ends the login.
    std::optional<LoginFailure> answer(const proto::AuthRequest& req, std::string& out) {
        switch (req.code) {
            case AuthCode::Ok:
                return std::nullopt;
            case AuthCode::CleartextPassword:
                if (!creds_.password) return no_secret("password");
                proto::encode_password_message(out, *creds_.password);
                return std::nullopt;
            case AuthCode::MD5Password:
                return answer_md5(req.data, out);
            case AuthCode::SASL:
                return start_scram(req.data, out);
            case AuthCode::SASLContinue: {
                if (!scram_) return protocol("unexpected SASL continuation");
                ScramResult r = scram_->handle_server_first(req.data);
                if (r.status != ScramResult::Status::Continue) return scram_failed(r);
                proto::encode_sasl_response(out, r.message);
                return std::nullopt;
            }
            case AuthCode::SASLFinal: {
                if (!scram_) return protocol("unexpected SASL final message");
                ScramResult r = scram_->handle_server_final(req.data);
                if (r.status != ScramResult::Status::Success) return scram_failed(r);
                return std::nullopt;
            }
            default:
                return local_failure(proto::kSqlstateFeatureNotSupported,
                                     "backend " + address_ +
                                         " asks for an authentication method pgrouter does not "
                                         "support (code " +
                                         std::to_string(static_cast<int>(req.code)) + ")");
        }
    }

  private:
    std::optional<LoginFailure> answer_md5(std::string_view salt_bytes, std::string& out) {
        if (salt_bytes.size() != 4) return protocol("bad MD5 salt");
        Md5Salt salt;
        std::memcpy(salt.data(), salt_bytes.data(), 4);
        if (creds_.md5_secret) {
            proto::encode_password_message(out, md5_response_from_secret(*creds_.md5_secret, salt));
        } else if (creds_.password) {
            proto::encode_password_message(
                out, md5_response_from_password(*creds_.password, params_.user, salt));
        } else {
            return no_secret("md5");
        }
        return std::nullopt;
    }

    std::optional<LoginFailure> start_scram(std::string_view data, std::string& out) {
        auto mechanisms = proto::parse_sasl_mechanisms(data);
        if (!mechanisms) return protocol("bad SASL mechanism list");
        bool offered =
            std::find(mechanisms->begin(), mechanisms->end(), kScramSha256) != mechanisms->end();
        if (!offered) {
            return local_failure(proto::kSqlstateFeatureNotSupported,
                                 "backend " + address_ + " offers no SCRAM-SHA-256");
        }
        ScramClientOptions options;
        if (creds_.client_key && creds_.verifier) {
            scram_.emplace(
                ScramClient::with_client_key(*creds_.client_key, *creds_.verifier, options));
        } else if (creds_.password) {
            scram_.emplace(ScramClient::with_password(*creds_.password, options));
        } else {
            return no_secret("SCRAM-SHA-256");
        }
        auto first = scram_->client_first();
        if (!first) return protocol("cannot make a SCRAM nonce");
        proto::encode_sasl_initial_response(out, scram_->mechanism(), *first);
        return std::nullopt;
    }

    std::optional<LoginFailure> no_secret(std::string_view method) {
        return local_failure(proto::kSqlstateInvalidAuthorization,
                             "pgrouter cannot log in to backend " + address_ + " as user \"" +
                                 params_.user + "\" with " + std::string(method) +
                                 ": no usable secret for this user; add it to the authdb file");
    }

    std::optional<LoginFailure> scram_failed(const ScramResult& r) {
        return local_failure(proto::kSqlstateInvalidPassword,
                             "SCRAM authentication with backend " + address_ +
                                 " failed: " + (r.error.empty() ? r.detail : r.error));
    }

    std::optional<LoginFailure> protocol(std::string what) {
        return local_failure(proto::kSqlstateProtocolViolation,
                             "backend " + address_ + " sent a bad message: " + what);
    }

    const LoginParams& params_;
    const BackendCredentials& creds_;
    const std::string& address_;
    std::optional<ScramClient> scram_;
};

asio::awaitable<std::optional<LoginFailure>> login_exchange(BackendConnection& conn,
                                                            const LoginParams& params,
                                                            const BackendCredentials& creds) {
    std::string& out = conn.wire.output();
    std::vector<proto::Param> startup{{"user", params.user}, {"database", params.database}};
    for (const auto& [name, value] : params.params) startup.emplace_back(name, value);
    proto::encode_startup_message(out, startup);
    Authenticator auth(params, creds, conn.address);
    for (;;) {
        if (auto ec = co_await conn.wire.flush()) {
            co_return local_failure(proto::kSqlstateConnectionFailure,
                                    "lost backend " + conn.address + ": " + ec.message());
        }
        WireRead r = co_await conn.wire.read_backend();
        if (auto* closed = std::get_if<WireClosed>(&r)) {
            co_return local_failure(
                proto::kSqlstateConnectionFailure,
                "backend " + conn.address + " closed the connection: " + closed->error.message());
        }
        if (auto* bad = std::get_if<proto::ProtoError>(&r)) {
            co_return local_failure(proto::kSqlstateProtocolViolation,
                                    "backend " + conn.address + ": " + bad->message);
        }
        proto::Message m = std::get<proto::Message>(r);
        std::optional<LoginFailure> failure;
        bool done = false;
        if (m.is(BackendMsg::Authentication)) {
            auto req = proto::parse_authentication(m.payload);
            failure = req ? auth.answer(*req, out)
                          : local_failure(proto::kSqlstateProtocolViolation,
                                          "backend " + conn.address + " sent a bad auth request");
        } else if (m.is(BackendMsg::ParameterStatus)) {
            if (auto ps = proto::parse_parameter_status(m.payload)) {
                conn.parameters.emplace_back(ps->name, ps->value);
            }
        } else if (m.is(BackendMsg::BackendKeyData)) {
            if (auto kd = proto::parse_backend_key_data(m.payload)) {
                conn.pid = kd->pid;
                conn.key = kd->key;
            }
        } else if (m.is(BackendMsg::ErrorResponse)) {
            failure = LoginFailure{std::string(m.payload), {}, {}};
        } else if (m.is(BackendMsg::ReadyForQuery)) {
            done = true;
        }
        conn.wire.consume(m);
        if (failure) co_return failure;
        if (done) co_return std::nullopt;
    }
}

// With tls verify/skipverify: SSLRequest, then the handshake. nullopt when TLS is up.
asio::awaitable<std::optional<LoginFailure>> start_backend_tls(BackendConnection& conn,
                                                               const BackendSpec& spec) {
    std::string error;
    ssl::context* ctx = backend_tls_context(spec.tls, spec.ca, error);
    if (ctx == nullptr) {
        co_return local_failure(proto::kSqlstateConnectionFailure,
                                "cannot use TLS with backend " + conn.address + ": " + error);
    }
    std::string request;
    proto::encode_ssl_request(request);
    boost::system::error_code ec = co_await conn.wire.send(request);
    char answer = 0;
    if (!ec) {
        co_await asio::async_read(conn.wire.socket(), asio::buffer(&answer, 1),
                                  asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
        co_return local_failure(proto::kSqlstateConnectionFailure,
                                "lost backend " + conn.address + ": " + ec.message());
    }
    if (answer != 'S') {
        co_return local_failure(proto::kSqlstateConnectionFailure,
                                "backend " + conn.address + " refused TLS (tls " +
                                    std::string(tls_mode_name(spec.tls)) + ")");
    }
    ec = co_await conn.wire.handshake_client(*ctx, spec.tls == TlsMode::Verify, spec.host);
    if (ec) {
        co_return local_failure(
            proto::kSqlstateConnectionFailure,
            "TLS handshake with backend " + conn.address + " failed: " + ec.message());
    }
    co_return std::nullopt;
}

}  // namespace

asio::awaitable<LoginResult> backend_login(const BackendSpec& spec, const LoginParams& params,
                                           const BackendCredentials& credentials,
                                           std::chrono::milliseconds timeout) {
    auto executor = co_await asio::this_coro::executor;
    auto conn = std::make_unique<BackendConnection>(tcp::socket(executor));
    conn->address = Endpoint{spec.host, spec.port}.to_string();
    Deadline deadline(conn->wire.socket(), timeout);
    LoginResult result;
    boost::system::error_code ec = co_await connect_to(conn->wire.socket(), spec.host, spec.port);
    if (ec) {
        result.failure =
            local_failure(proto::kSqlstateConnectionFailure,
                          "could not connect to backend " + conn->address + ": " +
                              (deadline.expired() ? std::string("timed out") : ec.message()));
        co_return result;
    }
    std::optional<LoginFailure> failure;
    if (spec.tls != TlsMode::Off) failure = co_await start_backend_tls(*conn, spec);
    if (!failure) failure = co_await login_exchange(*conn, params, credentials);
    if (failure && deadline.expired()) {
        failure = local_failure(proto::kSqlstateConnectionFailure,
                                "login to backend " + conn->address + " timed out");
    }
    if (failure) {
        result.failure = std::move(*failure);
        conn->wire.close();
        co_return result;
    }
    conn->wire.release_idle_memory();
    conn->login_params = params.params;
    result.connection = std::move(conn);
    co_return result;
}

asio::awaitable<bool> run_quietly(BackendConnection& conn,
                                  const std::vector<std::string>& statements,
                                  std::chrono::milliseconds timeout,
                                  std::vector<std::pair<std::string, std::string>>& reported) {
    using proto::BackendMsg;
    Wire& wire = conn.wire;
    for (const std::string& sql : statements) proto::encode_query(wire.output(), sql);
    Deadline deadline(wire.socket(), timeout);
    if (co_await wire.flush()) co_return false;
    for (std::size_t done = 0; done < statements.size();) {
        WireRead r = co_await wire.read_backend();
        auto* m = std::get_if<proto::Message>(&r);
        if (m == nullptr) co_return false;
        bool ok = true;
        if (m->is(BackendMsg::ParameterStatus)) {
            proto::PayloadReader in(m->payload);
            std::string_view name, value;
            if (in.read_cstr(name) && in.read_cstr(value)) {
                auto p = std::find_if(reported.begin(), reported.end(),
                                      [&](const auto& kv) { return kv.first == name; });
                if (p != reported.end()) {
                    p->second = value;
                } else {
                    reported.emplace_back(name, value);
                }
            }
        } else if (m->is(BackendMsg::ReadyForQuery)) {
            ok = m->payload.size() == 1 &&
                 m->payload[0] == static_cast<char>(proto::TransactionStatus::Idle);
            ++done;
        } else if (!m->is(BackendMsg::CommandComplete) && !m->is(BackendMsg::RowDescription) &&
                   !m->is(BackendMsg::DataRow) && !m->is(BackendMsg::NoticeResponse) &&
                   !m->is(BackendMsg::NotificationResponse)) {
            ok = false;  // an ErrorResponse, or anything a plain statement does not bring
        }
        wire.consume(*m);
        if (!ok) co_return false;
    }
    co_return !deadline.expired() && wire.input().empty();
}

// Plain TCP whatever the backend's tls mode: PostgreSQL reads a CancelRequest before any TLS
// negotiation, also with ssl=on (only a hostssl-only pg_hba refuses it, and pg_hba is not
// consulted for cancel requests).
asio::awaitable<void> backend_cancel(std::string host, std::uint16_t port, std::int32_t pid,
                                     std::int32_t key, std::chrono::milliseconds timeout) {
    auto executor = co_await asio::this_coro::executor;
    tcp::socket sock(executor);
    Deadline deadline(sock, timeout);
    if (co_await connect_to(sock, host, port)) co_return;
    std::string msg;
    proto::encode_cancel_request(msg, pid, key);
    boost::system::error_code ec;
    co_await asio::async_write(sock, asio::buffer(msg),
                               asio::redirect_error(asio::use_awaitable, ec));
    // PostgreSQL closes the connection once it has read the request.
    char byte;
    co_await sock.async_read_some(asio::buffer(&byte, 1),
                                  asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace pgrouter
