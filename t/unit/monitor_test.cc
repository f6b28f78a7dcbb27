// The monitor dump is the spec's format, byte for byte.
#include "pgrouter/monitor/monitor.h"

#include <catch2/catch.hpp>
#include <cstring>

using namespace pgrouter;

namespace {

BackendView view(const char* host, std::uint16_t port, BackendRole role, BackendStatus status,
                 std::uint64_t lag) {
    BackendView v;
    std::strncpy(v.spec.host, host, sizeof v.spec.host - 1);
    v.spec.port = port;
    v.health.role = role;
    v.health.status = status;
    v.health.lag = lag;
    return v;
}

}  // namespace

TEST_CASE("monitor dump matches the spec's example") {
    Snapshot snap;
    snap.backends = {
        view("10.0.0.3", 6432, BackendRole::Master, BackendStatus::Ok, 0),
        view("10.0.0.1", 6432, BackendRole::Slave, BackendStatus::Ok, 200),
        view("10.0.0.2", 6432, BackendRole::Slave, BackendStatus::Ok, 208),
        view("10.0.0.4", 6432, BackendRole::Slave, BackendStatus::Failed, 999),
        view("10.0.0.5", 6432, BackendRole::Unknown, BackendStatus::Starting, 0),
    };
    MonitorTotals totals{64, 32, 28};
    CHECK(format_monitor(snap, totals) ==
          "backends 3/5\n"
          "workers 64\n"
          "clients 32\n"
          "connections 28\n"
          "10.0.0.3:6432 master OK 0\n"
          "10.0.0.1:6432 slave OK 200\n"
          "10.0.0.2:6432 slave OK 208\n"
          "10.0.0.4:6432 slave FAILED\n"
          "10.0.0.5:6432 slave STARTING\n");
}

TEST_CASE("monitor dump with no backends and IPv6 addresses") {
    Snapshot snap;
    CHECK(format_monitor(snap, MonitorTotals{}) ==
          "backends 0/0\nworkers 0\nclients 0\nconnections 0\n");
    snap.backends = {view("::1", 5432, BackendRole::Master, BackendStatus::Ok, 0)};
    CHECK(format_monitor(snap, MonitorTotals{1, 0, 0}).find("[::1]:5432 master OK 0\n") !=
          std::string::npos);
}
