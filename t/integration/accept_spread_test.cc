// Accept spreading against the real cluster: with 4 workers sharing one listening socket, 64
// clients connecting at once land on every worker and none takes more than half of them
// (the admin console's SHOW WORKERS counts them); clients one after the other go round the
// workers in turn; after a SIGHUP that lowers the workers to 2, the survivors take them all.
#include <libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "../harness/auth_files.h"
#include "../harness/cluster.h"
#include "../harness/log_check.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

constexpr int kClients = 64;

std::string spread_config(const Cluster& c, int listen, int monitor, int workers) {
    std::string conf = "authdb " + authdb_file(c) + "\nlisten 127.0.0.1:" + std::to_string(listen) +
                       "\nmonitor 127.0.0.1:" + std::to_string(monitor) + "\nworkers " +
                       std::to_string(workers) +
                       "\nadmin-users postgres\nhealth { username postgres; password \"" +
                       kSuperPassword + "\"; check 1s }\n";
    for (int i = 0; i < c.node_count(); ++i) {
        conf += "backend 127.0.0.1:" + std::to_string(c.port(i)) + "\n";
    }
    return conf;
}

std::string conninfo(int port, const std::string& user, const std::string& db) {
    return "host=127.0.0.1 port=" + std::to_string(port) + " user=" + user +
           " password=" + password_for(user) + " dbname=" + db + " sslmode=disable";
}

// Opens `n` sessions from 8 threads at once; each has run a query when this returns.
std::vector<PGconn*> connect_all(int port, int n) {
    std::vector<PGconn*> conns(static_cast<std::size_t>(n), nullptr);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            ready.fetch_add(1);
            while (ready.load() < 8) std::this_thread::yield();  // all start together
            for (int i = t; i < n; i += 8) {
                PGconn* c = PQconnectdb(conninfo(port, kTestUser, kTestDb).c_str());
                PQclear(PQexec(c, "SELECT 1"));
                conns[static_cast<std::size_t>(i)] = c;
            }
        });
    }
    for (std::thread& t : threads) t.join();
    return conns;
}

// A column of SHOW WORKERS (2: clients, 5: accepted), in worker order.
std::vector<long> per_worker(int port, std::size_t column = 2) {
    Rows rows = query_rows(conninfo(port, kSuperUser, "pgrouter"), "SHOW WORKERS");
    std::vector<long> out;
    for (const auto& row : rows) out.push_back(std::stol(row[column]));
    return out;
}
std::vector<long> clients_per_worker(int port) { return per_worker(port, 2); }

std::string shown(const std::vector<long>& v) {
    std::string s;
    for (long n : v) s += (s.empty() ? "" : " / ") + std::to_string(n);
    return s;
}

}  // namespace

TEST_CASE("64 clients connecting at once land on every worker, none takes half",
          "[accept][supervisor]") {
    Cluster& c = Cluster::shared();
    int listen = free_port(), monitor = free_port();
    RouterProcess r(spread_config(c, listen, monitor, 4));
    REQUIRE(wait_until([&] { return can_connect(conninfo(listen, kTestUser, kTestDb)); }, 15s));
    REQUIRE(wait_until([&] { return clients_per_worker(listen).size() == 4; }, 10s));

    std::vector<PGconn*> conns = connect_all(listen, kClients);
    for (PGconn* conn : conns) {
        INFO(PQerrorMessage(conn));
        REQUIRE(PQstatus(conn) == CONNECTION_OK);
    }
    std::vector<long> counts = clients_per_worker(listen);  // the console's session is one
    INFO("clients per worker: " << shown(counts));
    REQUIRE(counts.size() == 4);
    long total = 0;
    for (long n : counts) {
        total += n;
        CHECK(n >= 1);
        CHECK(n <= kClients / 2 + 1);
    }
    CHECK(total == kClients + 1);
    for (PGconn* conn : conns) PQfinish(conn);
    CHECK(wait_until(
        [&] {
            std::vector<long> v = clients_per_worker(listen);
            long sum = 0;
            for (long n : v) sum += n;
            return sum == 1;
        },
        10s));

    // One client after the other on an idle router: without the rotation in the socket's
    // wait queue the first sleeping worker would take them all; with a herd, the fastest.
    std::vector<long> before = per_worker(listen, 5);
    for (int i = 0; i < 40; ++i) {
        PgConn one(conninfo(listen, kTestUser, kTestDb));
        one.exec("SELECT 1");
    }
    std::vector<long> after = per_worker(listen, 5);
    REQUIRE(after.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) after[i] -= before[i];
    INFO("sequential clients per worker: " << shown(after));
    for (long n : after) CHECK((n >= 8 && n <= 12));  // 10 each, and one for the console

    // Fewer workers after a reload: the retired ones stop accepting, the rest take everyone.
    r.write_config(spread_config(c, listen, monitor, 2));
    r.signal(SIGHUP);
    REQUIRE(wait_until([&] { return clients_per_worker(listen).size() == 2; }, 15s));
    conns = connect_all(listen, 16);
    for (PGconn* conn : conns) {
        INFO(PQerrorMessage(conn));
        CHECK(PQstatus(conn) == CONNECTION_OK);
    }
    counts = clients_per_worker(listen);
    INFO("clients per worker after the reload: " << shown(counts));
    REQUIRE(counts.size() == 2);
    CHECK(counts[0] + counts[1] == 17);
    for (PGconn* conn : conns) PQfinish(conn);
    CHECK(r.stop() == 0);
    check_log_clean(r);
}
