// Real clients through pgrouter, each run the same way directly against the primary and
// compared: psql scripts (\set, \copy both ways, multi-statement strings), pgbench -M
// prepared with a mixed read/write script, psycopg 3 pipelines, pgJDBC with
// prepareThreshold=1 and batches, node-pg named statements, and libpq's pipeline mode.
// Scripts live in t/drivers/. A driver that is not installed is skipped with a WARN
// (packaging/install-deps and t/bench/drivers.mk install them).
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <regex>

#include "../harness/auth_files.h"
#include "../harness/cluster.h"
#include "../harness/files.h"
#include "../harness/log_check.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

// The direct connection's conninfo, in the same form as the router's.
std::string direct_conninfo(const Cluster& c) {
    return "host=127.0.0.1 port=" + std::to_string(c.port(0)) + " user=" + kTestUser +
           " password=" + kTestPassword + " dbname=" + kTestDb + " sslmode=disable";
}

// Runs sql on the primary as the test user and waits until every standby has it.
void setup(Cluster& c, const std::string& sql) {
    c.exec(0, sql, kTestUser, kTestDb);
    for (int s = 1; s <= c.standby_count(); ++s) c.wait_replayed(s);
}

std::string fresh_table(const std::string& name) {
    return "DROP TABLE IF EXISTS " + name + "; CREATE TABLE " + name +
           " (id int PRIMARY KEY, v text)";
}

std::string sha256_hex(const std::string& data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 15];
    }
    return out;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t nl = text.find('\n', at);
        if (nl == std::string::npos) nl = text.size();
        out.push_back(text.substr(at, nl - at));
        at = nl + 1;
    }
    return out;
}

// Line-by-line comparison of two outputs, each difference reported with its line.
void compare_lines(const std::string& what, const std::string& routed, const std::string& direct) {
    auto r = lines_of(routed);
    auto d = lines_of(direct);
    INFO(what << " through pgrouter:\n" << routed << "\n" << what << " direct:\n" << direct);
    CHECK(r.size() == d.size());
    for (std::size_t i = 0; i < std::min(r.size(), d.size()); ++i) {
        INFO(what << " line " << i + 1 << "\n  through pgrouter: " << r[i]
                  << "\n  direct:           " << d[i]);
        CHECK(r[i] == d[i]);
    }
}

// Output of a driver script that prints "== run N" before each run: the runs, split.
std::vector<std::string> split_runs(const std::string& out) {
    std::vector<std::string> runs;
    for (const auto& line : lines_of(out)) {
        if (line.rfind("== run ", 0) == 0) {
            runs.emplace_back();
        } else if (!runs.empty()) {
            runs.back() += line + "\n";
        }
    }
    return runs;
}

bool on_path(const std::string& program) { return run({"sh", "-c", "command -v " + program}).ok(); }

// A Python with psycopg 3: Debian's /usr/bin/python3 (python3-psycopg), else the first
// python3 on PATH that has it; "" when none.
std::string psycopg_python() {
    for (const char* py : {"/usr/bin/python3", "python3"}) {
        if (run({py, "-c", "import psycopg"}).ok()) return py;
    }
    return "";
}

// pgJDBC as Debian (libpostgresql-jdbc-java) or Fedora (postgresql-jdbc) installs it; "" if
// neither is there.
std::string jdbc_jar() {
    for (const char* jar :
         {"/usr/share/java/postgresql.jar", "/usr/share/java/postgresql-jdbc.jar"}) {
        if (access(jar, R_OK) == 0) return jar;
    }
    return "";
}

// Every result of a pipeline, in order, until `syncs` PGRES_PIPELINE_SYNC results: status and
// rows or SQLSTATE, one line each; a NULL (end of one query's results) is "-".
std::string pipeline_results(PGconn* conn, int syncs) {
    std::string out;
    int nulls_in_a_row = 0;
    while (syncs > 0) {
        PGresult* res = PQgetResult(conn);
        if (res == nullptr) {
            out += "-\n";
            if (++nulls_in_a_row > 2 || PQstatus(conn) != CONNECTION_OK) {
                out += std::string("stuck: ") + PQerrorMessage(conn);
                break;
            }
            continue;
        }
        nulls_in_a_row = 0;
        ExecStatusType st = PQresultStatus(res);
        out += PQresStatus(st);
        if (st == PGRES_TUPLES_OK) {
            for (int r = 0; r < PQntuples(res); ++r) {
                out += r == 0 ? " " : ";";
                for (int c = 0; c < PQnfields(res); ++c) {
                    out += std::string(c == 0 ? "" : "|") + PQgetvalue(res, r, c);
                }
            }
        } else if (st == PGRES_COMMAND_OK) {
            out += std::string(" ") + PQcmdStatus(res);
        } else if (st == PGRES_FATAL_ERROR) {
            const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            out += std::string(" ") + (s != nullptr ? s : "?");
        } else if (st == PGRES_PIPELINE_SYNC) {
            --syncs;
        }
        out += "\n";
        PQclear(res);
    }
    return out;
}

// Three batches sent before any result is read (writes; reads and an error; a prepared
// statement, more writes and reads), then a fourth after the first three are read.
std::string libpq_pipeline(const std::string& conninfo, const std::string& table) {
    PgConn pg(conninfo);
    PGconn* conn = pg.get();
    if (PQenterPipelineMode(conn) != 1) return "PQenterPipelineMode failed";
    auto send = [&](const std::string& sql, std::vector<std::string> params = {}) {
        std::vector<const char*> values;
        for (const auto& p : params) values.push_back(p.c_str());
        if (PQsendQueryParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr,
                              values.data(), nullptr, nullptr, 0) != 1) {
            throw std::runtime_error(std::string("PQsendQueryParams: ") + PQerrorMessage(conn));
        }
    };
    auto sync = [&] {
        if (PQpipelineSync(conn) != 1) throw std::runtime_error("PQpipelineSync failed");
    };
    const std::string insert = "INSERT INTO " + table + " (id, v) VALUES ($1, $2) RETURNING id";
    for (int i = 1; i <= 5; ++i) send(insert, {std::to_string(i), "p" + std::to_string(i)});
    send("SELECT count(*), sum(id) FROM " + table);
    sync();
    send("SELECT v FROM " + table + " WHERE id = $1", {"3"});
    send("SELECT 10 / $1::int", {"0"});
    send(insert, {"6", "skipped"});
    send("SELECT 'skipped too'");
    sync();
    const std::string prepared = "SELECT v, $1::int FROM " + table + " WHERE id = $1";
    if (PQsendPrepare(conn, "drv_pipe", prepared.c_str(), 1, nullptr) != 1) {
        return std::string("PQsendPrepare: ") + PQerrorMessage(conn);
    }
    for (const char* id : {"1", "2", "5"}) {
        const char* values[] = {id};
        PQsendQueryPrepared(conn, "drv_pipe", 1, values, nullptr, nullptr, 0);
    }
    send(insert, {"7", "p7"});
    send("SELECT count(*), sum(id) FROM " + table);
    sync();
    std::string out = pipeline_results(conn, 3);
    for (int i = 8; i <= 40; ++i) {
        send(insert, {std::to_string(i), "many"});
        send("SELECT count(*) FROM " + table);
    }
    const char* values[] = {"7"};
    PQsendQueryPrepared(conn, "drv_pipe", 1, values, nullptr, nullptr, 0);
    sync();
    out += pipeline_results(conn, 1);
    out += std::string("exit pipeline: ") + std::to_string(PQexitPipelineMode(conn)) + "\n";
    out += "after: " + pg.value("SELECT count(*) || ' ' || sum(id) FROM " + table) + "\n";
    return out;
}

// A session that only reads (its batches may use the standbys): a statement prepared in the
// first batch and used in the ones after, a slow batch ahead of fast ones, an error in one
// batch, all sent before any result is read.
std::string libpq_read_pipeline(const std::string& conninfo, const std::string& table) {
    PgConn pg(conninfo);
    PGconn* conn = pg.get();
    if (PQenterPipelineMode(conn) != 1) return "PQenterPipelineMode failed";
    const std::string sql = "SELECT v, $1::int * 10 FROM " + table + " WHERE id = $1";
    if (PQsendPrepare(conn, "drv_ro", sql.c_str(), 1, nullptr) != 1) return "PQsendPrepare failed";
    if (PQpipelineSync(conn) != 1) return "PQpipelineSync failed";
    int syncs = 1;
    for (int i = 1; i <= 8; ++i) {
        std::string id = std::to_string(i);
        const char* values[] = {id.c_str()};
        if (i == 2)
            PQsendQueryParams(conn, "SELECT pg_sleep(0.2)", 0, nullptr, nullptr, nullptr, nullptr,
                              0);
        if (i == 5) PQsendQueryParams(conn, "SELECT 1/0", 0, nullptr, nullptr, nullptr, nullptr, 0);
        PQsendQueryPrepared(conn, "drv_ro", 1, values, nullptr, nullptr, 0);
        PQsendQueryParams(conn, ("SELECT count(*) FROM " + table).c_str(), 0, nullptr, nullptr,
                          nullptr, nullptr, 0);
        if (PQpipelineSync(conn) != 1) return "PQpipelineSync failed";
        ++syncs;
    }
    std::string out = pipeline_results(conn, syncs);
    out += std::string("exit pipeline: ") + std::to_string(PQexitPipelineMode(conn)) + "\n";
    return out;
}

}  // namespace

TEST_CASE("psql: \\set, \\copy in and out, multi-statement strings, errors", "[drivers][psql]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    std::string data;
    for (int i = 1; i <= 5000; ++i) {
        data += std::to_string(i) + "\tpsql row " + std::to_string(i * 31 % 977) + "\t" +
                std::to_string(i) + ".5\n";
    }
    // psql runs in a directory of its own (\copy takes no variables): the script by its path.
    char* cwd = getcwd(nullptr, 0);
    const std::string script_path = std::string(cwd) + "/t/drivers/psql_script.sql";
    free(cwd);
    struct Result {
        RunResult run;
        std::string tsv, csv;
    };
    auto play = [&](const std::string& conninfo) {
        setup(c,
              "DROP TABLE IF EXISTS drv_psql; CREATE TABLE drv_psql (id int, t text, d numeric)");
        std::string dir = make_temp_dir("pgrouter-psql-");
        write_file(dir + "/in.tsv", data);
        Result res;
        res.run = run({"psql", "-X", "-q", "-f", script_path, conninfo}, {{"PGAPPNAME", "drv"}}, "",
                      60s, dir);
        res.tsv = read_file(dir + "/out.tsv");
        res.csv = read_file(dir + "/out.csv");
        remove_tree(dir);
        return res;
    };
    Result direct = play(direct_conninfo(c));
    Result routed = play(r.conninfo());
    CHECK(direct.run.status == 0);
    CHECK(routed.run.status == 0);
    compare_lines("psql stdout", routed.run.out, direct.run.out);
    compare_lines("psql stderr", routed.run.err, direct.run.err);
    CHECK(sha256_hex(direct.tsv) == sha256_hex(data));  // the script is right
    CHECK(sha256_hex(routed.tsv) == sha256_hex(data));
    CHECK(sha256_hex(routed.csv) == sha256_hex(direct.csv));
    CHECK(!direct.csv.empty());

    // One Query with several statements, as -c sends it: every result, then the error.
    auto multi = [&](const std::string& conninfo) {
        setup(c, fresh_table("drv_multi"));
        return run(
            {"psql", "-X", "-v", "ON_ERROR_STOP=0", "-c",
             "INSERT INTO drv_multi VALUES (1, 'a'); SELECT count(*) FROM drv_multi; "
             "SET application_name = 'multi'; SHOW application_name; SELECT 1/0; "
             "INSERT INTO drv_multi VALUES (2, 'b')",
             "-c", "SELECT count(*), current_setting('application_name') FROM drv_multi", conninfo},
            {}, "", 30s);
    };
    RunResult md = multi(direct_conninfo(c));
    RunResult mr = multi(r.conninfo());
    compare_lines("psql -c stdout", mr.out, md.out);
    compare_lines("psql -c stderr", mr.err, md.err);
    CHECK(mr.status == md.status);
    r.finish();
}

TEST_CASE("pgbench -M prepared: reads, writes and read-your-writes checks, zero failures",
          "[drivers][pgbench]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    const int clients = 4, transactions = 100;
    auto bench = [&](const std::string& conninfo) {
        setup(c,
              "DROP TABLE IF EXISTS drv_bench, drv_bench_hist;"
              "CREATE TABLE drv_bench (aid int PRIMARY KEY, abalance int NOT NULL);"
              "INSERT INTO drv_bench SELECT g, 0 FROM generate_series(1, " +
                  std::to_string(clients * 100 + 100) +
                  ") g;"
                  "CREATE TABLE drv_bench_hist (aid int, delta int)");
        RunResult b =
            run({"pgbench", "-n", "-M", "prepared", "-c", std::to_string(clients), "-j", "2", "-t",
                 std::to_string(transactions), "-f", "t/drivers/pgbench_mixed.sql", conninfo},
                {}, "", 90s);
        std::string sums = c.exec(0,
                                  "SELECT (SELECT sum(abalance) FROM drv_bench) || ' ' || "
                                  "(SELECT sum(delta) FROM drv_bench_hist) || ' ' || "
                                  "(SELECT count(*) FROM drv_bench_hist)",
                                  kTestUser, kTestDb);
        return std::make_pair(b, sums);
    };
    for (bool routed : {false, true}) {
        auto [b, sums] = bench(routed ? r.conninfo() : direct_conninfo(c));
        INFO((routed ? "through pgrouter" : "direct") << ":\n" << b.out << b.err);
        CHECK(b.status == 0);
        CHECK(b.out.find("number of transactions actually processed: " +
                         std::to_string(clients * transactions) + "/") != std::string::npos);
        CHECK(b.out.find("number of failed transactions: 0 ") != std::string::npos);
        // Balances equal the history; two history rows per transaction.
        std::smatch m;
        REQUIRE(std::regex_match(sums, m, std::regex("(-?\\d+) (-?\\d+) (\\d+)")));
        CHECK(m[1] == m[2]);
        CHECK(m[3] == std::to_string(2 * clients * transactions));
    }
    r.finish();
}

TEST_CASE("psycopg 3: pipelines mixing writes and reads, prepare_threshold=0, errors",
          "[drivers][psycopg]") {
    std::string py = psycopg_python();
    if (py.empty()) {
        WARN("psycopg 3 is not installed (Debian: python3-psycopg): test skipped");
        return;
    }
    Cluster& c = Cluster::shared();
    Routed r(c);
    auto play = [&](const std::string& conninfo) {
        setup(c, fresh_table("drv_py"));
        return run({py, "t/drivers/psycopg_pipeline.py", conninfo, "drv_py"}, {}, "", 60s);
    };
    RunResult direct = play(direct_conninfo(c));
    RunResult routed = play(r.conninfo());
    INFO("direct stderr: " << direct.err << "\nthrough pgrouter stderr: " << routed.err);
    CHECK(direct.status == 0);
    CHECK(routed.status == 0);
    compare_lines("psycopg", routed.out, direct.out);
    r.finish();
}

TEST_CASE("pgJDBC: prepareThreshold=1 prepared reads and writes, executeBatch, transactions",
          "[drivers][jdbc]") {
    const std::string jar = jdbc_jar();
    if (!on_path("javac") || jar.empty()) {
        WARN(
            "a JDK or pgJDBC is missing (Debian: default-jdk-headless, "
            "libpostgresql-jdbc-java): test skipped");
        return;
    }
    Cluster& c = Cluster::shared();
    Routed r(c);
    setup(c, fresh_table("drv_jdbc_d") + ";" + fresh_table("drv_jdbc_r"));
    auto url = [](int port) {
        return "jdbc:postgresql://127.0.0.1:" + std::to_string(port) + "/" + kTestDb +
               "?user=" + kTestUser + "&password=" + kTestPassword +
               "&prepareThreshold=1&sslmode=disable";
    };
    RunResult j = run({"java", "-cp", jar, "t/drivers/JdbcScenario.java", url(c.port(0)),
                       "drv_jdbc_d", url(r.port), "drv_jdbc_r"},
                      {}, "", 90s);
    INFO("java stderr: " << j.err);
    CHECK(j.status == 0);
    auto runs = split_runs(j.out);
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].find("unexpected") == std::string::npos);
    compare_lines("JDBC", runs[1], runs[0]);
    r.finish();
}

TEST_CASE("node-pg: named prepared statements", "[drivers][node]") {
    const std::string modules = "build/node_modules";
    if (!on_path("node") || read_file(modules + "/pg/package.json").empty()) {
        WARN("node or node-pg is missing (make drivers-deps runs npm install pg into "
             << modules << "): test skipped");
        return;
    }
    Cluster& c = Cluster::shared();
    Routed r(c);
    setup(c, fresh_table("drv_node_d") + ";" + fresh_table("drv_node_r"));
    auto config = [](int port) {
        return std::string("{\"host\":\"127.0.0.1\",\"port\":") + std::to_string(port) +
               ",\"user\":\"" + kTestUser + "\",\"password\":\"" + kTestPassword +
               "\",\"database\":\"" + kTestDb + "\"}";
    };
    RunResult n = run({"node", "t/drivers/node_named.js", config(c.port(0)), "drv_node_d",
                       config(r.port), "drv_node_r"},
                      {{"NODE_PATH", modules}, {"NODE_NO_WARNINGS", "1"}}, "", 60s);
    INFO("node stderr: " << n.err);
    CHECK(n.status == 0);
    auto runs = split_runs(n.out);
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].find("unexpected") == std::string::npos);
    compare_lines("node-pg", runs[1], runs[0]);
    r.finish();
}

TEST_CASE("libpq pipeline mode: batches in flight keep their order and error semantics",
          "[drivers][libpq]") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    setup(c, fresh_table("drv_pipe"));
    std::string direct = libpq_pipeline(direct_conninfo(c), "drv_pipe");
    setup(c, fresh_table("drv_pipe"));
    std::string routed = libpq_pipeline(r.conninfo(), "drv_pipe");
    compare_lines("libpq pipeline", routed, direct);
    // Read-only batches (the table is replayed on the standbys first).
    for (int s = 1; s <= c.standby_count(); ++s) c.wait_replayed(s);
    compare_lines("libpq read-only pipeline", libpq_read_pipeline(r.conninfo(), "drv_pipe"),
                  libpq_read_pipeline(direct_conninfo(c), "drv_pipe"));
    r.finish();
}
