// The metrics exposition, the counters' labels and fold, and the admin console's pure parts:
// the text is checked line by line against the values put in, the reasons the router gives
// map to their labels, a reaped worker's counts survive in the retired totals.
#include "pgrouter/monitor/metrics.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "pgrouter/os/counters.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/route/router.h"
#include "pgrouter/worker/console.h"

using namespace pgrouter;

namespace {

BackendView view(int slot, const char* host, std::uint16_t port, BackendRole role,
                 BackendStatus status, std::uint64_t lag) {
    BackendView v;
    v.slot = slot;
    std::strncpy(v.spec.host, host, sizeof v.spec.host - 1);
    v.spec.port = port;
    v.spec.weight = 100;
    v.spec.lag_threshold = 1 << 20;
    v.health.role = role;
    v.health.status = status;
    v.health.lag = lag;
    v.health.lag_ns = static_cast<std::int64_t>(lag) * 1'000'000'000 / 16384;  // 4096: 0.25 s
    return v;
}

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("metrics: every required series, with the values put in", "[metrics]") {
    Snapshot snap;
    snap.backends = {view(0, "10.0.0.1", 5432, BackendRole::Master, BackendStatus::Ok, 0),
                     view(3, "10.0.0.2", 5432, BackendRole::Slave, BackendStatus::Ok, 4096),
                     view(5, "10.0.0.3", 5432, BackendRole::Slave, BackendStatus::Failed, 9)};
    snap.backends[1].health.fenced = false;
    MonitorTotals live{2, 7, 5, 1};
    CounterTotals c;
    c.backends[3].units[kReasonRead] = 100;
    c.backends[0].units[kReasonWrite] = 4;
    c.backends[3].duration[0] = 3;
    c.backends[3].duration[kDurationBuckets - 1] = 1;
    c.backends[3].duration_ns = 12'500'000'000;
    c.backends[0].connections = 2;
    c.backends[0].logins = 9;
    c.replays[replay_label("25006")] = 6;
    c.auth_failures = 3;
    c.accepted = 42;
    c.worker_restarts = 1;
    c.reloads_ok = 2;
    c.reloads_error = 1;
    std::string m = format_metrics(snap, live, c);

    CHECK(has_line(m, "pgrouter_build_info{version=\"0.1.0\"} 1"));
    CHECK(has_line(m, "pgrouter_workers 2"));
    CHECK(has_line(m, "pgrouter_worker_restarts_total 1"));
    CHECK(has_line(m, "pgrouter_reloads_total{result=\"ok\"} 2"));
    CHECK(has_line(m, "pgrouter_reloads_total{result=\"error\"} 1"));
    CHECK(has_line(m, "pgrouter_backend_up{backend=\"10.0.0.1:5432\"} 1"));
    CHECK(has_line(m, "pgrouter_backend_up{backend=\"10.0.0.3:5432\"} 0"));
    CHECK(has_line(m, "pgrouter_backend_is_master{backend=\"10.0.0.1:5432\"} 1"));
    CHECK(has_line(m, "pgrouter_backend_is_master{backend=\"10.0.0.2:5432\"} 0"));
    CHECK(has_line(m, "pgrouter_backend_lag_bytes{backend=\"10.0.0.2:5432\"} 4096"));
    CHECK(has_line(m, "pgrouter_backend_lag_seconds{backend=\"10.0.0.2:5432\"} 0.25"));
    CHECK(m.find("pgrouter_backend_lag_bytes{backend=\"10.0.0.3:5432\"}") == std::string::npos);
    CHECK(has_line(m, "pgrouter_backend_fenced{backend=\"10.0.0.2:5432\"} 0"));
    CHECK(has_line(m, "pgrouter_clients 7"));
    CHECK(has_line(m, "pgrouter_clients_pinned 1"));
    CHECK(has_line(m, "pgrouter_client_connections_total 42"));
    CHECK(has_line(m, "pgrouter_client_auth_failures_total 3"));
    CHECK(has_line(m, "pgrouter_server_connections{backend=\"10.0.0.1:5432\"} 2"));
    CHECK(has_line(m, "pgrouter_server_logins_total{backend=\"10.0.0.1:5432\"} 9"));
    CHECK(has_line(m, "pgrouter_units_total{backend=\"10.0.0.2:5432\",reason=\"read\"} 100"));
    CHECK(has_line(m, "pgrouter_units_total{backend=\"10.0.0.1:5432\",reason=\"write\"} 4"));
    CHECK(has_line(m, "pgrouter_units_total{backend=\"10.0.0.1:5432\",reason=\"lag_fallback\"} 0"));
    CHECK(has_line(m, "pgrouter_replays_total{sqlstate=\"25006\"} 6"));
    CHECK(has_line(
        m, "pgrouter_unit_duration_seconds_bucket{backend=\"10.0.0.2:5432\",le=\"0.0005\"} 3"));
    CHECK(has_line(m,
                   "pgrouter_unit_duration_seconds_bucket{backend=\"10.0.0.2:5432\",le=\"10\"} 3"));
    CHECK(has_line(
        m, "pgrouter_unit_duration_seconds_bucket{backend=\"10.0.0.2:5432\",le=\"+Inf\"} 4"));
    CHECK(has_line(m, "pgrouter_unit_duration_seconds_sum{backend=\"10.0.0.2:5432\"} 12.5"));
    CHECK(has_line(m, "pgrouter_unit_duration_seconds_count{backend=\"10.0.0.2:5432\"} 4"));
    CHECK(has_line(m, "# TYPE pgrouter_unit_duration_seconds histogram"));
    CHECK(has_line(m, "# TYPE pgrouter_units_total counter"));
    // Every family has HELP and TYPE once; every line ends in a newline.
    for (const char* family : {"pgrouter_backend_up", "pgrouter_units_total", "pgrouter_clients"}) {
        std::string help = std::string("# HELP ") + family + " ";
        CHECK(m.find(help) != std::string::npos);
        CHECK(m.find(help) == m.rfind(help));
    }
    CHECK(m.back() == '\n');
}

TEST_CASE("metrics: label values are escaped", "[metrics]") {
    CHECK(metrics_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
    CHECK(metrics_label_value("10.0.0.1:5432") == "10.0.0.1:5432");
}

TEST_CASE("counters: every reason the router gives has its label", "[metrics]") {
    CHECK(reason_label("read: weighted standby") == kReasonRead);
    CHECK(reason_label("write") == kReasonWrite);
    CHECK(reason_label("inside a transaction block") == kReasonTransaction);
    CHECK(reason_label("read: own write not yet sampled, master") == kReasonReadYourWrites);
    CHECK(reason_label("read: no eligible standby, master") == kReasonLagFallback);
    CHECK(reason_label("session pinned to the master") == kReasonPinned);
    CHECK(reason_label("server_local: the master answers") == kReasonServerLocal);
    CHECK(reason_label("replay on the master") == kReasonReplay);
    CHECK(reason_label("something new") == kReasonOther);
    CHECK(reason_label_name(kReasonReadYourWrites) == "read_your_writes");

    // Whatever route() decides, its reason is one the table knows (not "other").
    std::vector<BackendView> backends = {
        view(0, "m", 1, BackendRole::Master, BackendStatus::Ok, 0),
        view(1, "s", 2, BackendRole::Slave, BackendStatus::Ok, 0),
        view(2, "l", 3, BackendRole::Slave, BackendStatus::Ok, 1 << 30)};
    std::vector<Classification> units(6);
    units[0].kind = StatementKind::Read;
    units[1].kind = StatementKind::Write;
    units[2].kind = StatementKind::TransactionBegin;
    units[3].kind = StatementKind::Read;
    units[3].pins = kPinTempTable;
    units[4].kind = StatementKind::Read;
    units[4].server_local = "pg_is_in_recovery";
    units[5].kind = StatementKind::Read;
    units[5].set = true;
    std::vector<RouteSession> sessions(4);
    sessions[1].block_slot = 0;
    sessions[2].pinned_slot = 0;
    sessions[3].ryw.commit_at_ns = 1;
    for (const Classification& u : units) {
        for (const RouteSession& s : sessions) {
            RouteDecision d = route(u, s, backends, 0x1234567890abcdefULL);
            if (d.ok()) CHECK(reason_label(d.reason) != kReasonOther);
        }
    }
    // No standby within its threshold: the master, as lag_fallback.
    std::vector<BackendView> lagging = {backends[0], backends[2]};
    Classification read;
    read.kind = StatementKind::Read;
    CHECK(reason_label(route(read, RouteSession{}, lagging, 1).reason) == kReasonLagFallback);
}

TEST_CASE("counters: duration buckets and replay labels", "[metrics]") {
    CHECK(duration_bucket(0) == 0);
    CHECK(duration_bucket(500'000) == 0);
    CHECK(duration_bucket(500'001) == 1);
    CHECK(duration_bucket(10'000'000'000) == kDurationBuckets - 2);
    CHECK(duration_bucket(10'000'000'001) == kDurationBuckets - 1);
    CHECK(duration_bucket_bound(0) == 0.0005);
    CHECK(std::isinf(duration_bucket_bound(kDurationBuckets - 1)));
    CHECK(replay_label_name(replay_label("25006")) == "25006");
    CHECK(replay_label_name(replay_label("08006")) == "08006");
    CHECK(replay_label_name(replay_label("")) == "other");
}

TEST_CASE("counters: a reaped worker's counts stay in the totals", "[metrics]") {
    auto shm = SharedMemory::create();
    REQUIRE(shm);
    Segment& seg = shm->segment();
    bump(seg.counters[1].backends[2].units[kReasonRead], 40);
    bump(seg.counters[3].backends[2].units[kReasonRead], 2);
    bump(seg.counters[1].auth_failures);
    seg.workers[1].accepted.store(5);
    CounterTotals before;
    REQUIRE(sum_counters(seg, before));
    CHECK(before.backends[2].units[kReasonRead] == 42);
    reset_worker_slot(seg, 1);  // what the supervisor does when it reaps worker 1
    CHECK(seg.counters[1].backends[2].units[kReasonRead].load() == 0);
    reset_worker_slot(seg, 1);  // and again before its successor starts: nothing twice
    CounterTotals after;
    REQUIRE(sum_counters(seg, after));
    CHECK(after.backends[2].units[kReasonRead] == 42);
    CHECK(after.auth_failures == 1);
    CHECK(after.accepted == 5);
    bump(seg.counters[1].backends[2].units[kReasonRead]);  // the successor counts on
    REQUIRE(sum_counters(seg, after));
    CHECK(after.backends[2].units[kReasonRead] == 43);
}

TEST_CASE("console: commands, statements and the help hint", "[console]") {
    CHECK(parse_console_command("SHOW BACKENDS") == ConsoleCommand::Backends);
    CHECK(parse_console_command("  show\t clients ") == ConsoleCommand::Clients);
    CHECK(parse_console_command("Reload") == ConsoleCommand::Reload);
    CHECK_FALSE(parse_console_command("SHOW BACKEND"));
    CHECK_FALSE(parse_console_command("SELECT 1"));
    CHECK_FALSE(parse_console_command("SHOWBACKENDS"));
    auto parts = split_console_statements(" SHOW VERSION ;; show help;");
    REQUIRE(parts.size() == 2);
    CHECK(parts[0] == "SHOW VERSION");
    CHECK(parts[1] == "show help");
    CHECK(split_console_statements("  ; ").empty());
    std::string hint = console_help_hint();
    for (const char* c :
         {"SHOW BACKENDS", "SHOW CLIENTS", "SHOW SERVERS", "SHOW POOLS", "SHOW STATS",
          "SHOW WORKERS", "SHOW CONFIG", "SHOW VERSION", "SHOW HELP", "RELOAD"}) {
        CHECK(hint.find(c) != std::string::npos);
    }
    CHECK(pin_names(kPinTempTable | kPinListen) == "temp table,listen");
    CHECK(pin_names(0).empty());
}

TEST_CASE("console: tables carry what the segment holds", "[console]") {
    ConsoleView v;
    v.snap.backends = {view(0, "10.0.0.1", 5432, BackendRole::Master, BackendStatus::Ok, 0),
                       view(4, "10.0.0.2", 5432, BackendRole::Slave, BackendStatus::Failed, 0)};
    v.totals.backends[0].units[kReasonWrite] = 3;
    v.totals.backends[0].units[kReasonPinned] = 2;
    v.totals.backends[0].connections = 1;
    ClientRow row;
    row.worker = 1;
    row.identity.id = 17;
    std::strcpy(row.identity.user, "alice");
    std::strcpy(row.identity.database, "app");
    std::strcpy(row.identity.address, "127.0.0.1");
    row.identity.connected_at_ms = 86'400'000 + 1234;
    row.activity = SessionActivity::IdleInTransaction;
    row.pins = kPinListen;
    row.backend_slot = 0;
    v.clients.push_back(row);

    ResultTable b = console_table(ConsoleCommand::Backends, v);
    REQUIRE(b.rows.size() == 2);
    CHECK(b.columns[0] == "backend");
    CHECK(*b.rows[0][0] == "10.0.0.1:5432");
    CHECK(*b.rows[0][1] == "master");
    CHECK(*b.rows[0][2] == "OK");
    CHECK(*b.rows[0][3] == "0");
    CHECK(*b.rows[0][7] == "1");
    CHECK(*b.rows[0][9] == "5");
    CHECK(b.columns[10] == "lag_seconds");
    CHECK(*b.rows[0][10] == "0.000");
    CHECK_FALSE(b.rows[1][10]);
    CHECK(*b.rows[1][2] == "FAILED");
    CHECK_FALSE(b.rows[1][3]);  // no lag for a FAILED backend

    ResultTable c = console_table(ConsoleCommand::Clients, v);
    REQUIRE(c.rows.size() == 1);
    CHECK(*c.rows[0][2] == "alice");
    CHECK(*c.rows[0][6] == "idle in transaction");
    CHECK(*c.rows[0][7] == "listen");
    CHECK(*c.rows[0][8] == "10.0.0.1:5432");
    CHECK(*c.rows[0][9] == "1970-01-02 00:00:01.234+00");

    std::string out;
    encode_result(out, c);
    CHECK(out[0] == 'T');
    CHECK(out.find("alice") != std::string::npos);
    CHECK(out.substr(out.size() - 10) == std::string("C\0\0\0\011SHOW\0", 10));
}

TEST_CASE("metrics: the pool series and SHOW POOLS from the pool table's figures", "[metrics]") {
    Snapshot snap;
    snap.backends = {view(2, "10.0.0.1", 5432, BackendRole::Master, BackendStatus::Ok, 0)};
    snap.backends[0].spec.epoch = 4;
    PoolFigures busy;
    busy.slot = 2;
    busy.epoch = 4;
    busy.database = "app";
    busy.user = "a\"b";  // escaped in the label
    busy.held = 5;
    busy.idle = 2;
    busy.waiting = 3;
    busy.oldest_wait_since_ns = 1'000'000'000;
    PoolFigures stale = busy;  // the slot's previous occupant: no address any more
    stale.epoch = 3;
    stale.user = "old";
    stale.waiting = 0;
    stale.oldest_wait_since_ns = 0;
    std::string m = format_pool_metrics(snap, {busy, stale}, 3'500'000'000);
    std::string l = "{backend=\"10.0.0.1:5432\",database=\"app\",user=\"a\\\"b\"}";
    CHECK(has_line(m, "pgrouter_pool_active" + l + " 3"));
    CHECK(has_line(m, "pgrouter_pool_idle" + l + " 2"));
    CHECK(has_line(m, "pgrouter_pool_waiting" + l + " 3"));
    CHECK(has_line(m, "pgrouter_pool_max_wait_seconds" + l + " 2.5"));
    std::string o = "{backend=\"slot 2\",database=\"app\",user=\"old\"}";
    CHECK(has_line(m, "pgrouter_pool_waiting" + o + " 0"));
    CHECK(has_line(m, "pgrouter_pool_max_wait_seconds" + o + " 0"));
    CHECK(has_line(m, "# TYPE pgrouter_pool_active gauge"));
    CHECK(format_pool_metrics(snap, {}, 0).find("pgrouter_pool_active{") == std::string::npos);

    ConsoleView v;
    v.snap = snap;
    v.pools = {busy};
    v.now_ns = 3'500'000'000;
    ResultTable t = console_table(ConsoleCommand::Pools, v);
    CHECK(t.columns == std::vector<std::string>{"database", "user", "backend", "active", "idle",
                                                "waiting", "max_wait_ms"});
    REQUIRE(t.rows.size() == 1);
    std::vector<std::optional<std::string>> want = {"app", "a\"b", "10.0.0.1:5432", "3",
                                                    "2",   "3",    "2500"};
    CHECK(t.rows[0] == want);
}
