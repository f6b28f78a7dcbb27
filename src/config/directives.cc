// The one table of pgrouter.conf directives (see directives.h). A directive is added here and
// only here: its name, scope, argument shape, default, reloadable flag, handler and doc line.
// Handlers store a value into the Config being read and report bad values through the
// reader; they never touch the file system.
#include "pgrouter/config/directives.h"

#include <array>

#include "config_reader.h"
#include "pgrouter/base/ascii.h"

namespace pgrouter {
namespace {

constexpr int kWorkersLimit = 256;  // kMaxWorkers slots in the shared segment

using S = DirectiveScope;
using B = BlockRule;
using In = ConfigReader;
using St = ConfigStatement;

// Stores a string argument into the member `Field` selects, when it is valid.
template <std::string Config::*Field, bool AllowEmpty = false>
void set_top_text(In& in, const St& st) {
    if (auto v = in.text(st.args[0], st.name, AllowEmpty)) in.config_.*Field = std::move(*v);
}

template <std::string HealthConfig::*Field, bool AllowEmpty = false>
void set_health_text(In& in, const St& st) {
    if (auto v = in.text(st.args[0], st.name, AllowEmpty)) in.config_.health.*Field = std::move(*v);
}

template <Millis HealthConfig::*Field>
void set_health_duration(In& in, const St& st) {
    if (auto v = in.duration(st.args[0], st.name)) in.config_.health.*Field = *v;
}

template <std::string TlsConfig::*Field, int TlsConfig::*Line>
void set_tls_path(In& in, const St& st) {
    in.config_.tls.*Line = st.line;
    if (auto v = in.text(st.args[0], st.name, false)) in.config_.tls.*Field = std::move(*v);
}

template <Endpoint Config::*Field>
void set_address(In& in, const St& st) {
    if (auto ep = in.address(st.args[0], true)) in.config_.*Field = *ep;
}

// A message-size setting: 1k up to PostgreSQL's own 1G limit.
template <std::uint64_t Config::*Field>
void set_message_size(In& in, const St& st) {
    auto v = in.size(st.args[0], st.name);
    if (!v) return;
    if (*v < kMinMessageSizeSetting || *v > kDefaultMaxMessageSize) {
        in.error(st.args[0].line, std::string(st.name) + " " + std::string(st.args[0].text) +
                                      " is out of range (expected 1k-1G)");
        return;
    }
    in.config_.*Field = *v;
}

// The `keep` of a directive that is not reloadable: its Config member.
template <auto Field>
bool keep(const Config& old, Config& next) {
    if (old.*Field == next.*Field) return false;
    next.*Field = old.*Field;
    return true;
}

void read_log(In& in, const St& st) {
    if (auto level = parse_log_level(st.args[0].text)) {
        in.config_.log = *level;
    } else {
        in.error(st.args[0].line, "bad log level " + quote(st.args[0].text) +
                                      " (expected EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, "
                                      "NOTICE, INFO or DEBUG)");
    }
}

// admin-users alice,bob: names separated by commas, no empty ones.
void read_admin_users(In& in, const St& st) {
    auto text = in.text(st.args[0], st.name, false);
    if (!text) return;
    std::vector<std::string> names;
    std::string_view rest = *text;
    for (;;) {
        std::size_t comma = rest.find(',');
        std::string_view name = rest.substr(0, comma);
        while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
        while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
        if (name.empty() || name.size() >= 64) {
            in.error(st.args[0].line, "bad admin-users " + quote(*text) +
                                          " (expected NAME[,NAME...], names under 64 bytes)");
            return;
        }
        names.emplace_back(name);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    in.config_.admin_users = std::move(names);
}

template <Millis PoolConfig::*Field>
void set_pool_duration(In& in, const St& st) {
    if (auto v = in.duration(st.args[0], st.name)) in.config_.pool.*Field = *v;
}

template <std::uint32_t PoolConfig::*Field, long long Lo, long long Hi>
void set_pool_count(In& in, const St& st) {
    if (auto v = in.integer(st.args[0], st.name, Lo, Hi)) {
        in.config_.pool.*Field = static_cast<std::uint32_t>(*v);
    }
}

void read_ryw_scope(In& in, const St& st) {
    std::string scope = ascii_lowered(st.args[0].text);
    if (scope == "session" || scope == "user") {
        in.config_.ryw_user = scope == "user";
    } else {
        in.error(st.args[0].line, "bad read-your-writes scope " + quote(st.args[0].text) +
                                      " (expected session or user)");
    }
}

void read_pool_mode(In& in, const St& st) {
    std::string mode = ascii_lowered(st.args[0].text);
    in.config_.pool.mode_line = st.line;
    if (mode == "session") {
        in.config_.pool.mode = PoolMode::Session;
    } else if (mode == "transaction") {
        in.config_.pool.mode = PoolMode::Transaction;
    } else {
        in.error(st.args[0].line,
                 "bad pool mode " + quote(st.args[0].text) + " (expected session or transaction)");
    }
}

bool keep_max_clients(const Config& old, Config& next) {
    if (old.pool.max_clients == next.pool.max_clients) return false;
    next.pool.max_clients = old.pool.max_clients;
    return true;
}

void read_backend_tls(In& in, const St& st) {
    std::string mode = ascii_lowered(st.args[0].text);
    if (mode == "off") {
        in.target_->tls = TlsMode::Off;
    } else if (mode == "verify") {
        in.target_->tls = TlsMode::Verify;
    } else if (mode == "skipverify") {
        in.target_->tls = TlsMode::SkipVerify;
    } else {
        in.error(st.args[0].line, "bad tls mode " + quote(st.args[0].text) +
                                      " (expected off, verify or skipverify)");
    }
}

constexpr std::array kDirectives = {
    Directive{"listen", S::Top, "address", 1, "HOST:PORT", B::None, "*:5432", false,
              keep<&Config::listen>, set_address<&Config::listen>,
              "address and port to accept client connections on ('*' for every address)"},
    Directive{"monitor", S::Top, "address", 1, "HOST:PORT", B::None, "127.0.0.1:14231", false,
              keep<&Config::monitor>, set_address<&Config::monitor>,
              "address and port of the monitoring listener"},
    Directive{"metrics", S::Top, "address", 1, "HOST:PORT", B::None, "", false,
              keep<&Config::metrics>,
              [](In& in, const St& st) {
                  if (auto ep = in.address(st.args[0], true)) in.config_.metrics = *ep;
              },
              "address and port of the Prometheus metrics endpoint (HTTP GET /metrics; unset: "
              "none; keep it on loopback)"},
    Directive{"admin-users", S::Top, "list", 1, "NAME[,NAME...]", B::None, "", true, nullptr,
              read_admin_users,
              "users who may open the admin console (database 'pgrouter'); they authenticate "
              "through hba and authdb like everyone"},
    Directive{"log-connections", S::Top, "boolean", 1, "on or off", B::None, "off", true, nullptr,
              [](In& in, const St& st) {
                  if (auto v = in.boolean(st.args[0], st.name)) in.config_.log_connections = *v;
              },
              "log each client connection, authentication and disconnection (with its duration, "
              "units and bytes)"},
    Directive{"workers", S::Top, "integer", 1, "a number 1-256", B::None, "", true, nullptr,
              [](In& in, const St& st) {
                  if (auto n = in.integer(st.args[0], st.name, 1, kWorkersLimit)) {
                      in.config_.workers = static_cast<int>(*n);
                  }
              },
              "how many worker processes accept client connections (1-256; default: the "
              "number of CPUs)"},
    Directive{"hba", S::Top, "path", 1, "a file path", B::None, "", true, nullptr,
              [](In& in, const St& st) {
                  set_top_text<&Config::hba>(in, st);
                  in.lines_.hba = st.line;
              },
              "host-based access file (pg_hba.conf syntax) checked for every client"},
    Directive{"authdb", S::Top, "path", 1, "a file path", B::None, "", true, nullptr,
              [](In& in, const St& st) {
                  set_top_text<&Config::authdb>(in, st);
                  in.lines_.authdb = st.line;
              },
              "file of user names and password verifiers used to authenticate clients"},
    Directive{"tls", S::Top, "block", 0, "a block", B::Required, "", true, nullptr,
              [](In& in, const St& st) { in.tls_block(st); },
              "block enabling TLS for clients: ciphers, cert, key, ca (files read again on "
              "SIGHUP)"},
    Directive{"user", S::Top, "string", 1, "a user name", B::None, "", false, keep<&Config::user>,
              set_top_text<&Config::user>, "user to run as after binding the ports"},
    Directive{"group", S::Top, "string", 1, "a group name", B::None, "", false,
              keep<&Config::group>, set_top_text<&Config::group>,
              "group to run as after binding the ports"},
    Directive{"pidfile", S::Top, "path", 1, "a file path", B::None, "", false,
              keep<&Config::pidfile>, set_top_text<&Config::pidfile>,
              "file holding the daemon's pid (default: /run/pgrouter/pgrouter.pid when "
              "daemonized, none in the foreground)"},
    Directive{"log", S::Top, "level", 1, "a log level", B::None, "INFO", true, nullptr, read_log,
              "least severe messages logged: EMERGENCY ALERT CRITICAL ERROR WARNING NOTICE "
              "INFO DEBUG"},
    Directive{"max-message-size", S::Top, "size", 1, "a size", B::None, "1G", true, nullptr,
              set_message_size<&Config::max_message_size>,
              "longest message a client or backend may send (1k-1G); a longer client "
              "message ends the session with 08P01 'invalid message length'"},
    Directive{"read-your-writes", S::Top, "ryw-scope", 1, "session or user", B::None, "session",
              true, nullptr, read_ryw_scope,
              "session: a session reads its own writes; user: every session of a (user, "
              "database), in every worker, reads the writes any of them committed"},
    Directive{"classify-limit", S::Top, "size", 1, "a size", B::None, "1M", true, nullptr,
              set_message_size<&Config::classify_limit>,
              "a Query or Parse longer than this is not classified: it goes to the master "
              "as a write, streamed as it arrives (1k-1G)"},
    Directive{
        "shutdown-timeout", S::Top, "duration", 1, "a duration", B::None, "10s", true, nullptr,
        [](In& in, const St& st) {
            if (auto v = in.duration(st.args[0], st.name)) {
                in.config_.shutdown_timeout = *v;
                in.config_.shutdown_timeout_set = st.line > 0;  // line 0: the default
            }
        },
        "after SIGTERM, how long sessions inside a transaction may run before they are "
        "cut (the others end at once); after a SIGUSR2 upgrade, how long the old workers' "
        "sessions may go on (default there: 1h)"},
    Directive{"health", S::Top, "block", 0, "a block", B::Required, "", true, nullptr,
              [](In& in, const St& st) { in.block(S::Health, st.block); },
              "block of health-check settings: timeout, check, lag-interval, database, "
              "username, password"},
    Directive{"pool", S::Top, "block", 0, "a block", B::Required, "", true, nullptr,
              [](In& in, const St& st) {
                  in.config_.pool.enabled = true;
                  in.config_.pool.line = st.line;
                  in.block(S::Pool, st.block);
              },
              "block enabling server connection pooling: mode, size, min-idle, wait-timeout, "
              "idle-timeout, lifetime, max-clients"},
    Directive{"backend", S::Top, "address", 1, "HOST:PORT or 'default'", B::Optional, "", true,
              nullptr, [](In& in, const St& st) { in.backend(st); },
              "a PostgreSQL server to route to (HOST:PORT), or 'default' to set the defaults "
              "of the backends that follow"},

    Directive{"ciphers", S::Tls, "string", 1, "an OpenSSL cipher list", B::None, "", true, nullptr,
              [](In& in, const St& st) {
                  if (auto v = in.text(st.args[0], st.name, true)) in.config_.tls.ciphers = *v;
              },
              "OpenSSL cipher list offered to clients (empty: OpenSSL's default)"},
    Directive{"cert", S::Tls, "path", 1, "a file path", B::None, "", true, nullptr,
              set_tls_path<&TlsConfig::cert, &TlsConfig::cert_line>,
              "certificate chain (PEM) shown to clients"},
    Directive{"key", S::Tls, "path", 1, "a file path", B::None, "", true, nullptr,
              set_tls_path<&TlsConfig::key, &TlsConfig::key_line>,
              "private key (PEM) of the certificate"},
    Directive{"ca", S::Tls, "path", 1, "a file path", B::None, "", true, nullptr,
              set_tls_path<&TlsConfig::ca, &TlsConfig::ca_line>,
              "CA bundle (PEM) for verifying client certificates"},

    Directive{"timeout", S::Health, "duration", 1, "a duration", B::None, "5s", true, nullptr,
              set_health_duration<&HealthConfig::timeout>,
              "how long one health check of a backend may take"},
    Directive{"check", S::Health, "duration", 1, "a duration", B::None, "15s", true, nullptr,
              set_health_duration<&HealthConfig::check>,
              "how often every backend is checked for health"},
    Directive{"lag-interval", S::Health, "duration", 1, "a duration", B::None, "250ms", true,
              nullptr, set_health_duration<&HealthConfig::lag_interval>,
              "how often the replication lag of the standbys is measured"},
    Directive{"database", S::Health, "string", 1, "a database name", B::None, "postgres", true,
              nullptr, set_health_text<&HealthConfig::database>,
              "database the health checks connect to"},
    Directive{"username", S::Health, "string", 1, "a user name", B::None, "postgres", true, nullptr,
              set_health_text<&HealthConfig::username>, "user the health checks connect as"},
    Directive{"password", S::Health, "string", 1, "a password", B::None, "", true, nullptr,
              set_health_text<&HealthConfig::password, true>, "password of the health-check user"},

    Directive{"mode", S::Pool, "pool-mode", 1, "session or transaction", B::None, "session", true,
              nullptr, read_pool_mode,
              "session: a client keeps its server connections for its life; transaction: it "
              "holds one only while a transaction runs, its session state following it"},
    Directive{"size", S::Pool, "integer", 1, "a number 1-10000", B::None, "20", true, nullptr,
              set_pool_count<&PoolConfig::size, 1, 10000>,
              "server connections per (backend, database, user), all workers together"},
    Directive{"min-idle", S::Pool, "integer", 1, "a number 0-10000", B::None, "0", true, nullptr,
              set_pool_count<&PoolConfig::min_idle, 0, 10000>,
              "idle server connections per (backend, database, user) that idle-timeout spares"},
    Directive{"wait-timeout", S::Pool, "duration", 1, "a duration", B::None, "10s", true, nullptr,
              set_pool_duration<&PoolConfig::wait_timeout>,
              "a client that waits longer for a server connection of a full pool gets SQLSTATE "
              "53300"},
    Directive{"idle-timeout", S::Pool, "duration", 1, "a duration", B::None, "10m", true, nullptr,
              set_pool_duration<&PoolConfig::idle_timeout>,
              "an idle server connection unused this long is closed"},
    Directive{"lifetime", S::Pool, "duration", 1, "a duration", B::None, "1h", true, nullptr,
              set_pool_duration<&PoolConfig::lifetime>,
              "a server connection older than this is closed when it is next idle"},
    Directive{"max-clients", S::Pool, "integer", 1, "a number 1-65536", B::None, "50000", false,
              keep_max_clients, set_pool_count<&PoolConfig::max_clients, 1, 65536>,
              "client connections accepted in all; beyond: 53300 'sorry, too many clients "
              "already' (restart to change)"},

    Directive{"tls", S::Backend, "tls-mode", 1, "off, verify or skipverify", B::None, "off", true,
              nullptr, read_backend_tls, "TLS to this backend: off, verify or skipverify"},
    Directive{"lag", S::Backend, "size", 1, "a size", B::None, "1M", true, nullptr,
              [](In& in, const St& st) {
                  if (auto v = in.size(st.args[0], st.name)) in.target_->lag = *v;
              },
              "how far (bytes of WAL) a standby may trail the master and still take reads"},
    Directive{"staleness", S::Backend, "duration", 1, "a duration", B::None, "", true, nullptr,
              [](In& in, const St& st) {
                  if (auto v = in.duration(st.args[0], st.name)) in.target_->staleness = *v;
              },
              "how far behind in time (the master was at its replay position that long ago) a "
              "standby may be and still take reads; unset: no time bound"},
    Directive{
        "weight", S::Backend, "integer", 1, "a number 0-1000000", B::None, "100", true, nullptr,
        [](In& in, const St& st) {
            if (auto v = in.integer(st.args[0], st.name, 0, kMaxWeight)) {
                in.target_->weight = static_cast<std::uint32_t>(*v);
            }
        },
        "relative share of read queries (0-1000000; 0 takes none)"},
    Directive{"ca", S::Backend, "path", 1, "a file path", B::None, "", true, nullptr,
              [](In& in, const St& st) {
                  if (auto v = in.text(st.args[0], st.name, false)) in.target_->ca = *v;
              },
              "CA bundle (PEM) for 'tls verify' (empty: the system's store)"},
    Directive{"replstatus", S::Backend, "port", 1, "a port", B::None, "", true, nullptr,
              [](In& in, const St& st) {
                  if (auto p = in.port(st.args[0], st.name)) in.target_->replstatus_port = *p;
              },
              "port of the bgw_replstatus probe on this backend (none unless set)"},
};

}  // namespace

std::span<const Directive> directives() { return kDirectives; }

const Directive* find_directive(DirectiveScope scope, std::string_view name) {
    for (const Directive& d : kDirectives) {
        if (d.scope == scope && d.name == name) return &d;
    }
    return nullptr;
}

std::vector<std::string_view> keep_restart_only(const Config& old, Config& next) {
    std::vector<std::string_view> changed;
    for (const Directive& d : kDirectives) {
        if (!d.reloadable && d.keep != nullptr && d.keep(old, next)) changed.push_back(d.name);
    }
    return changed;
}

}  // namespace pgrouter
