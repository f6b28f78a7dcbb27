// Bounded memory on the real cluster: a worker's memory follows the bytes that arrive, not
// the length words clients announce; SQL over classify-limit goes to the master streamed,
// never held whole; a message over max-message-size ends the session before any of it
// reaches a backend. Memory is read from /proc (VmRSS, VmHWM) of pgrouter's workers.
#include <libpq-fe.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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

constexpr long kMaxWorkerKb = 100 * 1024;  // the bound for a worker's RSS

// The largest value of /proc/PID/status `field` (kB) among the router's workers.
long worker_kb(const RouterProcess& router, const std::string& field) {
    long most = 0;
    for (pid_t pid : router.children_titled("worker")) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/status");
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind(field + ":", 0) == 0) {
                most = std::max(most, std::stol(line.substr(field.size() + 1)));
            }
        }
    }
    return most;
}

std::string be32(std::uint32_t n) {
    std::string out;
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
    return out;
}

// A Query message's header announcing `length` (counting the length word).
std::string query_header(std::uint32_t length) { return "Q" + be32(length); }

std::unique_ptr<RawClient> logged_in(const Routed& r) {
    auto c = std::make_unique<RawClient>(r.port);
    auto msgs = c->login(kTestUser, kTestDb, kTestPassword);
    REQUIRE(find_message(msgs, 'Z') != nullptr);
    return c;
}

// A text of `size` bytes, the same 16-byte pattern over and over.
std::string pattern_text(std::size_t size) {
    const std::string unit = "0123456789abcdef";
    std::string out;
    out.reserve(size);
    while (out.size() < size) out += unit;
    out.resize(size);
    return out;
}

}  // namespace

TEST_CASE("memory: clients announcing 1 GiB cost only what they send", "[memory]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    std::vector<std::unique_ptr<RawClient>> hogs;
    for (int i = 0; i < 20; ++i) {
        hogs.push_back(logged_in(r));
        // Half say nothing after the header; half send 2 MB of it (past classify-limit:
        // streamed to the master, which waits for the rest).
        std::string start = query_header(1u << 30) + "SELECT '";
        if (i % 2 == 1) start += std::string(2 << 20, 'x');
        REQUIRE(hogs.back()->send(start));
    }
    std::vector<double> ms;
    {
        PgConn normal(r.conninfo());
        for (int i = 0; i < 200; ++i) {
            auto t0 = std::chrono::steady_clock::now();
            REQUIRE(normal.value("SELECT 1") == "1");
            ms.push_back(
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count());
        }
    }
    std::sort(ms.begin(), ms.end());
    WARN("SELECT 1 beside 20 clients announcing 1 GiB: p50 " << ms[ms.size() / 2] << " ms, p99 "
                                                             << ms[ms.size() * 99 / 100] << " ms");
    long rss = worker_kb(*r.router, "VmRSS");
    INFO("largest worker RSS " << rss << " kB");
    CHECK(rss > 0);
    CHECK(rss < kMaxWorkerKb);
    for (auto& h : hogs) h->close();
    r.finish();
}

TEST_CASE("memory: a 200 MB INSERT runs on the master streamed", "[memory]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    {
        PgConn conn(r.conninfo());
        conn.exec("DROP TABLE IF EXISTS mem_big; CREATE TABLE mem_big (v text)");
        const std::size_t size = 200u << 20;
        {
            std::string sql = "INSERT INTO mem_big VALUES ('" + pattern_text(size) + "')";
            PGresult* res = PQexec(conn.get(), sql.c_str());
            INFO(PQresultErrorMessage(res));
            CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
            CHECK(std::string(PQcmdStatus(res)) == "INSERT 0 1");
            PQclear(res);
        }
        int master = c.primary();
        CHECK(c.exec(master, "SELECT count(*) FROM mem_big", kSuperUser, kTestDb) == "1");
        CHECK(c.exec(master,
                     "SELECT v = repeat('0123456789abcdef', " + std::to_string(size / 16) +
                         ") FROM mem_big",
                     kSuperUser, kTestDb) == "t");
        long peak = worker_kb(*r.router, "VmHWM");
        INFO("largest worker peak RSS " << peak << " kB");
        CHECK(peak < kMaxWorkerKb);
        // The session goes on.
        CHECK(conn.value("SELECT 1") == "1");
        conn.exec("DROP TABLE mem_big");
    }
    r.finish();
}

TEST_CASE("memory: a 200 MB row of COPY data is passed on as it arrives", "[memory][copy]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    const std::size_t size = 200u << 20;
    {
        PgConn conn(r.conninfo());
        conn.exec("DROP TABLE IF EXISTS mem_copy; CREATE TABLE mem_copy (v text)");
        PGresult* res = PQexec(conn.get(), "COPY mem_copy FROM STDIN");
        REQUIRE(PQresultStatus(res) == PGRES_COPY_IN);
        PQclear(res);
        {
            std::string row = pattern_text(size) + "\n";  // one CopyData message
            REQUIRE(PQputCopyData(conn.get(), row.data(), static_cast<int>(row.size())) == 1);
        }
        REQUIRE(PQputCopyEnd(conn.get(), nullptr) == 1);
        res = PQgetResult(conn.get());
        INFO(PQresultErrorMessage(res));
        CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
        PQclear(res);
        while ((res = PQgetResult(conn.get())) != nullptr) PQclear(res);
        int master = c.primary();
        CHECK(c.exec(master, "SELECT length(v) FROM mem_copy", kSuperUser, kTestDb) ==
              std::to_string(size));
        long peak = worker_kb(*r.router, "VmHWM");
        INFO("largest worker peak RSS " << peak << " kB");
        CHECK(peak < kMaxWorkerKb);
        conn.exec("DROP TABLE mem_copy");
    }
    r.finish();
}

// A statement too long to classify is not parsed, so what it does to the session is not
// known: a SET in it must still hold for the session's later reads (they stay on the master).
TEST_CASE("memory: a SET inside a statement too long to classify still holds", "[memory][set]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    {
        PgConn conn(r.conninfo());
        std::string master = std::to_string(c.port(c.primary()));
        std::string sql =
            "SET application_name = 'long_one'; SELECT length('" + pattern_text(2 << 20) + "')";
        PGresult* res = PQexec(conn.get(), sql.c_str());
        REQUIRE(PQresultStatus(res) == PGRES_TUPLES_OK);
        CHECK(std::string(PQgetvalue(res, 0, 0)) == std::to_string(2 << 20));
        PQclear(res);
        for (int i = 0; i < 6; ++i) {
            CHECK(conn.value("SELECT current_setting('application_name')") == "long_one");
        }
    }
    r.finish();
}

TEST_CASE("memory: a long statement through the extended protocol goes to the master", "[memory]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    {
        PgConn conn(r.conninfo());
        // A read, too long to classify: a write's route, the master.
        // (inet_server_port() names the node; a short read of it goes to a standby.)
        std::string master = std::to_string(c.port(c.primary()));
        std::string sql = "SELECT inet_server_port(), length('" + pattern_text(3 << 20) + "')";
        PGresult* res =
            PQexecParams(conn.get(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0);
        REQUIRE(PQresultStatus(res) == PGRES_TUPLES_OK);
        CHECK(std::string(PQgetvalue(res, 0, 0)) == master);
        CHECK(std::string(PQgetvalue(res, 0, 1)) == std::to_string(3 << 20));
        PQclear(res);
        // Named: prepared once, executed again in later units, which follow it to the master.
        res = PQprepare(conn.get(), "long_one", sql.c_str(), 0, nullptr);
        REQUIRE(PQresultStatus(res) == PGRES_COMMAND_OK);
        PQclear(res);
        for (int i = 0; i < 5; ++i) {
            res = PQexecPrepared(conn.get(), "long_one", 0, nullptr, nullptr, nullptr, 0);
            REQUIRE(PQresultStatus(res) == PGRES_TUPLES_OK);
            CHECK(std::string(PQgetvalue(res, 0, 0)) == master);
            PQclear(res);
        }
        CHECK(conn.value("SELECT 1") == "1");
    }
    r.finish();
}

// A long statement under classify-limit is parsed (about 0.1 ms per kB) on the worker's
// parse thread, not on its event loop: the other sessions go on meanwhile.
TEST_CASE("memory: a long read under classify-limit is classified off the loop", "[memory]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    std::string master = std::to_string(c.port(c.primary()));
    std::string sql = "SELECT inet_server_port(), count(*) FROM (VALUES (1, 'abcdefghij')";
    int rows = 1;
    while (sql.size() < 800 * 1024) {
        sql += ", (1, 'abcdefghij')";
        ++rows;
    }
    sql += ") v(a, b)";
    std::atomic<bool> done{false};
    std::atomic<int> wrong{0};  // Catch2's assertions are not for other threads
    std::vector<double> ms;
    std::thread other([&] {
        PgConn conn(r.conninfo());
        while (!done) {
            auto t0 = std::chrono::steady_clock::now();
            try {
                if (conn.value("SELECT 1") != "1") ++wrong;
            } catch (...) {
                ++wrong;
            }
            ms.push_back(
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count());
        }
    });
    {
        PgConn conn(r.conninfo());
        for (int i = 0; i < 5; ++i) {
            PGresult* res = PQexec(conn.get(), sql.c_str());
            REQUIRE(PQresultStatus(res) == PGRES_TUPLES_OK);
            // A read, classified as one: a standby answers it.
            CHECK(std::string(PQgetvalue(res, 0, 0)) != master);
            CHECK(std::string(PQgetvalue(res, 0, 1)) == std::to_string(rows));
            PQclear(res);
        }
    }
    done = true;
    other.join();
    CHECK(wrong == 0);
    CHECK(r.router->wait_for_log("kB of SQL classified off the event loop"));
    std::sort(ms.begin(), ms.end());
    if (!ms.empty()) {
        WARN("SELECT 1 beside 800 kB statements: " << ms.size() << " runs, max " << ms.back()
                                                   << " ms");
    }
    r.finish();
}

TEST_CASE("memory: a message over max-message-size ends the session before reaching a backend",
          "[memory]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {RoutedBackend(0), RoutedBackend(1), RoutedBackend(2)}, "max-message-size 64M\n");
    {
        PgConn conn(r.conninfo());
        conn.exec("DROP TABLE IF EXISTS mem_cap; CREATE TABLE mem_cap (v text)");
    }
    std::string text = "INSERT INTO mem_cap VALUES ('" + pattern_text(65u << 20) + "')";
    std::uint32_t length = static_cast<std::uint32_t>(4 + text.size() + 1);
    {
        // The header alone decides: the error comes before the rest is sent.
        auto client = logged_in(r);
        REQUIRE(client->send(query_header(length) + text.substr(0, 100)));
        auto m = client->read(10s);
        REQUIRE(m);
        CHECK(m->type == 'E');
        CHECK(error_code(*m) == "08P01");
        CHECK(error_message(*m) == "invalid message length");
        CHECK(client->wait_closed(10s));
    }
    {
        // A client that sends it all fails too (the connection closes under it).
        PgConn conn(r.conninfo());
        PGresult* res = PQexec(conn.get(), text.c_str());
        INFO(PQerrorMessage(conn.get()));
        CHECK(PQresultStatus(res) != PGRES_COMMAND_OK);
        PQclear(res);
    }
    int master = c.primary();
    CHECK(c.exec(master, "SELECT count(*) FROM mem_cap", kSuperUser, kTestDb) == "0");
    // Under the limit, the same statement runs.
    {
        PgConn conn(r.conninfo());
        std::string smaller = "INSERT INTO mem_cap VALUES ('" + pattern_text(60u << 20) + "')";
        conn.exec(smaller);
        CHECK(c.exec(master, "SELECT count(*) FROM mem_cap", kSuperUser, kTestDb) == "1");
        conn.exec("DROP TABLE mem_cap");
    }
    r.finish();
}

TEST_CASE("memory: max-message-size takes effect on SIGHUP", "[memory][reload]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    std::string conf = read_file(r.router->config_path());
    r.router->write_config("max-message-size 64M\n" + conf);
    std::size_t mark = r.router->log_size();
    r.router->signal(SIGHUP);
    REQUIRE(r.router->wait_for_log("configuration reloaded", 10s, mark));
    auto client = logged_in(r);  // a session after the reload
    REQUIRE(client->send(query_header(65u << 20) + "SELECT '"));
    auto m = client->read(10s);
    REQUIRE(m);
    CHECK(m->type == 'E');
    CHECK(error_code(*m) == "08P01");
    CHECK(client->wait_closed(10s));
    r.finish();
}
