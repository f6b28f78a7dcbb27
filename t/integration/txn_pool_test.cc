// Transaction-mode pooling (issue 15) against a real cluster, written before the feature:
// clients that share a few server connections never see each other's SETs, protocol-level
// prepared statements, temp tables or advisory locks; 50 clients x 200 statements through
// `size 2`; the state that cannot move (temp table, LISTEN, advisory lock, SQL PREPARE,
// WITH HOLD cursor) pins one connection until released; `size` holds under 200 clients on
// every node; wait-timeout gives 53300; cancel reaches the right backend; pgbench TPC-B
// through `size 10` keeps the balances; reloads of size and mode; pooled backends
// terminated under load; a client leaving inside a block; max-clients. Until transaction
// mode exists the router refuses the config and every test here fails at its start.
#include <libpq-fe.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <mutex>
#include <thread>

#include "../harness/cluster.h"
#include "../harness/files.h"
#include "../harness/pq.h"
#include "../harness/raw_client.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

// The pool block of every router here: transaction mode plus `rest`.
std::string tx_pool(const std::string& rest) { return "pool { mode transaction; " + rest + " }\n"; }

std::string app_conninfo(const Routed& r, const std::string& app) {
    return r.conninfo() + " application_name=" + app;
}

// Server connections on node i logged in as the test user to the test database: pgrouter's
// pooled connections (the harness's own queries use postgres/postgres, health checks too).
int pooled_on(Cluster& c, int i) {
    return std::stoi(c.exec(i,
                            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client "
                            "backend' AND usename = '" +
                                std::string(kTestUser) + "' AND datname = '" + kTestDb + "'"));
}

// The most pooled_on() seen on each node while it runs (sampled until stopped).
class Sampler {
  public:
    Sampler(Cluster& c, int nodes) : most_(static_cast<std::size_t>(nodes), 0) {
        thread_ = std::thread([this, &c, nodes] {
            while (!done_) {
                for (int i = 0; i < nodes; ++i) {
                    try {
                        int n = pooled_on(c, i);
                        std::lock_guard<std::mutex> g(mu_);
                        most_[static_cast<std::size_t>(i)] =
                            std::max(most_[static_cast<std::size_t>(i)], n);
                    } catch (const std::exception&) {
                        // a node being restarted by the test
                    }
                }
                std::this_thread::sleep_for(20ms);
            }
        });
    }
    ~Sampler() { stop(); }
    void stop() {
        done_ = true;
        if (thread_.joinable()) thread_.join();
    }
    int most(int i) {
        std::lock_guard<std::mutex> g(mu_);
        return most_[static_cast<std::size_t>(i)];
    }

  private:
    std::atomic<bool> done_{false};
    std::mutex mu_;
    std::vector<int> most_;
    std::thread thread_;
};

// A protocol-level statement: PQprepare, then PQexecPrepared with text parameters.
struct Outcome {
    std::string sqlstate;  // "" on success
    std::string value;     // first column of the first row
};

Outcome prepare(PgConn& conn, const std::string& name, const std::string& sql, int params = 0) {
    PGresult* res = PQprepare(conn.get(), name.c_str(), sql.c_str(), params, nullptr);
    Outcome out;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char* st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        out.sqlstate = st != nullptr ? st : "?";
    }
    PQclear(res);
    return out;
}

Outcome exec_prepared(PgConn& conn, const std::string& name,
                      const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    for (const std::string& p : params) values.push_back(p.c_str());
    PGresult* res = PQexecPrepared(conn.get(), name.c_str(), static_cast<int>(values.size()),
                                   values.empty() ? nullptr : values.data(), nullptr, nullptr, 0);
    Outcome out;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        if (PQntuples(res) > 0) out.value = PQgetvalue(res, 0, 0);
    } else if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char* st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        out.sqlstate = st != nullptr ? st : "?";
    }
    PQclear(res);
    return out;
}

// A fresh client logs in (raw protocol, so a refusal at login shows its SQLSTATE too) and
// runs `sql`: the SQLSTATE of the first ErrorResponse, "" when it was served. A login or a
// query that waits for a pool answers after wait-timeout, so the reads wait up to `patience`.
std::string fresh_client(const Routed& r, const std::string& sql = "SELECT 1",
                         std::chrono::milliseconds patience = 15s) {
    RawClient raw(r.port);
    auto msgs = raw.login(kTestUser, kTestDb, kTestPassword, {{"application_name", "txfresh"}});
    while (find_message(msgs, 'E') == nullptr && find_message(msgs, 'Z') == nullptr) {
        auto m = raw.read(patience);
        if (!m) return "no answer to the login";
        msgs.push_back(*m);
    }
    if (const RawMessage* e = find_message(msgs, 'E')) return error_code(*e);
    std::string q = sql;
    q.push_back('\0');
    std::string bytes = "Q";
    std::uint32_t len = static_cast<std::uint32_t>(q.size() + 4);
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>(len >> shift));
    bytes += q;
    if (!raw.send(bytes)) return "send failed";
    std::string state;
    for (;;) {
        auto m = raw.read(patience);
        if (!m) return state.empty() ? "no answer to the query" : state;
        if (m->type == 'E' && state.empty()) state = error_code(*m);
        if (m->type == 'Z') return state;
    }
}

// Is `sql` running on node i (pg_stat_activity, state active)?
bool sleeping_on(Cluster& c, int i, const std::string& sql) {
    return c.exec(i, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query = '" +
                         sql + "'") == "1";
}

void reload(Routed& r, const std::string& from, const std::string& to) {
    std::string conf = read_file(r.router->config_path());
    auto at = conf.find(from);
    REQUIRE(at != std::string::npos);
    conf.replace(at, from.size(), to);
    auto mark = r.router->log_size();
    r.router->write_config(conf);
    r.router->signal(SIGHUP);
    REQUIRE(r.router->wait_for_log("configuration reloaded", 10s, mark));
}

}  // namespace

TEST_CASE(
    "transaction mode: two clients on one server connection keep their own SETs and "
    "statement names",
    "[txpool]") {
    Cluster& c = Cluster::shared();
    // size 1: both clients can only ever run on the same server connection.
    Routed r(c, {{0}}, "workers 1\n" + tx_pool("size 1; wait-timeout 10s"));
    PgConn a(app_conninfo(r, "txpool_a"));
    PgConn b(app_conninfo(r, "txpool_b"));
    const std::string default_work_mem = c.exec(0, "SHOW work_mem");

    a.exec("SET work_mem = '7MB'");
    a.exec("SET application_name = 'client_a'");
    b.exec("SET search_path = pg_catalog, public");
    REQUIRE(prepare(a, "s1", "SELECT 'from a'::text").sqlstate.empty());
    // A's statement name is not B's: B gets 26000 as on a server of its own ...
    CHECK(exec_prepared(b, "s1").sqlstate == "26000");
    PGresult* res = PQdescribePrepared(b.get(), "s1");
    CHECK(PQresultStatus(res) == PGRES_FATAL_ERROR);
    CHECK(std::string(PQresultErrorField(res, PG_DIAG_SQLSTATE)) == "26000");
    PQclear(res);
    // ... and may prepare its own "s1" (not 42P05 from A's on the shared connection).
    REQUIRE(prepare(b, "s1", "SELECT 'from b'::text").sqlstate.empty());
    CHECK(prepare(b, "s1", "SELECT 'again'::text").sqlstate == "42P05");  // B's own duplicate

    for (int i = 0; i < 50; ++i) {
        INFO("round " << i);
        std::string pid_a = a.value("SELECT pg_backend_pid()");
        CHECK(b.value("SELECT pg_backend_pid()") == pid_a);  // really one server connection
        CHECK(a.value("SHOW work_mem") == "7MB");
        CHECK(b.value("SHOW work_mem") == default_work_mem);
        CHECK(a.value("SELECT current_setting('application_name')") == "client_a");
        CHECK(b.value("SELECT current_setting('application_name')") == "txpool_b");
        CHECK(a.value("SHOW search_path") != "pg_catalog, public");
        CHECK(b.value("SHOW search_path") == "pg_catalog, public");
        CHECK(exec_prepared(a, "s1").value == "from a");
        CHECK(exec_prepared(b, "s1").value == "from b");
        if (i % 10 == 5) {  // a block with SET LOCAL: gone after it, the session SET stays
            a.exec("BEGIN");
            a.exec("SET LOCAL work_mem = '9MB'");
            CHECK(a.value("SHOW work_mem") == "9MB");
            a.exec("COMMIT");
            CHECK(a.value("SHOW work_mem") == "7MB");
            CHECK(b.value("SHOW work_mem") == default_work_mem);
        }
    }
    // What each client was told of its settings is its own.
    CHECK(std::string(PQparameterStatus(a.get(), "application_name")) == "client_a");
    CHECK(std::string(PQparameterStatus(b.get(), "application_name")) == "txpool_b");

    // A rolled-back SET never reaches the other client or sticks to A.
    a.exec("BEGIN");
    a.exec("SET work_mem = '11MB'");
    a.exec("ROLLBACK");
    CHECK(a.value("SHOW work_mem") == "7MB");
    CHECK(b.value("SHOW work_mem") == default_work_mem);
    // RESET and DEALLOCATE are A's own too.
    a.exec("RESET work_mem");
    a.exec("DEALLOCATE s1");
    CHECK(a.value("SHOW work_mem") == default_work_mem);
    CHECK(exec_prepared(a, "s1").sqlstate == "26000");
    CHECK(exec_prepared(b, "s1").value == "from b");
    CHECK(pooled_on(c, 0) == 1);
    r.finish();
}

TEST_CASE(
    "transaction mode: another client's temp table is 42P01, its advisory lock is not "
    "held by you",
    "[txpool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "workers 1\n" + tx_pool("size 2; wait-timeout 10s"));
    PgConn a(app_conninfo(r, "txpool_a"));
    PgConn b(app_conninfo(r, "txpool_b"));
    PgConn d(app_conninfo(r, "txpool_d"));
    a.exec("CREATE TEMP TABLE txp_a_tmp (x int)");
    a.exec("INSERT INTO txp_a_tmp VALUES (1), (2)");
    a.exec("SELECT pg_advisory_lock(151515)");
    const std::string pid_a = a.value("SELECT pg_backend_pid()");
    CHECK(sqlstate_of(b, "SELECT * FROM txp_a_tmp") == "42P01");
    CHECK(sqlstate_of(d, "SELECT * FROM txp_a_tmp") == "42P01");
    CHECK(b.value("SELECT pg_try_advisory_lock(151515)") == "f");  // A's, as on a server
    CHECK(b.value("SELECT pg_advisory_unlock(151515)") == "f");    // not B's to release
    // B and D share the one connection A's pins leave; A keeps its state all along.
    for (int i = 0; i < 40; ++i) {
        INFO("round " << i);
        CHECK(a.value("SELECT count(*) FROM txp_a_tmp") == "2");
        CHECK(a.value("SELECT pg_backend_pid()") == pid_a);
        CHECK(b.value("SELECT " + std::to_string(i)) == std::to_string(i));
        CHECK(d.value("SELECT pg_backend_pid()") != pid_a);
        CHECK(sqlstate_of(b, "SELECT * FROM txp_a_tmp") == "42P01");
    }
    CHECK(c.exec(0,
                 "SELECT string_agg(pid::text, ',') FROM pg_locks WHERE locktype = 'advisory' "
                 "AND objid = 151515 AND granted") == pid_a);
    // B's own temp table of the same name is B's (and pins B's connection in turn).
    b.exec("CREATE TEMP TABLE txp_a_tmp (y text)");
    b.exec("INSERT INTO txp_a_tmp VALUES ('b')");
    CHECK(b.value("SELECT y FROM txp_a_tmp") == "b");
    CHECK(a.value("SELECT count(*) FROM txp_a_tmp") == "2");
    b.exec("DISCARD ALL");
    CHECK(sqlstate_of(b, "SELECT * FROM txp_a_tmp") == "42P01");
    CHECK(a.value("SELECT pg_advisory_unlock(151515)") == "t");
    CHECK(b.value("SELECT pg_try_advisory_lock(151515)") == "t");
    CHECK(b.value("SELECT pg_advisory_unlock(151515)") == "t");
    CHECK(pooled_on(c, 0) <= 2);
    r.finish();
}

TEST_CASE(
    "transaction mode: 50 clients x 200 statements through size 2, each with its own SETs "
    "and statement",
    "[txpool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, tx_pool("size 2; wait-timeout 60s"));
    Sampler sampler(c, 1);
    constexpr int kClients = 50, kStatements = 200;
    std::atomic<int> right{0}, wrong{0}, failures{0};
    std::mutex first_mu;
    std::string first_wrong;
    auto note = [&](const std::string& what) {
        wrong++;
        std::lock_guard<std::mutex> g(first_mu);
        if (first_wrong.empty()) first_wrong = what;
    };
    std::vector<std::thread> clients;
    for (int k = 0; k < kClients; ++k) {
        clients.emplace_back([&, k] {
            try {
                PgConn conn(app_conninfo(r, "txmany"));
                const std::string app = "txmany_" + std::to_string(k);
                const std::string work_mem = std::to_string(100 + k) + "kB";
                conn.exec("SET application_name = '" + app + "'");
                conn.exec("SET work_mem = '" + work_mem + "'");
                // Every client's "s1" has its own text: the client's number is in it.
                if (!prepare(conn, "s1", "SELECT $1::int * 1000 + " + std::to_string(k), 1)
                         .sqlstate.empty()) {
                    note("client " + std::to_string(k) + ": prepare s1 failed");
                }
                for (int i = 0; i < kStatements; ++i) {
                    std::string got, want;
                    switch (i % 5) {
                        case 0:
                            got = conn.value("SHOW work_mem");
                            want = work_mem;
                            break;
                        case 1: {
                            Outcome o = exec_prepared(conn, "s1", {std::to_string(i)});
                            got = o.sqlstate.empty() ? o.value : "error " + o.sqlstate;
                            want = std::to_string(i * 1000 + k);
                            break;
                        }
                        case 2:
                            got = conn.value("SELECT current_setting('application_name')");
                            want = app;
                            break;
                        case 3:
                            conn.exec("BEGIN");
                            got = conn.value("SELECT current_setting('work_mem') || '/" +
                                             std::to_string(i) + "'");
                            conn.exec("COMMIT");
                            want = work_mem + "/" + std::to_string(i);
                            break;
                        default:
                            got = conn.value("SELECT " + std::to_string(k * 10000 + i));
                            want = std::to_string(k * 10000 + i);
                    }
                    if (got == want) {
                        right++;
                    } else {
                        note("client " + std::to_string(k) + " statement " + std::to_string(i) +
                             ": got " + got + ", want " + want);
                    }
                }
                if (std::string(PQparameterStatus(conn.get(), "application_name")) != app) {
                    note("client " + std::to_string(k) + ": ParameterStatus application_name");
                }
            } catch (const std::exception& e) {
                UNSCOPED_INFO(e.what());
                failures++;
            }
        });
    }
    for (std::thread& t : clients) t.join();
    sampler.stop();
    INFO("first wrong answer: " << first_wrong << "; most server connections " << sampler.most(0));
    CHECK(failures == 0);
    CHECK(wrong == 0);
    CHECK(right == kClients * kStatements);
    CHECK(sampler.most(0) <= 2);
    CHECK(sampler.most(0) >= 1);
    r.finish();
}

TEST_CASE(
    "transaction mode: temp table, LISTEN, advisory lock, SQL PREPARE and WITH HOLD pin "
    "one connection until released",
    "[txpool]") {
    Cluster& c = Cluster::shared();
    c.exec(0,
           "DROP TABLE IF EXISTS txp_rows; CREATE TABLE txp_rows AS SELECT generate_series(1, 100) "
           "AS n",
           kTestUser, kTestDb);
    Routed r(c, {{0}}, "workers 1\n" + tx_pool("size 2; wait-timeout 1s"));
    struct Pin {
        const char* name;
        std::string pin;    // makes the state
        std::string check;  // reads it: `want` while pinned
        std::string want;
        std::string release;  // the statement that lets the connection go
        std::string gone;     // SQLSTATE of `check` after the release ("" = `after` value)
        std::string after;
    };
    const std::vector<Pin> pins = {
        {"temp table", "CREATE TEMP TABLE txp_pin (x int); INSERT INTO txp_pin VALUES (5)",
         "SELECT x FROM txp_pin", "5", "DISCARD ALL", "42P01", ""},
        {"LISTEN", "LISTEN txp_channel", "SELECT count(*) FROM pg_listening_channels()", "1",
         "DISCARD ALL", "", "0"},
        {"LISTEN, UNLISTEN *", "LISTEN txp_channel", "SELECT count(*) FROM pg_listening_channels()",
         "1", "UNLISTEN *", "", "0"},
        {"advisory lock", "SELECT pg_advisory_lock(262626)",
         "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 262626 AND pid "
         "= pg_backend_pid()",
         "1", "DISCARD ALL", "", "0"},
        {"advisory lock, unlock", "SELECT pg_advisory_lock(262627)",
         "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 262627 AND pid "
         "= pg_backend_pid()",
         "1", "SELECT pg_advisory_unlock(262627)", "", "0"},
        {"SQL PREPARE", "PREPARE txp_sql AS SELECT 'prepared'::text", "EXECUTE txp_sql", "prepared",
         "DISCARD ALL", "26000", ""},
        {"DECLARE WITH HOLD",
         "BEGIN; DECLARE txp_cur CURSOR WITH HOLD FOR SELECT n FROM txp_rows ORDER BY n; COMMIT",
         "FETCH 1 FROM txp_cur", "", "DISCARD ALL", "34000", ""},
    };
    for (const Pin& p : pins) {
        DYNAMIC_SECTION(p.name) {
            PgConn pinned(app_conninfo(r, "txpin"));
            PgConn other(app_conninfo(r, "txother"));
            pinned.exec(p.pin);
            const std::string pid = pinned.value("SELECT pg_backend_pid()");
            int fetched = 0;
            auto check_state = [&] {
                if (std::string(p.name) == "DECLARE WITH HOLD") {
                    // A cursor moves on: each FETCH the next row of the one query.
                    CHECK(pinned.value(p.check) == std::to_string(++fetched));
                } else {
                    CHECK(pinned.value(p.check) == p.want);
                }
            };
            for (int i = 0; i < 10; ++i) {
                check_state();
                CHECK(pinned.value("SELECT pg_backend_pid()") == pid);
                CHECK(other.value("SELECT pg_backend_pid()") != pid);  // the rest of the pool
            }
            // Pinned holds one connection although idle; `other` takes the second in a block:
            // a third client waits wait-timeout and gets 53300 ...
            other.exec("BEGIN");
            other.exec("SELECT 1");
            CHECK(fresh_client(r) == "53300");
            other.exec("COMMIT");
            // ... and is served when the block ends, the pinned client still holding its own.
            CHECK(fresh_client(r).empty());
            check_state();
            CHECK(pooled_on(c, 0) <= 2);

            pinned.exec(p.release);
            // Released: with `other` in a block again, a third client gets the connection the
            // pinned client let go.
            other.exec("BEGIN");
            other.exec("SELECT 1");
            CHECK(fresh_client(r).empty());
            other.exec("COMMIT");
            if (p.gone.empty()) {
                CHECK(pinned.value(p.check) == p.after);
            } else {
                CHECK(sqlstate_of(pinned, p.check) == p.gone);
            }
            CHECK(pinned.value("SELECT 77") == "77");
        }
    }
    c.exec(0, "DROP TABLE txp_rows", kTestUser, kTestDb);
    r.finish();
}

TEST_CASE("transaction mode: size holds on every node under 200 clients", "[txpool]") {
    Cluster& c = Cluster::shared();
    c.exec(0, "DROP TABLE IF EXISTS txp_size; CREATE TABLE txp_size (k int)", kTestUser, kTestDb);
    Routed r(c, {{0}, {1}, {2}}, tx_pool("size 3; wait-timeout 60s"));
    Sampler sampler(c, 3);
    constexpr int kClients = 200;
    std::atomic<int> right{0}, failures{0};
    std::vector<std::thread> clients;
    for (int k = 0; k < kClients; ++k) {
        clients.emplace_back([&, k] {
            try {
                PgConn conn(app_conninfo(r, "txsize"));
                for (int q = 0; q < 10; ++q) {  // reads: the standbys' pools
                    int v = k * 100 + q;
                    if (conn.value("SELECT " + std::to_string(v)) == std::to_string(v)) right++;
                }
                conn.exec("INSERT INTO txp_size VALUES (" + std::to_string(k) + ")");  // master
                conn.exec("BEGIN; INSERT INTO txp_size VALUES (" + std::to_string(k) + "); COMMIT");
            } catch (const std::exception& e) {
                UNSCOPED_INFO(e.what());
                failures++;
            }
        });
    }
    for (std::thread& t : clients) t.join();
    sampler.stop();
    INFO("most server connections: " << sampler.most(0) << " " << sampler.most(1) << " "
                                     << sampler.most(2));
    CHECK(failures == 0);
    CHECK(right == kClients * 10);
    CHECK(c.exec(0, "SELECT count(*) FROM txp_size", kTestUser, kTestDb) ==
          std::to_string(2 * kClients));
    for (int i = 0; i < 3; ++i) CHECK(sampler.most(i) <= 3);
    CHECK(sampler.most(0) >= 1);
    CHECK(sampler.most(1) + sampler.most(2) >= 1);
    c.exec(0, "DROP TABLE txp_size", kTestUser, kTestDb);
    r.finish();
}

TEST_CASE("transaction mode: a client waiting past wait-timeout gets 53300, the others carry on",
          "[txpool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "workers 1\n" + tx_pool("size 1; wait-timeout 2s"));
    PgConn a(app_conninfo(r, "txwait_a"));
    PgConn b(app_conninfo(r, "txwait_b"));
    CHECK(a.value("SELECT 1") == "1");
    CHECK(b.value("SELECT 2") == "2");  // idle clients hold nothing: both served by size 1
    a.exec("BEGIN");
    a.exec("SELECT 1");
    // B is logged in already; its next statement waits for the one connection.
    PGresult* res = PQexec(b.get(), "SELECT 3");
    CHECK(PQresultStatus(res) == PGRES_FATAL_ERROR);
    const char* st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    CHECK(std::string(st != nullptr ? st : "") == "53300");
    PQclear(res);
    CHECK(fresh_client(r) == "53300");
    // A's transaction was never disturbed.
    CHECK(a.value("SELECT 4") == "4");
    a.exec("COMMIT");
    CHECK(a.value("SELECT 5") == "5");
    CHECK(fresh_client(r).empty());
    // B's session survives a wait that timed out (its statement failed, not its login).
    if (PQstatus(b.get()) == CONNECTION_OK) CHECK(b.value("SELECT 6") == "6");
    CHECK(pooled_on(c, 0) == 1);
    r.finish();
}

TEST_CASE("transaction mode: PQcancel reaches the backend running the client's query", "[txpool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}, {1}, {2}}, tx_pool("size 2; wait-timeout 30s"));
    PgConn a(app_conninfo(r, "txcancel_a"));
    PgConn b(app_conninfo(r, "txcancel_b"));
    // A has run on several connections before: the cancel must follow the current one.
    for (int i = 0; i < 10; ++i) {
        a.exec("SELECT 1");
        b.exec("BEGIN; SELECT 1; COMMIT");
        a.exec("BEGIN; SELECT 2; COMMIT");
    }
    // B sleeps 4 s and A 30 s, both started and seen running; then A is cancelled: A gets
    // 57014, B's statement (on another server connection, maybe the same node) completes.
    auto cancel_a = [&](const std::string& a_sql, const std::string& b_sql) {
        std::string b_state = "not run";
        std::thread bt([&] { b_state = sqlstate_of(b, b_sql); });
        auto running = [&](const std::string& sql) {
            for (int i = 0; i < 3; ++i) {
                if (sleeping_on(c, i, sql)) return true;
            }
            return false;
        };
        REQUIRE(wait_until([&] { return running(b_sql); }, 10s));
        REQUIRE(PQsendQuery(a.get(), a_sql.c_str()) == 1);
        REQUIRE(wait_until([&] { return running(a_sql); }, 10s));
        PGcancel* cancel = PQgetCancel(a.get());
        char err[256];
        CHECK(PQcancel(cancel, err, sizeof err) == 1);
        PQfreeCancel(cancel);
        std::string a_state = "none";
        while (PGresult* res = PQgetResult(a.get())) {
            const char* st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            if (PQresultStatus(res) == PGRES_FATAL_ERROR) a_state = st != nullptr ? st : "?";
            PQclear(res);
        }
        CHECK(a_state == "57014");
        bt.join();
        CHECK(b_state.empty());
    };
    SECTION("reads (a standby's pool)") {
        cancel_a("SELECT pg_sleep(30)", "SELECT pg_sleep(4)");
        CHECK(a.value("SELECT 8") == "8");
    }
    SECTION("a statement in a transaction block on the master") {
        a.exec("BEGIN");
        a.exec("SELECT txid_current()");  // the block is on the master
        b.exec("BEGIN");
        b.exec("SELECT txid_current()");
        cancel_a("SELECT pg_sleep(30) FROM txid_current()",
                 "SELECT pg_sleep(4) FROM txid_current()");
        a.exec("ROLLBACK");
        b.exec("COMMIT");
        CHECK(a.value("SELECT 9") == "9");
    }
    r.finish();
}

TEST_CASE("transaction mode: pgbench -c 200 TPC-B through size 10, zero failures, balances agree",
          "[txpool][pgbench]") {
    Cluster& c = Cluster::shared();
    REQUIRE(run({"pgbench", "-i", "-q", "-s", "2", c.conninfo(0, kTestUser, kTestDb)}).status == 0);
    c.wait_replayed(1);  // pgbench's first query (the scale) may be a read on a standby
    c.wait_replayed(2);
    Routed r(c, {{0}, {1}, {2}}, tx_pool("size 10; wait-timeout 60s"));
    Sampler sampler(c, 3);
    RunResult b =
        run({"pgbench", "-n", "-c", "200", "-j", "4", "-T", "10", "-M", "simple", r.conninfo()}, {},
            "", 180s);
    sampler.stop();
    INFO(b.out.substr(b.out.size() > 1500 ? b.out.size() - 1500 : 0) << b.err.substr(0, 1500));
    CHECK(b.status == 0);
    if (b.out.find("number of failed transactions") != std::string::npos) {
        CHECK(b.out.find("number of failed transactions: 0") != std::string::npos);
    }
    CHECK(b.out.find("number of clients: 200") != std::string::npos);
    for (int i = 0; i < 3; ++i) CHECK(sampler.most(i) <= 10);
    // The TPC-B invariant, on the master directly: every transaction moved one delta into
    // one account, one teller and one branch, and logged it once.
    Rows sums = c.query(0,
                        "SELECT (SELECT sum(bbalance) FROM pgbench_branches), (SELECT "
                        "sum(tbalance) FROM pgbench_tellers), (SELECT sum(abalance) FROM "
                        "pgbench_accounts), (SELECT coalesce(sum(delta), 0) FROM "
                        "pgbench_history), (SELECT count(*) FROM pgbench_history)",
                        kTestUser, kTestDb);
    REQUIRE(sums.size() == 1);
    INFO("branches " << sums[0][0] << " tellers " << sums[0][1] << " accounts " << sums[0][2]
                     << " history " << sums[0][3] << " (" << sums[0][4] << " rows)");
    CHECK(sums[0][0] == sums[0][1]);
    CHECK(sums[0][1] == sums[0][2]);
    CHECK(sums[0][2] == sums[0][3]);
    CHECK(std::stol(sums[0][4]) > 200);
    r.finish();
    c.exec(0, "DROP TABLE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history",
           kTestUser, kTestDb);
}

TEST_CASE("transaction mode: a reload changes size, and mode to session and back", "[txpool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "workers 1\npool { mode transaction; size 1; wait-timeout 1s }\n");
    {
        PgConn a(app_conninfo(r, "txreload")), b(app_conninfo(r, "txreload"));
        CHECK(a.value("SELECT 1") == "1");
        CHECK(b.value("SELECT 2") == "2");  // idle clients share the one connection
        a.exec("BEGIN");
        a.exec("SELECT 1");  // the block holds the connection from its first statement on
        CHECK(fresh_client(r) == "53300");
        a.exec("COMMIT");

        reload(r, "size 1", "size 3");
        a.exec("BEGIN");
        a.exec("SELECT 1");
        b.exec("BEGIN");
        b.exec("SELECT 1");
        CHECK(fresh_client(r).empty());  // a third connection now
        a.exec("COMMIT");
        b.exec("COMMIT");
        CHECK(pooled_on(c, 0) <= 3);

        // Down to 2 while a client stays: it keeps being served.
        reload(r, "size 3", "size 2");
        CHECK(wait_until([&] { return pooled_on(c, 0) <= 2; }, 10s));
        CHECK(a.value("SELECT 3") == "3");

        // To session mode: clients connected before keep working.
        reload(r, "mode transaction", "mode session");
        CHECK(a.value("SELECT 4") == "4");
        CHECK(b.value("SELECT 5") == "5");
    }
    // Session mode: an idle client holds its connection; size 2 serves two, the third waits.
    {
        auto d1 = std::make_unique<PgConn>(app_conninfo(r, "txreload"));
        PgConn d2(app_conninfo(r, "txreload"));
        CHECK(d1->value("SELECT 6") == "6");
        CHECK(d2.value("SELECT 7") == "7");
        CHECK(fresh_client(r) == "53300");
        d1.reset();
        CHECK(wait_until([&] { return fresh_client(r).empty(); }, 10s));

        // Back to transaction mode: new idle clients hold nothing again, d2 still works.
        reload(r, "mode session", "mode transaction");
        CHECK(d2.value("SELECT 8") == "8");
        std::vector<std::unique_ptr<PgConn>> e;
        for (int i = 0; i < 5; ++i) {
            e.push_back(std::make_unique<PgConn>(app_conninfo(r, "txreload")));
            CHECK(e.back()->value("SELECT " + std::to_string(i)) == std::to_string(i));
        }
        for (auto& conn : e) CHECK(conn->value("SELECT 9") == "9");
        CHECK(pooled_on(c, 0) <= 2);
    }
    r.finish();
}

TEST_CASE("transaction mode: pooled backends terminated and a standby stopped under load",
          "[txpool][faults]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}, {1}, {2}}, tx_pool("size 4; wait-timeout 30s"));
    constexpr int kClients = 20;
    std::atomic<bool> stop{false};
    std::atomic<int> answers{0}, errors{0}, finished{0};
    std::vector<std::thread> clients;
    for (int k = 0; k < kClients; ++k) {
        clients.emplace_back([&, k] {
            std::unique_ptr<PgConn> conn;
            int n = 0;
            while (!stop) {
                try {
                    if (!conn || PQstatus(conn->get()) != CONNECTION_OK) {
                        conn = std::make_unique<PgConn>(app_conninfo(r, "txfault"));
                    }
                    ++n;
                    std::string want = std::to_string(k * 100000 + n);
                    std::string got;
                    if (n % 3 == 0) {  // a block on the master
                        conn->exec("BEGIN");
                        conn->exec("SELECT txid_current()");
                        got = conn->value("SELECT " + want);
                        conn->exec("COMMIT");
                    } else {
                        got = conn->value("SELECT " + want);
                    }
                    if (got == want) answers++;
                } catch (const std::exception&) {
                    errors++;
                    conn.reset();  // whatever state the error left it in: a new session
                }
            }
            finished++;
        });
    }
    auto progress = [&](const char* what) {
        int from = answers;
        INFO(what);
        CHECK(wait_until([&] { return answers >= from + 200; }, 30s));
    };
    progress("before the faults");
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 3; ++i) {
            c.exec(i,
                   "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                   "backend_type = 'client backend' AND usename = '" +
                       std::string(kTestUser) + "'");
        }
        progress("after pg_terminate_backend of every pooled connection");
    }
    c.stop(1, "immediate");
    progress("with standby1 stopped");
    c.start(1);
    c.wait_streaming();
    progress("with standby1 back");
    stop = true;
    bool all_done = wait_until([&] { return finished == kClients; }, 60s);
    CHECK(all_done);                  // no client hangs
    if (!all_done) r.router->stop();  // unblocks them so the test can end
    for (std::thread& t : clients) t.join();
    WARN("under faults: " << answers.load() << " answers, " << errors.load() << " errors");
    CHECK(r.router->running());
    for (int i = 0; i < 5; ++i) {
        PgConn later(app_conninfo(r, "txfault"));
        CHECK(later.value("SELECT 10") == "10");
        later.exec("BEGIN; SELECT txid_current(); COMMIT");
    }
    for (int i = 0; i < 3; ++i) CHECK(pooled_on(c, i) <= 4);
    r.finish();
}

TEST_CASE(
    "transaction mode: a client that leaves inside a block: its server connection is "
    "closed, the block rolled back",
    "[txpool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "workers 1\n" + tx_pool("size 2; wait-timeout 10s"));
    std::string pid;
    {
        PgConn a(app_conninfo(r, "txleft"));
        a.exec("DROP TABLE IF EXISTS txp_left; CREATE TABLE txp_left (x int)");
        a.exec("BEGIN");
        a.exec("INSERT INTO txp_left VALUES (1)");
        pid = a.value("SELECT pg_backend_pid()");
    }
    CHECK(wait_until(
        [&] {
            return c.exec(0, "SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid) == "0";
        },
        5s));
    PgConn b(app_conninfo(r, "txleft"));
    CHECK(b.value("SELECT count(*) FROM txp_left") == "0");
    CHECK(b.value("SELECT pg_backend_pid()") != pid);
    CHECK(b.value("SELECT current_setting('transaction_isolation')") == "read committed");
    b.exec("DROP TABLE txp_left");
    r.finish();
}

TEST_CASE("transaction mode: max-clients counts clients, not server connections", "[txpool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, tx_pool("size 1; max-clients 3; wait-timeout 10s"));
    PgConn a(app_conninfo(r, "txmax")), b(app_conninfo(r, "txmax"));
    auto d = std::make_unique<PgConn>(app_conninfo(r, "txmax"));
    // Three idle clients, one server connection: all served in turn.
    for (int i = 0; i < 5; ++i) {
        CHECK(a.value("SELECT 1") == "1");
        CHECK(b.value("SELECT 2") == "2");
        CHECK(d->value("SELECT 3") == "3");
    }
    RawClient raw(r.port);
    auto msgs = raw.login(kTestUser, kTestDb, kTestPassword);
    const RawMessage* e = find_message(msgs, 'E');
    REQUIRE(e != nullptr);
    CHECK(error_code(*e) == "53300");
    CHECK(error_message(*e) == "sorry, too many clients already");
    d.reset();
    CHECK(wait_until([&] { return fresh_client(r).empty(); }, 5s));
    CHECK(pooled_on(c, 0) == 1);
    r.finish();
}
