// The admin console (see console.h): what a client of database "pgrouter" gets instead of a
// session. It reads the shared segment (the backend table, the summed counters, the session
// table) and answers in result sets; RELOAD signals the supervisor as SIGHUP does. It never
// opens a backend connection and never writes to the segment.
#include "pgrouter/worker/console.h"

#include <pg_config.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>

#include "pgrouter/base/ascii.h"
#include "pgrouter/base/clock.h"
#include "pgrouter/base/log.h"
#include "pgrouter/base/version.h"
#include "pgrouter/os/seqlock.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/route/classify.h"
#include "pgrouter/worker/frontdoor.h"
#include "pgrouter/worker/session_log.h"

namespace pgrouter {

namespace {

constexpr std::string_view kSyntaxError = "42601";
constexpr std::string_view kInsufficientPrivilege = "42501";
constexpr std::uint32_t kTextOid = 25;
constexpr std::uint32_t kConsoleMessageLimit = 64 * 1024;  // a console command is short

struct CommandName {
    std::string_view text;
    ConsoleCommand command;
};

constexpr std::array kCommands = {
    CommandName{"show backends", ConsoleCommand::Backends},
    CommandName{"show clients", ConsoleCommand::Clients},
    CommandName{"show servers", ConsoleCommand::Servers},
    CommandName{"show pools", ConsoleCommand::Pools},
    CommandName{"show stats", ConsoleCommand::Stats},
    CommandName{"show workers", ConsoleCommand::Workers},
    CommandName{"show config", ConsoleCommand::Config},
    CommandName{"show version", ConsoleCommand::Version},
    CommandName{"show help", ConsoleCommand::Help},
    CommandName{"reload", ConsoleCommand::Reload},
};

constexpr std::array<std::string_view, 8> kPinNames = {"temp table", "pg_temp",     "listen",
                                                       "prepare",    "hold cursor", "advisory lock",
                                                       "sequence",   "unparsed"};

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return out;
}

bool space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && space(s.front())) s.remove_prefix(1);
    while (!s.empty() && space(s.back())) s.remove_suffix(1);
    return s;
}

std::string address_of(const BackendView& b) {
    return Endpoint{b.spec.host, b.spec.port}.to_string();
}

std::string role_name(const BackendView& b) {
    switch (b.health.role) {
        case BackendRole::Master:
            return "master";
        case BackendRole::Slave:
            return "standby";
        case BackendRole::Unknown:
            break;
    }
    return "unknown";
}

std::string activity_name(SessionActivity a) {
    switch (a) {
        case SessionActivity::Active:
            return "active";
        case SessionActivity::IdleInTransaction:
            return "idle in transaction";
        case SessionActivity::FailedTransaction:
            return "idle in transaction (aborted)";
        case SessionActivity::Idle:
            break;
    }
    return "idle";
}

std::string timestamp_text(std::int64_t ms) {
    time_t secs = static_cast<time_t>(ms / 1000);
    tm utc{};
    gmtime_r(&secs, &utc);
    char text[40];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &utc);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%03lld+00", text, static_cast<long long>(ms % 1000));
    return out;
}

std::string millis_text(std::int64_t ms) { return std::to_string(ms) + "ms"; }

const BackendView* backend_at(const Snapshot& snap, int slot) {
    for (const BackendView& b : snap.backends) {
        if (b.slot == slot) return &b;
    }
    return nullptr;
}

std::string micros(std::uint64_t ns) { return std::to_string(ns / 1000); }

// A time lag in seconds with millisecond precision ("0.250").
std::string seconds_text(std::int64_t ns) {
    char out[32];
    std::snprintf(out, sizeof out, "%.3f", static_cast<double>(ns) / 1e9);
    return out;
}

ResultTable backends_table(const ConsoleView& v) {
    ResultTable t{{"backend", "role", "status", "lag_bytes", "fenced", "weight", "lag_limit",
                   "server_connections", "server_logins", "units", "lag_seconds"},
                  {},
                  "SHOW"};
    for (const BackendView& b : v.snap.backends) {
        const BackendTotals& c = v.totals.backends[b.slot];
        bool ok = b.health.status == BackendStatus::Ok;
        t.rows.push_back({address_of(b), role_name(b), status_name(b.health.status),
                          ok ? std::optional(std::to_string(b.health.lag)) : std::nullopt,
                          b.health.fenced ? "yes" : "no", std::to_string(b.spec.weight),
                          std::to_string(b.spec.lag_threshold), std::to_string(c.connections),
                          std::to_string(c.logins), std::to_string(c.unit_count()),
                          ok ? std::optional(seconds_text(b.health.lag_ns)) : std::nullopt});
    }
    return t;
}

ResultTable clients_table(const ConsoleView& v) {
    ResultTable t{{"worker", "session", "user", "database", "address", "tls", "state", "pinned_by",
                   "backend", "connected_since"},
                  {},
                  "SHOW"};
    for (const ClientRow& c : v.clients) {
        const BackendView* b = backend_at(v.snap, c.backend_slot);
        std::string pins = pin_names(c.pins);
        t.rows.push_back({std::to_string(c.worker), std::to_string(c.identity.id),
                          std::string(c.identity.user), std::string(c.identity.database),
                          std::string(c.identity.address), c.identity.tls ? "yes" : "no",
                          activity_name(c.activity),
                          pins.empty() ? std::nullopt : std::optional(pins),
                          b != nullptr ? std::optional(address_of(*b)) : std::nullopt,
                          timestamp_text(c.identity.connected_at_ms)});
    }
    return t;
}

ResultTable servers_table(const ConsoleView& v) {
    ResultTable t{{"worker", "backend", "connections", "logins"}, {}, "SHOW"};
    for (const ConsoleView::Worker& w : v.workers) {
        for (const BackendView& b : v.snap.backends) {
            t.rows.push_back({std::to_string(w.index), address_of(b),
                              std::to_string(w.backend_connections[b.slot]),
                              std::to_string(w.backend_logins[b.slot])});
        }
    }
    return t;
}

// One row per (backend, database, user) pool in use: server connections in use and idle
// (all workers), clients waiting, and how long the longest-waiting one has waited.
ResultTable pools_table(const ConsoleView& v) {
    ResultTable t{
        {"database", "user", "backend", "active", "idle", "waiting", "max_wait_ms"}, {}, "SHOW"};
    for (const PoolFigures& p : v.pools) {
        std::string backend = "slot " + std::to_string(p.slot);
        for (const BackendView& b : v.snap.backends) {
            if (b.slot == p.slot && b.spec.epoch == p.epoch) backend = address_of(b);
        }
        std::int64_t wait_ms =
            p.oldest_wait_since_ns > 0
                ? std::max<std::int64_t>(0, v.now_ns - p.oldest_wait_since_ns) / 1000000
                : 0;
        t.rows.push_back({p.database, p.user, backend, std::to_string(p.active()),
                          std::to_string(p.idle), std::to_string(p.waiting),
                          std::to_string(wait_ms)});
    }
    return t;
}

ResultTable stats_table(const ConsoleView& v) {
    ResultTable t;
    t.tag = "SHOW";
    t.columns = {"backend", "units"};
    for (int r = 0; r < kReasonLabels; ++r) t.columns.emplace_back(reason_label_name(r));
    t.columns.insert(t.columns.end(), {"total_unit_time_us", "avg_unit_time_us"});
    for (const BackendView& b : v.snap.backends) {
        const BackendTotals& c = v.totals.backends[b.slot];
        std::vector<std::optional<std::string>> row{address_of(b), std::to_string(c.unit_count())};
        std::uint64_t timed = 0;
        for (std::uint64_t n : c.duration) timed += n;
        for (std::uint64_t n : c.units) row.emplace_back(std::to_string(n));
        row.emplace_back(micros(c.duration_ns));
        row.emplace_back(timed == 0 ? "0" : micros(c.duration_ns / timed));
        t.rows.push_back(std::move(row));
    }
    return t;
}

ResultTable workers_table(const ConsoleView& v) {
    ResultTable t{
        {"worker", "pid", "clients", "server_connections", "pinned", "accepted"}, {}, "SHOW"};
    for (const ConsoleView::Worker& w : v.workers) {
        t.rows.push_back({std::to_string(w.index), std::to_string(w.pid), std::to_string(w.clients),
                          std::to_string(w.connections), std::to_string(w.pinned),
                          std::to_string(w.accepted)});
    }
    return t;
}

ResultTable config_table(const ConsoleView& v) {
    const SharedSettings& s = v.snap.settings;
    ResultTable t{{"key", "value"}, {}, "SHOW"};
    auto add = [&t](std::string key, std::string value) {
        t.rows.push_back({std::move(key), std::move(value)});
    };
    add("workers", std::to_string(s.workers));
    add("log", std::string(log_level_name(s.log_level)));
    add("log-connections", s.log_connections ? "on" : "off");
    add("admin-users", s.admin_users);
    add("hba", s.hba_path);
    add("authdb", s.authdb_path);
    add("tls", s.tls_enabled ? "on" : "off");
    add("shutdown-timeout", millis_text(s.shutdown_timeout_ms));
    add("health.timeout", millis_text(s.health_timeout_ms));
    add("health.check", millis_text(s.health_check_ms));
    add("health.lag-interval", millis_text(s.lag_interval_ms));
    add("health.database", s.health_database);
    add("health.username", s.health_username);
    add("health.password", s.health_password[0] != '\0' ? "(set)" : "");
    for (const BackendView& b : v.snap.backends) {
        add("backend " + address_of(b), "weight " + std::to_string(b.spec.weight) + "; lag " +
                                            std::to_string(b.spec.lag_threshold) + "; tls " +
                                            std::string(tls_mode_name(b.spec.tls)));
    }
    return t;
}

ResultTable help_table() {
    ResultTable t{{"command"}, {}, "SHOW"};
    for (const CommandName& c : kCommands) t.rows.push_back({upper(c.text)});
    return t;
}

// The ErrorResponse and ReadyForQuery of a statement the console does not take.
void unknown_statement(std::string& out, std::string_view statement) {
    std::string shown(statement.substr(0, 60));
    proto::encode_error_response(out, "ERROR", kSyntaxError,
                                 "unrecognized admin console command \"" + shown + "\"", {},
                                 console_help_hint());
}

}  // namespace

std::optional<ConsoleCommand> parse_console_command(std::string_view statement) {
    std::string words;
    statement = trim(statement);
    for (std::size_t i = 0; i < statement.size(); ++i) {
        char c = statement[i];
        if (space(c)) {
            if (!words.empty() && words.back() != ' ') words += ' ';
            continue;
        }
        words += ascii_lower(c);
    }
    for (const CommandName& c : kCommands) {
        if (c.text == words) return c.command;
    }
    return std::nullopt;
}

std::vector<std::string_view> split_console_statements(std::string_view sql) {
    std::vector<std::string_view> out;
    while (!sql.empty()) {
        std::size_t semi = sql.find(';');
        std::string_view one = trim(sql.substr(0, semi));
        if (!one.empty()) out.push_back(one);
        if (semi == std::string_view::npos) break;
        sql.remove_prefix(semi + 1);
    }
    return out;
}

std::string console_help_hint() {
    std::string hint = "The admin console takes ";
    for (std::size_t i = 0; i < kCommands.size(); ++i) {
        if (i > 0) hint += i + 1 == kCommands.size() ? " and " : ", ";
        hint += upper(kCommands[i].text);
    }
    return hint + ".";
}

std::string pin_names(std::uint16_t pins) {
    std::string out;
    for (std::size_t bit = 0; bit < kPinNames.size(); ++bit) {
        if ((pins & (1u << bit)) == 0) continue;
        if (!out.empty()) out += ",";
        out += kPinNames[bit];
    }
    return out;
}

void encode_result(std::string& out, const ResultTable& table) {
    {
        proto::MessageBuilder m(out, proto::BackendMsg::RowDescription);
        m.i16(static_cast<std::int16_t>(table.columns.size()));
        for (const std::string& name : table.columns) {
            m.cstr(name)
                .i32(0)
                .i16(0)
                .i32(static_cast<std::int32_t>(kTextOid))
                .i16(-1)
                .i32(-1)
                .i16(0);
        }
    }
    for (const auto& row : table.rows) {
        proto::MessageBuilder m(out, proto::BackendMsg::DataRow);
        m.i16(static_cast<std::int16_t>(row.size()));
        for (const auto& value : row) {
            if (!value) {
                m.i32(-1);
                continue;
            }
            m.i32(static_cast<std::int32_t>(value->size())).bytes(*value);
        }
    }
    proto::MessageBuilder(out, proto::BackendMsg::CommandComplete).cstr(table.tag);
}

bool read_console_view(const Segment& seg, ConsoleView& view) {
    if (!take_snapshot(seg, view.snap) || !sum_counters(seg, view.totals)) return false;
    view.pools = pool_list(seg.pools);
    view.now_ns = now_ns();
    view.workers.clear();
    for (int i = 0; i < kMaxWorkers; ++i) {
        const WorkerSlot& w = seg.workers[i];
        pid_t pid = w.pid.load(std::memory_order_relaxed);
        if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) continue;
        ConsoleView::Worker row;
        row.index = i;
        row.pid = pid;
        row.clients = std::max<std::int64_t>(0, w.clients.load(std::memory_order_relaxed));
        row.connections = std::max<std::int64_t>(0, w.connections.load(std::memory_order_relaxed));
        row.pinned = std::max<std::int64_t>(0, w.pinned.load(std::memory_order_relaxed));
        row.accepted = w.accepted.load(std::memory_order_relaxed);
        for (int b = 0; b < kMaxBackends; ++b) {
            const BackendCounters& c = seg.counters[i].backends[b];
            row.backend_connections[b] =
                std::max<std::int64_t>(0, c.connections.load(std::memory_order_relaxed));
            row.backend_logins[b] = c.logins.load(std::memory_order_relaxed);
        }
        view.workers.push_back(row);
    }
    view.clients.clear();
    for (int i = 0; i < kCancelSlots; ++i) {
        std::uint32_t owner = seg.cancel[i].owner.load(std::memory_order_acquire);
        if (owner == 0) continue;
        const SessionSlot& s = seg.sessions[i];
        ClientRow row;
        row.worker = static_cast<int>(owner) - 1;
        if (!seq_read(s.seq, s.identity, row.identity) || row.identity.id == 0) continue;
        row.identity.user[kNameLen - 1] = row.identity.database[kNameLen - 1] = '\0';
        row.identity.address[sizeof row.identity.address - 1] = '\0';
        row.activity = s.activity.load(std::memory_order_relaxed);
        row.pins = s.pins.load(std::memory_order_relaxed);
        row.backend_slot = seg.cancel[i].backend.load(std::memory_order_relaxed);
        view.clients.push_back(row);
    }
    std::sort(view.clients.begin(), view.clients.end(), [](const ClientRow& a, const ClientRow& b) {
        return a.worker != b.worker ? a.worker < b.worker : a.identity.id < b.identity.id;
    });
    return true;
}

ResultTable console_table(ConsoleCommand command, const ConsoleView& view) {
    switch (command) {
        case ConsoleCommand::Backends:
            return backends_table(view);
        case ConsoleCommand::Clients:
            return clients_table(view);
        case ConsoleCommand::Servers:
            return servers_table(view);
        case ConsoleCommand::Pools:
            return pools_table(view);
        case ConsoleCommand::Stats:
            return stats_table(view);
        case ConsoleCommand::Workers:
            return workers_table(view);
        case ConsoleCommand::Config:
            return config_table(view);
        case ConsoleCommand::Version:
            return ResultTable{{"version"}, {{"pgrouter " + std::string(kVersion)}}, "SHOW"};
        case ConsoleCommand::Help:
            return help_table();
        case ConsoleCommand::Reload:
            break;
    }
    return ResultTable{{}, {}, "RELOAD"};
}

namespace {

// Runs one statement of a simple Query; its answer goes to `out`.
void run_statement(std::string& out, std::string_view statement, WorkerEnv& env, std::uint64_t id) {
    std::optional<ConsoleCommand> command = parse_console_command(statement);
    if (!command) return unknown_statement(out, statement);
    if (*command == ConsoleCommand::Reload) {
        pid_t supervisor = env.seg.supervisor;
        if (supervisor <= 0 || kill(supervisor, SIGHUP) != 0) {
            proto::encode_error_response(out, "ERROR", "XX000", "could not signal the supervisor");
            return;
        }
        PGR_SESSION_INFO(id, "admin console: RELOAD (SIGHUP sent to the supervisor)");
        proto::MessageBuilder(out, proto::BackendMsg::CommandComplete).cstr("RELOAD");
        return;
    }
    ConsoleView view;
    if (!read_console_view(env.seg, view)) {
        proto::encode_error_response(out, "ERROR", "55000",
                                     "the shared segment is being updated; try again");
        return;
    }
    encode_result(out, console_table(*command, view));
}

bool is_admin(const WorkerEnv& env, const std::string& user) {
    return std::find(env.admin_users.begin(), env.admin_users.end(), user) != env.admin_users.end();
}

}  // namespace

asio::awaitable<void> run_console(Wire& client, WorkerEnv& env, std::uint64_t id,
                                  const ClientLogin& login) {
    if (!is_admin(env, login.params.user)) {
        PGR_SESSION_NOTICE(id, "user \"%s\" from %s is not in admin-users: console refused",
                           login.params.user.c_str(), login.host.c_str());
        co_await send_fatal(client, kInsufficientPrivilege,
                            "permission denied to use the pgrouter admin console",
                            "Only the users listed in admin-users may connect to database "
                            "\"pgrouter\".");
        co_return;
    }
    PGR_SESSION_INFO(id, "admin console opened by user \"%s\" from %s", login.params.user.c_str(),
                     login.host.c_str());
    std::string& out = client.output();
    proto::encode_parameter_status(out, "server_version", PG_MAJORVERSION ".0 (pgrouter console)");
    proto::encode_parameter_status(out, "server_encoding", "UTF8");
    proto::encode_parameter_status(out, "client_encoding", "UTF8");
    proto::encode_parameter_status(out, "DateStyle", "ISO, MDY");
    proto::encode_parameter_status(out, "integer_datetimes", "on");
    proto::encode_parameter_status(out, "standard_conforming_strings", "on");
    proto::encode_parameter_status(out, "application_name", "");
    proto::encode_backend_key_data(out, 0, 0);
    proto::encode_ready_for_query(out, proto::TransactionStatus::Idle);
    proto::DecodeLimits limits;
    limits.data = kConsoleMessageLimit;
    bool skipping = false;  // after an extended-protocol message: until Sync
    for (;;) {
        if (!out.empty() && co_await client.flush()) co_return;
        WireRead r = co_await client.read_frontend(limits);
        if (auto* e = std::get_if<proto::ProtoError>(&r)) {
            co_await send_fatal(client, proto::kSqlstateProtocolViolation, e->message);
            co_return;
        }
        auto* m = std::get_if<proto::Message>(&r);
        if (m == nullptr) co_return;  // closed
        proto::Message msg = *m;
        if (msg.is(proto::FrontendMsg::Terminate)) co_return;
        if (msg.is(proto::FrontendMsg::Query)) {
            std::string_view sql = msg.payload.substr(0, msg.payload.find('\0'));
            std::vector<std::string_view> statements = split_console_statements(sql);
            if (statements.empty()) {
                proto::MessageBuilder empty(out, proto::BackendMsg::EmptyQueryResponse);
            }
            for (std::string_view s : statements) {
                std::size_t before = out.size();
                run_statement(out, s, env, id);
                if (out.size() > before &&
                    out[before] == static_cast<char>(proto::BackendMsg::ErrorResponse)) {
                    break;  // as PostgreSQL: the rest of a failed multi-statement Query is not run
                }
            }
            client.consume(msg);
            proto::encode_ready_for_query(out, proto::TransactionStatus::Idle);
            continue;
        }
        if (msg.is(proto::FrontendMsg::Sync)) {
            skipping = false;
            client.consume(msg);
            proto::encode_ready_for_query(out, proto::TransactionStatus::Idle);
            continue;
        }
        if (!skipping && !msg.is(proto::FrontendMsg::Flush)) {
            proto::encode_error_response(out, "ERROR", proto::kSqlstateFeatureNotSupported,
                                         "the admin console takes simple queries only");
            skipping = true;
        }
        client.consume(msg);
    }
}

}  // namespace pgrouter
