// The front door against a real cluster with real clients: every HBA method, PostgreSQL's
// errors and SQLSTATEs, backend login as the client, cancel, protocol negotiation, and
// malformed or hostile input that must never crash, leak or stall other sessions.
#include <dirent.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <regex>
#include <thread>

#include "../harness/auth_files.h"
#include "../harness/cluster.h"
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

namespace {

constexpr const char* kHba =
    "# front-door test rules, first match wins\n"
    "host all md5user 127.0.0.1/32 md5\n"
    "host all rejected 127.0.0.1/32 reject\n"
    "host all trustuser,nosecret 127.0.0.1/32 trust\n"
    "host demo demo 127.0.0.1/32 password\n"
    "host pgrtest pgrtest 127.0.0.1/32 scram-sha-256\n"
    "host postgres,nosuchdb all 127.0.0.1/32 scram-sha-256\n";

// A router in front of the shared cluster with the rules above. Extra roles: plainuser
// (plaintext secret in authdb), trustuser (trust, plaintext secret), nosecret (trust, no
// secret), rejected.
struct FrontDoor {
    FrontDoor(int workers = 2) : cluster(Cluster::shared()) {
        cluster.exec(0,
                     "DO $$BEGIN "
                     "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'plainuser') THEN "
                     "CREATE ROLE plainuser LOGIN PASSWORD 'plain-secret'; "
                     "CREATE ROLE trustuser LOGIN PASSWORD 'trust-secret'; "
                     "CREATE ROLE nosecret LOGIN PASSWORD 'nosecret-pw'; "
                     "CREATE ROLE rejected LOGIN PASSWORD 'rejected-pw'; END IF; END$$");
        std::string authdb;
        for (const auto& row : cluster.query(0,
                                             "SELECT rolname, rolpassword FROM pg_authid "
                                             "WHERE rolname IN ('postgres', 'pgrtest', "
                                             "'demo', 'md5user')")) {
            authdb += "\"" + row[0] + "\" \"" + row[1] + "\"\n";
        }
        authdb += "\"plainuser\" \"plain-secret\"\n\"trustuser\" \"trust-secret\"\n";
        write_file(files + "/hba.conf", kHba);
        write_file(files + "/authdb.txt", authdb);
        std::string conf = "listen 127.0.0.1:" + std::to_string(port) +
                           "\nmonitor 127.0.0.1:" + std::to_string(monitor) + "\nworkers " +
                           std::to_string(workers) + "\nhba " + files + "/hba.conf\nauthdb " +
                           files +
                           "/authdb.txt\n"
                           "health { username postgres; password \"" +
                           std::string(kSuperPassword) +
                           "\" }\nbackend 127.0.0.1:" + std::to_string(cluster.port(0)) + "\n";
        router = std::make_unique<RouterProcess>(conf);
        REQUIRE(wait_until([&] { return can_connect(conninfo("pgrtest", "pgrtest")); }, 15s));
    }

    std::string conninfo(const std::string& user, const std::string& db,
                         const std::string& password = "") const {
        std::string pw = password.empty() ? password_for(user) : password;
        if (user == "plainuser") pw = "plain-secret";
        std::string s = "host=127.0.0.1 port=" + std::to_string(port) + " user=" + user +
                        " dbname=" + db + " connect_timeout=10 sslmode=disable";
        if (!pw.empty()) s += " password=" + pw;
        return s;
    }

    // psql's error output for a failed connection, "" when it connected.
    std::string connect_error(const std::string& user, const std::string& db,
                              const std::string& password = "") const {
        RunResult r = run({"psql", conninfo(user, db, password), "-Atc", "SELECT current_user"},
                          {{"PGPASSWORD", ""}});
        return r.status == 0 ? "" : r.err;
    }

    ~FrontDoor() {
        router.reset();
        remove_tree(files);
    }

    Cluster& cluster;
    std::string files = make_temp_dir("pgrouter-frontdoor");
    int port = free_port();
    int monitor = free_port();
    std::unique_ptr<RouterProcess> router;
};

long monitor_value(const std::string& dump, const std::string& name) {
    std::smatch m;
    return std::regex_search(dump, m, std::regex("(^|\n)" + name + " ([0-9]+)\n")) ? std::stol(m[2])
                                                                                   : -1;
}

int open_fds(pid_t pid) {
    int n = 0;
    DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (d == nullptr) return -1;
    while (readdir(d) != nullptr) ++n;
    closedir(d);
    return n;
}

std::vector<pid_t> worker_pids(const RouterProcess& r) {
    std::vector<pid_t> out;
    for (pid_t pid : r.children()) {
        if (read_file("/proc/" + std::to_string(pid) + "/cmdline").rfind("pgrouter: worker", 0) ==
            0) {
            out.push_back(pid);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("every HBA method logs in with psql and reaches the backend as the client",
          "[frontdoor][auth]") {
    FrontDoor fd;
    auto who = [&](const std::string& user, const std::string& db) {
        return query_value(fd.conninfo(user, db),
                           "SELECT current_user || '@' || current_database()");
    };
    CHECK(who("pgrtest", "pgrtest") == "pgrtest@pgrtest");  // SCRAM verifier → ClientKey
    CHECK(who("postgres", "postgres") == "postgres@postgres");
    CHECK(who("md5user", "postgres") == "md5user@postgres");      // md5 secret both ways
    CHECK(who("plainuser", "postgres") == "plainuser@postgres");  // plaintext secret
    CHECK(who("demo", "demo") == "demo@demo");                    // cleartext password method
    // trust: no password from the client; the backend login uses the authdb secret.
    RunResult trust =
        run({"psql", fd.conninfo("trustuser", "postgres", "x"), "-Atc", "SELECT current_user"});
    CHECK(trust.out == "trustuser\n");

    // Startup parameters reach the backend.
    PgConn app(fd.conninfo("pgrtest", "pgrtest") + " application_name=frontdoor_app");
    CHECK(app.value("SHOW application_name") == "frontdoor_app");
    CHECK(app.value("SELECT pg_backend_pid() > 0") == "t");
    CHECK(PQbackendPID(app.get()) >= 0x40000000);  // pgrouter's own BackendKeyData
    { PgConn done = std::move(app); }
    CHECK(fd.router->stop() == 0);
    check_log_clean(*fd.router);
}

TEST_CASE("authentication failures look exactly like PostgreSQL's", "[frontdoor][auth]") {
    FrontDoor fd;
    CHECK(fd.connect_error("pgrtest", "pgrtest", "wrong")
              .find("FATAL:  password authentication failed for user \"pgrtest\"") !=
          std::string::npos);
    CHECK(fd.connect_error("nobody", "postgres", "whatever")
              .find("password authentication failed for user \"nobody\"") != std::string::npos);
    CHECK(fd.connect_error("rejected", "postgres")
              .find("pg_hba.conf rejects connection for host \"127.0.0.1\", user \"rejected\"") !=
          std::string::npos);
    CHECK(
        fd.connect_error("pgrtest", "demo")
            .find(
                "no pg_hba.conf entry for host \"127.0.0.1\", user \"pgrtest\", database \"demo\", "
                "no encryption") != std::string::npos);
    CHECK(fd.connect_error("postgres", "nosuchdb").find("database \"nosuchdb\" does not exist") !=
          std::string::npos);
    CHECK(fd.connect_error("nosecret", "postgres").find("add it to the authdb file") !=
          std::string::npos);

    // SQLSTATEs, read off the wire.
    RawClient wrong(fd.port);
    auto w = wrong.login("pgrtest", "pgrtest", "wrong");
    REQUIRE(find_message(w, 'E') != nullptr);
    CHECK(error_code(*find_message(w, 'E')) == "28P01");
    RawClient miss(fd.port);
    auto m = miss.login("pgrtest", "demo", "x");
    REQUIRE(find_message(m, 'E') != nullptr);
    CHECK(error_code(*find_message(m, 'E')) == "28000");
    RawClient nodb(fd.port);
    auto n = nodb.login("postgres", "nosuchdb", kSuperPassword);
    REQUIRE(find_message(n, 'E') != nullptr);
    CHECK(error_code(*find_message(n, 'E')) == "3D000");
    RawClient repl(fd.port);
    auto rp = repl.login("postgres", "postgres", kSuperPassword, {{"replication", "true"}});
    REQUIRE(find_message(rp, 'E') != nullptr);
    CHECK(error_message(*find_message(rp, 'E')).find("replication") != std::string::npos);

    // Secrets never reach the log, whatever the verbosity (-vvvvv here).
    std::string log = fd.router->log();
    for (const char* secret : {"pgrtest-secret", "plain-secret", "trust-secret", "md5-secret",
                               "SCRAM-SHA-256$", "wrong"}) {
        INFO(secret);
        CHECK(log.find(secret) == std::string::npos);
    }
    check_log_clean(*fd.router);
}

TEST_CASE("pgbench and a libpq program work through the front door", "[frontdoor]") {
    FrontDoor fd;
    std::string ci = fd.conninfo("pgrtest", "pgrtest");
    RunResult init = run({"pgbench", "-i", "-q", "-s", "1", ci});
    REQUIRE(init.status == 0);
    RunResult bench =
        run({"pgbench", "-n", "-c", "4", "-j", "2", "-t", "100", "-M", "prepared", ci});
    INFO(bench.err);
    CHECK(bench.out.find("number of failed transactions: 0") != std::string::npos);
    PgConn conn(ci);
    CHECK(conn.value("SELECT count(*) FROM pgbench_accounts") == "100000");
    { PgConn done = std::move(conn); }
    CHECK(fd.router->stop() == 0);
    check_log_clean(*fd.router);
}

TEST_CASE("a cancel request stops pg_sleep(30) within 2 s", "[frontdoor][cancel]") {
    FrontDoor fd;
    PgConn conn(fd.conninfo("pgrtest", "pgrtest"));
    REQUIRE(PQsendQuery(conn.get(), "SELECT pg_sleep(30)") == 1);
    std::this_thread::sleep_for(200ms);  // let the statement start on the backend
    auto start = std::chrono::steady_clock::now();
    PGcancel* cancel = PQgetCancel(conn.get());
    char err[256];
    REQUIRE(PQcancel(cancel, err, sizeof err) == 1);
    PQfreeCancel(cancel);
    PGresult* res = PQgetResult(conn.get());
    auto took = std::chrono::steady_clock::now() - start;
    std::string state =
        PQresultErrorField(res, PG_DIAG_SQLSTATE) ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : "";
    PQclear(res);
    while ((res = PQgetResult(conn.get())) != nullptr) PQclear(res);
    WARN("cancel took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                        << " ms");
    CHECK(state == "57014");
    CHECK(took < 2s);
    CHECK(conn.value("SELECT 1") == "1");  // the session goes on

    // Unknown keys are ignored silently.
    RawClient bogus(fd.port);
    std::string req;
    pgrouter::proto::encode_cancel_request(req, 12345, 67890);
    bogus.send(req);
    CHECK(bogus.wait_closed(5s));
    { PgConn done = std::move(conn); }
    CHECK(fd.router->stop() == 0);
    check_log_clean(*fd.router);
}

TEST_CASE("protocol 3.2 and _pq_ options get NegotiateProtocolVersion", "[frontdoor][proto]") {
    FrontDoor fd;
    RawClient c(fd.port);
    auto msgs =
        c.login("pgrtest", "pgrtest", kTestPassword, {{"_pq_.test_option", "1"}}, (3u << 16) | 2);
    const RawMessage* v = find_message(msgs, 'v');
    REQUIRE(v != nullptr);
    CHECK(v->payload.substr(0, 4) == std::string("\0\3\0\0", 4));
    CHECK(v->payload.find("_pq_.test_option") != std::string::npos);
    CHECK(find_message(msgs, 'Z') != nullptr);  // and the login goes on
}

TEST_CASE("garbage, oversized and truncated input is refused without harm",
          "[frontdoor][bad-input]") {
    FrontDoor fd(1);  // one worker: every session below shares its event loop
    PgConn healthy(fd.conninfo("pgrtest", "pgrtest"));

    // Protocol 2 and HTTP: an error or a close, never a crash.
    {
        RawClient v2(fd.port);
        std::string pkt = std::string("\0\0\0\x10\0\2\0\0", 8) + "user\0x\0\0\0";
        pkt[3] = static_cast<char>(pkt.size());
        v2.send(pkt);
        auto e = v2.read();
        REQUIRE(e.has_value());
        CHECK(e->type == 'E');
        CHECK(error_message(*e).find("unsupported frontend protocol 2.0") != std::string::npos);
    }
    {
        RawClient http(fd.port);
        http.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(http.wait_closed(12s));
    }
    {
        RawClient big(fd.port);  // declared startup length over 10000
        big.send(std::string("\0\0\x4e\x30\0\3\0\0", 8));
        CHECK(big.wait_closed(12s));
    }
    // After login: oversized, negative-length and unknown messages → 08P01 and close.
    for (std::string bad : {std::string("Q\x7f\xff\xff\xff", 5),
                            std::string("Q\xff\xff\xff\xf0", 5), std::string("z\0\0\0\4", 5)}) {
        RawClient c(fd.port);
        auto msgs = c.login("pgrtest", "pgrtest", kTestPassword);
        REQUIRE(find_message(msgs, 'Z') != nullptr);
        c.send(bad);
        auto e = c.read();
        REQUIRE(e.has_value());
        CHECK(e->type == 'E');
        CHECK(error_code(*e) == "08P01");
        CHECK(c.wait_closed(5s));
    }
    // A client stalled in the middle of its startup packet, and one that never reads its
    // results, do not hold up the others on the same worker.
    RawClient staller(fd.port);
    staller.send(std::string("\0\0\0\x30\0\3\0\0user", 12));
    RawClient hog(fd.port);
    REQUIRE(find_message(hog.login("pgrtest", "pgrtest", kTestPassword), 'Z') != nullptr);
    std::string q;
    pgrouter::proto::encode_query(q, "SELECT repeat('x', 100000) FROM generate_series(1, 2000)");
    hog.send(q);  // ~200 MB of results it never reads
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 50; ++i)
        CHECK(healthy.value("SELECT " + std::to_string(i)) == std::to_string(i));
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(staller.wait_closed(12s));  // the startup deadline (10 s) closes it
    { PgConn done = std::move(healthy); }
    hog.close();
    CHECK(fd.router->stop() == 0);
    check_log_clean(*fd.router);
}

TEST_CASE("10,000 connections opened and closed: nothing leaks", "[frontdoor][churn]") {
    FrontDoor fd(2);
    auto workers = worker_pids(*fd.router);
    REQUIRE(workers.size() == 2);
    std::vector<int> before;
    for (pid_t w : workers) before.push_back(open_fds(w));

    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(fd.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int connected = 0;
    for (int i = 0; i < 10000; ++i) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) ++connected;
        if (i % 3 == 1) {
            // some send a partial startup packet before leaving
            (void)::send(s, "\0\0\0\x20\0\3", 6, MSG_NOSIGNAL);
        }
        close(s);
    }
    CHECK(connected == 10000);
    for (int i = 0; i < 20; ++i) CHECK(can_connect(fd.conninfo("pgrtest", "pgrtest")));
    CHECK(wait_until([&] { return monitor_value(fd.router->monitor(fd.monitor), "clients") == 0; },
                     15s));
    CHECK(monitor_value(fd.router->monitor(fd.monitor), "connections") == 0);
    for (std::size_t i = 0; i < workers.size(); ++i) {
        CHECK(wait_until([&] { return open_fds(workers[i]) <= before[i]; }, 15s));
    }
    fd.router->stop();
    check_log_clean(*fd.router);
}

TEST_CASE("authdb and hba are re-read on SIGHUP", "[frontdoor][reload]") {
    Cluster& c = Cluster::shared();
    std::string files = make_temp_dir("pgrouter-authreload");
    std::string verifier = c.exec(0, "SELECT rolpassword FROM pg_authid WHERE rolname = 'pgrtest'");
    write_file(files + "/authdb.txt", "\"postgres\" \"" +
                                          c.exec(0,
                                                 "SELECT rolpassword FROM pg_authid WHERE "
                                                 "rolname = 'postgres'") +
                                          "\"\n");
    write_file(files + "/hba.conf", "host all all 127.0.0.1/32 scram-sha-256\n");
    int port = free_port();
    std::string conf = "listen 127.0.0.1:" + std::to_string(port) +
                       "\nmonitor 127.0.0.1:" + std::to_string(free_port()) + "\nworkers 2\nhba " +
                       files + "/hba.conf\nauthdb " + files +
                       "/authdb.txt\nhealth { password postgres }\nbackend 127.0.0.1:" +
                       std::to_string(c.port(0)) + "\n";
    RouterProcess r(conf);
    std::string as_test = "host=127.0.0.1 port=" + std::to_string(port) +
                          " user=pgrtest password=pgrtest-secret dbname=pgrtest sslmode=disable";
    std::string as_super = "host=127.0.0.1 port=" + std::to_string(port) +
                           " user=postgres password=postgres dbname=postgres sslmode=disable";
    REQUIRE(wait_until([&] { return can_connect(as_super); }, 15s));
    CHECK_FALSE(can_connect(as_test));  // not in the authdb yet

    write_file(files + "/authdb.txt", "\"pgrtest\" \"" + verifier + "\"\n", true);
    r.signal(SIGHUP);
    CHECK(wait_until([&] { return can_connect(as_test); }, 10s));

    // An hba that rejects everybody, then a broken one: the broken one is refused, the
    // rejecting one stays in force.
    write_file(files + "/hba.conf", "host all all 127.0.0.1/32 reject\n");
    r.signal(SIGHUP);
    CHECK(wait_until([&] { return !can_connect(as_super); }, 10s));
    std::size_t mark = r.log_size();
    write_file(files + "/hba.conf", "host all all 127.0.0.1/32 telepathy\n");
    r.signal(SIGHUP);
    CHECK(r.wait_for_log("hba.conf:1", 10s, mark));
    CHECK_FALSE(can_connect(as_super));
    CHECK(r.stop() == 0);
    check_log_clean(r);
    remove_tree(files);
}
