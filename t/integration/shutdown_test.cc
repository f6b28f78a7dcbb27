// Graceful shutdown as clients see it (issue 19, section 5): after SIGTERM each session ends
// at its next transaction boundary with PostgreSQL's FATAL 57P01, idle ones at once; only a
// session still inside a transaction at shutdown-timeout is cut. And hostile connections
// dropped before login are logged at INFO, rate-limited.
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>

#include <catch2/catch.hpp>
#include <memory>
#include <regex>
#include <vector>

#include "../harness/cluster.h"
#include "../harness/log_check.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/raw_client.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kAdminText = "terminating connection due to administrator command";

// The FATAL a connection got while idle (libpq hands it to the notice receiver), once the
// server has closed the connection.
struct Fatal {
    std::string sqlstate;
    std::string message;
};

void capture_fatal(void* arg, const PGresult* r) {
    const char* severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (severity == nullptr || std::string(severity) != "FATAL") return;
    auto* f = static_cast<Fatal*>(arg);
    const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char* message = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    f->sqlstate = code != nullptr ? code : "";
    f->message = message != nullptr ? message : "";
}

// Records the FATAL `conn` receives from now on (also one parsed behind the answer to a
// query, which libpq hands to the notice receiver as well).
void watch_fatal(PgConn& conn, Fatal& f) { PQsetNoticeReceiver(conn.get(), capture_fatal, &f); }

// Waits, without sending anything, until the server closes `conn`; the FATAL that came
// first, if any (empty sqlstate when the connection was cut; "still open" at the deadline).
Fatal wait_fatal_close(PgConn& conn, Fatal f = {}, std::chrono::milliseconds deadline = 5s) {
    watch_fatal(conn, f);
    bool closed = wait_until(
        [&] {
            pollfd p{PQsocket(conn.get()), POLLIN, 0};
            bool eof = poll(&p, 1, 0) > 0 && PQconsumeInput(conn.get()) == 0;
            (void)PQisBusy(conn.get());  // parses what was read: the FATAL goes to capture_fatal
            return eof || PQstatus(conn.get()) == CONNECTION_BAD;
        },
        deadline, 5ms);
    PQsetNoticeReceiver(
        conn.get(), [](void*, const PGresult*) {}, nullptr);
    if (!closed) f.sqlstate = "still open";
    return f;
}

std::string rows_of(Cluster& c, int id) {
    return c.exec(0, "SELECT count(*) FROM shutdown_rows WHERE id = " + std::to_string(id));
}

struct ShutdownRouted {
    explicit ShutdownRouted(const std::string& extra = "")
        : c(Cluster::shared()), r(c, {RoutedBackend(0), RoutedBackend(1)}, extra) {
        c.exec(0, "CREATE TABLE IF NOT EXISTS shutdown_rows (id int)");
    }
    std::string conninfo() const { return r.conninfo(kSuperUser, "postgres"); }
    Cluster& c;
    Routed r;
};

}  // namespace

TEST_CASE("shutdown: an idle session gets FATAL 57P01 at once after SIGTERM", "[shutdown]") {
    ShutdownRouted s;
    PgConn idle(s.conninfo());
    CHECK(idle.value("SELECT 'before'") == "before");
    s.r.router->signal(SIGTERM);
    Fatal f = wait_fatal_close(idle);
    CHECK(f.sqlstate == "57P01");
    CHECK(f.message == kAdminText);
    // No session left: the router is done well before the shutdown timeout.
    auto status = s.r.router->wait_exit(8s);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    check_log_clean(*s.r.router);
}

TEST_CASE("shutdown: a session inside a transaction commits after SIGTERM and then gets 57P01",
          "[shutdown]") {
    ShutdownRouted s;
    const int id = static_cast<int>(time(nullptr) % 100000) * 10 + 1;
    PgConn txn(s.conninfo());
    PgConn idle(s.conninfo());
    CHECK(idle.value("SELECT 1") == "1");
    txn.exec("BEGIN");
    txn.exec("INSERT INTO shutdown_rows VALUES (" + std::to_string(id) + ")");
    s.r.router->signal(SIGTERM);
    // The idle one goes at once, while the transaction is still open.
    Fatal idle_fatal = wait_fatal_close(idle);
    CHECK(idle_fatal.sqlstate == "57P01");
    CHECK(s.r.router->running());
    // The transaction goes on: statements, then COMMIT, answered as usual.
    CHECK(txn.value("SELECT count(*) FROM shutdown_rows WHERE id = " + std::to_string(id)) == "1");
    txn.exec("INSERT INTO shutdown_rows VALUES (" + std::to_string(id) + ")");
    Fatal after_commit;
    watch_fatal(txn, after_commit);
    PGresult* res = PQexec(txn.get(), "COMMIT");
    REQUIRE(res != nullptr);
    CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
    CHECK(std::string(PQcmdStatus(res)) == "COMMIT");
    PQclear(res);
    // Then, at that boundary, the session ends with PostgreSQL's FATAL.
    Fatal f = wait_fatal_close(txn, after_commit);
    CHECK(f.sqlstate == "57P01");
    CHECK(f.message == kAdminText);
    CHECK(rows_of(s.c, id) == "2");  // durable on the master
    auto status = s.r.router->wait_exit(8s);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    check_log_clean(*s.r.router);
}

TEST_CASE("shutdown: a session still inside a transaction at shutdown-timeout is cut",
          "[shutdown]") {
    ShutdownRouted s("shutdown-timeout 2s\n");
    const int id = static_cast<int>(time(nullptr) % 100000) * 10 + 2;
    PgConn txn(s.conninfo());
    txn.exec("BEGIN");
    txn.exec("INSERT INTO shutdown_rows VALUES (" + std::to_string(id) + ")");
    s.r.router->signal(SIGTERM);
    CHECK(wait_until([&] { return !port_open(s.r.port); }, 5s));
    CHECK(s.r.router->running());
    auto status = s.r.router->wait_exit(10s);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    // Cut: the connection is gone and the transaction never committed.
    CHECK_THROWS(txn.exec("COMMIT"));
    CHECK(wait_until([&] { return rows_of(s.c, id) == "0"; }, 5s));
    check_log_clean(*s.r.router);
}

TEST_CASE("hostile connections dropped before login are logged at INFO and rate-limited",
          "[shutdown][frontdoor]") {
    ShutdownRouted s;
    std::size_t mark = s.r.router->log_size();
    constexpr int kGarbage = 50;
    auto started = std::chrono::steady_clock::now();
    {
        std::vector<std::unique_ptr<RawClient>> clients;
        for (int i = 0; i < kGarbage; ++i) {
            clients.push_back(std::make_unique<RawClient>(s.r.port));
            clients.back()->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        for (auto& c : clients) CHECK(c->wait_closed(12s));
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    CHECK(can_connect(s.conninfo()));
    // Every drop is either logged or counted in a summary (which comes once its window is
    // over); the lines logged are at most 10 a second per worker (2 workers).
    std::regex dropped(
        "INFO: session [0-9]+: dropped connection from 127\\.0\\.0\\.1 before login");
    std::regex summary("INFO: connections dropped before login: suppressed ([0-9]+) similar");
    long lines = 0, suppressed = 0;
    bool all = wait_until(
        [&] {
            std::string log = s.r.router->log().substr(mark);
            lines = std::distance(std::sregex_iterator(log.begin(), log.end(), dropped),
                                  std::sregex_iterator());
            suppressed = 0;
            for (auto it = std::sregex_iterator(log.begin(), log.end(), summary);
                 it != std::sregex_iterator(); ++it) {
                suppressed += std::stol((*it)[1].str());
            }
            return lines + suppressed == kGarbage;
        },
        10s);
    INFO("logged " << lines << ", suppressed " << suppressed << ", in " << seconds << " s");
    CHECK(all);
    CHECK(lines >= 1);
    CHECK(lines <= 10 * 2 * (static_cast<long>(seconds) + 2));
    if (seconds < 1.0) CHECK(suppressed > 0);
    s.r.finish();
}

TEST_CASE("a client stalled in its startup packet is dropped at the startup timeout and logged",
          "[shutdown][frontdoor]") {
    ShutdownRouted s;
    std::size_t mark = s.r.router->log_size();
    RawClient staller(s.r.port);
    staller.send(std::string("\0\0\0\x30\0\3\0\0user", 12));  // 48 bytes announced, 12 sent
    CHECK(staller.wait_closed(15s));                          // the startup deadline is 10 s
    CHECK(s.r.router->wait_for_log(
        "INFO: session [0-9]+: dropped connection from 127\\.0\\.0\\.1 before login: timeout "
        "expired during startup",
        5s, mark));
    s.r.finish();
}
