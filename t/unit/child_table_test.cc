// Respawn back-off: immediate first, then doubling from 100 ms, capped at 5 s.
#include "pgrouter/os/child_table.h"

#include <catch2/catch.hpp>

using namespace pgrouter;
using std::chrono::milliseconds;

TEST_CASE("restart delay backs off exponentially up to 5 s") {
    CHECK(restart_delay(0) == milliseconds(0));
    CHECK(restart_delay(1) == milliseconds(0));
    CHECK(restart_delay(2) == milliseconds(100));
    CHECK(restart_delay(3) == milliseconds(200));
    CHECK(restart_delay(4) == milliseconds(400));
    CHECK(restart_delay(7) == milliseconds(3200));
    CHECK(restart_delay(8) == milliseconds(5000));
    CHECK(restart_delay(1000) == milliseconds(5000));
}

TEST_CASE("children are named as ps shows them") {
    CHECK(Child{ChildKind::Worker, 3}.name() == "worker 3");
    CHECK(Child{ChildKind::Watcher, 0}.name() == "watcher");
    CHECK(Child{ChildKind::Monitor, 0}.name() == "monitor");
}
