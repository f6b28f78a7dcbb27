// Session-mode pooling against a real cluster: a client's server connection goes back to
// the pool after DISCARD ALL and the next client of the same (backend, database, user) gets
// the same backend (pg_backend_pid), with nothing of the first client's state; `size` holds
// across workers under load (counted in pg_stat_activity on every node); a full pool makes a
// client wait, then 53300; max-clients; an idle pooled connection that was terminated or
// whose backend stopped is never handed out; a reload changes `size`.
#include <libpq-fe.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "../harness/auth_files.h"
#include "../harness/cluster.h"
#include "../harness/files.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/raw_client.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

const std::string kApp = "pooltest";

std::string app_conninfo(const Routed& r) { return r.conninfo() + " application_name=" + kApp; }

// Server connections pgrouter holds on node i for the test's clients.
int pooled_on(Cluster& c, int i) {
    return std::stoi(
        c.exec(i, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + kApp + "'"));
}

// The backend `pid` on node i is idle after the pool's reset.
bool reset_done(Cluster& c, int i, const std::string& pid) {
    return c.exec(i, "SELECT state || ':' || query FROM pg_stat_activity WHERE pid = " + pid) ==
           "idle:DISCARD ALL";
}

// A login through pgrouter with the raw protocol: the SQLSTATE of its ErrorResponse, "" when
// it got in.
std::string login_sqlstate(const Routed& r, std::string* message = nullptr) {
    RawClient raw(r.port);
    auto msgs = raw.login(kTestUser, kTestDb, kTestPassword, {{"application_name", kApp}});
    // A login that waits for a pool answers later than login()'s 5 s read deadline.
    while (find_message(msgs, 'E') == nullptr && find_message(msgs, 'Z') == nullptr) {
        auto m = raw.read(15s);
        if (!m) break;
        msgs.push_back(*m);
    }
    const RawMessage* e = find_message(msgs, 'E');
    if (e == nullptr) return "";
    if (message != nullptr) *message = error_message(*e);
    return error_code(*e);
}

}  // namespace

TEST_CASE("session mode: the next client gets the same backend, without the last one's state",
          "[pool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "workers 1\npool { size 4; wait-timeout 5s }\n");
    std::string pid;
    {
        PgConn a(app_conninfo(r));
        pid = a.value("SELECT pg_backend_pid()");
        a.exec("SET work_mem = '7MB'");
        a.exec("CREATE TEMP TABLE pool_tmp (x int)");
        a.exec("PREPARE pool_sql AS SELECT 1");
        PGresult* res = PQprepare(a.get(), "pool_proto", "SELECT 2", 0, nullptr);
        REQUIRE(PQresultStatus(res) == PGRES_COMMAND_OK);
        PQclear(res);
        a.exec("SELECT pg_advisory_lock(515151)");
        a.exec("LISTEN pool_channel");
        CHECK(a.value("SHOW work_mem") == "7MB");
    }
    REQUIRE(wait_until([&] { return reset_done(c, 0, pid); }, 5s));
    CHECK(c.exec(0,
                 "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = "
                 "515151") == "0");
    PgConn b(app_conninfo(r));
    CHECK(b.value("SELECT pg_backend_pid()") == pid);  // no new backend login
    CHECK(b.value("SHOW work_mem") == c.exec(0, "SHOW work_mem"));
    CHECK(sqlstate_of(b, "SELECT * FROM pool_tmp") == "42P01");
    CHECK(sqlstate_of(b, "EXECUTE pool_sql") == "26000");
    PGresult* res = PQdescribePrepared(b.get(), "pool_proto");
    CHECK(PQresultStatus(res) == PGRES_FATAL_ERROR);
    CHECK(std::string(PQresultErrorField(res, PG_DIAG_SQLSTATE)) == "26000");
    PQclear(res);
    CHECK(b.value("SELECT count(*) FROM pg_listening_channels()") == "0");
    // The ParameterStatus the new client got are the connection's, as after a login.
    CHECK(std::string(PQparameterStatus(b.get(), "application_name")) == kApp);
    CHECK(PQparameterStatus(b.get(), "server_version") != nullptr);
    CHECK(PQbackendPID(b.get()) != std::stoi(pid));  // pgrouter's own BackendKeyData

    // Connect churn pays no login: twenty clients in a row, one backend (b holds another).
    std::string churn;
    const std::string work_mem = c.exec(0, "SHOW work_mem");
    for (int i = 0; i < 20; ++i) {
        {
            PgConn one(app_conninfo(r));
            std::string p = one.value("SELECT pg_backend_pid()");
            if (i == 0) churn = p;
            CHECK(p == churn);
            CHECK(one.value("SHOW work_mem") == work_mem);
            // Not a SET of search_path: pgrouter samples the master's WAL position after
            // one, and a client that leaves while that sample is in flight is not pooled.
            one.exec("SET work_mem = '3MB'");
        }
        REQUIRE(wait_until([&] { return reset_done(c, 0, churn); }, 5s));
    }
    CHECK(pooled_on(c, 0) == 2);
    r.finish();
}

TEST_CASE("size 2: a third client waits and gets in when one leaves, or 53300 at wait-timeout",
          "[pool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "pool { size 2; wait-timeout 2s }\n");
    auto a = std::make_unique<PgConn>(app_conninfo(r));
    PgConn b(app_conninfo(r));
    a->exec("SELECT 1");
    b.exec("SELECT 1");

    std::atomic<bool> in{false};
    std::thread third([&] {
        PgConn t(app_conninfo(r));
        t.exec("SELECT 1");
        in = true;
        t.exec("SELECT 1");
    });
    std::this_thread::sleep_for(500ms);  // the third one is still waiting
    CHECK_FALSE(in.load());
    CHECK(pooled_on(c, 0) == 2);
    a.reset();  // leaves: its connection (or, from another worker, its place) goes to the third
    third.join();
    CHECK(in.load());
    CHECK(pooled_on(c, 0) <= 2);

    // Both held: a client waits wait-timeout and gets 53300; the others carry on.
    PgConn held(app_conninfo(r));
    auto started = std::chrono::steady_clock::now();
    std::string message;
    CHECK(login_sqlstate(r, &message) == "53300");
    auto waited = std::chrono::steady_clock::now() - started;
    CHECK(waited >= 1900ms);
    CHECK(waited < 5s);
    CHECK(message.find("pool") != std::string::npos);
    CHECK(b.value("SELECT 42") == "42");
    CHECK(held.value("SELECT 43") == "43");
    CHECK(pooled_on(c, 0) == 2);
    r.finish();
}

TEST_CASE("size holds across workers under 50 concurrent clients, on every node", "[pool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}, {1}, {2}}, "workers 2\npool { size 3; wait-timeout 30s }\n");
    std::atomic<bool> done{false};
    std::atomic<int> failures{0};
    std::atomic<int> answers{0};
    int most[3] = {0, 0, 0};
    std::thread sampler([&] {
        while (!done) {
            for (int i = 0; i < 3; ++i) most[i] = std::max(most[i], pooled_on(c, i));
            std::this_thread::sleep_for(20ms);
        }
    });
    std::vector<std::thread> clients;
    for (int k = 0; k < 50; ++k) {
        clients.emplace_back([&, k] {
            for (int round = 0; round < 3; ++round) {
                try {
                    PgConn conn(app_conninfo(r));
                    for (int q = 0; q < 5; ++q) {
                        int v = k * 100 + round * 10 + q;
                        if (conn.value("SELECT " + std::to_string(v)) == std::to_string(v)) {
                            answers++;
                        }
                    }
                    if (k % 5 == 0) conn.exec("CREATE TEMP TABLE t_pool (x int)");  // master
                } catch (const std::exception& e) {
                    UNSCOPED_INFO(e.what());
                    failures++;
                }
            }
        });
    }
    for (std::thread& t : clients) t.join();
    done = true;
    sampler.join();
    INFO("most connections seen: " << most[0] << " " << most[1] << " " << most[2]);
    CHECK(failures == 0);
    CHECK(answers == 50 * 3 * 5);
    for (int i = 0; i < 3; ++i) CHECK(most[i] <= 3);
    CHECK(most[0] >= 1);
    r.finish();
}

TEST_CASE("max-clients: the next client gets 53300 'sorry, too many clients already'", "[pool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "pool { size 10; max-clients 3 }\n");
    PgConn a(app_conninfo(r)), b(app_conninfo(r)), d(app_conninfo(r));
    std::string message;
    CHECK(login_sqlstate(r, &message) == "53300");
    CHECK(message == "sorry, too many clients already");
    CHECK(a.value("SELECT 1") == "1");
    { PgConn gone(std::move(d)); }
    CHECK(wait_until([&] { return login_sqlstate(r).empty(); }, 5s));
    r.finish();
}

TEST_CASE("an idle pooled connection that was terminated is never handed out", "[pool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "workers 1\npool { size 2 }\n");
    std::string pid;
    {
        PgConn a(app_conninfo(r));
        pid = a.value("SELECT pg_backend_pid()");
    }
    REQUIRE(wait_until([&] { return reset_done(c, 0, pid); }, 5s));
    CHECK(c.exec(0, "SELECT pg_terminate_backend(" + pid + ")") == "t");
    PgConn b(app_conninfo(r));
    std::string other = b.value("SELECT pg_backend_pid()");
    CHECK(other != pid);
    CHECK(b.value("SELECT 7") == "7");
    // Terminated at the very moment it is handed out: the peek at checkout catches it too.
    b.exec("SELECT 1");
    r.finish();
}

TEST_CASE("a standby stopped while its pool has idle connections", "[pool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}, {1}}, "workers 1\npool { size 2 }\n");
    std::string port1 = std::to_string(c.port(1));
    {
        PgConn a(app_conninfo(r));
        CHECK(a.value("SELECT inet_server_port()") == port1);  // a read: the standby
    }
    REQUIRE(wait_until([&] { return pooled_on(c, 1) == 1; }, 5s));
    c.stop(1, "immediate");
    {
        PgConn b(app_conninfo(r));
        CHECK(b.value("SELECT inet_server_port()") == std::to_string(c.port(0)));
    }
    c.start(1);
    REQUIRE(wait_until(
        [&] { return r.router->monitor(r.monitor).find("FAILED") == std::string::npos; }, 30s));
    PgConn d(app_conninfo(r));
    CHECK(wait_until([&] { return d.value("SELECT inet_server_port()") == port1; }, 10s));
    r.finish();
}

TEST_CASE("a reload changes the pool size", "[pool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "pool { size 1; wait-timeout 500ms }\n");
    PgConn a(app_conninfo(r));
    a.exec("SELECT 1");
    CHECK(login_sqlstate(r) == "53300");
    std::string conf = read_file(r.router->config_path());
    auto at = conf.find("size 1");
    REQUIRE(at != std::string::npos);
    conf.replace(at, 6, "size 3");
    auto mark = r.router->log_size();
    r.router->write_config(conf);
    r.router->signal(SIGHUP);
    REQUIRE(r.router->wait_for_log("configuration reloaded", 10s, mark));
    CHECK(wait_until([&] { return login_sqlstate(r).empty(); }, 5s));
    {
        PgConn b(app_conninfo(r)), d(app_conninfo(r));
        CHECK(b.value("SELECT 1") == "1");
        CHECK(d.value("SELECT 1") == "1");
        CHECK(pooled_on(c, 0) == 3);
    }
    // Back to size 1: the idle ones close until the pool fits (a's stays, busy).
    conf.replace(at, 6, "size 1");
    mark = r.router->log_size();
    r.router->write_config(conf);
    r.router->signal(SIGHUP);
    REQUIRE(r.router->wait_for_log("configuration reloaded", 10s, mark));
    CHECK(wait_until([&] { return pooled_on(c, 0) == 1; }, 5s));
    CHECK(a.value("SELECT 2") == "2");
    r.finish();
}

TEST_CASE("SHOW POOLS and the pgrouter_pool_* series: active, idle, waiting, longest wait",
          "[pool]") {
    Cluster& c = Cluster::shared();
    int metrics = free_port();
    Routed r(c, {{0}},
             "workers 1\nadmin-users postgres\nmetrics 127.0.0.1:" + std::to_string(metrics) +
                 "\npool { size 2; wait-timeout 3s }\n");
    PgConn admin(r.conninfo(kSuperUser, "pgrouter"));
    PgConn a(app_conninfo(r)), b(app_conninfo(r));
    // Two held, one waiting: the third client's login waits in a thread.
    std::thread waiter([&] { CHECK(login_sqlstate(r) == "53300"); });
    std::string be = "127.0.0.1:" + std::to_string(c.port(0));
    auto row = [&]() -> std::vector<std::string> {
        for (const auto& rw : admin.query("SHOW POOLS")) {
            if (rw.at(0) == kTestDb && rw.at(1) == kTestUser) return rw;
        }
        return {};
    };
    REQUIRE(wait_until([&] { return row().size() == 7 && row()[5] == "1"; }, 3s));
    std::vector<std::string> p = row();
    CHECK(p[2] == be);
    CHECK(p[3] == "2");  // active
    CHECK(p[4] == "0");  // idle
    std::this_thread::sleep_for(300ms);
    CHECK(std::stol(row()[6]) >= 300);  // max_wait_ms
    std::string text =
        read_tcp(metrics, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string labels =
        "{backend=\"" + be + "\",database=\"" + kTestDb + "\",user=\"" + kTestUser + "\"}";
    CHECK(text.find("pgrouter_pool_active" + labels + " 2\n") != std::string::npos);
    CHECK(text.find("pgrouter_pool_idle" + labels + " 0\n") != std::string::npos);
    CHECK(text.find("pgrouter_pool_waiting" + labels + " 1\n") != std::string::npos);
    CHECK(text.find("pgrouter_pool_max_wait_seconds" + labels + " 0.") != std::string::npos);
    waiter.join();
    // The waiter gave up; a leaves: its connection is idle in the pool.
    { PgConn gone(std::move(a)); }
    CHECK(wait_until(
        [&] {
            auto q = row();
            return q.size() == 7 && q[4] == "1" && q[3] == "1" && q[5] == "0" && q[6] == "0";
        },
        5s));
    // The monitor's `connections` still counts the idle one.
    CHECK(r.router->monitor(r.monitor).find("connections 2\n") != std::string::npos);
    r.finish();
}

TEST_CASE("out of file descriptors: the new client gets 53300, the others carry on", "[pool]") {
    Cluster& c = Cluster::shared();
    // pgrouter under a hard limit of 48 descriptors (it raises its soft limit to the hard one).
    const char* env_bin = std::getenv("PGROUTER_BIN");
    std::string bin = std::filesystem::absolute(env_bin != nullptr ? env_bin : "build/pgrouter");
    int port = free_port(), monitor = free_port();
    std::string conf =
        "listen 127.0.0.1:" + std::to_string(port) +
        "\nmonitor 127.0.0.1:" + std::to_string(monitor) + "\nworkers 1\nauthdb " + authdb_file(c) +
        "\nhealth { username postgres; password \"" + kSuperPassword +
        "\"; check 1s }\npool { size 100 }\nbackend 127.0.0.1:" + std::to_string(c.port(0)) + "\n";
    std::filesystem::path wrapper = std::filesystem::temp_directory_path() /
                                    ("pgrouter-limited-" + std::to_string(getpid()) + ".sh");
    write_file(wrapper.string(), "#!/bin/sh\nulimit -n 48\nexec " + bin + " \"$@\"\n");
    chmod(wrapper.c_str(), 0755);
    RouterOptions opts;
    opts.binary = wrapper.string();
    RouterProcess router(conf, opts);
    std::string info = "host=127.0.0.1 port=" + std::to_string(port) + " user=" + kTestUser +
                       " password=" + kTestPassword + " dbname=" + kTestDb + " sslmode=disable";
    REQUIRE(wait_until([&] { return can_connect(info); }, 15s));
    CHECK(router.wait_for_log("open files limit: 48 \\(was 48, hard limit 48\\)"));
    std::vector<std::unique_ptr<PgConn>> held;
    bool refused = false;
    for (int n = 0; n < 60 && !refused; ++n) {
        RawClient raw(port);
        auto msgs = raw.login(kTestUser, kTestDb, kTestPassword);
        const RawMessage* e = find_message(msgs, 'E');
        if (e != nullptr && error_code(*e) == "53300") {
            CHECK(error_message(*e) == "sorry, too many clients already");
            refused = true;
            break;
        }
        if (e == nullptr) {
            try {
                held.push_back(std::make_unique<PgConn>(info));
            } catch (const std::exception&) {
            }
        }
    }
    CHECK(refused);
    CHECK(router.wait_for_log("out of file descriptors: refused a client"));
    CHECK(held.size() > 3);
    for (auto& conn : held) CHECK(conn->value("SELECT 5") == "5");  // the others carry on
    held.resize(held.size() / 2);
    CHECK(wait_until([&] { return can_connect(info); }, 10s));
    CHECK(router.running());
    CHECK(router.stop() == 0);
    CHECK(log_problems(router.log()).empty());
    std::filesystem::remove(wrapper);
}

TEST_CASE("a SIGKILLed worker's pool holdings go away with it", "[pool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "workers 1\npool { size 2; wait-timeout 1s }\n");
    {
        PgConn a(app_conninfo(r)), b(app_conninfo(r));
        a.exec("SELECT 1");
        b.exec("SELECT 1");
        CHECK(login_sqlstate(r) == "53300");  // full
        std::vector<pid_t> workers = r.router->children_titled("worker");
        REQUIRE(workers.size() == 1);
        kill(workers[0], SIGKILL);
        REQUIRE(wait_until(
            [&] {
                auto now = r.router->children_titled("worker");
                return now.size() == 1 && now[0] != workers[0];
            },
            10s));
    }
    // The dead worker's two connections are not counted any more: two new clients get in.
    REQUIRE(wait_until([&] { return can_connect(app_conninfo(r)); }, 10s));
    PgConn a(app_conninfo(r)), b(app_conninfo(r));
    CHECK(a.value("SELECT 1") == "1");
    CHECK(b.value("SELECT 2") == "2");
    CHECK(wait_until([&] { return pooled_on(c, 0) == 2; }, 10s));
    CHECK(r.router->stop() == 0);
}

TEST_CASE("a connection left inside a transaction block is closed, never pooled", "[pool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "workers 1\npool { size 2 }\n");
    std::string pid;
    {
        PgConn a(app_conninfo(r));
        a.exec("DROP TABLE IF EXISTS pool_txn; CREATE TABLE pool_txn (x int)");
        pid = a.value("SELECT pg_backend_pid()");
        a.exec("BEGIN");
        a.exec("INSERT INTO pool_txn VALUES (1)");
    }
    // DISCARD ALL fails inside the block: the connection closes, its transaction rolls back.
    CHECK(wait_until(
        [&] {
            return c.exec(0, "SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid) == "0";
        },
        5s));
    PgConn b(app_conninfo(r));
    CHECK(b.value("SELECT pg_backend_pid()") != pid);
    CHECK(b.value("SELECT count(*) FROM pool_txn") == "0");
    CHECK(b.value("SELECT current_setting('transaction_isolation')") == "read committed");
    r.finish();
}

TEST_CASE("a login waiting longer than the startup timeout is told why before it is cut",
          "[pool]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {{0}}, "pool { size 1; wait-timeout 1m }\n");
    PgConn a(app_conninfo(r));
    a.exec("SELECT 1");
    auto started = std::chrono::steady_clock::now();
    std::string message;
    CHECK(login_sqlstate(r, &message) == "53300");  // not a connection closed without a word
    auto waited = std::chrono::steady_clock::now() - started;
    CHECK(waited >= 8s);
    CHECK(waited < 10s);
    CHECK(message.find("pool") != std::string::npos);
    r.finish();
}
