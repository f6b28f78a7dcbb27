// Transparency and safety through pgrouter on the real cluster, each against what a direct
// connection does: a session's settings mean on a standby what they meant on the master (or the
// standby does not serve it), standby-only errors are replayed on the master, the extended
// protocol survives replays and unsynced batches. Lag is made deterministic by pausing replay.
#include <libpq-fe.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>

#include "../harness/cluster.h"
#include "../harness/pq.h"
#include "../harness/raw_client.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

// Resumes replay on every standby on scope exit, so a failing test never leaves the shared
// cluster paused; pauses them all when made.
struct PausedStandbys {
    explicit PausedStandbys(Cluster& cl) : c(cl) {
        for (int i = 1; i <= c.standby_count(); ++i) c.pause_replay(i);
    }
    ~PausedStandbys() {
        for (int i = 1; i <= c.standby_count(); ++i) {
            try {
                c.resume_replay(i);
            } catch (...) {
            }
        }
    }
    Cluster& c;
};

// Waits until every standby has replayed what the primary has.
void replayed_everywhere(Cluster& c) {
    for (int i = 1; i <= c.standby_count(); ++i) c.wait_replayed(i);
}

// Runs `sql` on the primary as the test user and waits until every standby has replayed it.
void on_all_nodes(Cluster& c, const std::string& sql) {
    c.exec(0, sql, kTestUser, kTestDb);
    replayed_everywhere(c);
}

std::string unique_name(const std::string& prefix) {
    static int seq = 0;
    return prefix + "_" + std::to_string(getpid()) + "_" + std::to_string(++seq);
}

// "OK <command tag>", the first value of a result, or "ERROR <sqlstate> <message>".
std::string outcome(PGresult* res) {
    std::string out;
    switch (PQresultStatus(res)) {
        case PGRES_COMMAND_OK:
            out = std::string("OK ") + PQcmdStatus(res);
            break;
        case PGRES_TUPLES_OK:
            out = PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "";
            break;
        default: {
            const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            const char* msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            out = std::string("ERROR ") + (state ? state : "?") + " " + (msg ? msg : "");
        }
    }
    PQclear(res);
    return out;
}

std::string run(PgConn& conn, const std::string& sql) {
    return outcome(PQexec(conn.get(), sql.c_str()));
}

std::map<std::string, int> count_values(PgConn& conn, int n, const std::string& sql) {
    std::map<std::string, int> seen;
    for (int i = 0; i < n; ++i) seen[run(conn, sql)] += 1;
    return seen;
}

// One frontend message: type, length, payload.
std::string message(char type, const std::string& payload) {
    std::string out(1, type);
    std::uint32_t len = static_cast<std::uint32_t>(payload.size() + 4);
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((len >> shift) & 0xff);
    return out + payload;
}
std::string cstr(const std::string& s) { return s + '\0'; }
std::string parse(const std::string& name, const std::string& sql) {
    return message('P', cstr(name) + cstr(sql) + std::string(2, '\0'));
}
std::string bind(const std::string& portal, const std::string& stmt) {
    return message('B', cstr(portal) + cstr(stmt) + std::string(6, '\0'));
}
std::string execute(const std::string& portal) {
    return message('E', cstr(portal) + std::string(4, '\0'));
}
std::string query(const std::string& sql) { return message('Q', cstr(sql)); }

// Messages up to and including the next ReadyForQuery (or until the deadline passes).
std::vector<RawMessage> until_ready(RawClient& rc, std::chrono::milliseconds deadline = 10s) {
    std::vector<RawMessage> out;
    while (auto m = rc.read(deadline)) {
        out.push_back(*m);
        if (m->type == 'Z') break;
    }
    return out;
}

std::string errors_of(const std::vector<RawMessage>& msgs) {
    std::string out;
    for (const RawMessage& m : msgs) {
        if (m.type == 'E') out += error_code(m) + " " + error_message(m) + "; ";
    }
    return out;
}

}  // namespace

TEST_CASE("SET ROLE to a role a paused standby has not replayed: no read runs as another user",
          "[safety][set]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    std::string role = unique_name("sr_role");
    {
        PausedStandbys paused(c);
        c.exec(0, "CREATE ROLE " + role + "; GRANT " + role + " TO " + kTestUser);
        PgConn conn(r.conninfo());
        CHECK(run(conn, "SET ROLE " + role) == "OK SET");
        auto seen = count_values(conn, 6, "SELECT current_user");
        CHECK(seen[role] == 6);
        // set_config('role', ...) inside a SELECT must not fail where it succeeds directly.
        PgConn other(r.conninfo());
        CHECK(run(other, "SELECT set_config('role', '" + role + "', false)") == role);
        seen = count_values(other, 6, "SELECT current_user");
        CHECK(seen[role] == 6);
        // SET SESSION AUTHORIZATION needs a superuser login.
        PgConn super(r.conninfo(kSuperUser, "postgres"));
        CHECK(run(super, "SET SESSION AUTHORIZATION " + role) == "OK SET");
        seen = count_values(super, 6, "SELECT session_user");
        CHECK(seen[role] == 6);
    }
    replayed_everywhere(c);
    c.exec(0, "DROP ROLE " + role);
    r.finish();
}

TEST_CASE("SET search_path to a schema a paused standby has not replayed resolves as on the master",
          "[safety][set]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    std::string schema = unique_name("sp_schema");
    on_all_nodes(c,
                 "DROP TABLE IF EXISTS public.sp_t; CREATE TABLE public.sp_t (v text);"
                 "INSERT INTO public.sp_t VALUES ('public')");
    {
        PausedStandbys paused(c);
        c.exec(0,
               "CREATE SCHEMA " + schema + "; CREATE TABLE " + schema + ".sp_t (v text);" +
                   "INSERT INTO " + schema + ".sp_t VALUES ('" + schema + "')",
               kTestUser, kTestDb);
        PgConn conn(r.conninfo());
        CHECK(run(conn, "SET search_path = " + schema + ", public") == "OK SET");
        auto seen = count_values(conn, 6, "SELECT v FROM sp_t");
        CHECK(seen[schema] == 6);
    }
    replayed_everywhere(c);
    c.exec(0, "DROP SCHEMA " + schema + " CASCADE; DROP TABLE public.sp_t", kTestUser, kTestDb);
    r.finish();
}

TEST_CASE("connect-time and per-request SETs to long-existing objects keep reads on the standbys",
          "[safety][set]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    std::string master = std::to_string(c.port(0));
    auto conn_ptr = std::make_unique<PgConn>(r.conninfo());
    PgConn& conn = *conn_ptr;
    CHECK(run(conn, "SET application_name = 'safety'") == "OK SET");
    CHECK(run(conn, "SET extra_float_digits = 3") == "OK SET");
    auto seen = count_values(conn, 20, "SELECT inet_server_port()");
    INFO("master " << master);
    CHECK(seen[master] == 0);
    int on_standbys = 0;
    for (int i = 0; i < 20; ++i) {
        CHECK(run(conn, "SET search_path = public, pg_catalog") == "OK SET");
        on_standbys += run(conn, "SELECT inet_server_port()") != master;
    }
    WARN("reads on standbys after a per-request SET search_path: " << on_standbys << "/20");
    CHECK(on_standbys >= 18);
    conn_ptr.reset();
    r.finish();
}

TEST_CASE("a prepared statement refused by a standby (25006) is replayed on the master",
          "[safety][replay][extended]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    std::string master = std::to_string(c.port(0));
    on_all_nodes(c,
                 "DROP TABLE IF EXISTS ps_replay_t; CREATE TABLE ps_replay_t (x int);"
                 "CREATE OR REPLACE FUNCTION ps_replay_write() RETURNS int LANGUAGE plpgsql AS "
                 "$$BEGIN INSERT INTO ps_replay_t VALUES (1); RETURN inet_server_port(); END$$");
    // Named (node-pg, pgJDBC prepareThreshold=1, pgx) and unnamed (asyncpg-like) statements.
    auto named_ptr = std::make_unique<PgConn>(r.conninfo());
    PgConn& named = *named_ptr;
    REQUIRE(outcome(PQprepare(named.get(), "ps_w", "SELECT ps_replay_write()", 0, nullptr)) ==
            "OK ");
    for (int i = 0; i < 5; ++i) {
        CHECK(outcome(PQexecPrepared(named.get(), "ps_w", 0, nullptr, nullptr, nullptr, 0)) ==
              master);
    }
    auto unnamed_ptr = std::make_unique<PgConn>(r.conninfo());
    PgConn& unnamed = *unnamed_ptr;
    for (int i = 0; i < 5; ++i) {
        CHECK(outcome(PQexecParams(unnamed.get(), "SELECT ps_replay_write()", 0, nullptr, nullptr,
                                   nullptr, nullptr, 0)) == master);
    }
    CHECK(c.exec(0, "SELECT count(*) FROM ps_replay_t", kTestUser, kTestDb) == "10");
    // The statement registry stays true: the named statement runs again, and a read after it.
    CHECK(outcome(PQexecPrepared(named.get(), "ps_w", 0, nullptr, nullptr, nullptr, 0)) == master);
    CHECK(run(named, "SELECT 1") == "1");
    named_ptr.reset();
    unnamed_ptr.reset();
    r.finish();
}

TEST_CASE("BEGIN READ ONLY then SERIALIZABLE on a standby moves the block to the master",
          "[safety][replay][transaction]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    auto conn_ptr = std::make_unique<PgConn>(r.conninfo());
    PgConn& conn = *conn_ptr;
    for (int i = 0; i < 5; ++i) {
        CHECK(run(conn, "BEGIN READ ONLY") == "OK BEGIN");
        CHECK(run(conn, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE") == "OK SET");
        CHECK(run(conn, "SELECT current_setting('transaction_isolation')") == "serializable");
        CHECK(run(conn, "COMMIT") == "OK COMMIT");
    }
    CHECK(run(conn, "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY") == "OK BEGIN");
    CHECK(run(conn, "SELECT 1") == "1");
    CHECK(run(conn, "COMMIT") == "OK COMMIT");
    conn_ptr.reset();
    r.finish();
}

TEST_CASE("unsynced extended BEGIN followed by a simple Query is one unit on the master",
          "[safety][extended][transaction]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    on_all_nodes(c, "DROP TABLE IF EXISTS unsynced_t; CREATE TABLE unsynced_t (x int)");
    auto rc_ptr = std::make_unique<RawClient>(r.port);
    RawClient& rc = *rc_ptr;
    auto login = rc.login(kTestUser, kTestDb, kTestPassword);
    REQUIRE(find_message(login, 'Z') != nullptr);
    // pgJDBC autosave: BEGIN as Parse/Bind/Execute without Sync, then a simple SAVEPOINT.
    REQUIRE(rc.send(parse("", "BEGIN") + bind("", "") + execute("") +
                    query("SAVEPOINT pgjdbc_autosave")));
    auto first = until_ready(rc);
    INFO("errors: " << errors_of(first));
    REQUIRE(!first.empty());
    CHECK(first.back().type == 'Z');
    CHECK(first.back().payload == "T");  // inside the block
    CHECK(errors_of(first).empty());
    REQUIRE(rc.send(query("INSERT INTO unsynced_t VALUES (1)")));
    auto insert = until_ready(rc);
    CHECK(errors_of(insert).empty());
    // A hidden write: the extended INSERT without Sync, then a Query.
    REQUIRE(rc.send(parse("", "INSERT INTO unsynced_t VALUES (2)") + bind("", "") + execute("") +
                    query("RELEASE SAVEPOINT pgjdbc_autosave")));
    auto second = until_ready(rc);
    CHECK(errors_of(second).empty());
    REQUIRE(rc.send(query("COMMIT")));
    auto commit = until_ready(rc);
    CHECK(errors_of(commit).empty());
    REQUIRE(!commit.empty());
    CHECK(commit.back().payload == "I");
    CHECK(c.exec(0, "SELECT count(*) FROM unsynced_t", kTestUser, kTestDb) == "2");
    rc_ptr.reset();
    r.finish();
}

TEST_CASE("a prepared statement whose result changed answers 0A000 on every backend",
          "[safety][extended][shape]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    on_all_nodes(c,
                 "DROP TABLE IF EXISTS shape_t; CREATE TABLE shape_t (id int, v text);"
                 "INSERT INTO shape_t VALUES (1, 'one')");
    auto conn_ptr = std::make_unique<PgConn>(r.conninfo());
    PgConn& conn = *conn_ptr;
    const char* one[] = {"1"};
    REQUIRE(outcome(PQprepare(conn.get(), "shape_s", "SELECT * FROM shape_t WHERE id = $1", 1,
                              nullptr)) == "OK ");
    // Described once (the client caches its two columns) and run on one backend.
    PGresult* desc = PQdescribePrepared(conn.get(), "shape_s");
    REQUIRE(PQnfields(desc) == 2);
    PQclear(desc);
    on_all_nodes(c, "ALTER TABLE shape_t ADD COLUMN extra int");
    // Directly, PostgreSQL refuses every later execution; through pgrouter the backends
    // that parse it afresh (with three columns) must refuse it the same way.
    auto seen = std::map<std::string, int>();
    for (int i = 0; i < 12; ++i) {
        seen[outcome(PQexecPrepared(conn.get(), "shape_s", 1, one, nullptr, nullptr, 0))] += 1;
    }
    std::string all;
    for (const auto& [what, n] : seen) all += std::to_string(n) + " × " + what + "; ";
    INFO(all);
    CHECK(seen["ERROR 0A000 cached plan must not change result type"] == 12);
    // The client prepares it again and gets the new shape wherever it runs.
    REQUIRE(outcome(PQprepare(conn.get(), "shape_s2", "SELECT * FROM shape_t WHERE id = $1", 1,
                              nullptr)) == "OK ");
    for (int i = 0; i < 6; ++i) {
        PGresult* res = PQexecPrepared(conn.get(), "shape_s2", 1, one, nullptr, nullptr, 0);
        CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
        CHECK(PQnfields(res) == 3);
        PQclear(res);
    }
    conn_ptr.reset();
    c.exec(0, "DROP TABLE shape_t", kTestUser, kTestDb);
    r.finish();
}

TEST_CASE("standby-only errors of statements the classifier cannot see are replayed on the master",
          "[safety][replay]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    // A user function hides a WAL control function: a read to the classifier, 55000
    // "recovery is in progress" on a standby.
    on_all_nodes(c,
                 "DROP TABLE IF EXISTS rw_t; CREATE TABLE rw_t (x int);"
                 "CREATE OR REPLACE FUNCTION safety_restore_point() RETURNS text LANGUAGE sql AS "
                 "$$SELECT pg_create_restore_point('safety')::text$$");
    auto conn_ptr = std::make_unique<PgConn>(r.conninfo(kSuperUser, kTestDb));
    PgConn& conn = *conn_ptr;
    for (int i = 0; i < 4; ++i) {
        CHECK(run(conn, "SELECT safety_restore_point() <> ''") == "t");
    }
    // BEGIN READ ONLY starts on a standby; SET TRANSACTION READ WRITE is refused there (0A000
    // "cannot set transaction read-write mode during recovery"): the block moves.
    for (int i = 0; i < 4; ++i) {
        CHECK(run(conn, "BEGIN READ ONLY") == "OK BEGIN");
        CHECK(run(conn, "SET TRANSACTION READ WRITE") == "OK SET");
        CHECK(run(conn, "INSERT INTO rw_t VALUES (1)") == "OK INSERT 0 1");
        CHECK(run(conn, "COMMIT") == "OK COMMIT");
    }
    CHECK(c.exec(0, "SELECT count(*) FROM rw_t", kTestUser, kTestDb) == "4");
    // Another 0A000 is the statement's own error, passed on as it is.
    CHECK(run(conn, "BEGIN READ ONLY") == "OK BEGIN");
    CHECK(run(conn, "SELECT 1") == "1");
    CHECK(run(conn, "SET TRANSACTION READ WRITE").rfind("ERROR 25001", 0) == 0);
    CHECK(run(conn, "ROLLBACK") == "OK ROLLBACK");
    conn_ptr.reset();
    r.finish();
}
