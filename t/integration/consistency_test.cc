// Consistency controls against a real cluster, observed with inet_server_port(): the
// pgrouter.* parameters (SHOW, SET, SET LOCAL, RESET, rollbacks, bad values, connect-time
// options), statement hints, the causal token (commit_lsn carried to min_lsn in another
// session and another pgrouter) with standbys delayed by recovery_min_apply_delay, and
// staleness bounds in bytes and time with a standby paused by pg_wal_replay_pause().
#include <libpq-fe.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <thread>

#include "../harness/cluster.h"
#include "../harness/log_check.h"
#include "../harness/pq.h"
#include "../harness/raw_client.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"
#include "pgrouter/proto/encoder.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

// Both standbys apply WAL 1 s late, once they have the (empty) table `table`.
void delay_standbys(Cluster& c, const std::string& table) {
    for (int i : {1, 2}) {
        c.exec(i, "ALTER SYSTEM SET recovery_min_apply_delay = '1s'");
        c.reload(i);
    }
    c.exec(0, "CREATE TABLE " + table + " (id int)");
    c.wait_replayed(1);
    c.wait_replayed(2);
}

// "SQLSTATE message" of a statement that must fail, or "OK".
std::string error_of(PgConn& conn, const std::string& sql, std::string* detail = nullptr) {
    PGresult* res = PQexec(conn.get(), sql.c_str());
    std::string out = "OK";
    if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
        const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char* message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char* d = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        out = std::string(state != nullptr ? state : "?") + " " +
              (message != nullptr ? message : "?");
        if (detail != nullptr) *detail = d != nullptr ? d : "";
    }
    PQclear(res);
    return out;
}

// error_of() through the extended protocol (Parse, Bind, Describe, Execute, Sync, as
// PQexecParams sends them), with the error's detail and hint.
std::string ext_error_of(PgConn& conn, const std::string& sql, std::string* hint = nullptr,
                         std::string* detail = nullptr, std::string* context = nullptr) {
    PGresult* res = PQexecParams(conn.get(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0);
    std::string out = "OK";
    if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
        auto field = [&](int f) {
            const char* v = PQresultErrorField(res, f);
            return std::string(v != nullptr ? v : "");
        };
        out = field(PG_DIAG_SQLSTATE) + " " + field(PG_DIAG_MESSAGE_PRIMARY);
        if (hint != nullptr) *hint = field(PG_DIAG_MESSAGE_HINT);
        if (detail != nullptr) *detail = field(PG_DIAG_MESSAGE_DETAIL);
        if (context != nullptr) *context = field(PG_DIAG_CONTEXT);
    }
    PQclear(res);
    return out;
}

// The one value a statement answers through the extended protocol; "ERROR ..." otherwise.
std::string ext_value(PgConn& conn, const std::string& sql) {
    PGresult* res = PQexecParams(conn.get(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0);
    std::string out = "ERROR " + std::string(PQresultErrorMessage(res));
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 1) {
        out = PQgetvalue(res, 0, 0);
    }
    PQclear(res);
    return out;
}

// The value (or "SQLSTATE message") of running the prepared statement `name`.
std::string run_prepared(PgConn& conn, const std::string& name) {
    PGresult* res = PQexecPrepared(conn.get(), name.c_str(), 0, nullptr, nullptr, nullptr, 0);
    std::string out = "OK";
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        out = PQgetvalue(res, 0, 0);
    } else if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
        const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char* message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        out = std::string(state != nullptr ? state : "?") + " " +
              (message != nullptr ? message : "?");
    }
    PQclear(res);
    return out;
}

// Extended-protocol messages for the byte-level comparison with a server.
std::string parse_msg(const std::string& name, const std::string& sql) {
    std::string out;
    pgrouter::proto::MessageBuilder(out, pgrouter::proto::FrontendMsg::Parse)
        .cstr(name)
        .cstr(sql)
        .i16(0);
    return out;
}
std::string bind_msg(const std::string& statement) {
    std::string out;
    pgrouter::proto::MessageBuilder(out, pgrouter::proto::FrontendMsg::Bind)
        .cstr("")
        .cstr(statement)
        .i16(0)
        .i16(0)
        .i16(0);
    return out;
}
std::string describe_msg(char what, const std::string& name) {
    std::string out;
    pgrouter::proto::MessageBuilder(out, pgrouter::proto::FrontendMsg::Describe)
        .u8(static_cast<std::uint8_t>(what))
        .cstr(name);
    return out;
}
std::string execute_msg(std::int32_t max_rows = 0) {
    std::string out;
    pgrouter::proto::MessageBuilder(out, pgrouter::proto::FrontendMsg::Execute)
        .cstr("")
        .i32(max_rows);
    return out;
}
std::string sync_msg() {
    std::string out;
    pgrouter::proto::encode_sync(out);
    return out;
}
// PQexecParams' messages for `sql`, unnamed.
std::string exec_params_msgs(const std::string& sql) {
    return parse_msg("", sql) + bind_msg("") + describe_msg('P', "") + execute_msg();
}

// Sends `msgs` and reads the answer up to the `readies`th ReadyForQuery: the message types,
// each error's SQLSTATE in parentheses, each ReadyForQuery's transaction status after a '/'.
std::string answer_types(RawClient& c, const std::string& msgs, int readies = 1) {
    REQUIRE(c.send(msgs));
    std::string types;
    while (readies > 0) {
        auto m = c.read(10s);
        if (!m) break;
        types += m->type;
        if (m->type == 'E') types += "(" + error_code(*m) + ")";
        if (m->type == 'Z') {
            --readies;
            types += "/" + m->payload.substr(0, 1);
        }
    }
    return types;
}

std::string query_msg(const std::string& sql) {
    std::string out;
    pgrouter::proto::encode_query(out, sql);
    return out;
}

}  // namespace

TEST_CASE("pgrouter.* parameters behave like real ones: SHOW, SET, RESET, rollback, errors",
          "[consistency]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0, ""}, {1, ""}, {2, ""}});
    std::string master = std::to_string(c.port(0));
    PgConn conn(r.conninfo(kSuperUser, "postgres"));

    CHECK(conn.value("SHOW pgrouter.route") == "auto");
    CHECK(conn.value("SHOW pgrouter.min_lsn") == "0/0");
    CHECK(conn.value("SHOW pgrouter.commit_lsn") == "0/0");
    CHECK(conn.value("SHOW pgrouter.max_staleness") == "");
    auto seen = count_ports(conn, 20, "SELECT inet_server_port()");
    CHECK(seen[master] == 0);

    // route = primary sends reads (and read-only blocks) to the master; RESET undoes it.
    conn.exec("SET pgrouter.route = 'primary'");
    CHECK(conn.value("SHOW pgrouter.route") == "primary");
    seen = count_ports(conn, 20, "SELECT inet_server_port()");
    CHECK(seen[master] == 20);
    conn.exec("BEGIN READ ONLY");
    CHECK(conn.value("SELECT inet_server_port()") == master);
    conn.exec("COMMIT");
    conn.exec("RESET pgrouter.route");
    CHECK(conn.value("SHOW pgrouter.route") == "auto");
    seen = count_ports(conn, 20, "SELECT inet_server_port()");
    CHECK(seen[master] == 0);

    // A rolled-back SET does not stick; SET LOCAL ends with its block; RESET ALL and
    // DISCARD ALL clear them.
    conn.exec("BEGIN");
    conn.exec("SET pgrouter.route TO 'primary'");
    CHECK(conn.value("SHOW pgrouter.route") == "primary");
    conn.exec("ROLLBACK");
    CHECK(conn.value("SHOW pgrouter.route") == "auto");
    conn.exec("BEGIN");
    conn.exec("SET LOCAL pgrouter.min_lsn = '0/10'");
    CHECK(conn.value("SHOW pgrouter.min_lsn") == "0/10");
    conn.exec("COMMIT");
    CHECK(conn.value("SHOW pgrouter.min_lsn") == "0/0");
    conn.exec("BEGIN");
    conn.exec("SAVEPOINT a");
    conn.exec("SET pgrouter.max_staleness = '64kB'");
    conn.exec("ROLLBACK TO a");
    conn.exec("COMMIT");
    CHECK(conn.value("SHOW pgrouter.max_staleness") == "");
    conn.exec("SET pgrouter.route = 'primary'; SET pgrouter.max_staleness = '100ms'");
    CHECK(conn.value("SHOW pgrouter.max_staleness") == "100ms");
    conn.exec("RESET ALL");
    CHECK(conn.value("SHOW pgrouter.route") == "auto");
    CHECK(conn.value("SHOW pgrouter.max_staleness") == "");
    conn.exec("SET pgrouter.route = 'primary'");
    conn.exec("DISCARD ALL");
    CHECK(conn.value("SHOW pgrouter.route") == "auto");

    // Bad values: PostgreSQL's errors, and nothing changes.
    conn.exec("SET pgrouter.min_lsn = '0/20'");
    CHECK(error_of(conn, "SET pgrouter.min_lsn = 'zz'") ==
          "22023 invalid value for parameter \"pgrouter.min_lsn\": \"zz\"");
    CHECK(error_of(conn, "SET pgrouter.max_staleness = '-5ms'") ==
          "22023 invalid value for parameter \"pgrouter.max_staleness\": \"-5ms\"");
    CHECK(error_of(conn, "SET pgrouter.max_staleness = '5 parsecs'") ==
          "22023 invalid value for parameter \"pgrouter.max_staleness\": \"5 parsecs\"");
    CHECK(error_of(conn, "SET pgrouter.route = 'replica'") ==
          "22023 invalid value for parameter \"pgrouter.route\": \"replica\"");
    CHECK(conn.value("SHOW pgrouter.min_lsn") == "0/20");
    std::string detail;
    CHECK(error_of(conn, "SET pgrouter.xyz = 1", &detail) ==
          "42602 invalid configuration parameter name \"pgrouter.xyz\"");
    CHECK(detail == "\"pgrouter\" is a reserved prefix.");
    CHECK(error_of(conn, "SET pgrouter.commit_lsn = '0/1'") ==
          "55P02 parameter \"pgrouter.commit_lsn\" cannot be changed");
    CHECK(error_of(conn, "SHOW pgrouter.nope") ==
          "42704 unrecognized configuration parameter \"pgrouter.nope\"");
    // Inside a block the refusal fails the block, as on one server.
    conn.exec("BEGIN");
    CHECK(error_of(conn, "SET pgrouter.min_lsn = 'zz'") ==
          "22023 invalid value for parameter \"pgrouter.min_lsn\": \"zz\"");
    CHECK(error_of(conn, "SELECT 1").rfind("25P02 ", 0) == 0);
    conn.exec("ROLLBACK");
    CHECK(conn.value("SHOW pgrouter.min_lsn") == "0/20");
    conn.exec("RESET pgrouter.min_lsn");

    // A hint applies to its statement only (and is part of the cached text). First the
    // session's own write (DISCARD ALL drops temporary tables) must have been sampled.
    REQUIRE(wait_until([&] { return conn.value("SELECT inet_server_port()") != master; }, 5s));
    for (int i = 0; i < 10; ++i) {
        CHECK(conn.value("/* pgrouter: primary */ SELECT inet_server_port()") == master);
        CHECK(conn.value("SELECT inet_server_port()") != master);
    }
    // Extended protocol: the hint travels with the prepared statement.
    const char* sql = "/* pgrouter: primary */ SELECT inet_server_port()::text";
    for (int i = 0; i < 5; ++i) {
        PGresult* res = PQexecParams(conn.get(), sql, 0, nullptr, nullptr, nullptr, nullptr, 0);
        REQUIRE(PQresultStatus(res) == PGRES_TUPLES_OK);
        CHECK(std::string(PQgetvalue(res, 0, 0)) == master);
        PQclear(res);
    }

    // At connect time; RESET returns to the connection's value.
    PgConn started(r.conninfo(kSuperUser, "postgres") +
                   " options='-c pgrouter.route=primary -c pgrouter.min_lsn=0/30'");
    CHECK(started.value("SHOW pgrouter.route") == "primary");
    CHECK(started.value("SHOW pgrouter.min_lsn") == "0/30");
    CHECK(started.value("SELECT inet_server_port()") == master);
    started.exec("SET pgrouter.route = auto");
    CHECK(started.value("SELECT inet_server_port()") != master);
    started.exec("RESET pgrouter.route");
    CHECK(started.value("SHOW pgrouter.route") == "primary");
    PGconn* bad = PQconnectdb(
        (r.conninfo(kSuperUser, "postgres") + " options='-c pgrouter.min_lsn=zz'").c_str());
    CHECK(PQstatus(bad) == CONNECTION_BAD);
    CHECK(std::string(PQerrorMessage(bad))
              .find("invalid value for parameter "
                    "\"pgrouter.min_lsn\": \"zz\"") != std::string::npos);
    PQfinish(bad);

    { PgConn done = std::move(conn); }
    { PgConn done = std::move(started); }
    r.finish();
}

TEST_CASE("causal token: commit_lsn carried to min_lsn in another session and another pgrouter",
          "[consistency][token]") {
    Cluster c(ClusterOptions{.standbys = 2, .quiet = true});
    delay_standbys(c, "token_t");
    Routed one(c, {{0, ""}, {1, "{ lag 1G }"}, {2, "{ lag 1G }"}});
    Routed two(c, {{0, ""}, {1, "{ lag 1G }"}, {2, "{ lag 1G }"}});
    std::string master = std::to_string(c.port(0));
    PgConn writer(one.conninfo(kSuperUser, "postgres"));
    PgConn same(one.conninfo(kSuperUser, "postgres"));
    PgConn other(two.conninfo(kSuperUser, "postgres"));
    PgConn plain(two.conninfo(kSuperUser, "postgres"));

    // Without the token, another session's reads do reach the delayed standbys and miss.
    int plain_misses = 0, plain_standby = 0;
    for (int i = 0; i < 20; ++i) {
        writer.exec("INSERT INTO token_t VALUES (" + std::to_string(i) + ")");
        auto row = plain.query("SELECT count(*), inet_server_port() FROM token_t WHERE id = " +
                               std::to_string(i));
        if (row[0][0] != "1") ++plain_misses;
        if (row[0][1] != master) ++plain_standby;
    }
    CHECK(plain_misses > 0);
    CHECK(plain_standby > 0);

    auto start = std::chrono::steady_clock::now();
    int misses = 0, tokens_zero = 0;
    for (int i = 100; i < 300; ++i) {
        writer.exec("INSERT INTO token_t VALUES (" + std::to_string(i) + ")");
        std::string token = writer.value("SHOW pgrouter.commit_lsn");
        if (token == "0/0") ++tokens_zero;
        PgConn& reader = i % 2 == 0 ? same : other;  // same instance, then the other one
        reader.exec("SET pgrouter.min_lsn = '" + token + "'");
        if (reader.value("SELECT count(*) FROM token_t WHERE id = " + std::to_string(i)) != "1") {
            ++misses;
        }
    }
    auto took = std::chrono::steady_clock::now() - start;
    INFO("200 iterations took "
         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    CHECK(misses == 0);
    CHECK(tokens_zero == 0);
    CHECK(took < 60s);

    // Once the standbys have replayed past the token, its reads use them again.
    std::this_thread::sleep_for(1500ms);
    auto seen = count_ports(other, 30, "SELECT inet_server_port()");
    CHECK(seen[master] < 30);

    { PgConn done = std::move(writer); }
    { PgConn done = std::move(same); }
    { PgConn done = std::move(other); }
    { PgConn done = std::move(plain); }
    one.finish();
    two.finish();
}

TEST_CASE("staleness bounds: max_staleness in bytes and time, hints, the staleness directive",
          "[consistency][staleness]") {
    Cluster c(ClusterOptions{.standbys = 2, .quiet = true});
    std::string master = std::to_string(c.port(0));
    std::string s1 = std::to_string(c.port(1)), s2 = std::to_string(c.port(2));
    Routed r(c, {{0, ""}, {1, "{ lag 1G }"}, {2, "{ lag 1G }"}});
    Routed bounded(
        c, {{0, ""}, {1, "{ lag 1G; staleness 500ms }"}, {2, "{ lag 1G; staleness 500ms }"}});

    // An idle cluster: no standby is behind in time, both take reads.
    PgConn idle(bounded.conninfo(kSuperUser, "postgres"));
    REQUIRE(wait_until(
        [&] {
            auto seen = count_ports(idle, 40, "SELECT inet_server_port()");
            return seen[s1] > 0 && seen[s2] > 0;
        },
        10s));

    // Standby 1 stops replaying while the master writes: behind in bytes and in time.
    c.pause_replay(1);
    c.exec(0,
           "CREATE TABLE stale_t AS SELECT g, repeat('x', 200) AS pad "
           "FROM generate_series(1, 20000) g");
    c.wait_replayed(2);
    std::this_thread::sleep_for(1s);  // its time lag grows with the clock meanwhile

    PgConn conn(r.conninfo(kSuperUser, "postgres"));
    auto seen = count_ports(conn, 60, "SELECT inet_server_port()");
    CHECK(seen[s1] > 0);  // lag 1G, no time bound: still eligible
    for (const char* bound : {"64kB", "500ms", "0"}) {
        INFO("max_staleness " << bound);
        conn.exec(std::string("SET pgrouter.max_staleness = '") + bound + "'");
        seen = count_ports(conn, 60, "SELECT inet_server_port()");
        CHECK(seen[s1] == 0);
        CHECK(seen[s2] > 0);
    }
    conn.exec("RESET pgrouter.max_staleness");
    seen = count_ports(conn, 60, "/* pgrouter: max_staleness=64kB */ SELECT inet_server_port()");
    CHECK(seen[s1] == 0);
    CHECK(seen[s2] > 0);
    seen = count_ports(conn, 60, "SELECT inet_server_port()");
    CHECK(seen[s1] > 0);

    // The staleness directive: the paused standby takes no reads, the other one does.
    PgConn via_bounded(bounded.conninfo(kSuperUser, "postgres"));
    seen = count_ports(via_bounded, 60, "SELECT inet_server_port()");
    CHECK(seen[s1] == 0);
    CHECK(seen[s2] > 0);
    // Caught up again: it takes reads again.
    c.resume_replay(1);
    c.wait_replayed(1);
    CHECK(wait_until(
        [&] {
            auto again = count_ports(via_bounded, 40, "SELECT inet_server_port()");
            return again[s1] > 0;
        },
        10s));

    { PgConn done = std::move(idle); }
    { PgConn done = std::move(conn); }
    { PgConn done = std::move(via_bounded); }
    r.finish();
    bounded.finish();
}

TEST_CASE("staleness 500ms: a standby delayed 2 s takes no reads while the master writes",
          "[consistency][staleness]") {
    Cluster c(ClusterOptions{.standbys = 2, .quiet = true});
    c.exec(1, "ALTER SYSTEM SET recovery_min_apply_delay = '2s'");
    c.reload(1);
    c.exec(0, "CREATE TABLE delayed_t (id int)");
    std::string s1 = std::to_string(c.port(1)), s2 = std::to_string(c.port(2));
    Routed r(c, {{0, ""}, {1, "{ lag 1G; staleness 500ms }"}, {2, "{ lag 1G; staleness 500ms }"}});
    PgConn conn(r.conninfo(kSuperUser, "postgres"));
    // Idle (once the delayed standby has replayed the CREATE): both take reads.
    REQUIRE(wait_until(
        [&] {
            auto seen = count_ports(conn, 40, "SELECT inet_server_port()");
            return seen[s1] > 0 && seen[s2] > 0;
        },
        15s));

    std::atomic<bool> stop{false};
    std::thread writer([&] {
        PgConn w(c.conninfo(0, kSuperUser, "postgres"));
        for (int i = 0; !stop; ++i) {
            w.exec("INSERT INTO delayed_t VALUES (" + std::to_string(i) + ")");
            std::this_thread::sleep_for(20ms);
        }
    });
    std::this_thread::sleep_for(1500ms);  // the delayed standby is now ~2 s behind in time
    std::map<std::string, int> busy;
    for (int i = 0; i < 20; ++i) {
        for (auto& [port, n] : count_ports(conn, 10, "SELECT inet_server_port()")) busy[port] += n;
        std::this_thread::sleep_for(50ms);
    }
    stop = true;
    writer.join();
    CHECK(busy[s1] == 0);
    CHECK(busy[s2] > 0);
    // Caught up after the writes stop: it takes reads again.
    CHECK(wait_until([&] { return count_ports(conn, 40, "SELECT inet_server_port()")[s1] > 0; },
                     15s));
    { PgConn done = std::move(conn); }
    r.finish();
}

TEST_CASE("read-your-writes user: another session of the same user reads the write at once",
          "[consistency][ryw_user]") {
    Cluster c(ClusterOptions{.standbys = 2, .quiet = true});
    delay_standbys(c, "ryw_user_t");
    std::string master = std::to_string(c.port(0));
    // Two sessions of one user through each router: one writes, the other reads at once.
    auto run = [&](Routed& r, int from, int n, int& misses, int& on_standby) {
        PgConn writer(r.conninfo(kSuperUser, "postgres"));
        PgConn reader(r.conninfo(kSuperUser, "postgres"));
        for (int i = from; i < from + n; ++i) {
            writer.exec("INSERT INTO ryw_user_t VALUES (" + std::to_string(i) + ")");
            auto row = reader.query(
                "SELECT count(*), inet_server_port() FROM ryw_user_t "
                "WHERE id = " +
                std::to_string(i));
            if (row[0][0] != "1") ++misses;
            if (row[0][1] != master) ++on_standby;
        }
    };
    {
        // Session scope (the default): the other session's reads reach the delayed standbys
        // and miss the write, so the check below would fail without the user scope.
        Routed plain(c, {{0, ""}, {1, "{ lag 1G }"}, {2, "{ lag 1G }"}});
        int misses = 0, on_standby = 0;
        run(plain, 0, 20, misses, on_standby);
        CHECK(misses > 0);
        plain.finish();
    }
    Routed shared(c, {{0, ""}, {1, "{ lag 1G }"}, {2, "{ lag 1G }"}},
                  "read-your-writes user\n");  // two workers: writer and reader apart
    int misses = 0, on_standby = 0;
    run(shared, 1000, 100, misses, on_standby);
    CHECK(misses == 0);
    // Once the standbys have replayed the writes, the reads go back to them.
    std::this_thread::sleep_for(1500ms);
    PgConn later(shared.conninfo(kSuperUser, "postgres"));
    auto seen = count_ports(later, 30, "SELECT inet_server_port()");
    CHECK(seen[master] < 30);
    { PgConn done = std::move(later); }
    shared.finish();
}

TEST_CASE("pgrouter.* through the extended protocol: refusals, SHOW, SETs that route",
          "[consistency][extended]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0, ""}, {1, ""}, {2, ""}});
    std::string master = std::to_string(c.port(0));
    PgConn conn(r.conninfo(kSuperUser, "postgres"));

    // Bad values and names: the simple protocol's errors, and nothing changes.
    conn.exec("SET pgrouter.min_lsn = '0/20'");
    std::string hint, detail, context = "?";
    CHECK(ext_error_of(conn, "SET pgrouter.max_staleness = 'bogus'", &hint, nullptr, &context) ==
          "22023 invalid value for parameter \"pgrouter.max_staleness\": \"bogus\"");
    CHECK(hint.rfind("Valid units for this parameter are", 0) == 0);
    CHECK(context.empty());  // answered by pgrouter, as through the simple protocol
    CHECK(ext_error_of(conn, "SET pgrouter.max_staleness = '-5ms'") ==
          "22023 invalid value for parameter \"pgrouter.max_staleness\": \"-5ms\"");
    CHECK(ext_error_of(conn, "SET pgrouter.min_lsn = 'zz'") ==
          "22023 invalid value for parameter \"pgrouter.min_lsn\": \"zz\"");
    CHECK(ext_error_of(conn, "SET pgrouter.route = 'replica'", &hint) ==
          "22023 invalid value for parameter \"pgrouter.route\": \"replica\"");
    CHECK(hint == "Available values: primary, auto.");
    CHECK(ext_error_of(conn, "SET pgrouter.nosuch = 1", nullptr, &detail) ==
          "42602 invalid configuration parameter name \"pgrouter.nosuch\"");
    CHECK(detail == "\"pgrouter\" is a reserved prefix.");
    CHECK(ext_error_of(conn, "RESET pgrouter.nosuch") ==
          "42602 invalid configuration parameter name \"pgrouter.nosuch\"");
    CHECK(ext_error_of(conn, "SET pgrouter.commit_lsn = '0/1'") ==
          "55P02 parameter \"pgrouter.commit_lsn\" cannot be changed");
    CHECK(conn.value("SHOW pgrouter.min_lsn") == "0/20");
    CHECK(conn.value("SHOW pgrouter.max_staleness") == "");
    CHECK(conn.value("SHOW pgrouter.route") == "auto");

    // Prepared first: the Parse succeeds (PostgreSQL checks a SET when it runs), and every
    // execution fails.
    PGresult* res =
        PQprepare(conn.get(), "bad_set", "SET pgrouter.max_staleness = '-1s'", 0, nullptr);
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
    PQclear(res);
    for (int i = 0; i < 2; ++i) {
        CHECK(run_prepared(conn, "bad_set") ==
              "22023 invalid value for parameter \"pgrouter.max_staleness\": \"-1s\"");
    }
    CHECK(conn.value("SHOW pgrouter.max_staleness") == "");

    // Inside a block the refusal fails the block, as on one server.
    conn.exec("BEGIN");
    CHECK(ext_error_of(conn, "SET pgrouter.min_lsn = 'zz'") ==
          "22023 invalid value for parameter \"pgrouter.min_lsn\": \"zz\"");
    CHECK(error_of(conn, "SELECT 1").rfind("25P02 ", 0) == 0);
    conn.exec("ROLLBACK");
    conn.exec("BEGIN");
    CHECK(run_prepared(conn, "bad_set") ==
          "22023 invalid value for parameter \"pgrouter.max_staleness\": \"-1s\"");
    CHECK(error_of(conn, "SELECT 1").rfind("25P02 ", 0) == 0);
    conn.exec("ROLLBACK");
    CHECK(conn.value("SHOW pgrouter.min_lsn") == "0/20");
    conn.exec("RESET pgrouter.min_lsn");

    // SHOW answers as through the simple protocol, described as a server describes a SHOW.
    CHECK(ext_value(conn, "SHOW pgrouter.route") == "auto");
    CHECK(ext_value(conn, "SHOW pgrouter.min_lsn") == "0/0");
    CHECK(ext_value(conn, "SHOW pgrouter.max_staleness") == "");
    CHECK(ext_value(conn, "SHOW pgrouter.commit_lsn") == "0/0");
    CHECK(ext_error_of(conn, "SHOW pgrouter.nope") ==
          "42704 unrecognized configuration parameter \"pgrouter.nope\"");
    res = PQprepare(conn.get(), "show_route", "SHOW pgrouter.route", 0, nullptr);
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
    PQclear(res);
    res = PQdescribePrepared(conn.get(), "show_route");
    REQUIRE(PQresultStatus(res) == PGRES_COMMAND_OK);
    CHECK(PQnparams(res) == 0);
    REQUIRE(PQnfields(res) == 1);
    CHECK(std::string(PQfname(res, 0)) == "pgrouter.route");
    CHECK(PQftype(res, 0) == 25);  // text
    PQclear(res);
    CHECK(run_prepared(conn, "show_route") == "auto");

    // Good values take effect as simple SETs do, and a prepared SHOW follows them.
    CHECK(ext_error_of(conn, "SET pgrouter.route = 'primary'") == "OK");
    CHECK(run_prepared(conn, "show_route") == "primary");
    CHECK(conn.value("SHOW pgrouter.route") == "primary");
    auto seen = count_ports(conn, 20, "SELECT inet_server_port()");
    CHECK(seen[master] == 20);
    for (int i = 0; i < 10; ++i)
        CHECK(ext_value(conn, "SELECT inet_server_port()::text") == master);
    CHECK(ext_error_of(conn, "RESET pgrouter.route") == "OK");
    CHECK(run_prepared(conn, "show_route") == "auto");
    seen = count_ports(conn, 20, "SELECT inet_server_port()");
    CHECK(seen[master] == 0);
    // A min_lsn no standby has replayed: the master serves every read.
    res = PQprepare(conn.get(), "far", "SET pgrouter.min_lsn = 'FFFFFFFF/0'", 0, nullptr);
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
    PQclear(res);
    CHECK(run_prepared(conn, "far") == "OK");
    CHECK(ext_value(conn, "SHOW pgrouter.min_lsn") == "FFFFFFFF/0");
    seen = count_ports(conn, 20, "SELECT inet_server_port()");
    CHECK(seen[master] == 20);
    CHECK(ext_error_of(conn, "SET pgrouter.min_lsn TO DEFAULT") == "OK");
    seen = count_ports(conn, 20, "SELECT inet_server_port()");
    CHECK(seen[master] == 0);
    // SET LOCAL through the extended protocol lasts for its block.
    conn.exec("BEGIN");
    CHECK(ext_error_of(conn, "SET LOCAL pgrouter.max_staleness = '64kB'") == "OK");
    CHECK(ext_value(conn, "SHOW pgrouter.max_staleness") == "64kB");
    conn.exec("COMMIT");
    CHECK(ext_value(conn, "SHOW pgrouter.max_staleness") == "");
    // commit_lsn after a write.
    conn.exec("CREATE TABLE IF NOT EXISTS ext_token_t (id int)");
    conn.exec("INSERT INTO ext_token_t VALUES (1)");
    std::string token = ext_value(conn, "SHOW pgrouter.commit_lsn");
    CHECK(token != "0/0");
    CHECK(token.find('/') != std::string::npos);
    conn.exec("DROP TABLE ext_token_t");

    // Byte level: pgrouter answers with the messages a server sends for a SHOW or a SET of
    // one of its own parameters (work_mem on the master, for comparison).
    RawClient via(r.port), direct(c.port(0));
    REQUIRE(via.login(kSuperUser, "postgres", kSuperPassword).back().type == 'Z');
    REQUIRE(direct.login(kSuperUser, "postgres", kSuperPassword).back().type == 'Z');
    auto both = [&](const std::string& ours, const std::string& theirs) {
        std::string a = answer_types(via, ours), b = answer_types(direct, theirs);
        CHECK(a == b);
        return a;
    };
    CHECK(both(exec_params_msgs("SHOW pgrouter.route") + sync_msg(),
               exec_params_msgs("SHOW work_mem") + sync_msg()) == "12TDCZ/I");
    CHECK(both(exec_params_msgs("SET pgrouter.route = 'replica'") + sync_msg(),
               exec_params_msgs("SET work_mem = 'bogus'") + sync_msg()) == "12nE(22023)Z/I");
    CHECK(both(parse_msg("s", "SHOW pgrouter.min_lsn") + describe_msg('S', "s") + sync_msg(),
               parse_msg("s", "SHOW work_mem") + describe_msg('S', "s") + sync_msg()) == "1tTZ/I");
    CHECK(both(parse_msg("t", "SET pgrouter.route = 'x'") + describe_msg('S', "t") + sync_msg(),
               parse_msg("t", "SET work_mem = 'x'") + describe_msg('S', "t") + sync_msg()) ==
          "1tnZ/I");
    CHECK(both(bind_msg("t") + execute_msg() + sync_msg(),
               bind_msg("t") + execute_msg() + sync_msg()) == "2E(22023)Z/I");
    // A row limit of 1: the row, then PortalSuspended (a server does not know yet that the
    // SHOW's one row was its last); of 2: the row and the end.
    for (int limit : {1, 2}) {
        auto limited = [&](const std::string& sql) {
            return parse_msg("", sql) + bind_msg("") + execute_msg(limit) + sync_msg();
        };
        CHECK(both(limited("SHOW pgrouter.route"), limited("SHOW work_mem")) ==
              (limit == 1 ? "12DsZ/I" : "12DCZ/I"));
    }
    // An unknown name fails a SHOW at Parse, where a server looks the name up.
    CHECK(both(parse_msg("", "SHOW pgrouter.nope") + bind_msg("") + execute_msg() + sync_msg(),
               parse_msg("", "SHOW pgrtest.nope") + bind_msg("") + execute_msg() + sync_msg()) ==
          "E(42704)Z/I");
    // In a pipeline with other statements: the error at the SET's Execute skips the rest.
    CHECK(both(parse_msg("", "SELECT 1") + bind_msg("") + execute_msg() +
                   exec_params_msgs("SET pgrouter.min_lsn = 'zz'") + exec_params_msgs("SELECT 2") +
                   sync_msg(),
               parse_msg("", "SELECT 1") + bind_msg("") + execute_msg() +
                   exec_params_msgs("SET work_mem = 'zz'") + exec_params_msgs("SELECT 2") +
                   sync_msg()) == "12DC12nE(22023)Z/I");
    // Behind a BEGIN still in flight, the refusal fails the block that BEGIN opens.
    auto in_block = [](const std::string& set) {
        return query_msg("BEGIN") + exec_params_msgs(set) + sync_msg() + query_msg("SELECT 1") +
               query_msg("ROLLBACK");
    };
    std::string a = answer_types(via, in_block("SET pgrouter.route = 'replica'"), 4);
    std::string b = answer_types(direct, in_block("SET work_mem = 'bogus'"), 4);
    CHECK(a == b);
    CHECK(a == "CZ/T12nE(22023)Z/EE(25P02)Z/ECZ/I");
    auto simple_in_block = [](const std::string& set) {
        return query_msg("BEGIN") + query_msg(set) + query_msg("SELECT 1") + query_msg("ROLLBACK");
    };
    a = answer_types(via, simple_in_block("SET pgrouter.route = 'replica'"), 4);
    b = answer_types(direct, simple_in_block("SET work_mem = 'bogus'"), 4);
    CHECK(a == b);
    CHECK(a == "CZ/TE(22023)Z/EE(25P02)Z/ECZ/I");
    // Behind a unit in flight that fails its block, a SHOW is refused as in any failed block.
    auto failed_block = [](const std::string& show) {
        return query_msg("BEGIN") + query_msg("SELECT 1/0") + query_msg(show) +
               exec_params_msgs(show) + sync_msg() + query_msg("ROLLBACK");
    };
    a = answer_types(via, failed_block("SHOW pgrouter.route"), 5);
    b = answer_types(direct, failed_block("SHOW work_mem"), 5);
    CHECK(a == b);
    CHECK(a == "CZ/TE(22012)Z/EE(25P02)Z/EE(25P02)Z/ECZ/I");
    via.close();
    direct.close();

    { PgConn done = std::move(conn); }
    r.finish();
}

TEST_CASE("savepoints take back pgrouter.* SETs, SET LOCAL included, as a server does",
          "[consistency][savepoint]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0, ""}, {1, ""}, {2, ""}});
    std::string master = std::to_string(c.port(0));
    PgConn routed(r.conninfo(kSuperUser, "postgres"));
    // The same steps with placeholders of the server's own (pgrtest.*), for comparison.
    PgConn direct(c.conninfo(0, kSuperUser, "postgres"));
    const std::vector<std::string> steps = {
        "SET {}.route = 'auto'; SET {}.max_staleness = '10s'",
        "BEGIN",
        "SAVEPOINT a",
        "SET LOCAL {}.route = 'primary'",
        "ROLLBACK TO a",
        "SET LOCAL {}.max_staleness = '1s'",
        "SAVEPOINT b",
        "SET {}.route = 'primary'",
        "SET LOCAL {}.max_staleness = '2s'",
        "ROLLBACK TO SAVEPOINT b",
        "SAVEPOINT c",
        "SET {}.route = 'primary'",
        "RELEASE c",
        "SAVEPOINT d",
        "SET LOCAL {}.max_staleness = '3s'",
        "RELEASE SAVEPOINT d",
        "COMMIT",
        "BEGIN",
        "SAVEPOINT e",
        "SET {}.route TO 'auto'",  // RESET differs: a placeholder's reset value is empty
        "ROLLBACK TO e",
        "SET {}.max_staleness = '5s'",
        "SET LOCAL {}.max_staleness = '6s'",
        "COMMIT",
    };
    auto with = [](std::string step, const std::string& prefix) {
        for (auto at = step.find("{}"); at != std::string::npos; at = step.find("{}")) {
            step.replace(at, 2, prefix);
        }
        return step;
    };
    for (const std::string& step : steps) {
        INFO(step);
        routed.exec(with(step, "pgrouter"));
        direct.exec(with(step, "pgrtest"));
        CHECK(routed.value("SHOW pgrouter.route") == direct.value("SHOW pgrtest.route"));
        CHECK(routed.value("SHOW pgrouter.max_staleness") ==
              direct.value("SHOW pgrtest.max_staleness"));
    }
    CHECK(routed.value("SHOW pgrouter.route") == "primary");
    CHECK(routed.value("SHOW pgrouter.max_staleness") == "5s");

    // Where reads land follows: the SET kept by RELEASE holds after COMMIT...
    auto seen = count_ports(routed, 20, "SELECT inet_server_port()");
    CHECK(seen[master] == 20);
    // ...a RESET rolled back to its savepoint changes nothing...
    routed.exec("BEGIN; SAVEPOINT f; RESET pgrouter.route; ROLLBACK TO f; COMMIT");
    seen = count_ports(routed, 20, "SELECT inet_server_port()");
    CHECK(seen[master] == 20);
    routed.exec("BEGIN");
    routed.exec("SAVEPOINT g");
    routed.exec("RESET pgrouter.route");
    routed.exec("ROLLBACK TO g");
    routed.exec("COMMIT");
    seen = count_ports(routed, 20, "SELECT inet_server_port()");
    CHECK(seen[master] == 20);
    // ...and one released holds.
    routed.exec("BEGIN");
    routed.exec("SAVEPOINT h");
    routed.exec("RESET pgrouter.route");
    routed.exec("RELEASE h");
    routed.exec("COMMIT");
    seen = count_ports(routed, 20, "SELECT inet_server_port()");
    CHECK(seen[master] == 0);

    { PgConn done = std::move(routed); }
    r.finish();
}

// Drivers that use the extended protocol their own way: asyncpg (Parse, Describe, Flush, then
// Bind, Execute, Sync; fetch() of a SET), psycopg 3 (PQexecParams-like, prepare=True, and a
// block from the first statement without autocommit).
TEST_CASE("pgrouter.* through asyncpg and psycopg 3", "[consistency][extended][drivers]") {
    if (!run({"/usr/bin/python3", "-c", "import asyncpg, psycopg"}).ok()) {
        WARN("python3-asyncpg or python3-psycopg is missing: test skipped");
        return;
    }
    Cluster& c = Cluster::shared();
    Routed r(c, {{0, ""}, {1, ""}, {2, ""}});
    const char* script = R"PY(
import asyncio, sys
import asyncpg, psycopg

async def with_asyncpg(dsn):
    c = await asyncpg.connect(dsn)
    out = []
    out.append(await c.fetchval("SHOW pgrouter.route"))
    st = await c.prepare("SHOW pgrouter.min_lsn")
    out.append(st.get_attributes()[0].name)
    out.append(await st.fetchval())
    await c.execute("SET pgrouter.min_lsn = '0/42'")
    out.append(await st.fetchval())
    try:
        await c.fetch("SET pgrouter.route = 'replica'")
        out.append("OK")
    except asyncpg.PostgresError as e:
        out.append(e.sqlstate)
    try:
        await c.fetchval("SHOW pgrouter.nope")
        out.append("OK")
    except asyncpg.PostgresError as e:
        out.append(e.sqlstate)
    await c.fetch("SET pgrouter.route = 'primary'")
    out.append(await c.fetchval("SHOW pgrouter.route"))
    await c.close()
    return out

def with_psycopg(conninfo):
    out = []
    with psycopg.connect(conninfo, autocommit=True) as c:
        out.append(c.execute("SHOW pgrouter.route").fetchone()[0])
        out.append(c.execute("SHOW pgrouter.route", prepare=True).fetchone()[0])
        try:
            c.execute("SET pgrouter.max_staleness = 'bogus'")
            out.append("OK")
        except psycopg.Error as e:
            out.append(e.sqlstate)
        c.execute("SET pgrouter.max_staleness = '2s'")
        out.append(c.execute("SHOW pgrouter.max_staleness", prepare=True).fetchone()[0])
    with psycopg.connect(conninfo) as c:  # a transaction block from the first statement
        try:
            c.execute("SET pgrouter.min_lsn = 'zz'")
            out.append("OK")
        except psycopg.Error as e:
            out.append(e.sqlstate)
        try:
            c.execute("SELECT 1")
            out.append("OK")
        except psycopg.Error as e:
            out.append(e.sqlstate)
    return out

port = sys.argv[1]
print(" ".join(asyncio.run(with_asyncpg(f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"))))
print(" ".join(with_psycopg(f"host=127.0.0.1 port={port} user=postgres password=postgres dbname=postgres")))
)PY";
    RunResult res = run({"/usr/bin/python3", "-c", script, std::to_string(r.port)});
    INFO(res.err);
    REQUIRE(res.ok());
    // asyncpg: SHOW, a prepared SHOW described and following a SET, a refused SET (22023), an
    // unknown name (42704), a good SET through fetch(). psycopg: SHOW plain and prepared, a
    // refused SET, a good one, and in a block the refusal fails the block (25P02 after it).
    CHECK(res.out ==
          "auto pgrouter.min_lsn 0/0 0/42 22023 42704 primary\n"
          "auto auto 22023 2s 22023 25P02\n");
    r.finish();
}
