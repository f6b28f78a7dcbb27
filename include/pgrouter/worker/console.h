// The admin console: a client that logs in to database "pgrouter" as one of `admin-users`
// talks to pgrouter itself (SHOW BACKENDS, CLIENTS, SERVERS, POOLS, STATS, WORKERS, CONFIG,
// VERSION, HELP; RELOAD). Answers are ordinary result sets built from the shared segment;
// the console never opens a backend connection. The command parsing and the tables are pure
// (unit-tested); run_console() is the I/O loop, entered from the front door.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgrouter/net/wire.h"
#include "pgrouter/os/counters.h"
#include "pgrouter/os/pool_table.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/worker/worker_env.h"

namespace pgrouter {

struct ClientLogin;

inline constexpr std::string_view kConsoleDatabase = "pgrouter";

enum class ConsoleCommand {
    Backends,
    Clients,
    Servers,
    Pools,
    Stats,
    Workers,
    Config,
    Version,
    Help,
    Reload,
};

// One statement (no trailing ';'), case and spacing free: "show  backends" is SHOW BACKENDS.
[[nodiscard]] std::optional<ConsoleCommand> parse_console_command(std::string_view statement);
// The statements of a simple Query, split at ';' (the commands carry no strings), empty
// ones dropped.
[[nodiscard]] std::vector<std::string_view> split_console_statements(std::string_view sql);
// The hint of the 42601 error for anything else.
[[nodiscard]] std::string console_help_hint();

// A result set: text columns, rows of text values (nullopt: NULL), and its command tag.
struct ResultTable {
    std::vector<std::string> columns;
    std::vector<std::vector<std::optional<std::string>>> rows;
    std::string tag;  // "SHOW", "RELOAD"
};

// RowDescription (text columns), the DataRows and CommandComplete.
void encode_result(std::string& out, const ResultTable& table);

// A session's row of SHOW CLIENTS, read out of the segment.
struct ClientRow {
    int worker = 0;
    SessionIdentity identity;
    SessionActivity activity = SessionActivity::Idle;
    std::uint16_t pins = 0;
    int backend_slot = -1;
};

// What the tables are built from: one consistent read of the segment.
struct ConsoleView {
    Snapshot snap;
    CounterTotals totals;
    std::vector<ClientRow> clients;
    struct Worker {
        int index = 0;
        pid_t pid = 0;
        std::int64_t clients = 0;
        std::int64_t connections = 0;
        std::int64_t pinned = 0;
        std::uint64_t accepted = 0;
        std::int64_t backend_connections[kMaxBackends] = {};
        std::uint64_t backend_logins[kMaxBackends] = {};
    };
    std::vector<Worker> workers;     // live ones
    std::vector<PoolFigures> pools;  // the pool table's entries in use (os/pool_table.h)
    std::int64_t now_ns = 0;         // CLOCK_MONOTONIC when read, for the waits' length
};

// Reads the segment; false when a writer stayed mid-update (retry later).
[[nodiscard]] bool read_console_view(const Segment& seg, ConsoleView& view);

// The answer to a SHOW command (not RELOAD).
[[nodiscard]] ResultTable console_table(ConsoleCommand command, const ConsoleView& view);

// The names of PinReason bits, "temp table,listen"; empty for none.
[[nodiscard]] std::string pin_names(std::uint16_t pins);

// Runs the console for an authenticated client until it leaves. A user not in admin-users
// gets FATAL 42501 and the connection ends.
asio::awaitable<void> run_console(Wire& client, WorkerEnv& env, std::uint64_t session_id,
                                  const ClientLogin& login);

}  // namespace pgrouter
