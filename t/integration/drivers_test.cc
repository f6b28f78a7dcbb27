// Real clients through pgrouter, each run the same way directly against the primary and
// compared: psql scripts (\set, \copy both ways, multi-statement strings), pgbench -M
// prepared with a mixed read/write script, psycopg 3 pipelines, pgJDBC with
// prepareThreshold=1, batches and autosave, node-pg named statements, psycopg2, asyncpg,
// SQLAlchemy, postgres.js, and libpq's pipeline mode. Every driver also calls TABLE_f(), a
// function that writes, through its extended protocol in a session that has not written yet
// (pgrouter replays it on the master after the standby's 25006), and meets a prepared
// statement whose result shape another session changed. Scripts live
// in t/drivers/. A driver that is not installed is skipped with a WARN (packaging/install-deps
// and t/bench/drivers.mk install them).
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>
#include <map>
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

// A node's or the router's address in each driver's form: libpq conninfo, URI, node JSON.
std::string libpq_address(int port) {
    return "host=127.0.0.1 port=" + std::to_string(port) + " user=" + kTestUser +
           " password=" + kTestPassword + " dbname=" + kTestDb + " sslmode=disable";
}

std::string uri_address(int port) {
    return std::string("postgresql://") + kTestUser + ":" + kTestPassword +
           "@127.0.0.1:" + std::to_string(port) + "/" + kTestDb + "?sslmode=disable";
}

std::string node_address(int port) {
    return std::string("{\"host\":\"127.0.0.1\",\"port\":") + std::to_string(port) +
           ",\"user\":\"" + kTestUser + "\",\"password\":\"" + kTestPassword +
           "\",\"database\":\"" + kTestDb + "\"}";
}

// The direct connection's conninfo, in the same form as the router's.
std::string direct_conninfo(const Cluster& c) { return libpq_address(c.port(0)); }

// Runs sql on the primary as the test user and waits until every standby has it.
void setup(Cluster& c, const std::string& sql) {
    c.exec(0, sql, kTestUser, kTestDb);
    for (int s = 1; s <= c.standby_count(); ++s) c.wait_replayed(s);
}

std::string fresh_table(const std::string& name) {
    return "DROP TABLE IF EXISTS " + name + "; CREATE TABLE " + name +
           " (id int PRIMARY KEY, v text)";
}

// A fresh table and TABLE_f(), which writes a row ('f') into it and returns 1; for the
// changed-shape scenario (shape) the table has the row (1, 'one'), so that the session reads
// it without writing.
std::string table_with_f(const std::string& name, bool shape = false) {
    return fresh_table(name) + (shape ? "; INSERT INTO " + name + " VALUES (1, 'one')" : "") +
           "; CREATE OR REPLACE FUNCTION " + name +
           "_f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO " + name +
           " (id, v) SELECT 1000 + count(*), 'f' FROM " + name + " WHERE v = 'f'; RETURN 1; END $$";
}

std::string f_rows_on_primary(Cluster& c, const std::string& table) {
    return c.exec(0, "SELECT count(*) FROM " + table + " WHERE v = 'f'", kTestUser, kTestDb);
}

// Every node's port, the primary's first: the scripts' DRV_SHAPE_PORTS.
std::string node_ports(const Cluster& c) {
    std::string out = std::to_string(c.port(0));
    for (int s = 1; s <= c.standby_count(); ++s) out += "," + std::to_string(c.port(s));
    return out;
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

// A driver script run once per connection: argv, then its address of a port, then TABLE.
struct DriverScript {
    std::string name;
    std::vector<std::string> argv;
    std::function<std::string(int port)> address;
    std::map<std::string, std::string> env = {};
};

// Runs the script's `scenario` (DRV_SCENARIO; "shape" is the changed-shape one, whose nodes
// are DRV_SHAPE_PORTS) on a fresh `table` with TABLE_f(), directly against the primary and
// then through pgrouter, and compares the outputs and the rows f() left on the primary.
void compare_driver(const DriverScript& d, const std::string& table,
                    const std::string& scenario = "main") {
    Cluster& c = Cluster::shared();
    Routed r(c);
    const bool shape = scenario == "shape";
    auto env = d.env;
    env["DRV_SCENARIO"] = scenario;
    env["DRV_SHAPE_PORTS"] = node_ports(c);
    auto play = [&](int port) {
        setup(c, table_with_f(table, shape));
        auto argv = d.argv;
        argv.push_back(d.address(port));
        argv.push_back(table);
        RunResult res = run(argv, env, "", 20s);
        return std::make_pair(res, f_rows_on_primary(c, table));
    };
    auto [direct, direct_f] = play(c.port(0));
    auto [routed, routed_f] = play(r.port);
    INFO(d.name << " direct stderr: " << direct.err << "\nthrough pgrouter stderr: " << routed.err);
    CHECK(direct.status == 0);
    CHECK(routed.status == 0);
    CHECK(direct.out.find("unexpected") == std::string::npos);
    compare_lines(d.name, routed.out, direct.out);
    CHECK(routed_f == direct_f);
    r.finish();
}

bool on_path(const std::string& program) { return run({"sh", "-c", "command -v " + program}).ok(); }

// A Python with these modules: Debian's /usr/bin/python3 (python3-psycopg, -psycopg2,
// -asyncpg, -sqlalchemy), else the first python3 on PATH that has them; "" when none.
std::string python_with(const std::string& modules) {
    for (const char* py : {"/usr/bin/python3", "python3"}) {
        if (run({py, "-c", "import " + modules}).ok()) return py;
    }
    return "";
}

const std::string kNodeModules = "build/node_modules";
const std::map<std::string, std::string> kNodeEnv{{"NODE_PATH", kNodeModules},
                                                  {"NODE_NO_WARNINGS", "1"}};

// node with the npm package `package` in build/node_modules; WARNs and is false without.
bool node_has(const std::string& package) {
    if (on_path("node") && !read_file(kNodeModules + "/" + package + "/package.json").empty()) {
        return true;
    }
    WARN("node or the npm package " << package << " is missing (make drivers-deps installs it "
                                    << "into " << kNodeModules << "): test skipped");
    return false;
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
        // A thread per client: pgbench prepares a statement with a blocking PQprepare(),
        // which stops the other clients of its thread; one of them inside a transaction
        // holds its pooled server connection meanwhile, and with a pool smaller than the
        // clients (t/txpool-suites) the prepare then waits for a connection that thread
        // holds: a deadlock of pgbench's until wait-timeout, with any transaction pooler.
        RunResult b = run({"pgbench", "-n", "-M", "prepared", "-c", std::to_string(clients), "-j",
                           std::to_string(clients), "-t", std::to_string(transactions), "-f",
                           "t/drivers/pgbench_mixed.sql", conninfo},
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

// A Python with `module` (its Debian package: `package`); "" with a WARN when it is missing.
std::string python_or_warn(const std::string& module, const std::string& package) {
    std::string py = python_with(module);
    if (py.empty()) WARN(module << " is not installed (Debian: " << package << "): test skipped");
    return py;
}

TEST_CASE("psycopg 3: pipelines mixing writes and reads, prepare_threshold=0, errors",
          "[drivers][psycopg]") {
    std::string py = python_or_warn("psycopg", "python3-psycopg");
    if (py.empty()) return;
    compare_driver({"psycopg", {py, "t/drivers/psycopg_pipeline.py"}, libpq_address}, "drv_py");
}

TEST_CASE("psycopg 3: a prepared statement whose result shape another session changed",
          "[drivers][psycopg][shape]") {
    std::string py = python_or_warn("psycopg", "python3-psycopg");
    if (py.empty()) return;
    compare_driver({"psycopg", {py, "t/drivers/psycopg_pipeline.py"}, libpq_address},
                   "drv_py_shape", "shape");
}

// pgJDBC's jar, or "" with a WARN when it or a JDK is missing.
std::string jdbc_or_warn() {
    const std::string jar = jdbc_jar();
    if (on_path("javac") && !jar.empty()) return jar;
    WARN(
        "a JDK or pgJDBC is missing (Debian: default-jdk-headless, libpostgresql-jdbc-java): "
        "test skipped");
    return "";
}

// JdbcScenario's `scenario` with one pair of runs per URL option set (each direct, then
// through pgrouter, on fresh tables with TABLE_f()); each pair compared.
void compare_jdbc(const std::string& jar, const std::string& scenario,
                  const std::vector<std::string>& options) {
    Cluster& c = Cluster::shared();
    Routed r(c);
    auto url = [](int port, const std::string& opts) {
        return "jdbc:postgresql://127.0.0.1:" + std::to_string(port) + "/" + kTestDb +
               "?user=" + kTestUser + "&password=" + kTestPassword +
               "&prepareThreshold=1&sslmode=disable" + opts;
    };
    std::vector<std::string> argv{"java", "-cp", jar, "t/drivers/JdbcScenario.java", scenario};
    std::vector<std::string> tables;
    for (std::size_t i = 0; i < options.size(); ++i) {
        for (const char* side : {"d", "r"}) {
            tables.push_back("drv_jdbc_" + scenario + std::to_string(i) + side);
            setup(c, table_with_f(tables.back(), scenario == "shape"));
            argv.push_back(url(side[0] == 'd' ? c.port(0) : r.port, options[i]));
            argv.push_back(tables.back());
        }
    }
    RunResult j = run(argv, {{"DRV_SHAPE_PORTS", node_ports(c)}}, "", 90s);
    INFO("java stderr: " << j.err);
    CHECK(j.status == 0);
    auto runs = split_runs(j.out);
    REQUIRE(runs.size() == 2 * options.size());
    for (std::size_t i = 0; i < options.size(); ++i) {
        INFO("URL options: " << options[i]);
        CHECK(runs[2 * i].find("unexpected") == std::string::npos);
        compare_lines("JDBC", runs[2 * i + 1], runs[2 * i]);
        CHECK(f_rows_on_primary(c, tables[2 * i + 1]) == f_rows_on_primary(c, tables[2 * i]));
    }
    r.finish();
}

TEST_CASE("pgJDBC: prepareThreshold=1 prepared reads and writes, executeBatch, transactions",
          "[drivers][jdbc]") {
    std::string jar = jdbc_or_warn();
    if (!jar.empty()) compare_jdbc(jar, "main", {""});
}

TEST_CASE("pgJDBC: autosave=always and conservative (BEGIN unsynced, then SAVEPOINT)",
          "[drivers][jdbc][autosave]") {
    std::string jar = jdbc_or_warn();
    if (!jar.empty()) compare_jdbc(jar, "autosave", {"&autosave=always", "&autosave=conservative"});
}

TEST_CASE("pgJDBC: a prepared statement whose result shape another session changed",
          "[drivers][jdbc][shape]") {
    std::string jar = jdbc_or_warn();
    if (!jar.empty()) compare_jdbc(jar, "shape", {"&autosave=conservative"});
}

// node_named.js with a pair of runs (direct, then through pgrouter) on fresh tables.
void compare_node(bool shape) {
    Cluster& c = Cluster::shared();
    Routed r(c);
    setup(c, table_with_f("drv_node_d", shape) + ";" + table_with_f("drv_node_r", shape));
    auto env = kNodeEnv;
    env["DRV_SCENARIO"] = shape ? "shape" : "main";
    env["DRV_SHAPE_PORTS"] = node_ports(c);
    RunResult n = run({"node", "t/drivers/node_named.js", node_address(c.port(0)), "drv_node_d",
                       node_address(r.port), "drv_node_r"},
                      env, "", 60s);
    INFO("node stderr: " << n.err);
    CHECK(n.status == 0);
    auto runs = split_runs(n.out);
    REQUIRE(runs.size() == 2);
    CHECK(runs[0].find("unexpected") == std::string::npos);
    compare_lines("node-pg", runs[1], runs[0]);
    CHECK(f_rows_on_primary(c, "drv_node_r") == f_rows_on_primary(c, "drv_node_d"));
    r.finish();
}

TEST_CASE("node-pg: named prepared statements", "[drivers][node]") {
    if (node_has("pg")) compare_node(false);
}

TEST_CASE("node-pg: a named statement whose result shape another session changed",
          "[drivers][node][shape]") {
    if (node_has("pg")) compare_node(true);
}

TEST_CASE("psycopg2: simple protocol, SQL PREPARE, transactions, a write inside a function",
          "[drivers][psycopg2]") {
    std::string py = python_or_warn("psycopg2", "python3-psycopg2");
    if (py.empty()) return;
    compare_driver({"psycopg2", {py, "t/drivers/psycopg2_simple.py"}, libpq_address}, "drv_pg2");
}

TEST_CASE("psycopg2: an SQL prepared statement whose result shape another session changed",
          "[drivers][psycopg2][shape]") {
    std::string py = python_or_warn("psycopg2", "python3-psycopg2");
    if (py.empty()) return;
    compare_driver({"psycopg2", {py, "t/drivers/psycopg2_simple.py"}, libpq_address},
                   "drv_pg2_shape", "shape");
}

TEST_CASE("asyncpg: prepared statements and the statement cache, transactions",
          "[drivers][asyncpg]") {
    std::string py = python_or_warn("asyncpg", "python3-asyncpg");
    if (py.empty()) return;
    compare_driver({"asyncpg", {py, "t/drivers/asyncpg_prepared.py"}, uri_address}, "drv_apg");
}

TEST_CASE("asyncpg: a SET, then reads on the standbys (Parse/Describe/Flush)",
          "[drivers][asyncpg]") {
    std::string py = python_or_warn("asyncpg", "python3-asyncpg");
    if (py.empty()) return;
    compare_driver({"asyncpg", {py, "t/drivers/asyncpg_prepared.py"}, uri_address}, "drv_apg_set",
                   "set");
}

TEST_CASE("asyncpg: a write inside a function, replayed after 25006 (Parse/Describe/Flush)",
          "[drivers][asyncpg]") {
    std::string py = python_or_warn("asyncpg", "python3-asyncpg");
    if (py.empty()) return;
    compare_driver({"asyncpg", {py, "t/drivers/asyncpg_prepared.py"}, uri_address}, "drv_apg_f",
                   "replay");
}

TEST_CASE("asyncpg: a prepared statement whose result shape another session changed",
          "[drivers][asyncpg][shape]") {
    std::string py = python_or_warn("asyncpg", "python3-asyncpg");
    if (py.empty()) return;
    compare_driver({"asyncpg", {py, "t/drivers/asyncpg_prepared.py"}, uri_address}, "drv_apg_shape",
                   "shape");
}

TEST_CASE("SQLAlchemy: ORM unit of work, Core, rollback after errors", "[drivers][sqlalchemy]") {
    std::string py = python_or_warn("sqlalchemy, psycopg2", "python3-sqlalchemy");
    if (py.empty()) return;
    compare_driver({"SQLAlchemy", {py, "t/drivers/sqlalchemy_orm.py"}, libpq_address}, "drv_sqla");
}

TEST_CASE("postgres.js: tagged templates (prepared, pipelined), transactions",
          "[drivers][postgresjs]") {
    if (!node_has("postgres")) return;
    compare_driver(
        {"postgres.js", {"node", "t/drivers/postgresjs_tagged.js"}, node_address, kNodeEnv},
        "drv_pjs");
}

TEST_CASE("postgres.js: a prepared statement whose result shape another session changed",
          "[drivers][postgresjs][shape]") {
    if (!node_has("postgres")) return;
    compare_driver(
        {"postgres.js", {"node", "t/drivers/postgresjs_tagged.js"}, node_address, kNodeEnv},
        "drv_pjs_shape", "shape");
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
