// A session advisory lock pins a session to its master connection only while the session
// holds one, against the real cluster: in transaction pooling (size 1) a pinned client holds
// the only server connection, so another client waits and gets 53300; once the last lock is
// unlocked (locks are counted: two locks need two unlocks) or a try-lock returned false, the
// client is unpinned at once (a unit sent outside a block) or at its next statement,
// and the other client is served; a failed unit's lock still pins. Without a pool, a held
// lock still keeps every read on the master.
#include <libpq-fe.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "../harness/cluster.h"
#include "../harness/pq.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;

namespace {

// One server connection, and a short wait for it.
const std::string kPool = "workers 1\npool { mode transaction; size 1; wait-timeout 1s }\n";

// The results of `sql` as libpq gets them: the client sees only its own statement's (the
// question pgrouter asks in front of it never reaches the client).
int results_of(PgConn& conn, const std::string& sql, std::string& first_value) {
    REQUIRE(PQsendQuery(conn.get(), sql.c_str()) == 1);
    int n = 0;
    while (PGresult* res = PQgetResult(conn.get())) {
        if (PQresultStatus(res) == PGRES_TUPLES_OK && n == 0 && PQntuples(res) > 0) {
            first_value = PQgetvalue(res, 0, 0);
        }
        n += 1;
        PQclear(res);
    }
    return n;
}

std::string advisory_locks_on_master(Cluster& c, const std::string& objid) {
    return c.exec(0, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = " +
                         objid + " AND granted");
}

}  // namespace

TEST_CASE("advisory pin: the last unlock lets the pooled connection go", "[advisory_pin]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, kPool);
    PgConn a(r.conninfo());
    PgConn b(r.conninfo());
    CHECK(a.value("SELECT 1") == "1");
    CHECK(b.value("SELECT 2") == "2");  // idle clients hold nothing: both served by size 1

    a.exec("SELECT pg_advisory_lock(4201)");
    CHECK(sqlstate_of(b, "SELECT 3") == "53300");  // A holds the only connection, pinned
    // Twice locked, once unlocked: one is still held, and so is the connection.
    a.exec("SELECT pg_advisory_lock(4201)");
    CHECK(a.value("SELECT pg_advisory_unlock(4201)") == "t");
    CHECK(a.value("SELECT 4") == "4");
    CHECK(sqlstate_of(b, "SELECT 5") == "53300");
    CHECK(advisory_locks_on_master(c, "4201") == "1");

    // The last unlock: the question behind it (the client sees only its own result) ends
    // the pin while A idles, and B is served.
    std::string got;
    CHECK(results_of(a, "SELECT pg_advisory_unlock(4201)", got) == 1);
    CHECK(got == "t");
    CHECK(advisory_locks_on_master(c, "4201") == "0");
    CHECK(b.value("SELECT 6") == "6");
    for (int i = 0; i < 5; ++i) {
        CHECK(a.value("SELECT pg_backend_pid()") == b.value("SELECT pg_backend_pid()"));
    }

    // An unlock among other statements, shared locks: the same.
    a.exec("SELECT pg_advisory_lock_shared(4201)");
    CHECK(sqlstate_of(b, "SELECT 7") == "53300");
    CHECK(results_of(a, "SELECT pg_advisory_unlock_shared(4201); SELECT 8", got) == 2);
    CHECK(b.value("SELECT 9") == "9");
    // In a block, where transaction-level locks would answer too, the question waits for
    // the block's end, and goes in front of A's next statement, which ends unpinned.
    a.exec("SELECT pg_advisory_lock(4201)");
    a.exec("BEGIN");
    CHECK(a.value("SELECT pg_advisory_unlock(4201)") == "t");
    a.exec("COMMIT");
    CHECK(sqlstate_of(b, "SELECT 10") == "53300");
    CHECK(results_of(a, "SELECT 11", got) == 1);
    CHECK(got == "11");
    CHECK(b.value("SELECT 12") == "12");

    // The extended protocol: the question goes behind the unlock's Sync.
    a.exec("SELECT pg_advisory_lock(4201)");
    CHECK(sqlstate_of(b, "SELECT 13") == "53300");
    const char* key = "4201";
    PGresult* res = PQexecParams(a.get(), "SELECT pg_advisory_unlock($1::bigint)", 1, nullptr, &key,
                                 nullptr, nullptr, 0);
    REQUIRE(PQresultStatus(res) == PGRES_TUPLES_OK);
    CHECK(std::string(PQgetvalue(res, 0, 0)) == "t");
    PQclear(res);
    CHECK(b.value("SELECT 14") == "14");
    r.finish();
}

TEST_CASE("advisory pin: a try-lock that took nothing does not keep the connection",
          "[advisory_pin]") {
    Cluster& c = Cluster::shared();
    // Another session, straight to the master, holds lock 4202.
    PgConn holder(c.conninfo(0, kTestUser, kTestDb));
    holder.exec("SELECT pg_advisory_lock(4202)");
    Routed r(c, {{0}}, kPool);
    PgConn a(r.conninfo());
    PgConn b(r.conninfo());
    CHECK(a.value("SELECT 1") == "1");
    CHECK(b.value("SELECT 2") == "2");

    CHECK(a.value("SELECT pg_try_advisory_lock(4202)") == "f");
    CHECK(b.value("SELECT 3") == "3");
    // Inside a block the question waits for the block's end, and A's next statement.
    a.exec("BEGIN");
    CHECK(a.value("SELECT pg_try_advisory_lock(4202)") == "f");
    a.exec("COMMIT");
    CHECK(sqlstate_of(b, "SELECT 4") == "53300");
    CHECK(a.value("SELECT 5") == "5");
    CHECK(b.value("SELECT 6") == "6");

    // A try-lock that took it holds it, and the connection with it.
    holder.exec("SELECT pg_advisory_unlock(4202)");
    CHECK(a.value("SELECT pg_try_advisory_lock(4202)") == "t");
    CHECK(a.value("SELECT 7") == "7");
    CHECK(sqlstate_of(b, "SELECT 8") == "53300");
    CHECK(advisory_locks_on_master(c, "4202") == "1");
    // pg_advisory_unlock_all() needs no question: the pin goes with it.
    a.exec("SELECT pg_advisory_unlock_all()");
    CHECK(b.value("SELECT 9") == "9");
    CHECK(advisory_locks_on_master(c, "4202") == "0");
    r.finish();
}

TEST_CASE("advisory pin: a lock taken by a unit that failed still pins", "[advisory_pin]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, kPool);
    PgConn a(r.conninfo());
    PgConn b(r.conninfo());
    CHECK(a.value("SELECT 1") == "1");
    CHECK(b.value("SELECT 2") == "2");

    // A session-level lock survives the failure of the statements after it.
    CHECK(sqlstate_of(a, "SELECT pg_advisory_lock(4203); SELECT 1/0") == "22012");
    CHECK(advisory_locks_on_master(c, "4203") == "1");
    CHECK(sqlstate_of(b, "SELECT 3") == "53300");
    CHECK(a.value("SELECT 4") == "4");  // asked: still held
    CHECK(sqlstate_of(b, "SELECT 5") == "53300");
    // B never got A's connection, so the lock was never thrown away with DISCARD ALL.
    CHECK(advisory_locks_on_master(c, "4203") == "1");
    // A failed unit's unlock may release it all the same: here it did.
    CHECK(sqlstate_of(a, "SELECT pg_advisory_unlock(4203); SELECT 1/0") == "22012");
    CHECK(advisory_locks_on_master(c, "4203") == "0");
    CHECK(a.value("SELECT 6") == "6");
    CHECK(b.value("SELECT 7") == "7");

    // Session-level locks ignore the block: one taken in a block rolled back is held ...
    a.exec("BEGIN");
    a.exec("SELECT pg_advisory_lock(4203)");
    a.exec("ROLLBACK");
    CHECK(advisory_locks_on_master(c, "4203") == "1");
    CHECK(a.value("SELECT 8") == "8");
    CHECK(sqlstate_of(b, "SELECT 9") == "53300");
    // ... and one released in a block rolled back is gone.
    a.exec("BEGIN");
    CHECK(a.value("SELECT pg_advisory_unlock(4203)") == "t");
    a.exec("ROLLBACK");
    CHECK(advisory_locks_on_master(c, "4203") == "0");
    CHECK(a.value("SELECT 10") == "10");
    CHECK(b.value("SELECT 11") == "11");
    r.finish();
}

TEST_CASE(
    "advisory pin: without a pool a held lock keeps reads on the master, a released one "
    "does not",
    "[advisory_pin]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    const std::string master = std::to_string(c.port(0));
    PgConn a(r.conninfo());
    auto reads_on_master = [&](int n) {
        return count_ports(a, n, "SELECT inet_server_port()")[master];
    };
    // A read reaches a standby (read-your-writes keeps reads on the master until the watcher
    // has sampled it after the session's latest write: the lock functions count as writes).
    auto reads_reach_a_standby = [&] {
        return wait_until([&] { return reads_on_master(10) < 10; });
    };
    // Pinned, every read stays on the master, also long after read-your-writes let go (the
    // watcher samples the master every 100 ms here): reads for a second, all there.
    auto reads_stay_on_master = [&] {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        int elsewhere = 0;
        while (std::chrono::steady_clock::now() < until) elsewhere += 10 - reads_on_master(10);
        return elsewhere == 0;
    };

    a.exec("SELECT pg_advisory_lock(4204)");
    a.exec("SELECT pg_advisory_lock(4204)");
    CHECK(reads_stay_on_master());
    CHECK(a.value("SELECT pg_advisory_unlock(4204)") == "t");
    CHECK(reads_stay_on_master());  // one lock left: still pinned
    CHECK(a.value("SELECT pg_advisory_unlock(4204)") == "t");
    CHECK(a.value("SELECT 1") == "1");  // asked: none left, unpinned
    CHECK(reads_reach_a_standby());

    PgConn holder(c.conninfo(0, kTestUser, kTestDb));
    holder.exec("SELECT pg_advisory_lock(4205)");
    CHECK(a.value("SELECT pg_try_advisory_lock(4205)") == "f");
    CHECK(a.value("SELECT 2") == "2");
    CHECK(reads_reach_a_standby());
    holder.exec("SELECT pg_advisory_unlock(4205)");
    // One that took it keeps the reads on the master until released.
    CHECK(a.value("SELECT pg_try_advisory_lock(4205)") == "t");
    CHECK(reads_stay_on_master());
    a.exec("SELECT pg_advisory_unlock_all()");
    CHECK(reads_reach_a_standby());
    r.finish();
}
