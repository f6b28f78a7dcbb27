// A pgrouter process in front of some nodes of a test cluster, ready for clients: an authdb
// exported from the cluster, fast health settings, every backend checked before the test
// goes on. Shared by the routing, session-state and driver tests. With PGROUTER_TEST_POOL set
// (e.g. "size 4", or "mode transaction; size 2" as t/txpool-suites sets it) every one of them
// pools server connections: `pool { $PGROUTER_TEST_POOL }`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cluster.h"
#include "router_process.h"

namespace pgrouter::test {

// One backend line: a node of the cluster and its optional block ("{ weight 300 }").
struct RoutedBackend {
    RoutedBackend(int n, std::string b = "") : node(n), block(std::move(b)) {}
    int node;
    std::string block;
};

struct Routed {
    // Every node of `c`.
    explicit Routed(Cluster& c);
    // The given nodes; `extra` is added to the configuration before the backend lines (a
    // `workers` line there replaces the default of 2).
    Routed(Cluster& c, const std::vector<RoutedBackend>& backends, const std::string& extra = "");

    std::string conninfo(const std::string& user = kTestUser,
                         const std::string& db = kTestDb) const;
    // Is node `i` the master, OK, in the monitor's view?
    bool sees_master(int i) const;
    // Stops the router (exit 0 expected) and checks its log.
    void finish();

    Cluster& cluster;
    int port;
    int monitor;
    std::unique_ptr<RouterProcess> router;
};

}  // namespace pgrouter::test
