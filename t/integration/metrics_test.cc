// The metrics endpoint against the real cluster: the exposition passes promtool and is read
// back with Prometheus' own Python parser, and its values follow what the test did (reads on
// the standbys, a write, a failed login, a stopped standby, a reload); counters stay
// monotonic when a worker is SIGKILLed; a thousand silent HTTP clients do not hold /metrics.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>

#include "../harness/auth_files.h"
#include "../harness/cluster.h"
#include "../harness/files.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/routed.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

struct HttpAnswer {
    int status = 0;
    std::string head;
    std::string body;
};

HttpAnswer http(int port, const std::string& method, const std::string& path) {
    std::string raw = read_tcp(
        port, method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    HttpAnswer a;
    std::size_t end = raw.find("\r\n\r\n");
    REQUIRE(end != std::string::npos);
    a.head = raw.substr(0, end);
    a.body = raw.substr(end + 4);
    REQUIRE(a.head.rfind("HTTP/1.1 ", 0) == 0);
    a.status = std::stoi(a.head.substr(9, 3));
    return a;
}

// name{k="v",...} -> value, as prometheus_client's parser reads the text (labels sorted).
using Samples = std::map<std::string, double>;

const char* kParser = R"(
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join('%s="%s"' % (k, s.labels[k]) for k in sorted(s.labels))
        print("%s{%s}\t%r" % (s.name, labels, s.value))
)";

Samples parse(const std::string& text) {
    RunResult r = run({"/usr/bin/python3", "-c", kParser}, {}, text, 60s);
    INFO(r.err);
    REQUIRE(r.status == 0);
    Samples out;
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
        std::size_t tab = line.find('\t');
        REQUIRE(tab != std::string::npos);
        out[line.substr(0, tab)] = std::stod(line.substr(tab + 1));
    }
    REQUIRE_FALSE(out.empty());
    return out;
}

void promtool_check(const std::string& text) {
    RunResult r = run({"promtool", "check", "metrics"}, {}, text, 60s);
    INFO("promtool: " << r.out << r.err);
    REQUIRE(r.status == 0);
    CHECK(r.out.find("problem") == std::string::npos);
}

Samples scrape(int port) {
    HttpAnswer a = http(port, "GET", "/metrics");
    REQUIRE(a.status == 200);
    CHECK(a.head.find("text/plain; version=0.0.4") != std::string::npos);
    return parse(a.body);
}

std::string be(const Cluster& c, int node) {
    return "backend=\"127.0.0.1:" + std::to_string(c.port(node)) + "\"";
}

double value(const Samples& s, const std::string& key) {
    auto it = s.find(key);
    INFO(key);
    REQUIRE(it != s.end());
    return it->second;
}

double units(const Samples& s, const Cluster& c, int node, const std::string& reason) {
    return value(s, "pgrouter_units_total{" + be(c, node) + ",reason=\"" + reason + "\"}");
}

// Every unit counted, over every backend and reason.
double all_units(const Samples& s) {
    double n = 0;
    for (const auto& [k, v] : s) {
        if (k.rfind("pgrouter_units_total{", 0) == 0) n += v;
    }
    return n;
}

std::string metrics_line(int port) { return "metrics 127.0.0.1:" + std::to_string(port) + "\n"; }

}  // namespace

TEST_CASE("metrics: promtool and the Python parser accept them; values follow the test",
          "[metrics]") {
    REQUIRE(run({"sh", "-c", "command -v promtool"}).status == 0);  // install-deps brings it
    Cluster& c = Cluster::shared();
    int mport = free_port();
    Routed r(c, {{0}, {1}, {2}}, metrics_line(mport));

    HttpAnswer raw = http(mport, "GET", "/metrics");
    REQUIRE(raw.status == 200);
    promtool_check(raw.body);
    Samples before = parse(raw.body);
    CHECK(value(before, "pgrouter_build_info{version=\"0.1.0\"}") == 1);
    CHECK(value(before, "pgrouter_workers{}") == 2);
    CHECK(value(before, "pgrouter_backend_up{" + be(c, 0) + "}") == 1);
    CHECK(value(before, "pgrouter_backend_is_master{" + be(c, 0) + "}") == 1);
    CHECK(value(before, "pgrouter_backend_is_master{" + be(c, 1) + "}") == 0);
    CHECK(value(before, "pgrouter_backend_fenced{" + be(c, 2) + "}") == 0);
    CHECK(value(before, "pgrouter_backend_lag_bytes{" + be(c, 0) + "}") == 0);

    {
        PgConn conn(r.conninfo(kSuperUser, "postgres"));
        for (int i = 0; i < 100; ++i) conn.value("SELECT 1");
        conn.exec("CREATE TEMP TABLE metrics_t(x int)");  // pins the session: the master
        conn.exec("INSERT INTO metrics_t VALUES (1)");
        Samples during = scrape(mport);
        CHECK(value(during, "pgrouter_clients{}") >= 1);
        CHECK(value(during, "pgrouter_clients_pinned{}") == 1);
        CHECK(value(during, "pgrouter_server_connections{" + be(c, 0) + "}") >= 1);
    }
    CHECK_FALSE(can_connect("host=127.0.0.1 port=" + std::to_string(r.port) +
                            " user=postgres password=wrong dbname=postgres sslmode=disable"));
    Samples after = scrape(mport);
    promtool_check(http(mport, "GET", "/metrics").body);

    double reads = units(after, c, 1, "read") + units(after, c, 2, "read") -
                   units(before, c, 1, "read") - units(before, c, 2, "read");
    CHECK(reads == 100);
    CHECK(units(after, c, 0, "read") == units(before, c, 0, "read"));
    CHECK(units(after, c, 0, "pinned") - units(before, c, 0, "pinned") == 2);  // the two above
    CHECK(all_units(after) - all_units(before) == 102);
    double timed = 0;
    for (int node : {1, 2}) {
        std::string key = "pgrouter_unit_duration_seconds_count{" + be(c, node) + "}";
        timed += value(after, key) - value(before, key);
        CHECK(value(after, "pgrouter_unit_duration_seconds_bucket{" + be(c, node) +
                               ",le=\"+Inf\"}") == value(after, key));
    }
    CHECK(timed == 100);
    CHECK(value(after, "pgrouter_client_connections_total{}") -
              value(before, "pgrouter_client_connections_total{}") ==
          2);
    CHECK(value(after, "pgrouter_client_auth_failures_total{}") -
              value(before, "pgrouter_client_auth_failures_total{}") ==
          1);
    CHECK(value(after, "pgrouter_server_logins_total{" + be(c, 0) + "}") >
          value(before, "pgrouter_server_logins_total{" + be(c, 0) + "}"));
    CHECK(value(after, "pgrouter_clients_pinned{}") == 0);

    SECTION("anything but GET /metrics: 404 or 405") {
        CHECK(http(mport, "GET", "/").status == 404);
        CHECK(http(mport, "GET", "/metricsx").status == 404);
        CHECK(http(mport, "POST", "/metrics").status == 405);
        CHECK(http(mport, "DELETE", "/metrics").status == 405);
        CHECK(http(mport, "GET", "/metrics?x=1").status == 200);
    }

    SECTION("a stopped standby reads 0 within the health timeout, and 1 again") {
        c.stop(1);
        CHECK(wait_until(
            [&] { return value(scrape(mport), "pgrouter_backend_up{" + be(c, 1) + "}") == 0; }, 15s,
            100ms));
        Samples down = scrape(mport);
        CHECK(down.count("pgrouter_backend_lag_bytes{" + be(c, 1) + "}") == 0);
        c.start(1);
        CHECK(wait_until(
            [&] { return value(scrape(mport), "pgrouter_backend_up{" + be(c, 1) + "}") == 1; }, 30s,
            200ms));
    }

    SECTION("a reload is counted, a bad one as an error") {
        double ok = value(after, "pgrouter_reloads_total{result=\"ok\"}");
        double bad = value(after, "pgrouter_reloads_total{result=\"error\"}");
        r.router->signal(SIGHUP);
        CHECK(wait_until([&] {
            return value(scrape(mport), "pgrouter_reloads_total{result=\"ok\"}") == ok + 1;
        }));
        std::string good = read_file(r.router->config_path());
        r.router->write_config(good + "\nbogus-directive 1\n");
        r.router->signal(SIGHUP);
        CHECK(wait_until([&] {
            return value(scrape(mport), "pgrouter_reloads_total{result=\"error\"}") == bad + 1;
        }));
        r.router->write_config(good);
    }
    r.finish();
}

TEST_CASE("metrics: counters stay monotonic across a SIGKILLed worker", "[metrics]") {
    Cluster& c = Cluster::shared();
    int mport = free_port();
    Routed r(c, {{0}, {1}, {2}}, metrics_line(mport));
    {
        PgConn conn(r.conninfo(kSuperUser, "postgres"));
        for (int i = 0; i < 50; ++i) conn.value("SELECT 1");
    }
    Samples before = scrape(mport);
    double units_before = all_units(before);
    double accepted_before = value(before, "pgrouter_client_connections_total{}");
    REQUIRE(units_before >= 50);

    for (int w : {0, 1}) {
        std::vector<pid_t> workers = r.router->children_titled("worker " + std::to_string(w));
        REQUIRE(workers.size() == 1);
        REQUIRE(kill(workers[0], SIGKILL) == 0);
    }
    // Both restarted; nothing ran meanwhile, so every counter reads exactly what it did.
    REQUIRE(wait_until([&] {
        Samples s = scrape(mport);
        return value(s, "pgrouter_worker_restarts_total{}") == 2 &&
               value(s, "pgrouter_workers{}") == 2;
    }));
    Samples after = scrape(mport);
    CHECK(all_units(after) == units_before);
    CHECK(value(after, "pgrouter_client_connections_total{}") == accepted_before);
    for (const auto& [key, v] : before) {
        if (key.find("_total{") == std::string::npos ||
            key.find("worker_restarts") != std::string::npos) {
            continue;
        }
        INFO(key);
        CHECK(after.at(key) >= v);
    }
    REQUIRE(wait_until([&] { return can_connect(r.conninfo()); }, 15s));
    {
        PgConn conn(r.conninfo(kSuperUser, "postgres"));
        for (int i = 0; i < 10; ++i) conn.value("SELECT 1");
    }
    CHECK(all_units(scrape(mport)) >= units_before + 10);
    r.finish();
}

TEST_CASE("metrics: a thousand silent HTTP clients do not hold /metrics", "[metrics]") {
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    REQUIRE(lim.rlim_cur >= 1100);
    Cluster& c = Cluster::shared();
    int mport = free_port();
    Routed r(c, {{0}, {1}, {2}}, metrics_line(mport));

    std::vector<int> silent;
    for (int i = 0; i < 1000; ++i) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(mport));
        inet_pton(AF_INET, kLoopback, &a.sin_addr);
        REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        if (i % 2 == 1) {
            // Half of them start a request and never finish it.
            const char part[] = "GET /metrics HTTP/1.1\r\nHost: 127.0";
            REQUIRE(send(fd, part, sizeof part - 1, MSG_NOSIGNAL) > 0);
        }
        silent.push_back(fd);
    }
    auto start = std::chrono::steady_clock::now();
    HttpAnswer a = http(mport, "GET", "/metrics");
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("metrics: GET /metrics beside 1000 silent clients answered in %.1f ms\n", ms);
    CHECK(a.status == 200);
    CHECK(a.body.find("pgrouter_backend_up{") != std::string::npos);
    // The silent ones are cut at their deadline: each reads EOF.
    int closed = 0;
    CHECK(wait_until(
        [&] {
            for (int& fd : silent) {
                if (fd < 0) continue;
                char b[512];
                ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                    close(fd);
                    fd = -1;
                    closed += 1;
                }
            }
            return closed == 1000;
        },
        20s, 50ms));
    for (int fd : silent) {
        if (fd >= 0) close(fd);
    }
    CHECK(http(mport, "GET", "/metrics").status == 200);
    r.finish();
}
