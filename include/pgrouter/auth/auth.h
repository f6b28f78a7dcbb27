// Authenticating a client by its HBA method against the authdb secrets, over the client's
// connection. On success the client has been sent AuthenticationOk and the result says what
// pgrouter may use to log in to backends as that client. Secrets never reach the log.
#pragma once

#include <string>

#include "pgrouter/auth/authdb.h"
#include "pgrouter/auth/credentials.h"
#include "pgrouter/auth/hba.h"
#include "pgrouter/net/wire.h"

namespace pgrouter {

struct AuthOutcome {
    bool ok = false;
    BackendCredentials credentials;
    // On failure: what the client is told (FATAL) and what the log says (no secrets).
    std::string sqlstate;
    std::string message;
    std::string log_detail;
    bool client_gone = false;  // the client hung up mid-exchange (psql asking for a password)
};

// `tls_end_point`: the tls-server-end-point of the certificate the client's TLS session
// uses; when set, SCRAM-SHA-256-PLUS is offered beside SCRAM-SHA-256.
asio::awaitable<AuthOutcome> authenticate_client(Wire& client, HbaMethod method,
                                                 const std::string& user, const AuthDb& authdb,
                                                 std::string_view tls_end_point = {});

}  // namespace pgrouter
