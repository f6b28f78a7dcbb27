// The client sees one server, and it is not in recovery: reads that ask about the server
// itself (recovery state, WAL positions, its backends, statistics, transaction ids,
// SHOW transaction_read_only) are answered by the master, compared with a direct
// connection to the master; ordinary reads keep using the standbys. And the session
// statements that drop catalog state (DISCARD TEMP / ALL) count as writes for
// read-your-writes, shown with replay paused on both standbys.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "../harness/cluster.h"
#include "../harness/pq.h"
#include "../harness/routed.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

// Resumes replay on the standbys it paused, whatever way the test ends.
class ReplayPause {
  public:
    explicit ReplayPause(Cluster& c) : c_(c) {}
    ~ReplayPause() {
        for (int s : paused_) c_.resume_replay(s);
    }
    ReplayPause(const ReplayPause&) = delete;
    ReplayPause& operator=(const ReplayPause&) = delete;

    // Waits until every standby has replayed what the primary has, then pauses them all.
    void pause_all() {
        for (int s = 1; s <= c_.standby_count(); ++s) c_.wait_replayed(s);
        for (int s = 1; s <= c_.standby_count(); ++s) {
            c_.pause_replay(s);
            paused_.push_back(s);
        }
    }
    void resume_all() {
        for (int s : paused_) c_.resume_replay(s);
        paused_.clear();
    }

  private:
    Cluster& c_;
    std::vector<int> paused_;
};

}  // namespace

TEST_CASE("server-local facts come from the master, as from one server not in recovery",
          "[routing][server_local]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    std::string master = std::to_string(c.port(0));
    PgConn conn(r.conninfo(kSuperUser, "postgres"));

    // The answers a client gets directly from the master, and through pgrouter.
    const char* facts[] = {
        "SELECT pg_is_in_recovery()",
        "SHOW transaction_read_only",
        "SHOW in_hot_standby",
        "SELECT current_setting('transaction_read_only')",
        "SELECT count(*) FROM pg_stat_wal_receiver",
        "SELECT count(*) FROM pg_catalog.pg_stat_wal_receiver",
        "SELECT pg_last_wal_replay_lsn() IS NULL",
        "SELECT pg_current_wal_lsn() IS NOT NULL",
    };
    for (const char* sql : facts) {
        std::string direct = c.exec(0, sql);
        for (int i = 0; i < 5; ++i) {
            INFO(sql);
            CHECK(conn.value(sql) == direct);
        }
    }
    CHECK(c.exec(0, "SELECT pg_is_in_recovery()") == "f");
    CHECK(c.exec(0, "SHOW transaction_read_only") == "off");

    // One backend: the pid does not change, and it is a backend of the master.
    std::string pid = conn.value("SELECT pg_backend_pid()");
    for (int i = 0; i < 20; ++i) CHECK(conn.value("SELECT pg_backend_pid()") == pid);
    CHECK(c.exec(0, "SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid) == "1");
    CHECK(conn.value("SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid()") == "1");

    // Each entry of the table runs where inet_server_port() says: the master.
    const char* server_local[] = {
        "SELECT pg_is_in_recovery()",
        "SELECT pg_current_wal_lsn()",
        "SELECT pg_current_wal_insert_lsn()",
        "SELECT pg_last_wal_receive_lsn()",
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')",
        "SELECT * FROM pg_stat_wal_receiver",
        "SELECT * FROM pg_stat_replication",
        "SELECT * FROM pg_replication_slots",
        "SELECT pg_backend_pid()",
        "SELECT pg_blocking_pids(pg_backend_pid())",
        "SELECT * FROM pg_stat_activity",
        "SELECT * FROM pg_locks",
        "SELECT * FROM pg_stat_user_tables",
        "SELECT * FROM pg_statio_user_tables",
        "SELECT * FROM pg_stat_database",
        "SELECT pg_stat_force_next_flush()",
        "SELECT pg_stat_clear_snapshot()",
        "SELECT txid_current_if_assigned()",
        "SELECT pg_current_xact_id_if_assigned()",
        "SELECT pg_current_snapshot()",
        "SELECT * FROM pg_prepared_xacts",
        "SELECT pg_postmaster_start_time()",
    };
    for (const char* sql : server_local) {
        std::string probe =
            std::string("SELECT inet_server_port(), (SELECT count(*) FROM (") + sql + ") q)";
        for (int i = 0; i < 4; ++i) {
            INFO(sql);
            CHECK(conn.value(probe) == master);
        }
    }
    // SHOW has no FROM: its routing is seen in the debug log, with the router's reason.
    std::size_t mark = r.router->log_size();
    CHECK(conn.value("SHOW transaction_read_only") == "off");
    CHECK(r.router->wait_for_log("read unit → 127.0.0.1:" + master + " \\(server_local", 5s, mark));
    // Ordinary reads, inet_server_port() and pure LSN arithmetic still use the standbys.
    int on_master = 0;
    for (int i = 0; i < 20; ++i) {
        on_master += conn.value("SELECT inet_server_port()") == master;
        on_master += conn.value(
                         "SELECT inet_server_port() FROM (SELECT pg_wal_lsn_diff("
                         "'0/2', '0/1')) q") == master;
    }
    CHECK(on_master == 0);

    // Transaction ids are the master's, and they advance.
    std::string x1 = conn.value("SELECT txid_current()");
    std::string x2 = conn.value("SELECT pg_current_xact_id()");
    CHECK(std::stoll(x2) > std::stoll(x1));
    CHECK(std::stoll(c.exec(0, "SELECT txid_current()")) > std::stoll(x2));

    // Statistics: the session's own inserts are counted where it reads the statistics.
    conn.exec("DROP TABLE IF EXISTS sl_stats; CREATE TABLE sl_stats (id int)");
    conn.exec("SELECT pg_stat_reset()");
    conn.exec("INSERT INTO sl_stats SELECT generate_series(1, 5)");
    conn.exec("SELECT pg_stat_force_next_flush()");
    // Past the read-your-writes window of the INSERT, plain reads are on standbys again.
    CHECK(wait_until([&] { return conn.value("SELECT inet_server_port()") != master; }, 5s, 50ms));
    bool counted = wait_until(
        [&] {
            return conn.value(
                       "SELECT n_tup_ins FROM pg_stat_user_tables "
                       "WHERE relname = 'sl_stats'") == "5";
        },
        5s, 50ms);
    CHECK(counted);
    conn.exec("DROP TABLE sl_stats");
    { PgConn done = std::move(conn); }
    r.finish();
}

TEST_CASE("DISCARD TEMP and DISCARD ALL count as writes for read-your-writes",
          "[session][temp][ryw][server_local]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    const std::string listed = "SELECT count(*) FROM pg_class WHERE relname = 'sl_tmp'";
    for (const char* discard : {"DISCARD TEMP", "DISCARD ALL"}) {
        INFO(discard);
        PgConn conn(r.conninfo());
        conn.exec("CREATE TEMP TABLE sl_tmp (id int)");
        CHECK(conn.value(listed) == "1");  // pinned: the master
        ReplayPause pause(c);
        pause.pause_all();  // the standbys list sl_tmp, and will until replay resumes
        CHECK(c.exec(1, listed, kSuperUser, kTestDb) == "1");
        conn.exec(discard);
        for (int i = 0; i < 10; ++i) CHECK(conn.value(listed) == "0");
        CHECK(c.exec(0, listed, kSuperUser, kTestDb) == "0");
        pause.resume_all();
        // Once the standbys have replayed the drop, reads go back to them.
        std::string master = std::to_string(c.port(0));
        CHECK(wait_until([&] { return conn.value("SELECT inet_server_port()") != master; }, 5s,
                         50ms));
    }
    r.finish();
}
