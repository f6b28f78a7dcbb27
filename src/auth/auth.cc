// Client authentication by method (trust, password, md5, scram-sha-256), as PostgreSQL's
// auth.c does it: an md5 line with a SCRAM secret falls back to SCRAM; an unknown user goes
// through a doomed exchange that fails at the end, so user names cannot be probed.
#include "pgrouter/auth/auth.h"

#include <openssl/crypto.h>

#include "pgrouter/auth/md5auth.h"
#include "pgrouter/auth/scram.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/proto/payload.h"

namespace pgrouter {

namespace {

using proto::FrontendMsg;

AuthOutcome failed(const std::string& user, std::string log_detail) {
    AuthOutcome out;
    out.sqlstate = std::string(proto::kSqlstateInvalidPassword);
    out.message = "password authentication failed for user \"" + user + "\"";
    out.log_detail = std::move(log_detail);
    return out;
}

AuthOutcome protocol_error(std::string message) {
    AuthOutcome out;
    out.sqlstate = std::string(proto::kSqlstateProtocolViolation);
    out.message = std::move(message);
    out.log_detail = out.message;
    return out;
}

AuthOutcome gone() {
    AuthOutcome out;
    out.client_gone = true;
    out.log_detail = "client closed the connection during authentication";
    return out;
}

bool equal_secret(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Reads the client's next authentication message (type 'p'): its payload, or an outcome.
asio::awaitable<std::variant<std::string, AuthOutcome>> read_auth_message(Wire& client) {
    if (auto ec = co_await client.flush()) co_return gone();
    // Whatever its type, a message here is at most an authentication token long.
    const proto::DecodeLimits limits{proto::kAuthMessageLimit, proto::kSmallMessageLimit,
                                     proto::kAuthMessageLimit};
    WireRead r = co_await client.read_frontend(limits);
    if (std::holds_alternative<WireClosed>(r)) co_return gone();
    if (auto* e = std::get_if<proto::ProtoError>(&r)) co_return protocol_error(e->message);
    proto::Message m = std::get<proto::Message>(r);
    if (!m.is(FrontendMsg::PasswordMessage)) {
        co_return protocol_error("expected password response, got message type " +
                                 std::to_string(static_cast<int>(m.type)));
    }
    std::string payload(m.payload);
    client.consume(m);
    co_return payload;
}

BackendCredentials credentials_from(const Secret* secret) {
    BackendCredentials c;
    if (secret == nullptr) return c;
    if (secret->kind == SecretKind::Plaintext) c.password = secret->value;
    if (secret->kind == SecretKind::Md5) c.md5_secret = secret->value;
    return c;
}

// Does a cleartext password match the stored secret?
bool password_matches(std::string_view password, const std::string& user, const Secret& s) {
    switch (s.kind) {
        case SecretKind::Plaintext:
            return equal_secret(password, s.value);
        case SecretKind::Md5:
            return equal_secret(md5_secret(password, user), s.value);
        case SecretKind::ScramSha256: {
            if (!s.scram) return false;
            auto v = make_scram_verifier(password, s.scram->iterations, s.scram->salt);
            return v && CRYPTO_memcmp(v->stored_key.data(), s.scram->stored_key.data(),
                                      kScramKeyLength) == 0;
        }
    }
    return false;
}

asio::awaitable<AuthOutcome> auth_password(Wire& client, const std::string& user,
                                           const Secret* secret) {
    proto::encode_auth_cleartext_password(client.output());
    auto msg = co_await read_auth_message(client);
    if (auto* o = std::get_if<AuthOutcome>(&msg)) co_return *o;
    auto password = proto::parse_password_message(std::get<std::string>(msg));
    if (!password) co_return protocol_error("malformed password packet");
    if (secret == nullptr) co_return failed(user, "no authdb entry for this user");
    if (!password_matches(*password, user, *secret)) co_return failed(user, "wrong password");
    AuthOutcome ok;
    ok.ok = true;
    ok.credentials = credentials_from(secret);
    ok.credentials.password = std::string(*password);
    co_return ok;
}

asio::awaitable<AuthOutcome> auth_md5(Wire& client, const std::string& user, const Secret* secret) {
    auto salt = md5_random_salt();
    if (!salt) co_return failed(user, "no random salt");
    proto::encode_auth_md5_password(client.output(), *salt);
    auto msg = co_await read_auth_message(client);
    if (auto* o = std::get_if<AuthOutcome>(&msg)) co_return *o;
    auto response = proto::parse_password_message(std::get<std::string>(msg));
    if (!response) co_return protocol_error("malformed password packet");
    if (secret == nullptr) co_return failed(user, "no authdb entry for this user");
    if (!md5_check_response(*response, secret->value, user, *salt)) {
        co_return failed(user, "wrong password");
    }
    AuthOutcome ok;
    ok.ok = true;
    ok.credentials = credentials_from(secret);
    co_return ok;
}

asio::awaitable<AuthOutcome> auth_scram(Wire& client, const std::string& user, const Secret* secret,
                                        std::string_view end_point) {
    ScramServerOptions options;
    std::optional<ScramVerifier> verifier;
    std::string why_doomed;
    if (secret == nullptr) {
        why_doomed = "no authdb entry for this user";
    } else if (secret->kind == SecretKind::ScramSha256 && secret->scram) {
        verifier = secret->scram;
    } else if (secret->kind == SecretKind::Plaintext) {
        verifier = make_scram_verifier(secret->value);
    } else {
        why_doomed = "the authdb secret is md5, which cannot verify SCRAM";
    }
    if (!verifier) {
        options.doomed = true;
        verifier = scram_mock_verifier(user, "pgrouter");
    }
    options.plus_offered = !end_point.empty();
    std::vector<std::string_view> mechanisms;
    if (options.plus_offered) mechanisms.push_back(kScramSha256Plus);  // PostgreSQL's order
    mechanisms.push_back(kScramSha256);
    proto::encode_auth_sasl(client.output(), mechanisms);

    auto first = co_await read_auth_message(client);
    if (auto* o = std::get_if<AuthOutcome>(&first)) co_return *o;
    auto initial = proto::parse_sasl_initial_response(std::get<std::string>(first));
    if (!initial || !initial->data) co_return protocol_error("malformed SASL message");
    if (initial->mechanism == kScramSha256Plus && options.plus_offered) {
        options.plus_selected = true;
        options.tls_server_end_point = std::string(end_point);
    } else if (initial->mechanism != kScramSha256) {
        co_return protocol_error("client selected an invalid SASL authentication mechanism");
    }
    ScramServer server(*verifier, options);
    ScramResult r = server.handle_client_first(*initial->data);
    if (r.status != ScramResult::Status::Continue) {
        AuthOutcome o = r.status == ScramResult::Status::Failure ? failed(user, r.detail)
                                                                 : protocol_error(r.error);
        if (!r.sqlstate.empty()) o.sqlstate = std::string(r.sqlstate);
        co_return o;
    }
    proto::encode_auth_sasl_continue(client.output(), r.message);

    auto final_msg = co_await read_auth_message(client);
    if (auto* o = std::get_if<AuthOutcome>(&final_msg)) co_return *o;
    r = server.handle_client_final(std::get<std::string>(final_msg));
    if (r.status != ScramResult::Status::Success) {
        if (r.status == ScramResult::Status::Failure) {
            co_return failed(user, options.doomed ? why_doomed : r.detail);
        }
        AuthOutcome o = protocol_error(r.error);
        if (!r.sqlstate.empty()) o.sqlstate = std::string(r.sqlstate);
        co_return o;
    }
    proto::encode_auth_sasl_final(client.output(), r.message);
    AuthOutcome ok;
    ok.ok = true;
    if (secret->kind == SecretKind::Plaintext) {
        ok.credentials.password = secret->value;
    } else {
        ok.credentials.client_key = server.client_key();
        ok.credentials.verifier = verifier;
    }
    co_return ok;
}

}  // namespace

asio::awaitable<AuthOutcome> authenticate_client(Wire& client, HbaMethod method,
                                                 const std::string& user, const AuthDb& authdb,
                                                 std::string_view tls_end_point) {
    const Secret* secret = authdb.find(user);
    AuthOutcome outcome;
    switch (method) {
        case HbaMethod::Trust:
            outcome.ok = true;
            outcome.credentials = credentials_from(secret);
            break;
        case HbaMethod::Reject:
            outcome = failed(user, "rejected by hba");
            break;
        case HbaMethod::Password:
            outcome = co_await auth_password(client, user, secret);
            break;
        case HbaMethod::Md5:
            if (secret != nullptr && secret->kind == SecretKind::ScramSha256) {
                outcome =
                    co_await auth_scram(client, user, secret, tls_end_point);  // as PostgreSQL does
            } else {
                outcome = co_await auth_md5(client, user, secret);
            }
            break;
        case HbaMethod::ScramSha256:
            outcome = co_await auth_scram(client, user, secret, tls_end_point);
            break;
    }
    if (outcome.ok) proto::encode_auth_ok(client.output());
    co_return outcome;
}

}  // namespace pgrouter
