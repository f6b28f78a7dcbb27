// The admin console against the real cluster: database "pgrouter" as an admin-users member
// gives result sets that psql and libpq read (SHOW BACKENDS, CLIENTS, SERVERS, POOLS, STATS,
// WORKERS, CONFIG, VERSION, HELP), values checked against what the test did; RELOAD reloads;
// other statements get 42601, other users FATAL 42501; no backend is ever opened for it (the
// cluster has no database "pgrouter"). Also the log-connections lines.
#include <libpq-fe.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>

#include "../harness/auth_files.h"
#include "../harness/cluster.h"
#include "../harness/files.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"
#include "pgrouter/base/version.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

struct Table {
    std::vector<std::string> columns;
    Rows rows;
    int col(const std::string& name) const {
        for (std::size_t i = 0; i < columns.size(); ++i) {
            if (columns[i] == name) return static_cast<int>(i);
        }
        FAIL("no column " << name);
        return -1;
    }
};

Table show(PgConn& conn, const std::string& sql) {
    PGresult* res = PQexec(conn.get(), sql.c_str());
    INFO(sql << ": " << PQerrorMessage(conn.get()));
    REQUIRE(PQresultStatus(res) == PGRES_TUPLES_OK);
    Table t;
    for (int c = 0; c < PQnfields(res); ++c) t.columns.emplace_back(PQfname(res, c));
    for (int r = 0; r < PQntuples(res); ++r) {
        std::vector<std::string> row;
        for (int c = 0; c < PQnfields(res); ++c) row.emplace_back(PQgetvalue(res, r, c));
        t.rows.push_back(std::move(row));
    }
    PQclear(res);
    return t;
}

struct Failure {
    std::string sqlstate;
    std::string message;
    std::string hint;
};

Failure fails(PgConn& conn, const std::string& sql) {
    PGresult* res = PQexec(conn.get(), sql.c_str());
    REQUIRE(PQresultStatus(res) == PGRES_FATAL_ERROR);
    auto field = [res](int f) {
        const char* v = PQresultErrorField(res, f);
        return std::string(v != nullptr ? v : "");
    };
    Failure out{field(PG_DIAG_SQLSTATE), field(PG_DIAG_MESSAGE_PRIMARY),
                field(PG_DIAG_MESSAGE_HINT)};
    PQclear(res);
    return out;
}

const std::vector<std::string>* row_of(const Table& t, const std::string& column,
                                       const std::string& value) {
    int c = t.col(column);
    for (const auto& row : t.rows) {
        if (row[static_cast<std::size_t>(c)] == value) return &row;
    }
    return nullptr;
}

std::string addr(const Cluster& c, int node) { return "127.0.0.1:" + std::to_string(c.port(node)); }

long sum_column(const Table& t, const std::string& column) {
    long n = 0;
    int c = t.col(column);
    for (const auto& row : t.rows) n += std::stol(row[static_cast<std::size_t>(c)]);
    return n;
}

// Whether the console lets this conninfo in (SHOW VERSION answers).
bool can_connect_console(const std::string& conninfo) {
    PGconn* conn = PQconnectdb(conninfo.c_str());
    bool ok = PQstatus(conn) == CONNECTION_OK;
    if (ok) {
        PGresult* res = PQexec(conn, "SHOW VERSION");
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
    }
    PQfinish(conn);
    return ok;
}

}  // namespace

TEST_CASE("console: SHOW commands answer from the segment, never from a backend", "[console]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}, {1}, {2}}, "admin-users postgres," + std::string(kTestUser) + "x\n");
    PgConn admin(r.conninfo(kSuperUser, "pgrouter"));

    Table b = show(admin, "SHOW BACKENDS");
    REQUIRE(b.rows.size() == 3);
    const auto* master = row_of(b, "backend", addr(c, 0));
    REQUIRE(master != nullptr);
    CHECK((*master)[b.col("role")] == "master");
    CHECK((*master)[b.col("status")] == "OK");
    CHECK((*master)[b.col("lag_bytes")] == "0");
    CHECK((*master)[b.col("fenced")] == "no");
    for (int node : {1, 2}) {
        const auto* s = row_of(b, "backend", addr(c, node));
        REQUIRE(s != nullptr);
        CHECK((*s)[b.col("role")] == "standby");
        CHECK((*s)[b.col("status")] == "OK");
    }
    long logins_before = sum_column(b, "server_logins");

    Table st0 = show(admin, "show stats");  // case and spacing do not matter
    {
        PgConn app(r.conninfo());
        for (int i = 0; i < 10; ++i) app.value("SELECT 1");
        app.exec("BEGIN");
        app.value("SELECT 1");  // a read inside a block: the block's standby, or the master
        PgConn listener(r.conninfo());
        listener.exec("LISTEN console_test");

        Table cl = show(admin, "SHOW CLIENTS");
        INFO("clients: " << cl.rows.size());
        int pinned = 0, in_block = 0;
        for (const auto& row : cl.rows) {
            if (row[cl.col("user")] != kTestUser) continue;
            CHECK(row[cl.col("database")] == kTestDb);
            CHECK(row[cl.col("address")] == "127.0.0.1");
            CHECK(row[cl.col("tls")] == "no");
            CHECK_FALSE(row[cl.col("connected_since")].empty());
            if (row[cl.col("pinned_by")] == "listen") {
                pinned += 1;
                CHECK(row[cl.col("backend")] == addr(c, 0));
            }
            if (row[cl.col("state")] == "idle in transaction") in_block += 1;
        }
        CHECK(pinned == 1);
        CHECK(in_block == 1);
        app.exec("COMMIT");

        Table w = show(admin, "SHOW WORKERS");
        REQUIRE(w.rows.size() == 2);
        std::vector<pid_t> pids = r.router->children_titled("worker");
        for (const auto& row : w.rows) {
            pid_t pid = std::stoi(row[w.col("pid")]);
            CHECK(std::find(pids.begin(), pids.end(), pid) != pids.end());
        }
        CHECK(sum_column(w, "clients") >= 3);  // app, listener and this console
        CHECK(sum_column(w, "pinned") == 1);

        Table sv = show(admin, "SHOW SERVERS");
        CHECK(sv.rows.size() == 6);  // 2 workers x 3 backends
        CHECK(sum_column(sv, "connections") >= 2);
    }
    Table st1 = show(admin, "SHOW STATS");
    long reads = 0;
    for (int node : {1, 2}) {
        const auto* before = row_of(st0, "backend", addr(c, node));
        const auto* after = row_of(st1, "backend", addr(c, node));
        REQUIRE((before != nullptr && after != nullptr));
        reads += std::stol((*after)[st1.col("read")]) - std::stol((*before)[st0.col("read")]);
    }
    CHECK(reads == 10);
    CHECK(st1.columns.size() == 2 + 12 + 2);

    Table pools = show(admin, "SHOW POOLS");
    CHECK(pools.columns == std::vector<std::string>{"database", "user", "backend", "active", "idle",
                                                    "waiting", "max_wait_ms"});
    CHECK(pools.rows.empty());  // no pool block

    Table v = show(admin, "SHOW VERSION");
    REQUIRE(v.rows.size() == 1);
    CHECK(v.rows[0][0] == "pgrouter " + std::string(pgrouter::kVersion));
    CHECK(show(admin, "SHOW HELP").rows.size() == 10);

    Table cfg = show(admin, "SHOW CONFIG;");
    const auto* admins = row_of(cfg, "key", "admin-users");
    REQUIRE(admins != nullptr);
    CHECK((*admins)[1] == "postgres," + std::string(kTestUser) + "x");
    const auto* pw = row_of(cfg, "key", "health.password");
    REQUIRE(pw != nullptr);
    CHECK((*pw)[1] == "(set)");  // never the password itself

    // Several statements in one Query; a bad one stops the rest, as in PostgreSQL.
    CHECK(show(admin, "SHOW VERSION; SHOW HELP").rows.size() == 10);
    Failure f = fails(admin, "SELECT 1");
    CHECK(f.sqlstate == "42601");
    CHECK(f.hint.find("SHOW BACKENDS") != std::string::npos);
    CHECK(f.hint.find("RELOAD") != std::string::npos);
    CHECK(fails(admin, "SHOW VERSION; DROP TABLE x").sqlstate == "42601");
    CHECK(show(admin, "SHOW VERSION").rows.size() == 1);  // the console goes on

    // None of it logged in anywhere (and "pgrouter" is not a database of the cluster).
    CHECK(sum_column(show(admin, "SHOW BACKENDS"), "server_logins") - logins_before >= 1);
    long logins_now = sum_column(show(admin, "SHOW BACKENDS"), "server_logins");
    show(admin, "SHOW CLIENTS");
    show(admin, "SHOW STATS");
    CHECK(sum_column(show(admin, "SHOW BACKENDS"), "server_logins") == logins_now);
    CHECK(c.exec(0, "SELECT count(*) FROM pg_database WHERE datname = 'pgrouter'") == "0");

    // psql prints the tables (the README's example).
    RunResult p = run({"psql", "-X", r.conninfo(kSuperUser, "pgrouter"), "-c", "SHOW BACKENDS"});
    INFO(p.err);
    CHECK(p.status == 0);
    CHECK(p.out.find("backend") != std::string::npos);
    CHECK(p.out.find(addr(c, 0)) != std::string::npos);
    CHECK(p.out.find("(3 rows)") != std::string::npos);
    r.finish();
}

TEST_CASE("console: users outside admin-users get FATAL 42501; RELOAD reloads", "[console]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}, {1}, {2}}, "admin-users postgres\n");
    PGconn* other = PQconnectdb(r.conninfo(kTestUser, "pgrouter").c_str());
    CHECK(PQstatus(other) == CONNECTION_BAD);
    std::string message = PQerrorMessage(other);
    CHECK(message.find("permission denied to use the pgrouter admin console") != std::string::npos);
    PQfinish(other);
    CHECK(r.router->wait_for_log("is not in admin-users: console refused"));
    // A wrong password is refused before the console is even considered.
    CHECK_FALSE(can_connect("host=127.0.0.1 port=" + std::to_string(r.port) +
                            " user=postgres password=wrong dbname=pgrouter sslmode=disable"));

    PgConn admin(r.conninfo(kSuperUser, "pgrouter"));
    std::size_t mark = r.router->log_size();
    // The reload picks up a new admin-users: pgrtest may now use the console.
    std::string conf = read_file(r.router->config_path());
    std::string was = "admin-users postgres\n";
    REQUIRE(conf.find(was) != std::string::npos);
    conf.replace(conf.find(was), was.size(),
                 "admin-users postgres," + std::string(kTestUser) + "\n");
    r.router->write_config(conf);
    PGresult* res = PQexec(admin.get(), "RELOAD");
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
    CHECK(std::string(PQcmdStatus(res)) == "RELOAD");
    PQclear(res);
    CHECK(r.router->wait_for_log("configuration reloaded", 10s, mark));
    CHECK(wait_until([&] { return can_connect_console(r.conninfo(kTestUser, "pgrouter")); }, 10s));
    r.finish();
}

TEST_CASE("log-connections: connection, authorization and disconnection lines", "[console]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}, {1}, {2}}, "log-connections on\n");
    std::size_t mark = r.router->log_size();
    {
        PgConn app(r.conninfo());
        app.value("SELECT 1");
        app.value("SELECT 2");
    }
    CHECK(
        r.router->wait_for_log("connection received: host=127\\.0\\.0\\.1 port=[0-9]+", 10s, mark));
    CHECK(r.router->wait_for_log(std::string("connection authorized: user=") + kTestUser +
                                     " database=" + kTestDb + " host=127\\.0\\.0\\.1$",
                                 10s, mark));
    CHECK(r.router->wait_for_log(std::string("disconnection: session time: [0-9]+:[0-9]{2}:[0-9]{2}"
                                             "\\.[0-9]{3} user=") +
                                     kTestUser + " database=" + kTestDb +
                                     " host=127\\.0\\.0\\.1 units=2 bytes in=[1-9][0-9]* "
                                     "out=[1-9][0-9]*: ",
                                 10s, mark));
    CHECK_FALSE(can_connect("host=127.0.0.1 port=" + std::to_string(r.port) + " user=" + kTestUser +
                            " password=wrong dbname=" + kTestDb + " sslmode=disable"));
    CHECK(r.router->wait_for_log("authentication failed for user", 10s, mark));
    CHECK(r.router->log().find("password=wrong") == std::string::npos);
    r.finish();
}
