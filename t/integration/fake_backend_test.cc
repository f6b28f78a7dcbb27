// Byte-level session tests against the scripted fake backend (t/harness/fake_backend.h):
// the real pgrouter binary in front of a fake that sends what a real server cannot be made
// to send on demand (an error mid-batch, a close after one row, answers cut at every byte,
// messages while the client is idle, bad frames). Driven by libpq and the raw client; each
// test checks what the client saw, that the fake got what it expected, and the router log.
// A test that shows a pgrouter bug not yet fixed is tagged [.pending] (left out of
// `make check`) and says so at the test; none is today.
#include "../harness/fake_backend.h"

#include <libpq-fe.h>
#include <poll.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <functional>

#include "../harness/files.h"
#include "../harness/log_check.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/raw_client.h"
#include "../harness/router_process.h"
#include "../harness/run.h"
#include "pgrouter/proto/encoder.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;
namespace fake = pgrouter::test::fake;
namespace proto = pgrouter::proto;

namespace {

// pgrouter with one worker (every session shares its event loop) in front of fake
// backends, clients let in by trust.
struct FakeRouted {
    explicit FakeRouted(std::vector<FakeBackend*> backends) {
        write_file(files + "/hba.conf", "host all all 127.0.0.1/32 trust\n");
        std::string conf = "listen 127.0.0.1:" + std::to_string(port) +
                           "\nmonitor 127.0.0.1:" + std::to_string(monitor) + "\nworkers 1\nhba " +
                           files +
                           "/hba.conf\nhealth { check 1s; lag-interval 100ms; timeout 3s }\n";
        for (FakeBackend* b : backends) {
            conf += "backend 127.0.0.1:" + std::to_string(b->port()) + "\n";
        }
        router = std::make_unique<RouterProcess>(conf);
        std::string want = std::to_string(backends.size()) + "/" + std::to_string(backends.size());
        REQUIRE(wait_until(
            [&] { return router->monitor(monitor).find("backends " + want) != std::string::npos; },
            15s));
    }
    explicit FakeRouted(FakeBackend& b) : FakeRouted(std::vector<FakeBackend*>{&b}) {}
    ~FakeRouted() {
        router.reset();
        remove_tree(files);
    }

    std::string conninfo() const {
        return "host=127.0.0.1 port=" + std::to_string(port) +
               " user=fake dbname=fake sslmode=disable connect_timeout=10";
    }

    // A raw client past its login.
    std::unique_ptr<RawClient> raw() const {
        auto c = std::make_unique<RawClient>(port);
        auto msgs = c->login("fake", "fake", "");
        REQUIRE(find_message(msgs, 'Z') != nullptr);
        return c;
    }

    // Stops the router (exit 0), checks its log and what the fakes recorded.
    void finish(std::vector<const FakeBackend*> fakes) {
        CHECK(router->stop() == 0);
        check_log_clean(*router);
        for (const FakeBackend* f : fakes) {
            for (const std::string& failure : f->failures()) FAIL_CHECK(failure);
        }
    }
    void finish(const FakeBackend& f) { finish(std::vector<const FakeBackend*>{&f}); }

    std::string files = make_temp_dir("pgrouter-fake");
    int port = free_port();
    int monitor = free_port();
    std::unique_ptr<RouterProcess> router;
};

// pgrouter in front of `fake`, one libpq client through it running `client`; then the
// client leaves, pgrouter stops, and the log and the fake's expectations are checked.
void with_client(FakeBackend& fake, const std::function<void(PgConn&)>& client) {
    FakeRouted r(fake);
    {
        PgConn c(r.conninfo());
        client(c);
    }  // pgrouter stops only when its sessions are done
    r.finish(fake);
}

// ---- client messages the raw client sends ----------------------------------------------------

std::string query(const std::string& sql) {
    std::string out;
    proto::encode_query(out, sql);
    return out;
}

std::string parse(const std::string& name, const std::string& sql) {
    std::string out;
    proto::MessageBuilder(out, proto::FrontendMsg::Parse).cstr(name).cstr(sql).i16(0);
    return out;
}

std::string bind(const std::string& statement, const std::vector<std::string>& params = {}) {
    std::string out;
    proto::MessageBuilder b(out, proto::FrontendMsg::Bind);
    b.cstr("").cstr(statement).i16(0).i16(static_cast<std::int16_t>(params.size()));
    for (const std::string& p : params) b.i32(static_cast<std::int32_t>(p.size())).bytes(p);
    b.i16(0);
    b.finish();
    return out;
}

std::string execute() {
    std::string out;
    proto::MessageBuilder(out, proto::FrontendMsg::Execute).cstr("").i32(0);
    return out;
}

std::string sync_msg() {
    std::string out;
    proto::encode_sync(out);
    return out;
}

// The types of the messages the client reads until `readies` ReadyForQuery (or nothing
// more comes within the deadline); the messages themselves in `got` when given.
std::string read_types(RawClient& c, int readies = 1, std::vector<RawMessage>* got = nullptr,
                       std::chrono::milliseconds deadline = 10s) {
    std::string types;
    while (readies > 0) {
        auto m = c.read(deadline);
        if (!m) break;
        types += m->type;
        if (m->type == 'Z') readies -= 1;
        if (got != nullptr) got->push_back(*m);
    }
    return types;
}

// Reads what arrives on an idle libpq connection, without sending anything, until `done`
// holds or the deadline passes.
bool idle_until(PGconn* conn, const std::function<bool()>& done,
                std::chrono::milliseconds deadline = 5s) {
    return wait_until(
        [&] {
            pollfd p{PQsocket(conn), POLLIN, 0};
            if (poll(&p, 1, 0) > 0 && PQconsumeInput(conn) == 0) return done();
            // PQisBusy parses what PQconsumeInput read (notices, ParameterStatus).
            (void)PQisBusy(conn);
            return done();
        },
        deadline, 5ms);
}

// The channel and payload of the first notification that arrives on an idle connection
// ("", "" when none comes within the deadline).
std::pair<std::string, std::string> wait_notification(PGconn* conn) {
    std::pair<std::string, std::string> got;
    idle_until(conn, [&] {
        if (PGnotify* n = PQnotifies(conn)) {
            got = {n->relname, n->extra};
            PQfreemem(n);
        }
        return !got.first.empty();
    });
    return got;
}

std::string sqlstate(const PGresult* r) {
    const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s != nullptr ? s : "";
}

// The largest VmHWM (peak resident set, kB) among the router's processes.
long peak_rss_kb(const RouterProcess& router) {
    long peak = 0;
    for (pid_t pid : router.children()) {
        std::ifstream in("/proc/" + std::to_string(pid) + "/status");
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind("VmHWM:", 0) == 0) peak = std::max(peak, std::stol(line.substr(6)));
        }
    }
    return peak;
}

}  // namespace

TEST_CASE("fake backend: a client logs in through pgrouter and queries it", "[fake]") {
    FakeBackend fake;
    fake.add_script(
        {fake::expect_query("SELECT 'hello'"), fake::send(fake::select_answer({"hi"}))});
    FakeRouted r(fake);
    CHECK(r.router->monitor(r.monitor).find("127.0.0.1:" + std::to_string(fake.port()) +
                                            " master OK 0") != std::string::npos);
    CHECK(fake.watcher_queries() > 0);
    {
        PgConn c(r.conninfo());
        // The backend's ParameterStatus reach the client at login.
        CHECK(std::string(PQparameterStatus(c.get(), "server_version")) == "16.0 (fake)");
        CHECK(c.value("SELECT 'hello'") == "hi");
        CHECK(c.value("SELECT 2") == "SELECT 2");  // the script ended: serve() echoes
    }
    REQUIRE(fake.wait_sessions_done(1));
    auto got = fake.received(0);
    REQUIRE(got.size() == 2);
    CHECK(got[1].payload.find("SELECT 2") == 0);
    r.finish(fake);
}

TEST_CASE("fake backend: an ErrorResponse in the middle of a pipelined batch", "[fake]") {
    FakeBackend fake;
    // PostgreSQL skips to Sync after the error: nothing for the third statement.
    fake.add_script(
        {fake::expect("PBEPBEPBES"),
         fake::send(fake::parse_complete() + fake::bind_complete() + fake::data_row({"1"}) +
                    fake::command_complete("SELECT 1") +
                    fake::error("42703", "column \"nope\" does not exist") + fake::ready())});
    FakeRouted r(fake);
    auto c = r.raw();
    c->send(parse("", "SELECT 1") + bind("") + execute() + parse("", "SELECT nope") + bind("") +
            execute() + parse("", "SELECT 3") + bind("") + execute() + sync_msg());
    std::vector<RawMessage> got;
    CHECK(read_types(*c, 1, &got) == "12DCEZ");
    REQUIRE(got.size() == 6);
    CHECK(error_code(got[4]) == "42703");
    // The session goes on after the Sync.
    c->send(query("SELECT after"));
    CHECK(read_types(*c) == "TDCZ");
    c->close();
    r.finish(fake);
}

TEST_CASE("fake backend: a libpq pipeline sees the error and the aborted rest", "[fake]") {
    FakeBackend fake;
    std::string first = fake::parse_complete() + fake::bind_complete() +
                        fake::row_description({"a"}) + fake::data_row({"1"}) +
                        fake::command_complete("SELECT 1");
    fake.add_script({fake::expect("PBDEPBDEPBDES"),
                     fake::send(first + fake::error("22012", "division by zero") + fake::ready())});
    with_client(fake, [&](PgConn& c) {
        PGconn* conn = c.get();
        REQUIRE(PQenterPipelineMode(conn) == 1);
        for (const char* sql : {"SELECT 1", "SELECT 1/0", "SELECT 3"}) {
            REQUIRE(PQsendQueryParams(conn, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1);
        }
        REQUIRE(PQpipelineSync(conn) == 1);
        std::vector<ExecStatusType> statuses;
        std::string code;
        // Each query's results end with a NULL; the Sync's result ends the batch.
        for (int i = 0; i < 16; ++i) {
            PGresult* res = PQgetResult(conn);
            if (res == nullptr) continue;
            statuses.push_back(PQresultStatus(res));
            if (PQresultStatus(res) == PGRES_FATAL_ERROR) code = sqlstate(res);
            bool synced = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
            PQclear(res);
            if (synced) break;
        }
        CHECK(statuses == std::vector<ExecStatusType>{PGRES_TUPLES_OK, PGRES_FATAL_ERROR,
                                                      PGRES_PIPELINE_ABORTED, PGRES_PIPELINE_SYNC});
        CHECK(code == "22012");
        REQUIRE(PQexitPipelineMode(conn) == 1);
        CHECK(c.value("SELECT next") == "SELECT next");
    });
}

TEST_CASE("fake backend: a backend that closes after the first DataRow", "[fake]") {
    FakeBackend fake;
    fake.add_script({fake::expect_query("SELECT g"),
                     fake::send(fake::row_description({"g"}) + fake::data_row({"1"})),
                     fake::close_now()});
    FakeRouted r(fake);
    {
        PgConn victim(r.conninfo());  // backend session 0: the script above
        PgConn other(r.conninfo());   // backend session 1: serve()
        PGresult* res = PQexec(victim.get(), "SELECT g FROM generate_series(1, 3) g");
        REQUIRE(res != nullptr);
        CHECK(PQresultStatus(res) == PGRES_FATAL_ERROR);
        CHECK(sqlstate(res) == "08006");
        CHECK(std::string(PQresultErrorMessage(res)).find("lost the connection to backend") !=
              std::string::npos);
        PQclear(res);
        // The other session on the same worker never noticed; the victim carries on with a new
        // backend connection.
        CHECK(other.value("SELECT still") == "SELECT still");
        CHECK(victim.value("SELECT again") == "SELECT again");
        CHECK(fake.sessions() == 3);
    }  // the clients leave: pgrouter stops only when its sessions are done
    r.finish(fake);
}

namespace {

// A fake standby's options (the test scripts what it answers).
FakeOptions standby_options() {
    FakeOptions so;
    so.standby = true;
    return so;
}

// A read sent through a router in front of `master` and `standby`: the client gets one
// whole answer, the master's (its DataRow echoes the query), whatever the standby did; by
// then the standby had `standby_sessions` sessions (-1: not checked). With `and_then`, the
// session's next read is answered too.
void master_answers_the_read(FakeBackend& master, FakeBackend& standby, int standby_sessions,
                             bool and_then = false) {
    FakeRouted r({&master, &standby});
    REQUIRE(wait_until(
        [&] { return r.router->monitor(r.monitor).find(" slave OK") != std::string::npos; }));
    auto c = r.raw();
    c->send(query("SELECT v FROM t"));
    std::vector<RawMessage> got;
    CHECK(read_types(*c, 1, &got) == "TDCZ");
    // Nothing of the standby's half answer reached the client: one answer, the master's.
    REQUIRE(got.size() == 4);
    CHECK(got[1].payload.find("SELECT v FROM t") != std::string::npos);
    if (standby_sessions >= 0) CHECK(standby.sessions() == standby_sessions);
    if (and_then) {
        c->send(query("SELECT w"));
        CHECK(read_types(*c) == "TDCZ");
    }
    c->close();
    r.finish({&master, &standby});
}

}  // namespace

// A read on a standby is held back until its first row: a standby that closes before
// that is replaced by the master without the client noticing.
TEST_CASE("fake backend: a standby that closes before the first row: the master answers",
          "[fake][faults]") {
    FakeBackend master;
    FakeBackend standby(standby_options());
    standby.add_script({fake::expect_query("SELECT v"), fake::send(fake::row_description({"v"})),
                        fake::close_now()});
    master_answers_the_read(master, standby, 1);
}

// A dying standby's FATAL (57P01 admin shutdown, 57P02 crash shutdown) answering a held
// read, before or after its RowDescription, never reaches the client: the master answers.
TEST_CASE("fake backend: a standby that answers a held read with FATAL 57P01: the master answers",
          "[fake][faults]") {
    for (bool after_description : {false, true}) {
        DYNAMIC_SECTION((after_description ? "after RowDescription" : "as the first answer")) {
            FakeBackend master;
            FakeBackend standby(standby_options());
            std::string fatal = fake::error(
                "57P01", "terminating connection due to administrator command", "FATAL");
            if (after_description) fatal = fake::row_description({"v"}) + fatal;
            standby.add_script(
                {fake::expect_query("SELECT v"), fake::send(fatal), fake::close_now()});
            master_answers_the_read(master, standby, 1, true);  // and the session goes on
        }
    }
}

// A standby that refuses the login of a read's backend connection (57P03, "the database
// system is shutting down"): the master serves the read.
TEST_CASE("fake backend: a standby that refuses a session's login with 57P03: the master answers",
          "[fake][faults]") {
    FakeBackend master;
    FakeOptions so = standby_options();
    so.session_hello = fake::error("57P03", "the database system is shutting down", "FATAL");
    FakeBackend standby(so);
    standby.add_script({fake::close_now()});
    master_answers_the_read(master, standby, -1);
}

TEST_CASE("fake backend: a NoticeResponse while the client is idle is forwarded at once",
          "[fake]") {
    FakeBackend fake;
    fake.add_script({fake::expect_query("SELECT 1"), fake::send(fake::select_answer({"1"})),
                     fake::wait_gate("idle"), fake::send(fake::notice("a notice while idle"))});
    with_client(fake, [&](PgConn& c) {
        CHECK(c.value("SELECT 1") == "1");
        fake.open_gate("idle");
        CHECK(idle_until(c.get(), [&] { return !c.notices().empty(); }));
        REQUIRE(c.notices().size() == 1);
        CHECK(c.notices()[0].find("a notice while idle") != std::string::npos);
        CHECK(c.value("SELECT 2") == "SELECT 2");
    });
}

// A message that arrives in the same read as the ReadyForQuery ending a unit is in the
// backend's input buffer, not on its socket: the idle session must pass it on all the same
// (the idle watch waits for the socket, which has nothing more to say).
TEST_CASE("fake backend: a NoticeResponse right behind ReadyForQuery is forwarded at once",
          "[fake]") {
    FakeBackend fake;
    fake.add_script({fake::expect_query("SELECT 1"),
                     fake::send(fake::select_answer({"1"}) + fake::notice("behind the answer"))});
    with_client(fake, [&](PgConn& c) {
        CHECK(c.value("SELECT 1") == "1");
        CHECK(idle_until(c.get(), [&] { return !c.notices().empty(); }));
        CHECK(c.notices().size() == 1);
    });
}

TEST_CASE("fake backend: a NotificationResponse while the client is idle is forwarded", "[fake]") {
    FakeBackend fake;
    fake.add_script({fake::expect_query("LISTEN ch"),
                     fake::send(fake::command_complete("LISTEN") + fake::ready()),
                     fake::wait_gate("idle"), fake::send(fake::notification(99, "ch", "payload"))});
    with_client(fake, [&](PgConn& c) {
        c.exec("LISTEN ch");
        fake.open_gate("idle");
        CHECK(wait_notification(c.get()) == std::pair<std::string, std::string>{"ch", "payload"});
    });
}

// As "a NoticeResponse right behind ReadyForQuery".
TEST_CASE("fake backend: a NotificationResponse right behind ReadyForQuery is forwarded",
          "[fake]") {
    FakeBackend fake;
    fake.add_script({fake::expect_query("LISTEN ch"),
                     fake::send(fake::command_complete("LISTEN") + fake::ready() +
                                fake::notification(99, "ch", "merged"))});
    with_client(fake, [&](PgConn& c) {
        c.exec("LISTEN ch");
        CHECK(wait_notification(c.get()) == std::pair<std::string, std::string>{"ch", "merged"});
    });
}

TEST_CASE("fake backend: a ParameterStatus in the middle of a transaction is forwarded", "[fake]") {
    FakeBackend fake;
    fake.add_script(
        {fake::expect_query("BEGIN"),
         fake::send(fake::command_complete("BEGIN") + fake::ready('T')),
         fake::expect_query("SELECT"),
         fake::send(fake::row_description({"x"}) + fake::parameter_status("DateStyle", "German") +
                    fake::data_row({"1"}) + fake::command_complete("SELECT 1") + fake::ready('T')),
         fake::expect_query("COMMIT"),
         fake::send(fake::command_complete("COMMIT") + fake::ready('I'))});
    with_client(fake, [&](PgConn& c) {
        c.exec("BEGIN");
        CHECK(c.value("SELECT 1") == "1");
        CHECK(std::string(PQparameterStatus(c.get(), "DateStyle")) == "German");
        CHECK(PQtransactionStatus(c.get()) == PQTRANS_INTRANS);
        c.exec("COMMIT");
        CHECK(PQtransactionStatus(c.get()) == PQTRANS_IDLE);
    });
}

TEST_CASE("fake backend: a ParameterStatus while the client is idle is forwarded", "[fake]") {
    FakeBackend fake;
    fake.add_script({fake::expect_query("SELECT 1"), fake::send(fake::select_answer({"1"})),
                     fake::wait_gate("idle"),
                     fake::send(fake::parameter_status("TimeZone", "Europe/Paris"))});
    with_client(fake, [&](PgConn& c) {
        CHECK(c.value("SELECT 1") == "1");
        fake.open_gate("idle");
        CHECK(idle_until(c.get(), [&] {
            return std::string(PQparameterStatus(c.get(), "TimeZone")) == "Europe/Paris";
        }));
    });
}

TEST_CASE("fake backend: a slow backend does not stall another client on the same worker",
          "[fake]") {
    FakeBackend fake;
    fake.add_script({fake::expect_query("SELECT slow"), fake::wait_gate("answer"),
                     fake::send(fake::select_answer({"finally"}))});
    FakeRouted r(fake);  // one worker
    {
        PgConn slow(r.conninfo());
        PgConn quick(r.conninfo());
        REQUIRE(PQsendQuery(slow.get(), "SELECT slow") == 1);
        REQUIRE(wait_until([&] { return fake.received(0).size() == 1; }));
        for (int i = 0; i < 50; ++i) {
            CHECK(quick.value("SELECT " + std::to_string(i)) == "SELECT " + std::to_string(i));
        }
        // All of that while the slow answer was still outstanding.
        REQUIRE(PQconsumeInput(slow.get()) == 1);
        CHECK(PQisBusy(slow.get()) == 1);
        fake.open_gate("answer");
        PGresult* res = PQgetResult(slow.get());
        REQUIRE(res != nullptr);
        CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
        CHECK(std::string(PQgetvalue(res, 0, 0)) == "finally");
        PQclear(res);
        while ((res = PQgetResult(slow.get())) != nullptr) PQclear(res);
    }  // the clients leave: pgrouter stops only when its sessions are done
    r.finish(fake);
}

TEST_CASE("fake backend: an answer written byte by byte", "[fake]") {
    FakeBackend fake;
    std::vector<std::string> values;
    for (int i = 0; i < 40; ++i) values.push_back("row " + std::to_string(i));
    fake.add_script({fake::expect_query("SELECT many"),
                     fake::send_split(fake::select_answer(values), 1), fake::expect("PBDES"),
                     fake::send_split(fake::parse_complete() + fake::bind_complete() +
                                          fake::row_description({"b"}) + fake::data_row({"bound"}) +
                                          fake::command_complete("SELECT 1") + fake::ready(),
                                      1, 1ms)});
    with_client(fake, [&](PgConn& c) {
        Rows got = c.query("SELECT many");
        REQUIRE(got.size() == values.size());
        for (std::size_t i = 0; i < values.size(); ++i) CHECK(got[i][0] == values[i]);
        PGresult* res =
            PQexecParams(c.get(), "SELECT $1", 0, nullptr, nullptr, nullptr, nullptr, 0);
        REQUIRE(res != nullptr);
        CHECK(PQresultStatus(res) == PGRES_TUPLES_OK);
        CHECK(std::string(PQgetvalue(res, 0, 0)) == "bound");
        PQclear(res);
    });
}

TEST_CASE("fake backend: three pipelined queries answered in one write", "[fake]") {
    FakeBackend fake;
    fake.add_script(
        {fake::expect("QQQ"), fake::send(fake::select_answer({"a"}) + fake::select_answer({"b"}) +
                                         fake::select_answer({"c"}))});
    FakeRouted r(fake);
    auto c = r.raw();
    c->send(query("SELECT a") + query("SELECT b") + query("SELECT c"));
    std::vector<RawMessage> got;
    CHECK(read_types(*c, 3, &got) == "TDCZTDCZTDCZ");
    REQUIRE(got.size() == 12);
    CHECK(got[1].payload.find('a') != std::string::npos);
    CHECK(got[5].payload.find('b') != std::string::npos);
    CHECK(got[9].payload.find('c') != std::string::npos);
    c->close();
    r.finish(fake);
}

// Issue 13's "lost answer": pgJDBC autosave=conservative sends SAVEPOINT and then
// Bind/Execute/Sync without waiting. Both answers, cut at every byte boundary: once after
// the backend read all four messages, once (as PostgreSQL does) starting to answer the
// SAVEPOINT before it reads the rest.
TEST_CASE("fake backend: SAVEPOINT and Bind/Execute/Sync answered, cut at every byte",
          "[fake][savepoint]") {
    std::string answer =
        fake::command_complete("SAVEPOINT") + fake::ready('T') + fake::bound_answer("42", 'T');
    std::size_t cuts = answer.size() - 1;
    FakeBackend fake;
    fake::Script script{fake::expect_query("BEGIN"),
                        fake::send(fake::command_complete("BEGIN") + fake::ready('T')),
                        fake::expect("PS"), fake::send(fake::parse_complete() + fake::ready('T'))};
    for (bool read_all_first : {true, false}) {
        for (std::size_t k = 1; k <= cuts; ++k) {
            script.push_back(fake::expect(read_all_first ? "QBES" : "Q"));
            script.push_back(fake::send(answer.substr(0, k)));
            if (!read_all_first) script.push_back(fake::expect("BES"));
            script.push_back(fake::pause(2ms));
            script.push_back(fake::send(answer.substr(k)));
        }
    }
    fake.add_script(script);
    FakeRouted r(fake);
    auto c = r.raw();
    c->send(query("BEGIN"));
    REQUIRE(read_types(*c) == "CZ");
    c->send(parse("S_1", "SELECT $1") + sync_msg());
    REQUIRE(read_types(*c) == "1Z");
    for (std::size_t n = 0; n < 2 * cuts; ++n) {
        std::size_t k = n % cuts + 1;
        INFO("round " << n / cuts << ": answer cut after byte " << k << " of " << answer.size());
        c->send(query("SAVEPOINT PGJDBC_AUTOSAVE") + bind("S_1", {"42"}) + execute() + sync_msg());
        std::string types = read_types(*c, 2, nullptr, 5s);
        REQUIRE(types == "CZ2DCZ");
    }
    c->close();
    r.finish(fake);
}

// Issue 13's lost answer, made deterministic: a unit must be in flight before its bytes are
// written to the backend. While that write is pending (a big Bind the backend reads slowly,
// or an event loop that resumes the writer late) the previous unit's ReadyForQuery must not
// leave the response pump idle, reading the next unit's answer off the socket as chatter.
// Bytes in: Q "SAVEPOINT s"; B (one 24 MB parameter) E S. Backend: "C SAVEPOINT, Z T" at
// once, then "2 D C Z T" while pgrouter is still writing the Bind. pgrouter forwards the
// first answer only; it should forward both.
TEST_CASE("fake backend: the answer that comes while the next unit is still being written",
          "[fake][savepoint]") {
    FakeBackend fake;
    fake.add_script({fake::expect_query("BEGIN"),
                     fake::send(fake::command_complete("BEGIN") + fake::ready('T')),
                     fake::expect_query("SAVEPOINT"),
                     fake::send(fake::command_complete("SAVEPOINT") + fake::ready('T')),
                     fake::pause(200ms),  // pgrouter reads that while its write is stuck
                     fake::send(fake::bound_answer("big", 'T')), fake::pause(200ms),
                     fake::expect("BES")});
    FakeRouted r(fake);
    auto c = r.raw();
    c->send(query("BEGIN"));
    REQUIRE(read_types(*c) == "CZ");
    c->send(query("SAVEPOINT s") + bind("", {std::string(24u << 20, 'x')}) + execute() +
            sync_msg());
    CHECK(read_types(*c, 2, nullptr, 10s) == "CZ2DCZ");
    c->close();
    r.finish(fake);
}

// A message type no PostgreSQL server sends ('!') in the middle of an answer must not reach
// the client (libpq would report "unexpected response from server" and lose sync): that
// backend is closed as broken, and the client gets the error of a lost backend (08006).
TEST_CASE("fake backend: an unknown message type from the backend", "[fake]") {
    FakeBackend fake;
    fake.add_script(
        {fake::expect_query("SELECT odd"),
         fake::send(fake::row_description({"x"}) + fake::message('!', "junk") +
                    fake::data_row({"1"}) + fake::command_complete("SELECT 1") + fake::ready())});
    FakeRouted r(fake);
    auto c = r.raw();
    c->send(query("SELECT odd"));
    std::vector<RawMessage> got;
    std::string types = read_types(*c, 1, &got, 5s);
    CHECK(types.find('!') == std::string::npos);
    const RawMessage* e = find_message(got, 'E');
    REQUIRE(e != nullptr);
    CHECK(error_code(*e) == "08006");
    CHECK(fake.wait_sessions_done(1, 5s));  // pgrouter closed that backend connection
    c->close();
    r.finish(fake);
}

// A DataRow whose length word says 2 GB (over max-message-size): pgrouter closes that
// backend at once as broken, and the client gets the error of a lost backend (08006),
// not a hang.
TEST_CASE("fake backend: an oversized length word from the backend", "[fake][memory]") {
    FakeBackend fake;
    fake.add_script({fake::expect_query("SELECT big"),
                     fake::send(fake::row_description({"x"}) + std::string("D\x7f\xff\xff\xf0", 5) +
                                std::string(100, 'y')),
                     fake::wait_gate("end")});
    FakeRouted r(fake);
    auto c = r.raw();
    c->send(query("SELECT big"));
    std::vector<RawMessage> got;
    read_types(*c, 1, &got, 5s);
    const RawMessage* e = find_message(got, 'E');
    REQUIRE(e != nullptr);
    CHECK(error_code(*e) == "08006");
    // The session goes on, on a new backend connection (the first waits at its gate).
    c->send(query("SELECT after"));
    CHECK(read_types(*c) == "TDCZ");
    CHECK(fake.sessions() == 2);
    fake.open_gate("end");
    c->close();
    r.finish(fake);
}

// During the backend login a ParameterStatus that claims 256 MB: the worker's buffer grows
// with what arrives, not with the length word.
TEST_CASE("fake backend: a length word at login does not size an allocation", "[fake][memory]") {
    FakeOptions o;
    std::string hello;
    proto::encode_auth_ok(hello);
    o.session_hello = hello + std::string("S\x10\0\0\0", 5) + "server_version";
    FakeBackend fake(o);
    fake.add_script({fake::wait_gate("end")});
    FakeRouted r(fake);
    long before = peak_rss_kb(*r.router);
    PGconn* conn = PQconnectdb(r.conninfo().c_str());
    CHECK(PQstatus(conn) == CONNECTION_BAD);  // the login times out (health timeout, 3 s)
    PQfinish(conn);
    long after = peak_rss_kb(*r.router);
    INFO("peak RSS before " << before << " kB, after " << after << " kB");
    CHECK(after - before < 64 * 1024);
    fake.open_gate("end");
    r.finish(fake);
}

TEST_CASE("fake backend: a cancel reaches the backend with its own key", "[fake]") {
    FakeBackend fake;
    fake.add_script({fake::expect_query("pg_sleep"), fake::wait_gate("cancelled"),
                     fake::send(fake::error("57014", "canceling statement due to user request") +
                                fake::ready())});
    with_client(fake, [&](PgConn& c) {
        REQUIRE(PQsendQuery(c.get(), "SELECT pg_sleep(60)") == 1);
        REQUIRE(wait_until([&] { return fake.received(0).size() == 1; }));
        PGcancel* cancel = PQgetCancel(c.get());
        char err[256];
        CHECK(PQcancel(cancel, err, sizeof err) == 1);
        PQfreeCancel(cancel);
        REQUIRE(wait_until([&] { return fake.cancel_requests() == 1; }));
        // Session 0's BackendKeyData (fake_backend.cc: pid 1000 + index, key 77 + index).
        CHECK(fake.last_cancel() == std::pair<std::int32_t, std::int32_t>{1000, 77});
        fake.open_gate("cancelled");
        PGresult* res = PQgetResult(c.get());
        REQUIRE(res != nullptr);
        CHECK(sqlstate(res) == "57014");
        PQclear(res);
        while ((res = PQgetResult(c.get())) != nullptr) PQclear(res);
        CHECK(c.value("SELECT after") == "SELECT after");
    });
}

TEST_CASE("fake backend: an idle backend's FATAL goes to pgrouter, not to the client", "[fake]") {
    FakeBackend fake;
    fake.add_script({fake::expect_query("SELECT 1"), fake::send(fake::select_answer({"1"})),
                     fake::wait_gate("idle"),
                     fake::send(fake::error(
                         "57P01", "terminating connection due to administrator command", "FATAL")),
                     fake::close_now()});
    with_client(fake, [&](PgConn& c) {
        CHECK(c.value("SELECT 1") == "1");
        fake.open_gate("idle");
        REQUIRE(fake.wait_sessions_done(1));
        // Where PostgreSQL's client would get the FATAL, pgrouter's gets nothing (this wait also
        // lets pgrouter read the FATAL before the next query), and goes on with a new backend
        // connection.
        CHECK_FALSE(idle_until(
            c.get(), [&] { return !c.notices().empty(); }, 300ms));
        CHECK(PQstatus(c.get()) == CONNECTION_OK);
        CHECK(c.value("SELECT 2") == "SELECT 2");
        CHECK(c.notices().empty());
        CHECK(fake.sessions() == 2);
    });
}

TEST_CASE("fake backend: a large answer in odd-sized writes", "[fake]") {
    FakeBackend fake;
    std::vector<std::string> values;
    for (int i = 0; i < 2000; ++i)
        values.push_back(std::string(static_cast<std::size_t>(i % 97), 'v'));
    fake.add_script(
        {fake::expect_query("SELECT lots"), fake::send_split(fake::select_answer(values), 4093)});
    with_client(fake, [&](PgConn& c) {
        Rows got = c.query("SELECT lots");
        REQUIRE(got.size() == values.size());
        for (std::size_t i = 0; i < values.size(); i += 111) CHECK(got[i][0] == values[i]);
    });
}

TEST_CASE("fake backend: client messages written byte by byte reach the backend whole", "[fake]") {
    FakeBackend fake;
    fake.add_script({fake::expect("P", "SELECT split"), fake::expect("BES"),
                     fake::send(fake::parse_complete() + fake::bound_answer("whole"))});
    FakeRouted r(fake);
    auto c = r.raw();
    std::string unit = parse("", "SELECT split") + bind("") + execute() + sync_msg();
    for (char byte : unit) REQUIRE(c->send(std::string(1, byte)));
    std::vector<RawMessage> got;
    CHECK(read_types(*c, 1, &got) == "12DCZ");
    c->send(query("SELECT after"));
    CHECK(read_types(*c) == "TDCZ");
    auto seen = fake.received(0);
    REQUIRE(seen.size() >= 4);
    CHECK(seen[0].payload.find("SELECT split") != std::string::npos);
    c->close();
    r.finish(fake);
}

// The client-side twin of "a length word at login": a client's Query header claiming 256 MB
// (under the 1 GB data limit) costs the worker only the bytes that arrive.
TEST_CASE("fake backend: a client's length word does not size an allocation", "[fake][memory]") {
    FakeBackend fake;
    FakeRouted r(fake);
    auto c = r.raw();
    long before = peak_rss_kb(*r.router);
    c->send(std::string("Q\x10\0\0\0", 5) + "SELECT");
    {
        PgConn other(r.conninfo());  // after the header was read by the same worker
        CHECK(other.value("SELECT 1") == "SELECT 1");
    }
    long after = peak_rss_kb(*r.router);
    INFO("peak RSS before " << before << " kB, after " << after << " kB");
    CHECK(after - before < 64 * 1024);
    c->close();
    r.finish(fake);
}
