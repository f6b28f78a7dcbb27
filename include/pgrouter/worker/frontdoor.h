// The front door of a session: the first packets (SSL/GSS requests declined, cancel
// requests forwarded, protocol negotiation), HBA, and client authentication. What comes out
// is an authenticated client and what pgrouter may use to log in to backends as it.
#pragma once

#include <optional>
#include <string>

#include "pgrouter/auth/credentials.h"
#include "pgrouter/net/wire.h"
#include "pgrouter/proto/startup.h"
#include "pgrouter/worker/backend.h"
#include "pgrouter/worker/worker_env.h"

namespace pgrouter {

struct ClientLogin {
    StartupParams params;
    BackendCredentials credentials;
    std::string host;  // the client's address, for logs
};

// Runs the front door on `client`. nullopt when the session ends here (the client has been
// told why, when it should be); the caller closes the connection.
asio::awaitable<std::optional<ClientLogin>> front_door(Wire& client, WorkerEnv& env,
                                                       std::uint64_t session_id);

// Logs, at INFO and rate-limited per worker, a connection dropped before its login for
// `why` (garbage, an oversized or malformed startup packet, the startup timeout).
// `peer`: client_address() taken before the connection closed.
void log_dropped(WorkerEnv& env, std::uint64_t session_id, std::string_view peer,
                 std::string_view why);
// The client's IP address, "a client" when it cannot be told.
std::string client_address(Wire& client);

// Sends a FATAL ErrorResponse to the client and flushes it.
asio::awaitable<void> send_fatal(Wire& client, std::string_view sqlstate, std::string_view message,
                                 std::string_view hint = {});

}  // namespace pgrouter
