// Session transparency against a real cluster: every scenario runs once through pgrouter and
// once on a direct connection to the primary, and the two transcripts must be identical.
// Covers settings replayed on standbys (simple and extended protocol, startup parameters,
// ParameterStatus on the wire), rolled-back and LOCAL settings, SERIALIZABLE, temporary
// objects, pins in the log and the monitor, sequences' session values, advisory locks, SQL
// and protocol prepared statements, cursors, LISTEN/NOTIFY while idle, COPY both ways (and
// streamed), notices, large objects (fastpath) and failover of unpinned and pinned sessions.
// Never edits the shared cluster's settings; its objects are ss_*.
#include <libpq-fe.h>
#include <libpq/libpq-fs.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "../harness/auth_files.h"
#include "../harness/cluster.h"
#include "../harness/files.h"
#include "../harness/log_check.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/raw_client.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"
#include "pgrouter/proto/payload.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

// Every step's outcome through pgrouter equals the direct connection's.
void check_same(const std::vector<std::string>& routed, const std::vector<std::string>& direct) {
    REQUIRE(routed.size() == direct.size());
    for (std::size_t i = 0; i < routed.size(); ++i) {
        INFO("through pgrouter: " << routed[i] << "\ndirect:           " << direct[i]);
        CHECK(routed[i] == direct[i]);
    }
}

// A simple-protocol Query message.
std::string query_message(const std::string& sql) {
    std::string msg = "Q";
    std::uint32_t len = htonl(static_cast<std::uint32_t>(4 + sql.size() + 1));
    msg.append(reinterpret_cast<const char*>(&len), 4);
    msg += sql;
    msg.push_back('\0');
    return msg;
}

std::string sqlstate(const PGresult* res) {
    const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return s != nullptr ? s : "?";
}

std::string primary_message(const PGresult* res) {
    const char* s = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    return s != nullptr ? s : PQresultErrorMessage(res);
}

// One result as text: rows "a|b;c|d", "OK <tag>" or "ERROR <sqlstate> <message>". A column
// named port_ is left out and its value appended to `ports`.
std::string describe(const PGresult* res, std::vector<int>* ports) {
    switch (PQresultStatus(res)) {
        case PGRES_TUPLES_OK: {
            std::string out;
            int port_col = PQfnumber(res, "port_");
            for (int r = 0; r < PQntuples(res); ++r) {
                if (r > 0) out += ";";
                bool first = true;
                for (int c = 0; c < PQnfields(res); ++c) {
                    if (c == port_col) {
                        if (ports != nullptr) ports->push_back(std::atoi(PQgetvalue(res, r, c)));
                        continue;
                    }
                    if (!first) out += "|";
                    first = false;
                    out += PQgetisnull(res, r, c) ? "NULL" : PQgetvalue(res, r, c);
                }
            }
            return out;
        }
        case PGRES_COMMAND_OK:
            return std::string("OK ") + PQcmdStatus(const_cast<PGresult*>(res));
        case PGRES_FATAL_ERROR:
        case PGRES_NONFATAL_ERROR:
            return "ERROR " + sqlstate(res) + " " + primary_message(res);
        default:
            return std::string("status ") + PQresStatus(PQresultStatus(res));
    }
}

// Every result of one simple Query (several statements give "a / b"), or the connection's
// error when it is gone.
std::string outcome(PGconn* conn, const std::string& sql, std::vector<int>* ports = nullptr) {
    if (PQsendQuery(conn, sql.c_str()) == 0)
        return std::string("SEND FAILED ") + PQerrorMessage(conn);
    std::string out;
    while (PGresult* res = PQgetResult(conn)) {
        if (!out.empty()) out += " / ";
        out += describe(res, ports);
        PQclear(res);
    }
    if (PQstatus(conn) != CONNECTION_OK) out += " [connection lost]";
    return out;
}

std::string digest_hex(const std::string& data, const EVP_MD* algorithm) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, algorithm, nullptr);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 15];
    }
    return out;
}

std::string sha256_hex(const std::string& data) { return digest_hex(data, EVP_sha256()); }
std::string md5_hex(const std::string& data) { return digest_hex(data, EVP_md5()); }

// A statement's outcome on the current primary, on a connection of its own (as the test user).
std::string on_master(const Cluster& c, const std::string& sql) {
    PgConn conn(c.conninfo(c.primary(), kTestUser, kTestDb));
    return outcome(conn.get(), sql);
}

// Where a read is expected to run when the session goes through pgrouter.
enum class Where { Any, Standby, Master };

// The steps of one scenario and their outcomes. Through pgrouter it also checks where the
// port_ columns say each read ran; a direct transcript only records.
class Transcript {
  public:
    Transcript(PGconn* conn, const Cluster& c, bool routed) : conn_(conn), routed_(routed) {
        master_ = c.port(c.primary());
    }
    PGconn* conn() const { return conn_; }

    std::string run(const std::string& sql, Where where = Where::Any) {
        std::vector<int> ports;
        std::string out = outcome(conn_, sql, &ports);
        check_where(sql, ports, where);
        note(sql, out);
        return out;
    }
    // Runs sql n times; one step whose value is the common outcome, or all of them.
    std::string read(const std::string& sql, int n = 6, Where where = Where::Standby) {
        std::vector<int> ports;
        std::vector<std::string> outs;
        for (int i = 0; i < n; ++i) outs.push_back(outcome(conn_, sql, &ports));
        check_where(sql, ports, where);
        std::string value = outs[0];
        for (const auto& o : outs) {
            if (o != outs[0]) {
                value = "MIXED:";
                for (const auto& each : outs) value += " [" + each + "]";
                break;
            }
        }
        note(sql + " (x" + std::to_string(n) + ")", value);
        return value;
    }
    // PQexecPrepared of `name` (no parameters) n times, as read().
    std::string exec_prepared(const std::string& name, int n = 6, Where where = Where::Standby) {
        std::vector<int> ports;
        std::vector<std::string> outs;
        for (int i = 0; i < n; ++i) {
            PGresult* res = PQexecPrepared(conn_, name.c_str(), 0, nullptr, nullptr, nullptr, 0);
            outs.push_back(describe(res, &ports));
            PQclear(res);
        }
        check_where("Execute " + name, ports, where);
        std::string value = outs[0];
        for (const auto& o : outs) {
            if (o != outs[0]) {
                value = "MIXED:";
                for (const auto& each : outs) value += " [" + each + "]";
                break;
            }
        }
        note("Execute " + name + " (x" + std::to_string(n) + ")", value);
        return value;
    }
    void note(const std::string& label, const std::string& value) {
        steps_.emplace_back(label, value);
    }
    const std::vector<std::pair<std::string, std::string>>& steps() const { return steps_; }
    const std::vector<std::string>& misplaced() const { return misplaced_; }

  private:
    void check_where(const std::string& sql, const std::vector<int>& ports, Where where) {
        if (!routed_ || where == Where::Any) return;
        for (int p : ports) {
            bool on_master = p == master_;
            if ((where == Where::Standby && on_master) || (where == Where::Master && !on_master)) {
                misplaced_.push_back(sql + ": ran on port " + std::to_string(p) + ", expected " +
                                     (where == Where::Standby ? "a standby" : "the master"));
                return;
            }
        }
    }

    PGconn* conn_;
    bool routed_;
    int master_ = 0;
    std::vector<std::pair<std::string, std::string>> steps_;
    std::vector<std::string> misplaced_;
};

// The router's log, but for the lines of reads that went to a standby and of logins (at
// most 80 lines): why a read went elsewhere, and what happened around it.
std::string why_not_standby(const std::string& log) {
    std::string out;
    std::istringstream in(log);
    int n = 0;
    for (std::string line; std::getline(in, line) && n < 80;) {
        if (line.find("(read: weighted standby)") != std::string::npos ||
            line.find("connection to backend") != std::string::npos ||
            line.find("logged in to backend") != std::string::npos) {
            continue;
        }
        out += "\n  " + line;
        ++n;
    }
    return out;
}

// Checks the routed transcript against the direct one, step by step.
void compare(const Transcript& routed, const Transcript& direct, const std::string& log = "") {
    const auto& r = routed.steps();
    const auto& d = direct.steps();
    CHECK(r.size() == d.size());
    for (std::size_t i = 0; i < std::min(r.size(), d.size()); ++i) {
        INFO("step " << i + 1 << ": " << d[i].first << "\n  through pgrouter: " << r[i].second
                     << "\n  direct:           " << d[i].second);
        CHECK(r[i].second == d[i].second);
    }
    for (const auto& m : routed.misplaced()) {
        INFO(m << "\nthe router's reasons:" << why_not_standby(log));
        CHECK(false);
    }
}

using Scenario = std::function<void(Transcript&)>;

// Runs `scenario` directly on the primary and through the router, each after `setup` (run
// on the primary as the test user, then replayed on every standby), and compares. `options`
// is added to both conninfo strings.
void play_both(Routed& r, const std::string& setup, const Scenario& scenario,
               const std::string& user = kTestUser, const std::string& options = "") {
    Cluster& c = r.cluster;
    std::string db = user == kTestUser ? kTestDb : "postgres";
    auto prepare = [&] {
        if (!setup.empty()) c.exec(0, setup, kTestUser, kTestDb);
        for (int s = 1; s <= c.standby_count(); ++s) c.wait_replayed(s);
    };
    prepare();
    PgConn direct_conn(c.conninfo(0, user, db) + " " + options);
    Transcript direct(direct_conn.get(), c, false);
    scenario(direct);
    prepare();
    PgConn routed_conn(r.conninfo(user, db) + " " + options);
    Transcript routed(routed_conn.get(), c, true);
    scenario(routed);
    compare(routed, direct, routed.misplaced().empty() ? "" : r.router->log());
}

// Waits for a notification on conn while sending nothing; nullopt at the deadline.
std::optional<std::pair<std::string, std::string>> wait_notify(
    PGconn* conn, std::chrono::milliseconds deadline = 5s) {
    auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
        if (PQconsumeInput(conn) == 0) return std::nullopt;
        if (PGnotify* n = PQnotifies(conn)) {
            std::pair<std::string, std::string> got{n->relname, n->extra};
            PQfreemem(n);
            return got;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        pollfd p{PQsocket(conn), POLLIN, 0};
        (void)poll(&p, 1, static_cast<int>(left.count()));
    }
}

// COPY ... FROM STDIN sending `data` in 8 kB pieces; `fail` ends it with CopyFail instead.
std::string copy_in(PGconn* conn, const std::string& sql, const std::string& data,
                    const char* fail = nullptr) {
    PGresult* res = PQexec(conn, sql.c_str());
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        std::string out = describe(res, nullptr);
        PQclear(res);
        return out;
    }
    PQclear(res);
    for (std::size_t at = 0; at < data.size(); at += 8192) {
        std::size_t n = std::min<std::size_t>(8192, data.size() - at);
        if (PQputCopyData(conn, data.data() + at, static_cast<int>(n)) != 1) break;
    }
    if (PQputCopyEnd(conn, fail) != 1)
        return std::string("COPY END FAILED ") + PQerrorMessage(conn);
    std::string out;
    while (PGresult* r = PQgetResult(conn)) {
        if (!out.empty()) out += " / ";
        out += describe(r, nullptr);
        PQclear(r);
    }
    return out;
}

// COPY ... TO STDOUT; the outcome, and the data in *data.
std::string copy_out(PGconn* conn, const std::string& sql, std::string* data) {
    PGresult* res = PQexec(conn, sql.c_str());
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        std::string out = describe(res, nullptr);
        PQclear(res);
        return out;
    }
    PQclear(res);
    data->clear();
    char* buf = nullptr;
    int n = 0;
    while ((n = PQgetCopyData(conn, &buf, 0)) > 0) {
        data->append(buf, static_cast<std::size_t>(n));
        PQfreemem(buf);
    }
    std::string out;
    while (PGresult* r = PQgetResult(conn)) {
        if (!out.empty()) out += " / ";
        out += describe(r, nullptr);
        PQclear(r);
    }
    return out;
}

}  // namespace

TEST_CASE(
    "SET search_path, DateStyle, TimeZone, statement_timeout, set_config and ROLE "
    "reach the standbys that serve later reads",
    "[session][set]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    const std::string setup =
        "DROP SCHEMA IF EXISTS ss_a CASCADE; CREATE SCHEMA ss_a;"
        "CREATE TABLE ss_a.ss_which (v text); INSERT INTO ss_a.ss_which VALUES ('in ss_a');"
        "DROP TABLE IF EXISTS public.ss_which; CREATE TABLE public.ss_which (v text);"
        "INSERT INTO public.ss_which VALUES ('in public');"
        "GRANT USAGE ON SCHEMA ss_a TO PUBLIC; GRANT SELECT ON ss_a.ss_which TO PUBLIC;"
        "GRANT SELECT ON public.ss_which TO PUBLIC";
    auto params = [](Transcript& t, const char* label) {
        for (const char* p : {"DateStyle", "TimeZone", "application_name", "IntervalStyle"}) {
            const char* v = PQparameterStatus(t.conn(), p);
            t.note(std::string("ParameterStatus ") + p + " " + label, v != nullptr ? v : "NULL");
        }
    };
    play_both(r, setup, [&](Transcript& t) {
        t.read("SELECT v, inet_server_port() AS port_ FROM ss_which");
        t.run("SET search_path = ss_a, public");
        t.read("SELECT v, inet_server_port() AS port_ FROM ss_which");
        t.read("SELECT current_setting('search_path'), inet_server_port() AS port_");
        t.run("SET DateStyle = 'SQL, DMY'");
        t.run("SET TimeZone = 'Asia/Tokyo'");
        t.run("SET IntervalStyle = 'sql_standard'");
        params(t, "after SET");
        t.read(
            "SELECT '2024-03-05'::date, '2024-01-01 00:00:00+00'::timestamptz, "
            "interval '1 day 2 hours', inet_server_port() AS port_");
        t.run("SET statement_timeout = '150ms'");
        t.read("SELECT pg_sleep(2), inet_server_port() AS port_", 2);
        t.read("SELECT current_setting('statement_timeout'), inet_server_port() AS port_");
        t.run("RESET statement_timeout");
        t.read("SELECT current_setting('statement_timeout'), inet_server_port() AS port_");
        t.run("SELECT set_config('DateStyle', 'German', false)");
        t.read("SELECT '2024-03-05'::date::text, inet_server_port() AS port_");
        t.run("SET application_name = 'ss_app'");
        params(t, "after set_config and application_name");
        t.read("SELECT current_setting('application_name'), inet_server_port() AS port_");
        t.run("RESET DateStyle");
        t.read(
            "SELECT '2024-03-05'::date::text, current_setting('search_path'), "
            "inet_server_port() AS port_");
        // A SET as a named prepared statement (psycopg's prepare_threshold=0, pgJDBC's
        // prepareThreshold), executed once: later reads must see it wherever they run.
        PGresult* res =
            PQprepare(t.conn(), "ss_set", "SET DateStyle = 'Postgres, DMY'", 0, nullptr);
        t.note("Parse ss_set", describe(res, nullptr));
        PQclear(res);
        res = PQexecPrepared(t.conn(), "ss_set", 0, nullptr, nullptr, nullptr, 0);
        t.note("Execute ss_set", describe(res, nullptr));
        PQclear(res);
        t.read("SELECT '2024-03-05'::date::text, inet_server_port() AS port_", 12);
        res = PQexecParams(t.conn(), "SET TimeZone = 'Europe/Paris'", 0, nullptr, nullptr, nullptr,
                           nullptr, 0);  // the unnamed statement
        t.note("SET through the unnamed statement", describe(res, nullptr));
        PQclear(res);
        t.read("SELECT current_setting('TimeZone'), inet_server_port() AS port_", 12);
        t.run("RESET ALL");
        params(t, "after RESET ALL");
        t.read(
            "SELECT v, '2024-03-05'::date::text, current_setting('TimeZone') = 'Asia/Tokyo', "
            "inet_server_port() AS port_ FROM ss_which");
    });

    // Roles and session authorization (a superuser's session).
    play_both(
        r, "",
        [&](Transcript& t) {
            t.run("SET ROLE pgrtest");
            t.read("SELECT current_user, session_user, inet_server_port() AS port_");
            t.run("RESET ROLE");
            t.read("SELECT current_user, inet_server_port() AS port_");
            t.run("SET SESSION AUTHORIZATION pgrtest");
            t.read("SELECT current_user, session_user, inet_server_port() AS port_");
            t.run("RESET SESSION AUTHORIZATION");
            t.read("SELECT current_user, session_user, inet_server_port() AS port_");
        },
        kSuperUser);
    r.finish();
}

TEST_CASE("startup parameters and client_encoding reach the standbys that serve reads",
          "[session][set]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    const std::string setup =
        "DROP SCHEMA IF EXISTS ss_b CASCADE; CREATE SCHEMA ss_b;"
        "CREATE TABLE ss_b.ss_which (v text); INSERT INTO ss_b.ss_which VALUES ('in ss_b');"
        "GRANT USAGE ON SCHEMA ss_b TO PUBLIC; GRANT SELECT ON ss_b.ss_which TO PUBLIC";
    play_both(
        r, setup,
        [&](Transcript& t) {
            t.read(
                "SELECT v, current_setting('DateStyle'), current_setting('application_name'), "
                "'2024-03-05'::date::text, inet_server_port() AS port_ FROM ss_which");
            t.note("ParameterStatus client_encoding",
                   PQparameterStatus(t.conn(), "client_encoding"));
            // LATIN1 on the wire: é is one byte 0xE9 in every result, wherever it ran.
            t.read("SELECT convert_from('\\xc3a9', 'UTF8') AS e, inet_server_port() AS port_");
            t.run("SET client_encoding = 'UTF8'");
            t.read("SELECT convert_from('\\xc3a9', 'UTF8') AS e, inet_server_port() AS port_");
            t.run("RESET client_encoding");
            t.read("SELECT convert_from('\\xc3a9', 'UTF8') AS e, inet_server_port() AS port_");
            t.run("RESET ALL");
            t.read(
                "SELECT v, current_setting('DateStyle'), inet_server_port() AS port_ "
                "FROM ss_which");
        },
        kTestUser,
        "application_name=ss_startup client_encoding=LATIN1 "
        "options='-c search_path=ss_b,public -c DateStyle=German'");
    r.finish();
}

TEST_CASE("ParameterStatus reaches the client once per SET, never from a replay",
          "[session][set]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    // Each Query's messages in a compact form: S name=value, C tag, D values, Z status, E code.
    auto transcript = [](int port) {
        RawClient raw(port);
        auto login = raw.login(kSuperUser, "postgres", kSuperPassword);
        REQUIRE(find_message(login, 'Z') != nullptr);
        std::vector<std::string> out;
        std::vector<std::string> initial;  // at login, in any order
        for (const auto& m : login) {
            if (m.type == 'S')
                initial.push_back(m.payload.c_str() + std::string("=") +
                                  (m.payload.c_str() + std::strlen(m.payload.c_str()) + 1));
        }
        std::sort(initial.begin(), initial.end());
        for (const auto& p : initial) out.push_back("login → S " + p);
        auto query = [&](const std::string& sql) {
            REQUIRE(raw.send(query_message(sql)));
            std::string line = sql + " →";
            while (auto m = raw.read()) {
                switch (m->type) {
                    case 'S': {
                        std::string name = m->payload.c_str();
                        std::string value = m->payload.c_str() + name.size() + 1;
                        line += " S " + name + "=" + value;
                        break;
                    }
                    case 'C':
                        line += " C " + std::string(m->payload.c_str());
                        break;
                    case 'E':
                        line += " E " + error_code(*m);
                        break;
                    case 'N':
                        line += " N";
                        break;
                    case 'D':
                        line += " D";
                        break;
                    case 'T':
                        line += " T";
                        break;
                    case 'Z':
                        line += " Z " + m->payload.substr(0, 1);
                        break;
                    default:
                        line += std::string(" ") + m->type;
                }
                if (m->type == 'Z') break;
            }
            out.push_back(line);
        };
        for (const char* sql : {"SELECT 1",
                                "SET DateStyle = 'SQL, DMY'",
                                "SELECT 2",
                                "SELECT 3",
                                "SELECT 4",
                                "SET TimeZone = 'UTC'",
                                "SELECT 5",
                                "SELECT 6",
                                "SET application_name = 'ss_ps'",
                                "SELECT 7",
                                "SELECT 8",
                                "BEGIN",
                                "SET LOCAL DateStyle = 'German'",
                                "ROLLBACK",
                                "SELECT 9",
                                "SELECT 10",
                                "RESET ALL",
                                "SELECT 11",
                                "SELECT 12",
                                "SET SESSION AUTHORIZATION pgrtest",
                                "SELECT 13",
                                "SELECT 14",
                                "SELECT 15",
                                "RESET SESSION AUTHORIZATION",
                                "SELECT 16",
                                "SELECT 17"}) {
            query(sql);
        }
        return out;
    };
    auto direct = transcript(c.port(0));
    auto routed = transcript(r.port);
    CHECK(routed.size() == direct.size());
    for (std::size_t i = 0; i < std::min(routed.size(), direct.size()); ++i) {
        INFO("through pgrouter: " << routed[i] << "\ndirect:           " << direct[i]);
        CHECK(routed[i] == direct[i]);
    }
    r.finish();
}

TEST_CASE("a rolled-back SET and SET LOCAL do not leak; a committed SET does", "[session][set]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    play_both(r, "", [&](Transcript& t) {
        const std::string show =
            "SELECT current_setting('work_mem'), current_setting('DateStyle'), "
            "current_setting('search_path'), inet_server_port() AS port_";
        t.read(show);
        t.run("BEGIN");
        t.run("SET work_mem = '11MB'");
        t.run("SET search_path = ss_nowhere");
        t.run("ROLLBACK");
        t.read(show);
        t.run("BEGIN");
        t.run("SET LOCAL DateStyle = 'German'");
        t.run("SELECT current_setting('DateStyle')");
        t.run("COMMIT");
        t.read(show);
        t.run("BEGIN; SET LOCAL work_mem = '12MB'; SELECT current_setting('work_mem'); COMMIT");
        t.read(show);
        t.run("BEGIN");
        t.run("SET work_mem = '13MB'");
        t.run("SELECT 1/0");
        t.run("ROLLBACK");
        t.read(show);
        t.run("BEGIN");
        t.run("SET work_mem = '14MB'");
        t.run("SAVEPOINT a");
        t.run("SET work_mem = '15MB'");
        t.run("ROLLBACK TO SAVEPOINT a");
        t.run("COMMIT");
        t.read(show);
        t.run("SET work_mem = '16MB'; SELECT 1/0");  // implicit transaction: the SET is undone
        t.read(show);
        t.run("BEGIN");
        t.run("SELECT set_config('DateStyle', 'SQL', false)");
        t.run("COMMIT");
        t.read(show);
        t.run("BEGIN");
        t.run("SELECT set_config('DateStyle', 'Postgres', true)");  // is_local
        t.run("COMMIT");
        t.read(show);
        t.run("SET LOCAL work_mem = '17MB'");  // outside a transaction: a warning, no effect
        t.read(show);
        t.run("SET DateStyle = 'bogus'");  // fails: nothing changes
        t.read(show);
        t.run("SET work_mem = '18MB'; SELECT 1");  // succeeds as a whole
        t.read(show);
        t.run("BEGIN; SET SESSION work_mem = '19MB'; COMMIT");
        t.read(show);
        t.run("SET work_mem TO DEFAULT");
        t.run("SET SCHEMA 'ss_nowhere'");
        t.run("SET TIME ZONE 'America/New_York'");
        t.read(show);
        t.read("SELECT current_setting('TimeZone'), inet_server_port() AS port_");
        t.run("SET DateStyle = 'German'");
        t.run("DISCARD ALL");  // resets every setting too
        // DISCARD ALL is a write for read-your-writes: the next reads may be the master's.
        t.read(show, 6, Where::Any);
        t.read(
            "SELECT current_setting('TimeZone') <> 'America/New_York', "
            "inet_server_port() AS port_",
            6, Where::Any);
    });
    r.finish();
}

TEST_CASE(
    "SERIALIZABLE: a session default and SERIALIZABLE READ ONLY blocks work as on the "
    "primary",
    "[session][isolation]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    const std::string setup =
        "DROP TABLE IF EXISTS ss_iso; CREATE TABLE ss_iso AS SELECT g FROM generate_series(1, 10) "
        "g;"
        "GRANT SELECT ON ss_iso TO PUBLIC";
    play_both(r, setup, [&](Transcript& t) {
        // A hot standby refuses serializable transactions (0A000): these must not go there.
        t.run("BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE");
        t.run("SELECT count(*) FROM ss_iso");
        t.run("COMMIT");
        t.run("BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY");
        t.run("SELECT count(*) FROM ss_iso");
        t.run("COMMIT");
        t.run("SET default_transaction_isolation = 'serializable'");
        t.read(
            "SELECT count(*), current_setting('transaction_isolation'), "
            "inet_server_port() AS port_ FROM ss_iso",
            4, Where::Any);
        t.run("BEGIN READ ONLY");
        t.run("SELECT count(*) FROM ss_iso");
        t.run("COMMIT");
        t.run("RESET default_transaction_isolation");
        t.read("SELECT count(*), inet_server_port() AS port_ FROM ss_iso", 4);
        t.run("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE");
        t.read("SELECT count(*), inet_server_port() AS port_ FROM ss_iso", 4, Where::Any);
        t.run("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED");
        // Repeatable read is fine on a standby.
        t.run("SET default_transaction_isolation = 'repeatable read'");
        t.read(
            "SELECT count(*), current_setting('transaction_isolation'), "
            "inet_server_port() AS port_ FROM ss_iso",
            4);
        t.run("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
        t.run("SELECT count(*) FROM ss_iso");
        t.run("COMMIT");
    });
    r.finish();
}

TEST_CASE("temporary tables: create, insert, select; DISCARD TEMP lets reads go to standbys",
          "[session][temp]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    play_both(r, "", [&](Transcript& t) {
        t.run("CREATE TEMP TABLE ss_tmp (id int PRIMARY KEY, v text)");
        t.run("INSERT INTO ss_tmp SELECT g, 'row ' || g FROM generate_series(1, 100) g");
        t.read("SELECT count(*), sum(id), inet_server_port() AS port_ FROM ss_tmp", 4,
               Where::Master);
        t.read("SELECT v, inet_server_port() AS port_ FROM pg_temp.ss_tmp WHERE id = 42", 3,
               Where::Master);
        t.run("UPDATE ss_tmp SET v = 'changed' WHERE id <= 10");
        t.read(
            "SELECT count(*) FILTER (WHERE v = 'changed'), inet_server_port() AS port_ "
            "FROM ss_tmp",
            3, Where::Master);
        t.read("SELECT 1, inet_server_port() AS port_", 4, Where::Master);  // pinned
        t.run("SELECT * INTO TEMP ss_tmp2 FROM ss_tmp WHERE id > 90");
        t.read("SELECT count(*), inet_server_port() AS port_ FROM ss_tmp2", 2, Where::Master);
        t.run("CREATE TEMP VIEW ss_tview AS SELECT count(*) AS n FROM ss_tmp");
        t.read("SELECT n, inet_server_port() AS port_ FROM ss_tview", 3, Where::Master);
        t.run("CREATE TEMP SEQUENCE ss_tseq");
        t.read("SELECT nextval('ss_tseq'), inet_server_port() AS port_", 3, Where::Master);
        t.run("CREATE FUNCTION pg_temp.ss_tf() RETURNS int LANGUAGE sql AS 'SELECT 7'");
        t.read("SELECT pg_temp.ss_tf(), inet_server_port() AS port_", 3, Where::Master);
        t.run("CREATE TABLE pg_temp.ss_tmp3 (x int)");
        t.run("INSERT INTO ss_tmp3 VALUES (1), (2)");
        t.read("SELECT sum(x), inet_server_port() AS port_ FROM ss_tmp3", 3, Where::Master);
        t.run("CREATE TEMP TABLE ss_tmp4 AS SELECT g FROM generate_series(1, 5) g");
        t.read("SELECT count(*), inet_server_port() AS port_ FROM ss_tmp4", 3, Where::Master);
        t.run("DISCARD TEMP");
        t.run("SELECT count(*) FROM ss_tmp");
        t.run("SELECT * FROM ss_tview");
    });
    // Once unpinned, reads go to standbys again (after read-your-writes settles).
    {
        PgConn conn(r.conninfo());
        conn.exec("CREATE TEMP TABLE ss_tmp (id int)");
        conn.exec("DISCARD ALL");
        std::string master = std::to_string(c.port(0));
        bool standby =
            wait_until([&] { return conn.value("SELECT inet_server_port()") != master; }, 3s, 50ms);
        INFO("a read after DISCARD ALL still runs on the master after 3 s");
        CHECK(standby);
    }
    r.finish();
}

TEST_CASE("pins are logged; the monitor dump stays exactly the spec's format while pinned",
          "[session][pins][monitor]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    // The whole dump, anchored at both ends: the spec's four lines and one line per backend,
    // nothing else (the pinned count belongs to the metrics endpoint, not to this dump).
    auto spec_only = [&] {
        std::string dump = r.router->monitor(r.monitor);
        INFO("monitor:\n" << dump);
        return std::regex_match(dump, std::regex("backends \\d+/\\d+\\nworkers \\d+\\n"
                                                 "clients \\d+\\nconnections \\d+\\n"
                                                 "(\\S+:\\d+ (master|slave) "
                                                 "(OK \\d+|FAILED|STARTING)\\n){3}"));
    };
    CHECK(spec_only());
    std::size_t mark = r.router->log_size();
    auto a = std::make_unique<PgConn>(r.conninfo());
    auto b = std::make_unique<PgConn>(r.conninfo());
    a->exec("CREATE TEMP TABLE ss_pin (x int)");
    CHECK(r.router->wait_for_log("pinned to the master", 5s, mark));
    mark = r.router->log_size();
    b->exec("LISTEN ss_pin_chan");
    CHECK(r.router->wait_for_log("pinned to the master", 5s, mark));
    CHECK(spec_only());
    mark = r.router->log_size();
    a->exec("DISCARD ALL");
    CHECK(r.router->wait_for_log("no longer pinned", 5s, mark));
    b.reset();
    a.reset();
    CHECK(spec_only());
    r.finish();
}

TEST_CASE("nextval then currval and lastval; serial columns", "[session][sequence]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    const std::string setup =
        "DROP SEQUENCE IF EXISTS ss_seq; CREATE SEQUENCE ss_seq;"
        "DROP TABLE IF EXISTS ss_ser; CREATE TABLE ss_ser (id serial PRIMARY KEY, v text)";
    play_both(r, setup, [&](Transcript& t) {
        t.run("SELECT currval('ss_seq')");
        t.run("SELECT nextval('ss_seq')");
        t.run("SELECT currval('ss_seq')");
        t.run("SELECT lastval()");
        t.run("SELECT nextval('ss_seq'), nextval('ss_seq')");
        t.read("SELECT currval('ss_seq'), lastval(), inet_server_port() AS port_", 4,
               Where::Master);
        t.run("SELECT setval('ss_seq', 100)");
        t.run("SELECT currval('ss_seq'), lastval()");
        t.run("INSERT INTO ss_ser (v) VALUES ('a'), ('b')");
        t.run("SELECT lastval()");
        t.run("SELECT currval(pg_get_serial_sequence('ss_ser', 'id'))");
        t.run("INSERT INTO ss_ser (v) VALUES ('c') RETURNING id");
        t.run("SELECT currval('ss_ser_id_seq'), lastval()");
        t.run("SELECT currval('ss_seq')");
        t.run("DISCARD SEQUENCES");
        t.run("SELECT currval('ss_seq')");
    });
    r.finish();
}

TEST_CASE("a session advisory lock is held on the master, visible in pg_locks, released",
          "[session][advisory]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    const std::string locks =
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 424242 "
        "AND granted";
    auto scenario = [&](Transcript& t) {
        PgConn other(c.conninfo(0, kTestUser, kTestDb));
        t.run("SELECT pg_advisory_lock(424242)");
        t.note("pg_locks on the master", c.exec(0, locks));
        std::string holder = c.exec(0,
                                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
                                    "AND objid = 424242 AND granted");
        std::string pid = outcome(t.conn(), "SELECT pg_backend_pid()");
        t.note("the lock's holder is the session's backend",
               pid == holder ? "yes" : "no: " + pid + " vs " + holder);
        t.note("another session's try", other.value("SELECT pg_try_advisory_lock(424242)"));
        t.read("SELECT 1, inet_server_port() AS port_", 3, Where::Master);
        t.run("SELECT pg_advisory_unlock(424242)");
        t.note("pg_locks after unlock", c.exec(0, locks));
        t.note("another session's try after unlock",
               other.value("SELECT pg_try_advisory_lock(424242)"));
        other.exec("SELECT pg_advisory_unlock(424242)");
        t.run("SELECT pg_advisory_lock(424242)");
        t.run("SELECT pg_advisory_unlock_all()");
        t.note("pg_locks after unlock_all", c.exec(0, locks));
        t.run("SELECT pg_try_advisory_lock(424242)");  // a plain read, but it takes a lock
        t.note("pg_locks after try_advisory_lock", c.exec(0, locks));
        t.note("another session's try after try_advisory_lock",
               other.value("SELECT pg_try_advisory_lock(424242)"));
        t.run("SELECT pg_advisory_unlock(424242)");
        t.run("SELECT pg_advisory_lock_shared(424242)");
        t.note("pg_locks after lock_shared", c.exec(0, locks));
        t.run("SELECT pg_advisory_unlock_shared(424242)");
        t.note("pg_locks after unlock_shared", c.exec(0, locks));
    };
    play_both(r, "", scenario);
    {
        PgConn conn(r.conninfo());
        conn.exec("SELECT pg_advisory_lock(424242)");
        CHECK(c.exec(0, locks) == "1");
    }
    INFO("the lock outlives the client's disconnection");
    CHECK(wait_until([&] { return c.exec(0, locks) == "0"; }, 5s));
    r.finish();
}

TEST_CASE("SQL PREPARE/EXECUTE, protocol prepared statements and cursors WITH HOLD",
          "[session][prepare]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    const std::string setup =
        "DROP TABLE IF EXISTS ss_prep; CREATE TABLE ss_prep (id int PRIMARY KEY, v text)";
    play_both(r, setup, [&](Transcript& t) {
        t.run("PREPARE ss_q(int) AS SELECT $1 + 1");
        t.read("EXECUTE ss_q(41)", 5, Where::Any);
        t.run("SELECT name, statement FROM pg_prepared_statements");
        t.run("PREPARE ss_w(int, text) AS INSERT INTO ss_prep VALUES ($1, $2)");
        t.run("EXECUTE ss_w(1, 'a')");
        t.run("EXECUTE ss_w(2, 'b')");
        t.run("EXECUTE ss_w(2, 'b')");
        t.run("SELECT string_agg(id || v, ',' ORDER BY id) FROM ss_prep");
        t.run("DEALLOCATE ss_q");
        t.run("EXECUTE ss_q(1)");
        t.run("DEALLOCATE ALL");
        t.run("EXECUTE ss_w(3, 'c')");
        t.run("SELECT count(*) FROM pg_prepared_statements");

        // The extended protocol's named statements, used alternately with writes.
        PGconn* conn = t.conn();
        PGresult* res =
            PQprepare(conn, "ss_read", "SELECT $1::int * 2, count(*) FROM ss_prep", 1, nullptr);
        t.note("Parse ss_read", describe(res, nullptr));
        PQclear(res);
        res = PQprepare(conn, "ss_write", "INSERT INTO ss_prep VALUES ($1::int, 'p') RETURNING id",
                        1, nullptr);
        t.note("Parse ss_write", describe(res, nullptr));
        PQclear(res);
        for (int i = 10; i < 16; ++i) {
            std::string arg = std::to_string(i);
            const char* values[] = {arg.c_str()};
            res = PQexecPrepared(conn, "ss_read", 1, values, nullptr, nullptr, 0);
            t.note("Execute ss_read " + arg, describe(res, nullptr));
            PQclear(res);
            if (i % 2 == 0) {
                res = PQexecPrepared(conn, "ss_write", 1, values, nullptr, nullptr, 0);
                t.note("Execute ss_write " + arg, describe(res, nullptr));
                PQclear(res);
            }
        }
        res = PQdescribePrepared(conn, "ss_read");
        t.note("Describe ss_read", std::to_string(PQnparams(res)) + " params, " +
                                       std::to_string(PQnfields(res)) + " fields");
        PQclear(res);
        t.run("DEALLOCATE ss_read");
        res = PQexecPrepared(conn, "ss_read", 0, nullptr, nullptr, nullptr, 0);
        t.note("Execute ss_read after DEALLOCATE", describe(res, nullptr));
        PQclear(res);

        // Cursors: WITH HOLD outlives its transaction; a plain one does not.
        t.run("DECLARE ss_cur CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 10) g");
        t.run("FETCH 3 FROM ss_cur");
        t.run("SELECT 1");
        t.run("FETCH 3 FROM ss_cur");
        t.run("CLOSE ss_cur");
        t.run("BEGIN");
        t.run("DECLARE ss_cur2 CURSOR FOR SELECT id FROM ss_prep ORDER BY id");
        t.run("FETCH 2 FROM ss_cur2");
        t.run("COMMIT");
        t.run("FETCH 2 FROM ss_cur2");
    });
    r.finish();
}

// A Parse the server refused defines nothing: the statement the client has is the one the
// server kept (42P05), or none (a Parse that failed, or that an earlier error made the server
// skip), and that is what pgrouter parses again on a standby. The Parses run on the master
// (inside a read-write block), so the reads after them find standbys that lack the statement.
TEST_CASE("a refused Parse does not redefine the statement re-parsed on a standby",
          "[session][prepare][parse]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    play_both(r, "", [&](Transcript& t) {
        PGconn* conn = t.conn();
        auto prepare = [&](const char* name, const char* sql) {
            PGresult* res = PQprepare(conn, name, sql, 0, nullptr);
            t.note(std::string("Parse ") + name + " " + sql, describe(res, nullptr));
            PQclear(res);
        };
        auto on_master = [&](const std::function<void()>& parses) {
            t.run("BEGIN");  // read-write: on the master
            parses();
            t.run("ROLLBACK");
        };
        // The name exists: the server keeps the first text.
        on_master([&] { prepare("ss_p1", "SELECT 'from b' AS v, inet_server_port() AS port_"); });
        on_master([&] { prepare("ss_p1", "SELECT 'again' AS v, inet_server_port() AS port_"); });
        t.exec_prepared("ss_p1");
        // A first Parse that failed (an unknown table): no statement; then a good one.
        on_master([&] { prepare("ss_p2", "SELECT v, inet_server_port() AS port_ FROM ss_nope"); });
        t.exec_prepared("ss_p2", 4, Where::Any);
        on_master([&] { prepare("ss_p2", "SELECT 'good' AS v, inet_server_port() AS port_"); });
        t.exec_prepared("ss_p2");
        // A Parse after an error in the same pipeline: the server skipped it.
        on_master([&] {
            REQUIRE(PQenterPipelineMode(conn) == 1);
            REQUIRE(PQsendQueryParams(conn, "SELECT 1/0", 0, nullptr, nullptr, nullptr, nullptr,
                                      0) == 1);
            REQUIRE(PQsendPrepare(conn, "ss_p3",
                                  "SELECT 'skipped' AS v, inet_server_port() AS port_", 0,
                                  nullptr) == 1);
            REQUIRE(PQpipelineSync(conn) == 1);
            std::string results;
            for (int i = 0; i < 3; ++i) {
                PGresult* res = PQgetResult(conn);
                results += describe(res, nullptr) + "; ";
                PQclear(res);
                if (i < 2) CHECK(PQgetResult(conn) == nullptr);  // each query's end
            }
            t.note("pipeline", results);
            REQUIRE(PQexitPipelineMode(conn) == 1);
        });
        t.exec_prepared("ss_p3", 4, Where::Any);
        t.run("SELECT name, statement FROM pg_prepared_statements ORDER BY name");
    });
    r.finish();
}

TEST_CASE("LISTEN in one session, NOTIFY from another: received while idle", "[session][notify]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    auto scenario = [&](const std::string& listener_ci, const std::string& notifier_ci) {
        std::vector<std::string> got;
        PgConn listener(listener_ci);
        PgConn notifier(notifier_ci);
        PgConn master(c.conninfo(0, kTestUser, kTestDb));
        auto receive = [&](const std::string& label) {
            auto n = wait_notify(listener.get());
            got.push_back(label + ": " + (n ? n->first + " " + n->second : "nothing in 5 s"));
        };
        got.push_back(outcome(listener.get(), "LISTEN ss_chan"));
        got.push_back(outcome(listener.get(), "LISTEN ss_marker"));
        got.push_back(outcome(notifier.get(), "NOTIFY ss_chan, 'one'"));
        receive("NOTIFY from another session");
        master.exec("SELECT pg_notify('ss_chan', 'two')");
        receive("pg_notify on the master");
        got.push_back(outcome(listener.get(), "SELECT 42"));  // still usable
        notifier.exec("BEGIN; NOTIFY ss_chan, 'three'; NOTIFY ss_chan, 'four'; COMMIT");
        receive("first of a transaction's two");
        receive("second of a transaction's two");
        got.push_back(outcome(listener.get(), "UNLISTEN ss_chan"));
        notifier.exec("NOTIFY ss_chan, 'not wanted'");
        notifier.exec("NOTIFY ss_marker, 'marker'");
        receive("after UNLISTEN ss_chan");  // the marker, not 'not wanted'
        got.push_back(outcome(listener.get(), "UNLISTEN *"));
        return got;
    };
    auto direct = scenario(c.conninfo(0, kTestUser, kTestDb), c.conninfo(0, kTestUser, kTestDb));
    auto routed = scenario(r.conninfo(), r.conninfo());
    check_same(routed, direct);
    r.finish();
}

TEST_CASE("COPY in and out with checksums; CopyFail and bad data mid-copy", "[session][copy]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    std::string data;
    for (int i = 1; i <= 20000; ++i) {
        data += std::to_string(i) + "\tline " + std::to_string(i * 7919 % 10007) + " é\\t\\n\t" +
                std::to_string(i) + "." + std::to_string(i % 100) + "\n";
    }
    const std::string in_sum = sha256_hex(data);
    const std::string setup =
        "DROP TABLE IF EXISTS ss_copy; CREATE TABLE ss_copy (id int, t text, d numeric)";
    play_both(r, setup, [&](Transcript& t) {
        PGconn* conn = t.conn();
        std::string out;
        t.note("COPY FROM STDIN", copy_in(conn, "COPY ss_copy FROM STDIN", data));
        t.note("COPY TO STDOUT", copy_out(conn,
                                          "COPY (SELECT * FROM ss_copy ORDER BY id) "
                                          "TO STDOUT",
                                          &out));
        t.note("round trip checksum equals input", sha256_hex(out) == in_sum ? "yes" : "no");
        t.note("COPY TO STDOUT (csv)",
               copy_out(conn,
                        "COPY (SELECT * FROM ss_copy ORDER BY id) TO STDOUT (FORMAT csv, "
                        "HEADER)",
                        &out));
        t.note("csv checksum", sha256_hex(out));
        t.note("COPY FROM STDIN, CopyFail",
               copy_in(conn, "COPY ss_copy FROM STDIN", data.substr(0, 50000), "client gave up"));
        t.run("SELECT count(*) FROM ss_copy");
        t.note("COPY FROM STDIN, bad data mid-copy",
               copy_in(conn, "COPY ss_copy FROM STDIN",
                       data.substr(0, 40000) + "x\ty\tz\n" + data.substr(40000, 40000)));
        t.run("SELECT count(*) FROM ss_copy");
        t.run("BEGIN");
        t.note("COPY FROM STDIN in a transaction", copy_in(conn, "COPY ss_copy FROM STDIN", data));
        t.run("SELECT count(*) FROM ss_copy");
        t.run("ROLLBACK");
        t.run("SELECT count(*), sum(id), sum(d) FROM ss_copy");
        t.note("COPY 200000 generated rows TO STDOUT",
               copy_out(conn,
                        "COPY (SELECT g, md5(g::text) FROM generate_series(1, 200000) g) "
                        "TO STDOUT",
                        &out));
        t.note("generated checksum", sha256_hex(out));
        t.note("COPY of a missing table", copy_out(conn, "COPY ss_nope TO STDOUT", &out));
        t.run("SELECT 1");
    });
    r.finish();
}

TEST_CASE(
    "COPY streams: 40 MB out to a stalled client and 40 MB in leave pgrouter's memory "
    "flat",
    "[session][copy]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    c.exec(0, "DROP TABLE IF EXISTS ss_sink; CREATE TABLE ss_sink (a int, b text)", kTestUser,
           kTestDb);
    // The largest resident size (kB) of pgrouter's children; `peak` reads VmHWM, else VmRSS.
    auto memory = [&](bool peak) {
        long most = 0;
        for (pid_t pid : r.router->children()) {
            std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
            std::smatch m;
            if (std::regex_search(status, m,
                                  std::regex(peak ? "VmHWM:\\s+(\\d+)" : "VmRSS:\\s+(\\d+)"))) {
                most = std::max(most, std::stol(m[1]));
            }
        }
        return most;
    };
    PgConn conn(r.conninfo());
    conn.exec("SELECT 1");
    long before = memory(false);

    PGresult* res = PQexec(conn.get(),
                           "COPY (SELECT g, repeat('x', 1000) FROM generate_series(1, 40000) g) "
                           "TO STDOUT");
    REQUIRE(PQresultStatus(res) == PGRES_COPY_OUT);
    PQclear(res);
    std::size_t bytes = 0;
    char* buf = nullptr;
    int n = PQgetCopyData(conn.get(), &buf, 0);
    // A client that stops reading: the server goes on producing, pgrouter must not buffer it.
    std::this_thread::sleep_for(500ms);
    for (; n > 0; n = PQgetCopyData(conn.get(), &buf, 0)) {
        bytes += static_cast<std::size_t>(n);
        PQfreemem(buf);
    }
    while (PGresult* rest = PQgetResult(conn.get())) PQclear(rest);
    CHECK(bytes > 40'000'000);
    long after_out = memory(true);

    std::string line = "1\t" + std::string(1000, 'y') + "\n";
    std::string chunk;
    for (int i = 0; i < 64; ++i) chunk += line;
    res = PQexec(conn.get(), "COPY ss_sink FROM STDIN WHERE false");
    REQUIRE(PQresultStatus(res) == PGRES_COPY_IN);
    PQclear(res);
    for (int i = 0; i < 40000 / 64; ++i) {
        REQUIRE(PQputCopyData(conn.get(), chunk.data(), static_cast<int>(chunk.size())) == 1);
    }
    REQUIRE(PQputCopyEnd(conn.get(), nullptr) == 1);
    std::string result;
    while (PGresult* rest = PQgetResult(conn.get())) {
        result += describe(rest, nullptr);
        PQclear(rest);
    }
    CHECK(result == "OK COPY 0");
    long after_in = memory(true);
    INFO("pgrouter's largest child: " << before << " kB before, peak " << after_out
                                      << " kB after 40 MB out, " << after_in
                                      << " kB after 40 MB in");
    CHECK(after_out - before < 16 * 1024);
    CHECK(after_in - before < 16 * 1024);
    { PgConn done = std::move(conn); }
    r.finish();
}

TEST_CASE("RAISE NOTICE and WARNING are delivered once, from the master and from standbys",
          "[session][notice]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    const std::string setup =
        "CREATE OR REPLACE FUNCTION ss_notice(int) RETURNS int STABLE LANGUAGE plpgsql AS "
        "$$BEGIN RAISE NOTICE 'ss notice %', $1; RETURN $1; END$$";
    auto scenario = [&](const std::string& ci) {
        PgConn conn(ci);
        std::vector<std::string> got;
        auto step = [&](const std::string& sql) {
            std::size_t before = conn.notices().size();
            std::string line = sql + " → " + outcome(conn.get(), sql) + " notices:";
            for (std::size_t i = before; i < conn.notices().size(); ++i) {
                line += " [" + conn.notices()[i] + "]";
            }
            got.push_back(line);
        };
        step("DO $$BEGIN RAISE NOTICE 'in do %', 1; RAISE WARNING 'careful'; END$$");
        for (int i = 0; i < 4; ++i) step("SELECT ss_notice(7)");  // a read: standbys
        step("DROP TABLE IF EXISTS ss_never_there");
        step("SET client_min_messages = warning");
        step("SELECT ss_notice(8)");
        step("DO $$BEGIN RAISE WARNING 'still shown'; END$$");
        step("RESET client_min_messages");
        step("SELECT ss_notice(9)");
        step("DO $$BEGIN RAISE NOTICE 'then error'; RAISE EXCEPTION 'boom'; END$$");
        return got;
    };
    c.exec(0, setup, kTestUser, kTestDb);
    for (int s = 1; s <= c.standby_count(); ++s) c.wait_replayed(s);
    auto direct = scenario(c.conninfo(0, kTestUser, kTestDb));
    auto routed = scenario(r.conninfo());
    check_same(routed, direct);
    r.finish();
}

TEST_CASE("large objects through libpq's lo_* API (fastpath FunctionCall)", "[session][fastpath]") {
    Cluster& c = Cluster::shared();
    Routed r(c, {0, 1, 2});
    std::string blob;
    for (int i = 0; i < 300000; ++i) blob.push_back(static_cast<char>((i * 131 + i / 7) & 0xff));
    const std::string blob_sum = sha256_hex(blob);
    std::string dir = make_temp_dir("pgrouter-lo-");
    write_file(dir + "/in.bin", blob);
    play_both(r, "", [&](Transcript& t) {
        PGconn* conn = t.conn();
        Oid oid = lo_creat(conn, INV_READ | INV_WRITE);  // outside a transaction
        t.note("lo_creat outside a transaction",
               oid != InvalidOid ? "an oid" : PQerrorMessage(conn));
        t.note("it exists on the master",
               on_master(c, "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = " +
                                std::to_string(oid)));
        t.run("BEGIN");
        int fd = lo_open(conn, oid, INV_WRITE);
        t.note("lo_open for writing", fd >= 0 ? "fd" : PQerrorMessage(conn));
        std::size_t written = 0;
        for (std::size_t at = 0; at < blob.size(); at += 65536) {
            std::size_t n = std::min<std::size_t>(65536, blob.size() - at);
            int w = lo_write(conn, fd, blob.data() + at, n);
            if (w <= 0) break;
            written += static_cast<std::size_t>(w);
        }
        t.note("lo_write bytes", std::to_string(written));
        t.note("lo_close", std::to_string(lo_close(conn, fd)));
        t.run("COMMIT");
        t.run("BEGIN");
        fd = lo_open(conn, oid, INV_READ);
        t.note("lo_lseek64 to the end", std::to_string(lo_lseek64(conn, fd, 0, SEEK_END)));
        t.note("lo_lseek64 to 1000", std::to_string(lo_lseek64(conn, fd, 1000, SEEK_SET)));
        t.note("lo_tell64", std::to_string(lo_tell64(conn, fd)));
        (void)lo_lseek64(conn, fd, 0, SEEK_SET);
        std::string back;
        char buf[65536];
        int n = 0;
        while ((n = lo_read(conn, fd, buf, sizeof buf)) > 0) back.append(buf, n);
        t.note("lo_read checksum equals what was written",
               sha256_hex(back) == blob_sum ? "yes" : "no");
        t.note("lo_truncate64", std::to_string(lo_truncate64(conn, fd, 10)));  // read-only fd
        t.run("ROLLBACK");
        t.note("md5(lo_get()) on the master equals what was written",
               on_master(c, "SELECT md5(lo_get(" + std::to_string(oid) + "))") == md5_hex(blob)
                   ? "yes"
                   : on_master(c, "SELECT md5(lo_get(" + std::to_string(oid) + "))"));
        t.read("SELECT length(lo_get(" + std::to_string(oid) + ")), inet_server_port() AS port_", 3,
               Where::Any);
        t.run("BEGIN");
        Oid imported = lo_import(conn, (dir + "/in.bin").c_str());
        t.note("lo_import", imported != InvalidOid ? "an oid" : PQerrorMessage(conn));
        std::string out_path = dir + "/out.bin";
        t.note("lo_export", std::to_string(lo_export(conn, imported, out_path.c_str())));
        t.run("COMMIT");
        t.note("exported file equals the imported one",
               sha256_hex(read_file(out_path)) == blob_sum ? "yes" : "no");
        t.note("lo_unlink", std::to_string(lo_unlink(conn, oid)));
        t.note("lo_unlink imported", std::to_string(lo_unlink(conn, imported)));
        t.note("lo_unlink again", std::to_string(lo_unlink(conn, oid)));
        t.run("SELECT 1");
    });
    remove_tree(dir);
    r.finish();
}

TEST_CASE("failover: an idle unpinned session follows the new master; a pinned one gets 57P01",
          "[session][failover]") {
    Cluster c(ClusterOptions{.standbys = 2, .quiet = true});
    c.exec(0, "CREATE TABLE fo_t (id int); GRANT ALL ON fo_t TO PUBLIC", kTestUser, kTestDb);
    Routed r(c, {0, 1, 2});
    auto unpinned = std::make_unique<PgConn>(r.conninfo());
    auto pinned = std::make_unique<PgConn>(r.conninfo());
    CHECK(outcome(unpinned->get(), "SET application_name = 'fo_unpinned'") == "OK SET");
    CHECK(outcome(unpinned->get(), "INSERT INTO fo_t VALUES (1)") == "OK INSERT 0 1");
    CHECK(outcome(pinned->get(), "CREATE TEMP TABLE fo_tmp (x int)") == "OK CREATE TABLE");
    CHECK(outcome(pinned->get(), "INSERT INTO fo_tmp VALUES (1)") == "OK INSERT 0 1");
    CHECK(outcome(pinned->get(), "SELECT count(*) FROM fo_tmp") == "1");
    // The same pinned session on the wire, to see exactly what pgrouter sends and when.
    RawClient raw(r.port);
    REQUIRE(find_message(raw.login(kTestUser, kTestDb, kTestPassword), 'Z') != nullptr);
    auto raw_query = [&](const std::string& sql) { return raw.send(query_message(sql)); };
    // Messages until ReadyForQuery, the connection's end or a quiet `deadline`.
    auto raw_reply = [&](std::chrono::milliseconds deadline) {
        std::string out;
        while (auto m = raw.read(deadline)) {
            out += std::string(out.empty() ? "" : " ") + m->type;
            if (m->type == 'E' || m->type == 'N') {
                auto f = pgrouter::proto::parse_error_fields(m->payload);
                if (f)
                    out +=
                        "(" + f->severity_nonlocalized + " " + f->sqlstate + " " + f->message + ")";
            }
            if (m->type == 'Z') break;
        }
        return out + (raw.closed() ? " <closed>" : "");
    };
    REQUIRE(raw_query("CREATE TEMP TABLE fo_tmp (x int)"));
    CHECK(raw_reply(5s) == "C Z");
    c.wait_replayed(1);
    c.wait_replayed(2);

    c.stop(0, "immediate");
    c.promote(1);
    c.follow(2, 1);
    REQUIRE(wait_until([&] { return r.sees_master(1); }, 10s));

    // The unpinned session: its next statement works, on the new master, with its settings.
    std::string new_master = std::to_string(c.port(1));
    CHECK(outcome(unpinned->get(), "INSERT INTO fo_t VALUES (2) RETURNING inet_server_port()") ==
          new_master);
    CHECK(outcome(unpinned->get(),
                  "SELECT count(*), current_setting('application_name') "
                  "FROM fo_t") == "2|fo_unpinned");

    // The pinned session: FATAL 57P01 saying its session state was lost, then closed.
    std::string while_idle = raw_reply(200ms);
    INFO("sent to the idle pinned session once the new master was seen: [" << while_idle << "]");
    if (!raw.closed()) {
        (void)raw_query("SELECT count(*) FROM fo_tmp");
        while_idle += " | after a query: " + raw_reply(5s);
    }
    INFO("raw pinned session: [" << while_idle << "]");
    CHECK(while_idle.find("E(FATAL 57P01 ") != std::string::npos);
    CHECK(while_idle.find("<closed>") != std::string::npos);

    // What libpq shows: every result of the next statement (PQexec would keep only the last,
    // "server closed the connection unexpectedly", as it does with a real server's FATAL).
    std::string fatal;
    std::string all;
    PQsendQuery(pinned->get(), "SELECT count(*) FROM fo_tmp");
    while (PGresult* res = PQgetResult(pinned->get())) {
        const char* severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
        all += std::string(all.empty() ? "" : " / ") + (severity != nullptr ? severity : "") + " " +
               describe(res, nullptr);
        if (sqlstate(res) == "57P01")
            fatal = (severity != nullptr ? severity : "") + std::string(" ") + primary_message(res);
        PQclear(res);
    }
    INFO("libpq pinned session after failover: " << all);
    CHECK(std::regex_search(fatal, std::regex("^FATAL .*session state.*lost")));
    CHECK(PQstatus(pinned->get()) == CONNECTION_BAD);
    INFO("notices of the pinned session: " << pinned->notices().size());
    // A session that followed the failover saw nothing of it, as with one server.
    std::string seen;
    for (const auto& n : unpinned->notices()) seen += "[" + n + "] ";
    INFO("notices the unpinned session received: " << seen);
    CHECK(unpinned->notices().empty());

    // New sessions work on the new master.
    {
        PgConn fresh(r.conninfo());
        CHECK(outcome(fresh.get(), "INSERT INTO fo_t VALUES (3) RETURNING inet_server_port()") ==
              new_master);
    }
    unpinned.reset();
    pinned.reset();
    raw.close();
    r.finish();
}
