// Tests of the test harness itself against real PostgreSQL servers: the cluster streams,
// replays, pauses, stops, starts and promotes as the other integration tests assume, and
// the process helpers (run, RouterProcess, log checks) behave.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

#include "../harness/cluster.h"
#include "../harness/files.h"
#include "../harness/log_check.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

// A value no earlier run of a test can have written.
std::string unique_marker(const std::string& prefix) {
    static int seq = 0;
    return prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(++seq) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

// Resumes replay on scope exit so a failing test does not leave the shared cluster paused.
struct ReplayResumer {
    Cluster& c;
    int standby;
    ~ReplayResumer() {
        try {
            c.resume_replay(standby);
        } catch (...) {
        }
    }
};

}  // namespace

TEST_CASE("cluster: standbys stream from the primary and are in recovery", "[harness]") {
    Cluster& c = Cluster::shared();
    REQUIRE(c.node_count() == 3);
    REQUIRE(c.standby_count() == 2);
    REQUIRE(c.foreign_index() == -1);
    c.wait_streaming();
    CHECK(c.exec(0, "SELECT pg_is_in_recovery()") == "f");
    for (int i = 1; i < c.node_count(); ++i) {
        INFO("standby " << c.name(i));
        CHECK(c.exec(i, "SELECT pg_is_in_recovery()") == "t");
        CHECK(c.role(i) == NodeRole::Standby);
    }
    CHECK(c.exec(0, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "2");
    CHECK(c.system_identifier(1) == c.system_identifier(0));
    CHECK(c.primary() == 0);
}

TEST_CASE("cluster: a row written on the primary becomes visible on every standby", "[harness]") {
    Cluster& c = Cluster::shared();
    c.exec(0, "CREATE TABLE IF NOT EXISTS harness_rows (v text)");
    std::string marker = unique_marker("row");
    c.exec(0, "INSERT INTO harness_rows VALUES ('" + marker + "')");
    for (int i = 1; i < c.node_count(); ++i) {
        INFO("standby " << c.name(i));
        CHECK(wait_until(
            [&] {
                return c.exec(i, "SELECT count(*) FROM harness_rows WHERE v = '" + marker + "'") ==
                       "1";
            },
            10s));
    }
    c.wait_replayed(1);
}

TEST_CASE("cluster: the test roles log in with their passwords", "[harness]") {
    Cluster& c = Cluster::shared();
    CHECK(query_value(c.conninfo(0, kTestUser, kTestDb), "SELECT current_user") == kTestUser);
    CHECK(query_value(c.conninfo(1, kTestUser, kTestDb), "SELECT current_database()") == kTestDb);
    CHECK(query_value(c.conninfo(0, kDemoUser, kDemoDb), "SELECT current_user") == kDemoUser);
    CHECK(query_value(c.conninfo(2, kMd5User), "SELECT current_user") == kMd5User);
    CHECK(c.exec(0, "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'md5user'") ==
          "md5");
    CHECK(c.exec(0, "SELECT left(rolpassword, 13) FROM pg_authid WHERE rolname = 'pgrtest'") ==
          "SCRAM-SHA-256");
    CHECK_FALSE(can_connect("host=127.0.0.1 port=" + std::to_string(c.port(0)) +
                            " user=pgrtest password=wrong dbname=pgrtest"));
    CHECK_THROWS(c.exec(1, "CREATE TABLE on_a_standby (x int)"));
}

TEST_CASE("cluster: pause_replay holds changes back until resume_replay", "[harness]") {
    Cluster& c = Cluster::shared();
    c.exec(0, "CREATE TABLE IF NOT EXISTS harness_rows (v text)");
    c.wait_replayed(1);
    c.pause_replay(1);
    ReplayResumer resume{c, 1};
    std::string marker = unique_marker("paused");
    c.exec(0, "INSERT INTO harness_rows VALUES ('" + marker + "')");
    std::string lsn = c.exec(0, "SELECT pg_current_wal_lsn()");
    // The WAL arrives (received) but is not applied.
    REQUIRE(wait_until(
        [&] {
            return c.exec(1, "SELECT pg_last_wal_receive_lsn() >= '" + lsn + "'::pg_lsn") == "t";
        },
        10s));
    std::string query = "SELECT count(*) FROM harness_rows WHERE v = '" + marker + "'";
    CHECK(c.exec(1, query) == "0");
    CHECK(c.exec(1, "SELECT pg_get_wal_replay_pause_state()") == "paused");
    CHECK(wait_until([&] { return c.exec(2, query) == "1"; }, 10s));
    c.resume_replay(1);
    CHECK(wait_until([&] { return c.exec(1, query) == "1"; }, 10s));
}

TEST_CASE("cluster: stop, start, promote and follow on an own cluster with a foreign server",
          "[harness]") {
    std::string dir;
    std::vector<pid_t> postmasters;
    {
        Cluster c({.standbys = 2, .foreign = true});
        dir = c.dir();
        REQUIRE(c.node_count() == 3);
        REQUIRE(c.foreign_index() == 3);
        CHECK(c.role(3) == NodeRole::Foreign);
        CHECK(c.exec(3, "SELECT pg_is_in_recovery()") == "f");
        CHECK(c.system_identifier(3) != c.system_identifier(0));
        CHECK(c.system_identifier(1) == c.system_identifier(0));
        CHECK(read_file(dir + "/cluster.env").find("STANDBY1_PORT=" + std::to_string(c.port(1))) !=
              std::string::npos);
        for (int i = 0; i < 4; ++i) postmasters.push_back(c.postmaster_pid(i));

        c.append_conf(0, "work_mem = '7MB'");
        c.reload(0);
        CHECK(wait_until([&] { return c.exec(0, "SHOW work_mem") == "7MB"; }, 10s));

        c.stop(1);
        CHECK_FALSE(c.running(1));
        CHECK_FALSE(can_connect(c.conninfo(1)));
        c.exec(0, "CREATE TABLE while_down (x int); INSERT INTO while_down VALUES (42)");
        c.start(1);
        CHECK(c.running(1));
        c.wait_streaming();
        c.wait_replayed(1);
        CHECK(c.exec(1, "SELECT x FROM while_down") == "42");

        // Failover: the old primary goes, standby1 is promoted, standby2 follows it.
        c.stop(0, "fast");
        c.promote(1);
        CHECK(c.role(1) == NodeRole::Primary);
        CHECK(c.primary() == 1);
        CHECK(c.exec(1, "SELECT pg_is_in_recovery()") == "f");
        c.follow(2, 1);
        c.wait_streaming();
        c.exec(1, "INSERT INTO while_down VALUES (43)");
        CHECK(c.exec(1, "SELECT sum(x) FROM while_down") == "85");
        c.wait_replayed(2);
        CHECK(c.exec(2, "SELECT sum(x) FROM while_down") == "85");
        postmasters.push_back(c.postmaster_pid(1));
    }
    CHECK_FALSE(std::filesystem::exists(dir));
    for (pid_t p : postmasters) CHECK_FALSE(process_alive(p));
}

TEST_CASE("cluster: bgw_replstatus answers MASTER and STANDBY", "[harness]") {
    if (!Cluster::replstatus_available()) {
        WARN("bgw_replstatus is not installed; skipped");
        return;
    }
    Cluster c({.standbys = 1, .replstatus = true});
    CHECK(wait_until([&] { return read_tcp(c.replstatus_port(0)) == "MASTER"; }, 10s));
    CHECK(wait_until([&] { return read_tcp(c.replstatus_port(1)) == "STANDBY"; }, 10s));
}

TEST_CASE("run: captures stdout, stderr, stdin and the exit status", "[harness]") {
    RunResult r = run({"sh", "-c", "cat; echo oops >&2; exit 3"}, {}, "hello\n");
    CHECK(r.status == 3);
    CHECK(r.out == "hello\n");
    CHECK(r.err == "oops\n");
    CHECK_FALSE(r.ok());

    RunResult env = run({"sh", "-c", "echo \"$HARNESS_X\""}, {{"HARNESS_X", "y z"}});
    CHECK(env.out == "y z\n");

    RunResult slow = run({"sleep", "10"}, {}, "", 200ms);
    CHECK(slow.timed_out);
    CHECK(slow.status == 128 + SIGKILL);

    CHECK_THROWS(run_checked({"false"}));
    RunResult psql =
        run({pg_bin("psql"), "-X", "-At", "-c", "SELECT 6 * 7", Cluster::shared().conninfo(1)});
    CHECK(psql.out == "42\n");
}

TEST_CASE("wait_until and free_port", "[harness]") {
    int calls = 0;
    CHECK(wait_until([&] { return ++calls == 3; }, 1s));
    CHECK(calls == 3);
    auto t0 = std::chrono::steady_clock::now();
    CHECK_FALSE(wait_until([] { return false; }, 100ms));
    CHECK(std::chrono::steady_clock::now() - t0 >= 100ms);

    int a = free_port(), b = free_port();
    CHECK(a != b);
    CHECK(a > 0);
    CHECK_FALSE(port_open(a));
}

TEST_CASE("RouterProcess: runs, logs, signals and stops a child and its workers", "[harness]") {
    std::string bin_dir = make_temp_dir("pgrouter-fake-");
    std::string fake = bin_dir + "/fake-router";
    write_file(fake,
               "#!/bin/sh\n"
               "echo \"args: $*\"\n"
               "sleep 1000 &\n"
               "worker=$!\n"
               "trap 'echo got HUP' HUP\n"
               "trap 'echo got TERM; kill $worker; exit 0' TERM\n"
               "echo ready\n"
               "while :; do wait; done\n");
    chmod(fake.c_str(), 0755);
    {
        RouterProcess r("listen = 127.0.0.1:1\npid_file = @DIR@/pid\n", {.binary = fake});
        REQUIRE(r.wait_for_log("^ready$"));
        CHECK(r.log().find("args: -F -vvvvv -c " + r.config_path()) != std::string::npos);
        CHECK(read_file(r.config_path()).find("pid_file = " + r.dir() + "/pid") !=
              std::string::npos);
        CHECK(wait_until([&] { return r.children().size() == 1; }, 5s));
        size_t mark = r.log_size();
        r.signal(SIGHUP);
        CHECK(r.wait_for_log("got HUP", 5s, mark));
        CHECK_FALSE(r.wait_for_log("args", 100ms, mark));
        CHECK(r.running());
        CHECK(r.stop() == 0);
        CHECK_FALSE(r.left_stragglers());
        CHECK(r.log().find("got TERM") != std::string::npos);
        check_log_clean(r);
    }
    // One that ignores SIGTERM and leaves a worker behind gets SIGKILLed, group and all.
    write_file(fake, "#!/bin/sh\ntrap '' TERM\nsleep 1000 &\necho ready\nwait\n");
    {
        RouterProcess r("", {.binary = fake});
        REQUIRE(r.wait_for_log("ready"));
        std::string dir = r.dir();
        REQUIRE(wait_until([&] { return r.children().size() == 1; }, 5s));
        pid_t worker = r.children()[0];
        CHECK(r.stop(300ms) == 128 + SIGKILL);
        CHECK_FALSE(process_alive(worker));
        CHECK(r.stop() == 128 + SIGKILL);
    }
    remove_tree(bin_dir);
    CHECK_THROWS(RouterProcess("", {.binary = "/nonexistent/pgrouter"}));
}

TEST_CASE("read_tcp reads a whole answer; log_problems finds crash markers", "[harness]") {
    int port = free_port();
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(listen(lfd, 1) == 0);
    std::thread server([lfd] {
        int c = accept(lfd, nullptr, nullptr);
        char buf[16];
        ssize_t n = recv(c, buf, sizeof buf, 0);
        std::string answer =
            "got " + std::string(buf, n > 0 ? static_cast<size_t>(n) : 0) + std::string(20000, 'x');
        send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
        close(c);
    });
    std::string got = read_tcp(port, "ping");
    server.join();
    close(lfd);
    CHECK(got.substr(0, 8) == "got ping");
    CHECK(got.size() == 8 + 20000);

    CHECK(log_problems("fine\nall good\n").empty());
    auto p = log_problems(
        "ok\n==1==ERROR: AddressSanitizer: heap-use-after-free\nx.cc:3: runtime error: "
        "overflow\nterminate called after throwing\nok\n");
    CHECK(p.size() == 3);
}
