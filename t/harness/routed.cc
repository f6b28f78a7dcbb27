// Routed: config text, start, and the waits that make a router ready for a test.
#include "routed.h"

#include <catch2/catch.hpp>
#include <cstdlib>

#include "auth_files.h"
#include "log_check.h"
#include "net.h"
#include "pq.h"
#include "run.h"

namespace pgrouter::test {

namespace {

std::vector<RoutedBackend> all_nodes(const Cluster& c) {
    std::vector<RoutedBackend> out;
    for (int i = 0; i < c.node_count(); ++i) out.emplace_back(i);
    return out;
}

}  // namespace

Routed::Routed(Cluster& c) : Routed(c, all_nodes(c)) {}

Routed::Routed(Cluster& c, const std::vector<RoutedBackend>& backends, const std::string& extra)
    : cluster(c), port(free_port()), monitor(free_port()) {
    std::string conf = "listen 127.0.0.1:" + std::to_string(port) +
                       "\nmonitor 127.0.0.1:" + std::to_string(monitor) +
                       (extra.find("workers ") == std::string::npos ? "\nworkers 2" : "") +
                       "\nauthdb " + authdb_file(c) + "\nhealth { username postgres; password \"" +
                       kSuperPassword + "\"; check 1s; lag-interval 100ms }\n" + extra;
    // PGROUTER_TEST_POOL="size 4": every router of the run pools (session mode), to run
    // tests written without a pool with one.
    const char* pool = std::getenv("PGROUTER_TEST_POOL");
    if (pool != nullptr && extra.find("pool {") == std::string::npos) {
        conf += "pool { " + std::string(pool) + " }\n";
    }
    for (const RoutedBackend& b : backends) {
        conf += "backend 127.0.0.1:" + std::to_string(c.port(b.node)) + " " + b.block + "\n";
    }
    router = std::make_unique<RouterProcess>(conf);
    // A router that exits at start (a configuration it refuses) fails the test at once, with
    // the end of its log, instead of after the whole connect deadline.
    REQUIRE(wait_until([&] { return !router->running() || can_connect(conninfo()); },
                       std::chrono::seconds(15)));
    if (!router->running()) {
        std::string log = router->log();
        FAIL("pgrouter exited at start: " << log.substr(log.size() > 2000 ? log.size() - 2000 : 0));
    }
    // Every configured backend has a verdict before the test starts.
    REQUIRE(
        wait_until([&] { return router->monitor(monitor).find("STARTING") == std::string::npos; },
                   std::chrono::seconds(15)));
}

std::string Routed::conninfo(const std::string& user, const std::string& db) const {
    return "host=127.0.0.1 port=" + std::to_string(port) + " user=" + user +
           " password=" + password_for(user) + " dbname=" + db + " sslmode=disable";
}

bool Routed::sees_master(int i) const {
    std::string line = "127.0.0.1:" + std::to_string(cluster.port(i)) + " master OK";
    try {
        return router->monitor(monitor).find(line) != std::string::npos;
    } catch (const std::exception&) {
        return false;
    }
}

void Routed::finish() {
    CHECK(router->stop() == 0);
    check_log_clean(*router);
}

}  // namespace pgrouter::test
