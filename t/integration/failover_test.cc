// Failover and faults as clients see them through pgrouter: after a promotion no read comes
// from a standby that still follows the dead primary (behind it or ahead of the new master),
// SIGKILLs of the watcher under pgbench cost no transaction, and a restarted standby takes
// reads again within a lag interval rather than at the next full check.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <functional>
#include <map>
#include <thread>

#include "../harness/auth_files.h"
#include "../harness/cluster.h"
#include "../harness/log_check.h"
#include "../harness/monitor_lines.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

std::string addr(const Cluster& c, int node) { return "127.0.0.1:" + std::to_string(c.port(node)); }

bool failed(const MonitorLine& l) { return l.status == "FAILED"; }
bool ok(const MonitorLine& l) { return l.status == "OK"; }

// What `reads` reads through pgrouter ("count port" per read) that differs from `expected`
// rows, by port; plus how many reads each port served.
struct ReadTally {
    std::map<std::string, int> wrong;
    std::map<std::string, int> served;
};

ReadTally read_counts(PgConn& conn, int reads, const std::string& expected) {
    ReadTally t;
    for (int i = 0; i < reads; ++i) {
        auto rows = conn.query("SELECT count(*), inet_server_port() FROM failover_rows");
        const std::string& port = rows.at(0).at(1);
        t.served[port] += 1;
        if (rows.at(0).at(0) != expected) t.wrong[port] += 1;
    }
    return t;
}

// The standby's WAL receiver is gone: it receives nothing from the primary any more.
void detach_standby(Cluster& c, int standby) {
    c.exec(standby, "ALTER SYSTEM SET primary_conninfo = ''");
    c.exec(standby, "SELECT pg_reload_conf()");
    REQUIRE(wait_until(
        [&] { return c.exec(standby, "SELECT count(*) FROM pg_stat_wal_receiver") == "0"; }, 30s));
}

// Primary stopped (-m immediate), standby 1 promoted, pgrouter sees it as the master.
void fail_over_to_standby1(Cluster& c, Routed& r) {
    c.stop(0, "immediate");
    c.promote(1);
    REQUIRE(wait_until([&] { return r.sees_master(1); }, 10s));
}

// After the failover every read through pgrouter returns what the new master has, and the
// monitor calls standby 2 FAILED, still after more than one full check.
void expect_no_foreign_reads(Cluster& c, Routed& r, const std::string& expected) {
    CHECK(c.exec(1, "SELECT count(*) FROM failover_rows") == expected);
    PgConn reader(r.conninfo(kSuperUser, "postgres"));
    ReadTally t = read_counts(reader, 300, expected);
    std::string served;
    for (const auto& [port, n] : t.served) served += " " + port + ":" + std::to_string(n);
    INFO("reads by port:" << served);
    std::string standby2 = std::to_string(c.port(2));
    CHECK(t.wrong.empty());
    CHECK(t.served[standby2] == 0);
    CHECK(wait_monitor_line(*r.router, r.monitor, addr(c, 2), failed, Clock::now(), 5s) >= 0);
    auto until = Clock::now() + 1500ms;  // the full check runs every second
    while (Clock::now() < until) {
        auto l = monitor_line(*r.router, r.monitor, addr(c, 2));
        REQUIRE(l);
        CHECK(l->status == "FAILED");
        std::this_thread::sleep_for(20ms);
    }
    t = read_counts(reader, 100, expected);
    CHECK(t.wrong.empty());
    CHECK(t.served[standby2] == 0);
}

void make_rows(Cluster& c, int from, int to) {
    c.exec(0, "CREATE TABLE IF NOT EXISTS failover_rows (id int PRIMARY KEY)");
    c.exec(0, "INSERT INTO failover_rows SELECT generate_series(" + std::to_string(from) + ", " +
                  std::to_string(to) + ")");
}

// A cluster of its own (it is failed over), pgrouter in front, 100 rows on every node.
struct FailoverCluster {
    FailoverCluster() {
        make_rows(c, 1, 100);
        c.wait_replayed(1);
        c.wait_replayed(2);
    }
    Cluster c{ClusterOptions{.standbys = 2, .quiet = true}};
    Routed r{c};
};

}  // namespace

TEST_CASE("failover: a standby left on the old timeline, behind, takes no reads until it follows",
          "[failover]") {
    FailoverCluster f;
    Cluster& c = f.c;
    Routed& r = f.r;
    fail_over_to_standby1(c, r);

    // Written on the new master: standby 2, still waiting for the dead primary, never has it.
    PgConn(r.conninfo(kSuperUser, "postgres"))
        .exec("INSERT INTO failover_rows SELECT generate_series(101, 110)");
    expect_no_foreign_reads(c, r, "110");

    // Pointed at the new master, standby 2 follows it onto timeline 2 and takes reads again.
    c.follow(2, 1);
    CHECK(wait_monitor_line(*r.router, r.monitor, addr(c, 2), ok, Clock::now(), 30s) >= 0);
    CHECK(wait_until([&] { return c.exec(2, "SELECT count(*) FROM failover_rows") == "110"; }));
    {
        PgConn reader(r.conninfo(kSuperUser, "postgres"));
        ReadTally t = read_counts(reader, 200, "110");
        CHECK(t.wrong.empty());
        CHECK(t.served[std::to_string(c.port(2))] > 0);
    }
    r.finish();
}

TEST_CASE("failover: a standby ahead of the promoted one never serves its extra rows",
          "[failover]") {
    FailoverCluster f;
    Cluster& c = f.c;
    Routed& r = f.r;
    // Standby 1 stops receiving; the next 100 rows reach standby 2 only.
    detach_standby(c, 1);
    make_rows(c, 101, 200);
    c.wait_replayed(2);
    fail_over_to_standby1(c, r);
    expect_no_foreign_reads(c, r, "100");
    r.finish();
}

TEST_CASE("failover: 20 SIGKILLs of the watcher under pgbench cost no transaction",
          "[failover][pgbench]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    const std::string conninfo = r.conninfo(kSuperUser, "postgres");
    REQUIRE(run({"pgbench", "-i", "-q", "-s", "1", conninfo}).status == 0);

    // Quick deaths make the supervisor back off (up to 5 s): 20 kills take about 70 s. Each
    // workload runs in rounds of 5 s (new connections each round) until the kills are done.
    std::atomic<bool> killing{true};
    auto rounds = [&](std::vector<std::string> args, std::vector<RunResult>& results) {
        args.insert(args.end(), {"-n", "-c", "8", "-j", "2", "-T", "5", conninfo});
        while (killing) results.push_back(run(args, {}, "", 60s));
    };
    std::vector<RunResult> tpcb, select_only;
    std::thread tpcb_run(rounds, std::vector<std::string>{"pgbench"}, std::ref(tpcb));
    std::thread select_run(rounds, std::vector<std::string>{"pgbench", "-S"},
                           std::ref(select_only));
    auto started = Clock::now();
    int kills = 0;
    pid_t last = 0;
    for (int i = 0; i < 20; ++i) {
        std::vector<pid_t> w;
        bool up = wait_until(
            [&] {
                w = r.router->children_titled("watcher");
                return w.size() == 1 && w[0] != last;
            },
            10s, 5ms);
        if (!up) break;
        last = w[0];
        if (kill(last, SIGKILL) == 0) ++kills;
    }
    double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    killing = false;
    tpcb_run.join();
    select_run.join();
    std::printf("watcher killed %d times in %.1f s under pgbench (%zu + %zu rounds)\n", kills,
                seconds, tpcb.size(), select_only.size());
    CHECK(kills == 20);
    for (const std::vector<RunResult>* workload : {&tpcb, &select_only}) {
        CHECK(workload->size() >= 2);
        for (const RunResult& b : *workload) {
            INFO(b.out << b.err);
            CHECK(b.status == 0);
            CHECK(b.out.find("number of failed transactions: 0 ") != std::string::npos);
            CHECK(b.err.find("aborted") == std::string::npos);
        }
    }
    CHECK(wait_until([&] { return r.router->children_titled("watcher").size() == 1; }, 10s));
    r.finish();
}

TEST_CASE("failover: a restarted standby takes reads within a lag interval, not at a full check",
          "[failover]") {
    Cluster& c = Cluster::shared();
    int listen = free_port(), monitor = free_port();
    // A full check every minute: only the lag interval can bring the standby back in time.
    RouterProcess r("listen 127.0.0.1:" + std::to_string(listen) +
                    "\nmonitor 127.0.0.1:" + std::to_string(monitor) + "\nworkers 1\nauthdb " +
                    authdb_file(c) + "\nhealth { username postgres; password \"" + kSuperPassword +
                    "\"; timeout 2s; check 60s; lag-interval 200ms }\n" + "backend " + addr(c, 0) +
                    "\nbackend " + addr(c, 1) + "\nbackend " + addr(c, 2) + "\n");
    for (int i : {0, 1, 2}) {
        REQUIRE(wait_monitor_line(r, monitor, addr(c, i), ok, Clock::now(), 15s) >= 0);
    }
    const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(listen) +
                                 " user=" + kSuperUser + " password=" + kSuperPassword +
                                 " dbname=postgres sslmode=disable";
    c.stop(2, "immediate");
    CHECK(wait_monitor_line(r, monitor, addr(c, 2), failed, Clock::now(), 5s) >= 0);
    c.start(2);
    auto started = Clock::now();
    // Reachable again: OK and reading well before the next full check (due in a minute).
    double back = wait_monitor_line(r, monitor, addr(c, 2), ok, started, 20s);
    std::printf("restarted standby OK again after %.1f ms (lag-interval 200ms, check 60s)\n", back);
    CHECK(back >= 0);
    {
        PgConn reader(conninfo);
        const std::string port2 = std::to_string(c.port(2));
        CHECK(wait_until([&] { return reader.value("SELECT inet_server_port()") == port2; }, 5s,
                         1ms));
    }
    c.wait_streaming();
    CHECK(r.stop() == 0);
    check_log_clean(r);
}

// Issue 19, section 4: a standby's postmaster killed with SIGKILL under pgbench -S. Its
// backends die each their own way (FATAL 57P01 "unexpected postmaster exit" when idle or
// answering, a reset, a refused login): reads that had sent the client nothing are replayed
// elsewhere, so no client fails; once restarted, the standby takes reads again.
TEST_CASE("faults: SIGKILL of a standby under pgbench -S costs no transaction",
          "[faults][pgbench]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    const std::string conninfo = r.conninfo(kSuperUser, "postgres");
    REQUIRE(run({"pgbench", "-i", "-q", "-s", "1", conninfo}).status == 0);
    c.wait_replayed(1);
    c.wait_replayed(2);
    const int victim = 2;
    // Simple queries, and prepared statements (Parse once per connection, then Bind/Execute/
    // Sync: a replay on the master must bring the statement along).
    const std::vector<std::vector<std::string>> workloads = {
        {"pgbench", "-S", "-n", "-M", "simple", "-c", "8", "-j", "2", "-T", "20", conninfo},
        {"pgbench", "-S", "-n", "-M", "prepared", "-c", "4", "-j", "1", "-T", "20", conninfo},
    };
    std::vector<RunResult> bench(workloads.size());
    auto started = Clock::now();
    std::vector<std::thread> load;
    for (std::size_t i = 0; i < workloads.size(); ++i) {
        load.emplace_back([&, i] { bench[i] = run(workloads[i], {}, "", 90s); });
    }
    std::this_thread::sleep_until(started + 7s);  // the workload's timeline, not a wait
    pid_t postmaster = c.postmaster_pid(victim);
    CHECK(postmaster > 0);
    CHECK(kill(postmaster, SIGKILL) == 0);
    std::this_thread::sleep_until(started + 14s);
    // Its orphaned children leave when they notice (they hold its shared memory until then).
    bool restarted = wait_until(
        [&] {
            try {
                c.start(victim);
                return true;
            } catch (const std::exception&) {
                return false;
            }
        },
        30s, 200ms);
    for (std::thread& t : load) t.join();
    CHECK(restarted);
    for (const RunResult& b : bench) {
        INFO(b.out << b.err);
        CHECK(b.status == 0);
        CHECK(b.out.find("number of failed transactions: 0 ") != std::string::npos);
        CHECK(b.err.find("aborted") == std::string::npos);
        CHECK(b.err.find("error") == std::string::npos);
    }
    // The restarted standby takes reads again.
    c.wait_streaming();
    {
        PgConn reader(conninfo);
        const std::string port = std::to_string(c.port(victim));
        CHECK(wait_until([&] { return reader.value("SELECT inet_server_port()") == port; }, 20s,
                         5ms));
    }
    r.finish();
}
