// A logged-in backend connection, and logging in on a client's behalf: connect within a
// deadline, send the client's startup parameters, answer the backend's authentication with
// what the client proved (a SCRAM ClientKey, an md5 secret or a password), and collect its
// ParameterStatus and BackendKeyData up to the first ReadyForQuery.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pgrouter/auth/credentials.h"
#include "pgrouter/auth/scram.h"
#include "pgrouter/net/wire.h"
#include "pgrouter/os/shm_layout.h"

namespace pgrouter {

// What pgrouter can use to log in as the client. Kept in the session's memory only.
struct LoginParams {
    std::string user;
    std::string database;
    std::vector<std::pair<std::string, std::string>> params;  // application_name, options...
};

struct BackendConnection {
    explicit BackendConnection(tcp::socket s) : wire(std::move(s)) {
        wire.read_eagerly();  // read only when an answer is due: no idle wait to keep cheap
    }
    Wire wire;
    std::string address;
    std::int32_t pid = 0;  // the backend's own BackendKeyData
    std::int32_t key = 0;
    std::vector<std::pair<std::string, std::string>> parameters;  // ParameterStatus at login
    // The startup parameters it logged in with (what RESET and DISCARD ALL return to).
    std::vector<std::pair<std::string, std::string>> login_params;
    // Pooling (server_pool.h): while `pool_hold` lives the connection counts toward its
    // pool's size; null for a connection of its own. `reused`: it came from the idle list.
    std::shared_ptr<void> pool_hold;
    std::int64_t born_ns = 0;
    bool reused = false;
    // Transaction pooling: the lease (unique in its worker) under which a session parked it
    // with that session's state on it; 0 when it carries none (new, reset by DISCARD ALL,
    // or parked by a session that left nothing of its own).
    std::uint64_t owner = 0;
};

// A failed login: either the backend's own ErrorResponse payload (pass it to the client as
// it is) or pgrouter's reason (sqlstate + message).
struct LoginFailure {
    std::string backend_error;  // ErrorResponse payload, when the backend refused
    std::string sqlstate;
    std::string message;
};

struct LoginResult {
    std::unique_ptr<BackendConnection> connection;  // set on success
    LoginFailure failure;
};

// Connects to spec's host:port and logs in; the whole exchange must finish within timeout.
asio::awaitable<LoginResult> backend_login(const BackendSpec& spec, const LoginParams& params,
                                           const BackendCredentials& credentials,
                                           std::chrono::milliseconds timeout);

// Runs each of `statements` as a simple Query on the idle `conn` and reads its answers up to
// its ReadyForQuery, all within `timeout`; each ParameterStatus updates (or adds to)
// `reported`. True when each one completed without an error, the connection is idle after
// and nothing more is buffered. Notices and notifications are dropped.
asio::awaitable<bool> run_quietly(BackendConnection& conn,
                                  const std::vector<std::string>& statements,
                                  std::chrono::milliseconds timeout,
                                  std::vector<std::pair<std::string, std::string>>& reported);

// Sends a CancelRequest for (pid, key) to host:port; best effort, bounded by timeout.
asio::awaitable<void> backend_cancel(std::string host, std::uint16_t port, std::int32_t pid,
                                     std::int32_t key, std::chrono::milliseconds timeout);

}  // namespace pgrouter
