// Statement routing against a real cluster, observed with inet_server_port(): reads spread
// over standbys by weight, writes and transactions on the master, READ ONLY blocks on one
// standby, lag thresholds, no-standby and no-master cases, the 25006 replay, read-your-writes
// with delayed standbys, real pgbench runs and a standby dying under a read loop.
#include <libpq-fe.h>

#include <catch2/catch.hpp>
#include <map>
#include <regex>
#include <thread>

#include "../harness/auth_files.h"
#include "../harness/cluster.h"
#include "../harness/files.h"
#include "../harness/log_check.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

TEST_CASE("reads spread over standbys by weight; writes and DDL on the master, once", "[routing]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0, ""}, {1, "{ weight 100 }"}, {2, "{ weight 300 }"}});
    std::string s1 = std::to_string(c.port(1)), s2 = std::to_string(c.port(2));
    std::string master = std::to_string(c.port(0));

    PgConn conn(r.conninfo(kSuperUser, "postgres"));
    auto seen = count_ports(conn, 400, "SELECT inet_server_port()");
    INFO("standby1 " << seen[s1] << ", standby2 " << seen[s2] << ", master " << seen[master]);
    CHECK(seen[master] == 0);
    CHECK(seen[s1] + seen[s2] == 400);
    CHECK(seen[s2] > 2 * seen[s1]);  // expected 3:1
    CHECK(seen[s2] < 5 * seen[s1]);

    // Across fresh sessions too.
    std::map<std::string, int> fresh;
    for (int i = 0; i < 60; ++i) {
        PgConn one(r.conninfo(kSuperUser, "postgres"));
        fresh[one.value("SELECT inet_server_port()")] += 1;
    }
    CHECK(fresh[master] == 0);
    CHECK(fresh[s1] > 0);
    CHECK(fresh[s2] > fresh[s1]);

    // Writes, a data-modifying CTE, DDL: the master, each exactly once.
    conn.exec("DROP TABLE IF EXISTS routed_w; CREATE TABLE routed_w (id int, port int)");
    CHECK(conn.value("INSERT INTO routed_w VALUES (1, inet_server_port()) "
                     "RETURNING inet_server_port()") == master);
    CHECK(conn.value("WITH w AS (INSERT INTO routed_w VALUES (2, inet_server_port()) "
                     "RETURNING 1) SELECT inet_server_port() FROM w") == master);
    CHECK(conn.value("SELECT count(*) FROM routed_w") == "2");
    CHECK(c.exec(0, "SELECT string_agg(id || ':' || port, ',' ORDER BY id) FROM routed_w") ==
          "1:" + master + ",2:" + master);

    // SELECT nextval() goes to the master directly.
    conn.exec("DROP SEQUENCE IF EXISTS routed_s; CREATE SEQUENCE routed_s");
    CHECK(conn.value("SELECT nextval('routed_s') * 0 + inet_server_port()") == master);
    CHECK(r.router->wait_for_log("write unit → 127.0.0.1:" + master));
    { PgConn done = std::move(conn); }
    CHECK(r.router->stop() == 0);
    check_log_clean(*r.router);
}

TEST_CASE("transactions stay on one backend; READ ONLY blocks may use a standby", "[routing]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0, ""}, {1, ""}, {2, ""}});
    std::string master = std::to_string(c.port(0));
    PgConn conn(r.conninfo(kSuperUser, "postgres"));
    conn.exec("BEGIN");
    for (int i = 0; i < 5; ++i) CHECK(conn.value("SELECT inet_server_port()") == master);
    conn.exec("COMMIT");

    for (const char* begin : {"BEGIN READ ONLY",
                              "START TRANSACTION ISOLATION LEVEL "
                              "REPEATABLE READ, READ ONLY"}) {
        conn.exec(begin);
        std::string first = conn.value("SELECT inet_server_port()");
        CHECK(first != master);
        for (int i = 0; i < 5; ++i) CHECK(conn.value("SELECT inet_server_port()") == first);
        CHECK(sqlstate_of(conn, "CREATE TABLE nope (x int)") == "25006");
        conn.exec("ROLLBACK");
    }
    conn.exec("SET default_transaction_read_only = on");
    conn.exec("BEGIN");
    CHECK(conn.value("SELECT inet_server_port()") != master);
    conn.exec("COMMIT");
    { PgConn done = std::move(conn); }
    CHECK(r.router->stop() == 0);
    check_log_clean(*r.router);
}

TEST_CASE("a lagging standby is avoided; without standbys reads use the master", "[routing][lag]") {
    Cluster c(ClusterOptions{.standbys = 2, .quiet = true});
    Routed r(c, {{0, ""}, {1, "{ lag 64k }"}, {2, "{ lag 64k }"}});
    std::string s1 = std::to_string(c.port(1)), s2 = std::to_string(c.port(2));
    c.pause_replay(1);
    c.exec(0,
           "CREATE TABLE filler AS SELECT g, repeat('x', 200) AS pad "
           "FROM generate_series(1, 20000) g");
    REQUIRE(wait_until(
        [&] {
            std::smatch m;
            std::string dump = r.router->monitor(r.monitor);
            std::smatch m2;
            return std::regex_search(dump, m,
                                     std::regex("127\\.0\\.0\\.1:" + s1 + " slave OK ([0-9]+)")) &&
                   std::stoull(m[1]) > 65536 &&
                   std::regex_search(dump, m2,
                                     std::regex("127\\.0\\.0\\.1:" + s2 + " slave OK ([0-9]+)")) &&
                   std::stoull(m2[1]) <= 65536;  // the other standby has caught up
        },
        10s));
    PgConn conn(r.conninfo(kSuperUser, "postgres"));
    auto seen = count_ports(conn, 100, "SELECT inet_server_port()");
    CHECK(seen[s1] == 0);
    CHECK(seen[s2] > 0);
    c.resume_replay(1);

    // Only the master configured: reads go there.
    Routed alone(c, {{0, ""}});
    PgConn one(alone.conninfo(kSuperUser, "postgres"));
    CHECK(one.value("SELECT inet_server_port()") == std::to_string(c.port(0)));
}

TEST_CASE("no master: writes get a clear error, reads keep working", "[routing][nomaster]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{1, ""}, {2, ""}});
    PgConn conn(r.conninfo(kSuperUser, "postgres"));
    CHECK(conn.value("SELECT pg_is_in_recovery()") == "t");
    PGresult* res = PQexec(conn.get(), "CREATE TABLE should_fail (x int)");
    std::string state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    std::string message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    PQclear(res);
    CHECK(state == "25006");
    CHECK(message.find("no master") != std::string::npos);
    CHECK(conn.value("SELECT 42") == "42");  // the session goes on
}

TEST_CASE("a write hidden in a function is replayed on the master exactly once",
          "[routing][replay]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0, ""}, {1, ""}, {2, ""}});
    c.exec(0,
           "DROP TABLE IF EXISTS replay_t; CREATE TABLE replay_t (x int);"
           "CREATE OR REPLACE FUNCTION replay_write() RETURNS int LANGUAGE plpgsql AS "
           "$$BEGIN INSERT INTO replay_t VALUES (1); RETURN inet_server_port(); END$$");
    c.wait_replayed(1);
    c.wait_replayed(2);
    PgConn conn(
        r.conninfo(kSuperUser, "postgres"));  // no write of its own: its reads may use the standbys
    for (int i = 0; i < 10; ++i) {
        CHECK(conn.value("SELECT replay_write()") == std::to_string(c.port(0)));
    }
    CHECK(c.exec(0, "SELECT count(*) FROM replay_t") == "10");
    CHECK(r.router->wait_for_log("refused a write \\(25006\\); replaying on the master"));
}

TEST_CASE("read-your-writes: 200 insert-then-read with delayed standbys, zero misses",
          "[routing][ryw]") {
    Cluster c(ClusterOptions{.standbys = 2, .quiet = true});
    for (int i : {1, 2}) {
        c.append_conf(i, "recovery_min_apply_delay = '300ms'\n");
        c.reload(i);
    }
    c.exec(0, "CREATE TABLE ryw (id int)");
    Routed r(c, {{0, ""}, {1, "{ lag 1G }"}, {2, "{ lag 1G }"}});
    PgConn conn(r.conninfo(kSuperUser, "postgres"));
    int misses = 0;
    for (int i = 0; i < 200; ++i) {
        conn.exec("INSERT INTO ryw VALUES (" + std::to_string(i) + ")");
        if (conn.value("SELECT count(*) FROM ryw WHERE id = " + std::to_string(i)) != "1") {
            ++misses;
        }
    }
    CHECK(misses == 0);
    // Other sessions may read from the (delayed) standbys: the freshness bound is the lag
    // threshold, as with any replica; this session's reads also use them once caught up.
    std::this_thread::sleep_for(1s);
    auto seen = count_ports(conn, 50, "SELECT inet_server_port()");
    CHECK(seen[std::to_string(c.port(0))] < 50);
}

TEST_CASE("pgbench simple, extended and prepared: reads and TPC-B with zero failures",
          "[routing][pgbench]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0, ""}, {1, ""}, {2, ""}});
    RunResult init = run({"pgbench", "-i", "-q", "-s", "1", r.conninfo(kSuperUser, "postgres")});
    REQUIRE(init.status == 0);
    for (const char* mode : {"simple", "extended", "prepared"}) {
        for (bool select_only : {true, false}) {
            std::vector<std::string> args{"pgbench", "-n", "-c",  "4",  "-j",
                                          "2",       "-t", "200", "-M", mode};
            if (select_only) args.push_back("-S");
            args.push_back(r.conninfo(kSuperUser, "postgres"));
            RunResult b = run(args);
            INFO(mode << (select_only ? " -S" : " tpcb") << ": " << b.err);
            CHECK(b.status == 0);
            CHECK(b.out.find("number of failed transactions: 0") != std::string::npos);
        }
    }
    std::string log = r.router->log();
    CHECK(log.find("read unit → 127.0.0.1:" + std::to_string(c.port(1))) != std::string::npos);
    CHECK(r.router->stop() == 0);
    check_log_clean(*r.router);
}

TEST_CASE("a standby killed during a read loop costs the client nothing", "[routing][failover]") {
    Cluster c(ClusterOptions{.standbys = 2, .quiet = true});
    Routed r(c, {{0, ""}, {1, ""}, {2, ""}});
    PgConn conn(r.conninfo(kSuperUser, "postgres"));
    int errors = 0, done = 0;
    std::thread killer([&] {
        std::this_thread::sleep_for(300ms);
        c.stop(1, "immediate");
    });
    auto until = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < until) {
        try {
            CHECK(conn.value("SELECT count(*) FROM pg_class") != "");
            ++done;
        } catch (const std::exception& e) {
            ++errors;
            WARN(e.what());
        }
    }
    killer.join();
    WARN("reads during the standby kill: " << done << " ok, " << errors << " errors");
    CHECK(errors == 0);
    CHECK(done > 100);
}
