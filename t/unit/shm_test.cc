// Publishing configuration generations into the segment and reading snapshots back:
// stable slots across reloads, stale health after a slot changes hands, repair after a
// writer died mid-update, and the routing view that copies only what changed.
#include "pgrouter/os/shm.h"

#include <catch2/catch.hpp>

#include "pgrouter/os/seqlock.h"
#include "pgrouter/route/router.h"

using namespace pgrouter;

namespace {

Config config_with(std::initializer_list<std::pair<const char*, std::uint16_t>> backends) {
    Config c;
    for (auto [host, port] : backends) {
        BackendConfig b;
        b.host = host;
        b.port = port;
        b.weight = 100;
        c.backends.push_back(b);
    }
    return c;
}

void set_health(Segment& seg, int slot, BackendStatus status, BackendRole role) {
    BackendSlot& b = seg.backends[slot];
    seq_write_begin(b.health_seq);
    b.health.epoch = b.spec.epoch;
    b.health.status = status;
    b.health.role = role;
    seq_write_end(b.health_seq);
}

}  // namespace

TEST_CASE("publish and snapshot keep configuration order") {
    auto shm = SharedMemory::create();
    REQUIRE(shm);
    Segment& seg = shm->segment();
    Config c = config_with({{"10.0.0.1", 5432}, {"10.0.0.2", 5433}});
    c.backends[1].weight = 250;
    c.health.password = "sekrit";
    REQUIRE(publish_config(seg, c, 4));
    Snapshot snap;
    REQUIRE(take_snapshot(seg, snap));
    REQUIRE(snap.backends.size() == 2);
    CHECK(std::string(snap.backends[0].spec.host) == "10.0.0.1");
    CHECK(snap.backends[1].spec.port == 5433);
    CHECK(snap.backends[1].spec.weight == 250);
    CHECK(snap.settings.workers == 4);
    CHECK(std::string(snap.settings.health_password) == "sekrit");
    CHECK(snap.backends[0].health.status == BackendStatus::Starting);
}

TEST_CASE("a backend that stays keeps its slot and health across a reload") {
    auto shm = SharedMemory::create();
    REQUIRE(shm);
    Segment& seg = shm->segment();
    REQUIRE(publish_config(seg, config_with({{"a", 1}, {"b", 2}}), 1));
    Snapshot snap;
    REQUIRE(take_snapshot(seg, snap));
    int slot_b = snap.backends[1].slot;
    set_health(seg, slot_b, BackendStatus::Ok, BackendRole::Slave);
    set_health(seg, snap.backends[0].slot, BackendStatus::Ok, BackendRole::Master);

    // Remove a, add c in front: b keeps its slot and its health; c is not checked yet.
    REQUIRE(publish_config(seg, config_with({{"c", 3}, {"b", 2}}), 1));
    REQUIRE(take_snapshot(seg, snap));
    REQUIRE(snap.backends.size() == 2);
    CHECK(std::string(snap.backends[0].spec.host) == "c");
    CHECK(snap.backends[0].health.status == BackendStatus::Starting);
    CHECK(snap.backends[1].slot == slot_b);
    CHECK(snap.backends[1].health.status == BackendStatus::Ok);
}

TEST_CASE("the watcher's verdict reaches readers: find_master on a snapshot") {
    auto shm = SharedMemory::create();
    REQUIRE(shm);
    Segment& seg = shm->segment();
    REQUIRE(publish_config(seg, config_with({{"a", 1}, {"b", 2}}), 1));
    Snapshot snap;
    REQUIRE(take_snapshot(seg, snap));
    CHECK(find_master(snap.backends) == -1);  // no verdict yet

    set_health(seg, snap.backends[1].slot, BackendStatus::Ok, BackendRole::Master);
    set_health(seg, snap.backends[0].slot, BackendStatus::Ok, BackendRole::Slave);
    REQUIRE(take_snapshot(seg, snap));
    REQUIRE(find_master(snap.backends) == 1);
    CHECK(snap.backends[1].spec.port == 2);

    set_health(seg, snap.backends[1].slot, BackendStatus::Failed, BackendRole::Master);
    REQUIRE(take_snapshot(seg, snap));
    CHECK(find_master(snap.backends) == -1);
}

TEST_CASE("a health record left half-written by a dead watcher is repaired as unchecked") {
    auto shm = SharedMemory::create();
    REQUIRE(shm);
    Segment& seg = shm->segment();
    REQUIRE(publish_config(seg, config_with({{"a", 1}}), 1));
    set_health(seg, 0, BackendStatus::Ok, BackendRole::Master);
    seq_write_begin(seg.backends[0].health_seq);  // ... and the writer dies here
    BackendHealth h;
    CHECK_FALSE(seq_read(seg.backends[0].health_seq, seg.backends[0].health, h));
    repair_after_watcher_death(seg);
    Snapshot snap;
    REQUIRE(take_snapshot(seg, snap));
    CHECK(snap.backends[0].health.status == BackendStatus::Starting);
}

TEST_CASE("a dead worker's counters and cancel slots are cleared") {
    auto shm = SharedMemory::create();
    REQUIRE(shm);
    Segment& seg = shm->segment();
    seg.workers[2].clients = 7;
    seg.workers[2].connections = 9;
    seg.cancel[5].owner = 3;  // worker index 2
    seg.cancel[6].owner = 1;  // worker index 0
    reset_worker_slot(seg, 2);
    CHECK(seg.workers[2].clients == 0);
    CHECK(seg.workers[2].connections == 0);
    CHECK(seg.cancel[5].owner == 0);
    CHECK(seg.cancel[6].owner == 1);
}

TEST_CASE("the routing view holds no cold settings") {
    // A session's refresh copies these and the backend table, never paths or the password.
    STATIC_REQUIRE(sizeof(RoutingSettings) <= 256);
    STATIC_REQUIRE(sizeof(RoutingSettings) * 16 < sizeof(SharedSettings));
}

TEST_CASE("the routing view reads what a snapshot reads") {
    auto shm = SharedMemory::create();
    REQUIRE(shm);
    Segment& seg = shm->segment();
    Config c = config_with({{"a", 1}, {"b", 2}});
    c.backends[1].weight = 250;
    c.health.timeout = std::chrono::milliseconds(1234);
    REQUIRE(publish_config(seg, c, 1));
    RoutingView view;
    REQUIRE(refresh_routing_view(seg, view));
    REQUIRE(view.backends.size() == 2);
    CHECK(view.settings.health_timeout_ms == 1234);
    CHECK(std::string(view.backends[0].spec.host) == "a");
    CHECK(view.backends[1].spec.weight == 250);
    CHECK(find_master(view.backends) == -1);

    set_health(seg, view.backends[1].slot, BackendStatus::Ok, BackendRole::Master);
    REQUIRE(refresh_routing_view(seg, view));
    CHECK(find_master(view.backends) == 1);

    // A reload that moves b to the front: the view follows, b keeps its health.
    REQUIRE(publish_config(seg, config_with({{"b", 2}, {"c", 3}}), 1));
    REQUIRE(refresh_routing_view(seg, view));
    REQUIRE(view.backends.size() == 2);
    CHECK(std::string(view.backends[1].spec.host) == "c");
    CHECK(view.backends[1].health.status == BackendStatus::Starting);
    CHECK(find_master(view.backends) == 0);
}

TEST_CASE("the routing view copies only what a writer changed since its last refresh") {
    auto shm = SharedMemory::create();
    REQUIRE(shm);
    Segment& seg = shm->segment();
    REQUIRE(publish_config(seg, config_with({{"a", 1}, {"b", 2}}), 1));
    RoutingView view;
    REQUIRE(refresh_routing_view(seg, view));
    int slot_a = view.backends[0].slot;
    int slot_b = view.backends[1].slot;
    set_health(seg, slot_a, BackendStatus::Ok, BackendRole::Master);
    set_health(seg, slot_b, BackendStatus::Ok, BackendRole::Slave);
    REQUIRE(refresh_routing_view(seg, view));

    // Bytes changed behind the counters' back are not read: the counters did not move.
    seg.backends[slot_b].spec.weight = 7;
    seg.backends[slot_b].health.lag = 99;
    REQUIRE(refresh_routing_view(seg, view));
    CHECK(view.backends[1].spec.weight == 100);
    CHECK(view.backends[1].health.lag == 0);

    // A health write under b's counter is read, and only b's record.
    seg.backends[slot_a].health.lag = 55;  // not under a's counter: stays unread
    seq_write_begin(seg.backends[slot_b].health_seq);
    seg.backends[slot_b].health.lag = 42;
    seq_write_end(seg.backends[slot_b].health_seq);
    REQUIRE(refresh_routing_view(seg, view));
    CHECK(view.backends[1].health.lag == 42);
    CHECK(view.backends[0].health.lag == 0);
    CHECK(view.backends[1].spec.weight == 100);

    // A publish moves the settings counter: specs and every health record are read again.
    Config next = config_with({{"a", 1}, {"b", 2}});
    next.backends[1].weight = 300;
    REQUIRE(publish_config(seg, next, 1));
    REQUIRE(refresh_routing_view(seg, view));
    CHECK(view.backends[1].spec.weight == 300);
    CHECK(view.backends[0].health.lag == 55);
    CHECK(view.backends[0].health.status == BackendStatus::Ok);
}

TEST_CASE("a routing view refresh fails, and keeps the view, while the supervisor is mid-update") {
    auto shm = SharedMemory::create();
    REQUIRE(shm);
    Segment& seg = shm->segment();
    REQUIRE(publish_config(seg, config_with({{"a", 1}}), 1));
    RoutingView view;
    REQUIRE(refresh_routing_view(seg, view));
    seq_write_begin(seg.settings_seq);
    CHECK_FALSE(refresh_routing_view(seg, view));
    CHECK(view.backends.size() == 1);
    seq_write_end(seg.settings_seq);
    CHECK(refresh_routing_view(seg, view));
}
