// The parsed configuration: plain values, no I/O. parse_config() turns the text of a
// pgrouter.conf into a Config or a list of errors (file:line: message); it never touches
// the file system. load_config() reads the file and checks the files it names.
// Defaults live in the directive table (directives.cc) and nowhere else: every Config that
// parse_config() returns starts from them, so the zeros below are never seen as settings.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgrouter/base/log.h"

namespace pgrouter {

using Millis = std::chrono::milliseconds;

enum class TlsMode : std::uint8_t { Off, Verify, SkipVerify };

// "*" as host means every address.
struct Endpoint {
    std::string host;
    std::uint16_t port = 0;
    std::string to_string() const;  // "host:port", "[v6]:port"
    bool operator==(const Endpoint&) const = default;
};

struct BackendConfig {
    std::string host;
    std::uint16_t port = 0;
    TlsMode tls = TlsMode::Off;
    std::uint64_t lag = 0;  // bytes a standby may trail the master
    Millis staleness{0};    // how long ago the master may have been where it is; 0: unbounded
    std::uint32_t weight = 0;
    std::string ca;                     // CA file for tls verify; empty: system store
    std::uint16_t replstatus_port = 0;  // bgw_replstatus probe; 0: none
    int line = 0;                       // where it was declared, for messages
    std::string address() const { return Endpoint{host, port}.to_string(); }
};

struct HealthConfig {
    Millis timeout{0};
    Millis check{0};
    Millis lag_interval{0};
    std::string database;
    std::string username;
    std::string password;
};

struct TlsConfig {
    bool enabled = false;
    std::string ciphers;
    std::string cert;
    std::string key;
    std::string ca;
    int line = 0;  // of the block
    int cert_line = 0;
    int key_line = 0;
    int ca_line = 0;
};

// The `pool` block: server connections shared by the clients of one (backend, database,
// user). Without the block every client logs in to its own server connections.
enum class PoolMode : std::uint8_t { Session, Transaction };

struct PoolConfig {
    bool enabled = false;  // a `pool` block was given
    PoolMode mode = PoolMode::Session;
    std::uint32_t size = 0;      // server connections per pool, all workers together
    std::uint32_t min_idle = 0;  // idle ones idle-timeout spares, per pool
    Millis wait_timeout{0};
    Millis idle_timeout{0};
    Millis lifetime{0};
    std::uint32_t max_clients = 0;  // client connections in all (restart only)
    int line = 0;                   // of the block
    int mode_line = 0;
};

inline constexpr std::uint64_t kDefaultMaxMessageSize = 1ULL << 30;  // PostgreSQL's own limit
inline constexpr std::uint64_t kDefaultClassifyLimit = 1ULL << 20;
inline constexpr std::uint64_t kMinMessageSizeSetting = 1ULL << 10;

struct Config {
    std::string file;  // where it was read from
    Endpoint listen;
    Endpoint monitor;
    std::optional<Endpoint> metrics;       // the Prometheus endpoint; unset: none
    std::vector<std::string> admin_users;  // who may use the admin console (database pgrouter)
    bool log_connections = false;
    bool ryw_user = false;  // read-your-writes user (default: session)
    int workers = 0;        // 0: number of CPUs, resolved by the supervisor
    std::string hba;
    std::string authdb;
    TlsConfig tls;
    std::string user;
    std::string group;
    std::string pidfile;  // empty: none in the foreground, kDefaultPidfile when daemonized
    LogLevel log{};
    std::uint64_t max_message_size = kDefaultMaxMessageSize;  // longest client/server message
    std::uint64_t classify_limit = kDefaultClassifyLimit;     // longer SQL is not classified
    Millis shutdown_timeout{0};         // after SIGTERM: how long sessions may finish transactions
    bool shutdown_timeout_set = false;  // given in the file (else each path has its default)
    HealthConfig health;
    PoolConfig pool;
    std::vector<BackendConfig> backends;
};

inline constexpr std::string_view kDefaultConfigFile = "/etc/pgrouter/pgrouter.conf";
inline constexpr std::string_view kDefaultPidfile = "/run/pgrouter/pgrouter.pid";
inline constexpr int kMaxWeight = 1000000;
// After a binary upgrade's hand-over, how long the old workers' sessions may go on when
// shutdown-timeout is not set (SIGTERM's default is the directive table's 10s).
inline constexpr Millis kUpgradeDrainDefault{3'600'000};

inline Millis upgrade_drain_timeout(const Config& c) {
    return c.shutdown_timeout_set ? c.shutdown_timeout : kUpgradeDrainDefault;
}

struct ConfigError {
    std::string file;
    int line = 0;
    std::string message;
    std::string to_string() const;  // "file:line: message"
};

struct ConfigResult {
    std::optional<Config> config;     // set only when errors is empty
    std::vector<ConfigError> errors;  // every error found, in file order
};

// A value as shown in a message: quoted, control bytes escaped so that a stray byte in the
// file cannot garble a terminal, and cut short when it is too long to read anyway.
std::string quote(std::string_view s);

// Pure: text in, Config or errors out. `file` is only used in messages.
[[nodiscard]] ConfigResult parse_config(std::string_view text, std::string_view file);

// Reads `file`, parses it, and checks that the files it names (hba, authdb, tls cert/key)
// are readable.
[[nodiscard]] ConfigResult load_config(const std::string& file);

std::string_view tls_mode_name(TlsMode mode);

}  // namespace pgrouter
