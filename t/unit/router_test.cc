// Unit tests of the routing policy: weighted standby choice (statistically, with a fixed
// seed), eligibility (status, role, fencing, weight 0, lag threshold), the master
// fallbacks and the no-master errors, transaction blocks, pins, and read-your-writes windows.
#include "pgrouter/route/router.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <vector>

using namespace pgrouter;

namespace {

BackendView backend(int slot, BackendRole role, std::uint32_t weight = 100) {
    BackendView b;
    b.slot = slot;
    b.spec.active = true;
    b.spec.epoch = 1;
    b.spec.port = static_cast<std::uint16_t>(5432 + slot);
    b.spec.weight = weight;
    b.spec.lag_threshold = 1024;
    b.health.epoch = 1;
    b.health.status = BackendStatus::Ok;
    b.health.role = role;
    b.health.lsn = 1000;
    b.health.sampled_at_ns = 1;
    return b;
}

// The usual cluster: slot 0 master, slots 1 and 2 standbys.
std::vector<BackendView> cluster(std::uint32_t w1 = 100, std::uint32_t w2 = 100) {
    return {backend(0, BackendRole::Master), backend(1, BackendRole::Slave, w1),
            backend(2, BackendRole::Slave, w2)};
}

Classification unit(StatementKind kind) {
    Classification c;
    c.kind = kind;
    c.statements = 1;
    return c;
}

const Classification kRead = unit(StatementKind::Read);
const Classification kWrite = unit(StatementKind::Write);

// Counts, per slot, where `n` reads go with draws from a fixed-seed generator.
std::vector<int> spread(const Classification& u, const RouteSession& s,
                        const std::vector<BackendView>& backends, int n = 100000) {
    std::mt19937_64 rng(42);
    std::vector<int> counts(8, 0);
    for (int i = 0; i < n; ++i) {
        RouteDecision d = route(u, s, backends, rng());
        REQUIRE(d.ok());
        ++counts.at(static_cast<std::size_t>(d.slot));
    }
    return counts;
}

int slot_of(const Classification& u, const RouteSession& s,
            const std::vector<BackendView>& backends, std::uint64_t draw = 0) {
    RouteDecision d = route(u, s, backends, draw);
    return d.ok() ? d.slot : -100;
}

}  // namespace

TEST_CASE("router: reads spread over standbys by weight", "[router]") {
    RouteSession s;
    std::vector<int> c = spread(kRead, s, cluster(100, 300));
    CHECK(c[0] == 0);
    CHECK(c[1] == Approx(25000).margin(1000));
    CHECK(c[2] == Approx(75000).margin(1000));

    c = spread(kRead, s, cluster(1, 1));
    CHECK(c[1] == Approx(50000).margin(1000));
    CHECK(c[2] == Approx(50000).margin(1000));

    // Three standbys, unequal weights.
    std::vector<BackendView> b = cluster(10, 20);
    b.push_back(backend(3, BackendRole::Slave, 70));
    c = spread(kRead, s, b);
    CHECK(c[1] == Approx(10000).margin(800));
    CHECK(c[2] == Approx(20000).margin(800));
    CHECK(c[3] == Approx(70000).margin(800));
}

TEST_CASE("router: the draw maps onto the weights end to end", "[router]") {
    RouteSession s;
    std::vector<BackendView> b = cluster(100, 300);
    CHECK(slot_of(kRead, s, b, 0) == 1);
    CHECK(slot_of(kRead, s, b, std::numeric_limits<std::uint64_t>::max()) == 2);
    CHECK(slot_of(kRead, s, b, (std::uint64_t{1} << 62) - 1) == 1);  // just under 1/4
    CHECK(slot_of(kRead, s, b, std::uint64_t{1} << 62) == 2);
}

TEST_CASE("router: which standbys may serve reads", "[router]") {
    RouteSession s;
    std::vector<BackendView> b = cluster();

    SECTION("weight 0 never gets reads") {
        b[1].spec.weight = 0;
        std::vector<int> c = spread(kRead, s, b, 2000);
        CHECK(c[1] == 0);
        CHECK(c[2] == 2000);
        b[2].spec.weight = 0;
        CHECK(slot_of(kRead, s, b) == 0);
    }
    SECTION("lag above the threshold excludes, equal to it does not") {
        b[1].health.lag = 1025;
        b[2].health.lag = 1024;
        CHECK(spread(kRead, s, b, 2000)[2] == 2000);
        b[2].health.lag = 5000;
        RouteDecision d = route(kRead, s, b, 7);
        CHECK(d.slot == 0);
        CHECK(d.reason == "read: no eligible standby, master");
    }
    SECTION("a zero threshold means fully caught up") {
        b[1].spec.lag_threshold = 0;
        b[2].spec.lag_threshold = 0;
        b[1].health.lag = 1;
        CHECK(spread(kRead, s, b, 2000)[2] == 2000);
    }
    SECTION("fenced, failed, starting and unknown-role backends are skipped") {
        b[1].health.fenced = true;
        b[2].health.status = BackendStatus::Failed;
        CHECK(slot_of(kRead, s, b) == 0);
        b[2].health.status = BackendStatus::Starting;
        CHECK(slot_of(kRead, s, b) == 0);
        b[2].health.status = BackendStatus::Ok;
        b[2].health.role = BackendRole::Unknown;
        CHECK(slot_of(kRead, s, b) == 0);
        b[2].health.role = BackendRole::Slave;
        CHECK(slot_of(kRead, s, b) == 2);
    }
    SECTION("no standby at all: the master") {
        b.resize(1);
        RouteDecision d = route(kRead, s, b, 3);
        CHECK(d.ok());
        CHECK(d.index == 0);
        CHECK(d.slot == 0);
    }
}

TEST_CASE("router: writes go to the master", "[router]") {
    RouteSession s;
    std::vector<BackendView> b = cluster();
    std::mt19937_64 rng(1);
    for (int i = 0; i < 1000; ++i) REQUIRE(slot_of(kWrite, s, b, rng()) == 0);
    RouteDecision d = route(kWrite, s, b, 0);
    CHECK(d.reason == "write");
    CHECK(d.epoch == 1);

    // The master's position in the snapshot does not matter.
    std::vector<BackendView> reordered = {b[1], b[2], b[0]};
    d = route(kWrite, s, reordered, 0);
    CHECK(d.index == 2);
    CHECK(d.slot == 0);
}

TEST_CASE("router: no master", "[router]") {
    RouteSession s;
    std::vector<BackendView> b = cluster();
    b[0].health.status = BackendStatus::Failed;

    RouteDecision d = route(kWrite, s, b, 0);
    CHECK(!d.ok());
    CHECK(d.sqlstate == "25006");
    CHECK(d.message == "no master backend is available right now");
    CHECK(!d.detail.empty());
    CHECK(!d.fatal);
    CHECK(d.index == -1);

    Classification begin = unit(StatementKind::TransactionBegin);
    CHECK(route(begin, s, b, 0).sqlstate == "25006");
    begin.read_only = true;
    CHECK(slot_of(begin, s, b, 0) == 1);

    // Reads keep working, spread as usual.
    std::vector<int> c = spread(kRead, s, b, 10000);
    CHECK(c[1] == Approx(5000).margin(300));
    CHECK(c[2] == Approx(5000).margin(300));

    SECTION("a lagging standby beats nothing for reads") {
        b[1].health.lag = 1 << 30;
        b[2].health.fenced = true;
        d = route(kRead, s, b, 0);
        CHECK(d.slot == 1);
        CHECK(d.reason == "read: no master, lagging standby");
    }
    SECTION("nothing up at all") {
        b[1].health.status = BackendStatus::Failed;
        b[2].health.status = BackendStatus::Failed;
        d = route(kRead, s, b, 0);
        CHECK(d.sqlstate == "08006");
        CHECK(d.message == "no backend is available right now");
        CHECK(route(kWrite, s, b, 0).sqlstate == "25006");
    }
    SECTION("a fenced master is no master") {
        b[0].health.status = BackendStatus::Ok;
        b[0].health.fenced = true;
        CHECK(route(kWrite, s, b, 0).sqlstate == "25006");
        CHECK(find_master(b) == -1);
    }
    SECTION("an empty snapshot") {
        std::vector<BackendView> none;
        CHECK(route(kRead, s, none, 0).sqlstate == "08006");
        CHECK(route(kWrite, s, none, 0).sqlstate == "25006");
    }
}

TEST_CASE("router: transaction blocks", "[router]") {
    std::vector<BackendView> b = cluster();
    Classification begin = unit(StatementKind::TransactionBegin);
    RouteSession s;

    SECTION("BEGIN opens on the master, READ ONLY on a standby") {
        CHECK(slot_of(begin, s, b) == 0);
        begin.read_only = true;
        std::vector<int> c = spread(begin, s, b, 4000);
        CHECK(c[0] == 0);
        CHECK(c[1] + c[2] == 4000);
    }
    SECTION("default_transaction_read_only lets BEGIN start on a standby") {
        s.read_only_default = true;
        CHECK(slot_of(begin, s, b) != 0);
        begin.read_write = true;  // BEGIN READ WRITE overrides the default
        CHECK(slot_of(begin, s, b) == 0);
        CHECK(slot_of(kWrite, s, b) == 0);
    }
    SECTION("inside a block everything goes to the block's backend") {
        s.block_slot = 2;
        for (StatementKind k : {StatementKind::Read, StatementKind::Write,
                                StatementKind::TransactionEnd, StatementKind::Session}) {
            RouteDecision d = route(unit(k), s, b, 12345);
            CHECK(d.ok());
            CHECK(d.slot == 2);
            CHECK(d.index == 2);
            CHECK(d.reason == "inside a transaction block");
        }
        Classification pins = kRead;
        pins.pins = kPinListen;
        CHECK(slot_of(pins, s, b) == 2);
        // Even when the watcher has lost it: the session's connection decides.
        b[2].health.status = BackendStatus::Failed;
        b[2].health.fenced = true;
        CHECK(slot_of(kRead, s, b) == 2);
        // A reload removed it from the configuration: no index, the same slot.
        b.pop_back();
        RouteDecision d = route(kRead, s, b, 0);
        CHECK(d.ok());
        CHECK(d.index == -1);
        CHECK(d.slot == 2);
    }
    SECTION("statements that are harmless outside a block may use a standby") {
        for (StatementKind k : {StatementKind::TransactionEnd, StatementKind::Session,
                                StatementKind::SetTransactionReadOnly}) {
            CHECK(slot_of(unit(k), s, b) != 0);
        }
    }
}

TEST_CASE("router: pins", "[router]") {
    std::vector<BackendView> b = cluster();
    RouteSession s;
    Classification pinning = kRead;  // SELECT currval('s')
    pinning.pins = kPinSequence;

    RouteDecision d = route(pinning, s, b, 99);
    CHECK(d.slot == 0);
    CHECK(d.epoch == 1);
    CHECK(d.reason == "unit pins the session to the master");

    s.pinned_slot = d.slot;
    s.pinned_epoch = d.epoch;
    std::mt19937_64 rng(5);
    for (int i = 0; i < 1000; ++i) REQUIRE(slot_of(kRead, s, b, rng()) == 0);
    Classification begin_ro = unit(StatementKind::TransactionBegin);
    begin_ro.read_only = true;
    CHECK(slot_of(begin_ro, s, b) == 0);

    SECTION("master down: refused, not fatal") {
        b[0].health.status = BackendStatus::Failed;
        d = route(kRead, s, b, 0);
        CHECK(d.sqlstate == "25006");
        CHECK(!d.fatal);
        CHECK(route(pinning, RouteSession{}, b, 0).sqlstate == "25006");
    }
    SECTION("another master: the session state is lost") {
        b[0].health.role = BackendRole::Slave;
        b[1].health.role = BackendRole::Master;
        d = route(kRead, s, b, 0);
        CHECK(d.sqlstate == "57P01");
        CHECK(d.fatal);
        CHECK(d.message ==
              "terminating connection because its session state was lost with the old master");
        // An unpinned session simply follows the new master.
        CHECK(slot_of(kWrite, RouteSession{}, b) == 1);
    }
    SECTION("the slot given to another server is another master") {
        b[0].spec.epoch = 2;
        CHECK(route(kRead, s, b, 0).sqlstate == "57P01");
    }
}

TEST_CASE("router: questions about the server itself go to the master", "[router]") {
    std::vector<BackendView> b = cluster();
    RouteSession s;
    Classification facts = kRead;  // SELECT pg_is_in_recovery()
    facts.server_local = "recovery and WAL";

    std::mt19937_64 rng(11);
    for (int i = 0; i < 1000; ++i) REQUIRE(slot_of(facts, s, b, rng()) == 0);
    RouteDecision d = route(facts, s, b, 0);
    CHECK(d.reason == "server_local: the master answers");
    CHECK(d.epoch == 1);
    // Not a pin: the next plain read is free to use a standby.
    CHECK(slot_of(kRead, s, b, 0) != 0);
    // Whatever the read-your-writes state: the master has every write.
    s.ryw.commit_at_ns = 1000;
    CHECK(slot_of(facts, s, b, 0) == 0);
    s.ryw = {};
    // A write stays a write.
    Classification write = kWrite;
    write.server_local = "transaction ids";
    CHECK(route(write, s, b, 0).reason == "write");

    SECTION("inside a block: the block's backend answers") {
        s.block_slot = 1;
        CHECK(slot_of(facts, s, b) == 1);
    }
    SECTION("no master: a standby answers rather than nobody") {
        b[0].health.status = BackendStatus::Failed;
        d = route(facts, s, b, 0);
        CHECK(d.ok());
        CHECK(d.slot != 0);
        CHECK(d.reason == "read: weighted standby");
    }
    SECTION("a pinned session: the master, as for every unit") {
        s.pinned_slot = 0;
        s.pinned_epoch = 1;
        CHECK(route(facts, s, b, 0).reason == "session pinned to the master");
    }
}

TEST_CASE("router: a SET runs on the master first, then anywhere", "[router]") {
    std::vector<BackendView> b = cluster();
    RouteSession s;
    Classification set = kRead;  // SET ROLE r / SELECT set_config('role', 'r', false)
    set.kind = StatementKind::Session;
    set.set = true;
    std::mt19937_64 rng(5);
    for (int i = 0; i < 200; ++i) REQUIRE(slot_of(set, s, b, rng()) == 0);
    CHECK(route(set, s, b, 0).reason == "SET: the master first");
    // SET LOCAL and SET TRANSACTION are not replayed: where the unit would go anyway.
    Classification local = set;
    local.set = false;
    local.set_local = true;
    CHECK(slot_of(local, s, b, 0) != 0);
    SECTION("inside a block: the block's backend") {
        s.block_slot = 2;
        CHECK(slot_of(set, s, b) == 2);
    }
    SECTION("no master: a standby takes it rather than nobody") {
        b[0].health.status = BackendStatus::Failed;
        RouteDecision d = route(set, s, b, 0);
        CHECK(d.ok());
        CHECK(d.slot != 0);
    }
}

TEST_CASE("router: find_master", "[router]") {
    std::vector<BackendView> b = cluster();
    CHECK(find_master(b) == 0);
    std::vector<BackendView> split = {backend(0, BackendRole::Master),
                                      backend(1, BackendRole::Master)};
    split[0].health.fenced = true;  // the split-brain loser
    CHECK(find_master(split) == 1);
    b[0].health.role = BackendRole::Slave;
    CHECK(find_master(b) == -1);
}

TEST_CASE("router: read-your-writes windows", "[router]") {
    std::vector<BackendView> b = cluster();
    b[0].health.lsn = 5000;  // master position
    b[0].health.sampled_at_ns = 900;
    b[1].health.lsn = 4000;  // standby replay positions, both within the lag threshold
    b[2].health.lsn = 4500;
    RouteSession s;
    note_commit(s.ryw, 1000);
    CHECK(s.ryw.commit_at_ns == 1000);

    SECTION("before a master sample taken after the commit: the master") {
        b[1].health.lsn = 999999;  // even a standby far ahead does not know it has the commit
        CHECK(settle_read_your_writes(s.ryw, b).commit_at_ns == 1000);
        CHECK(!fresh_enough(s.ryw, b[1]));
        RouteDecision d = route(kRead, s, b, 0);
        CHECK(d.slot == 0);
        CHECK(d.reason == "read: own write not yet sampled, master");
        // Other sessions are not affected.
        CHECK(slot_of(kRead, RouteSession{}, b) != 0);
    }
    SECTION("sampled, standbys behind: the master") {
        b[0].health.sampled_at_ns = 1100;
        ReadYourWrites settled = settle_read_your_writes(s.ryw, b);
        CHECK(settled.commit_at_ns == 0);
        CHECK(settled.min_lsn == 5000);
        CHECK(slot_of(kRead, s, b) == 0);
        s.ryw = settled;
        CHECK(slot_of(kRead, s, b) == 0);
    }
    SECTION("sampled, one standby caught up: only that one") {
        b[0].health.sampled_at_ns = 1000;  // a sample started at T counts
        b[2].health.lsn = 5000;
        std::vector<int> c = spread(kRead, s, b, 5000);
        CHECK(c[2] == 5000);
    }
    SECTION("all caught up: spread again") {
        b[0].health.sampled_at_ns = 1100;
        b[1].health.lsn = 5000;
        b[2].health.lsn = 6000;
        std::vector<int> c = spread(kRead, s, b, 10000);
        CHECK(c[1] == Approx(5000).margin(300));
        CHECK(c[2] == Approx(5000).margin(300));
    }
    SECTION("a settled requirement is not raised by later master samples") {
        b[0].health.sampled_at_ns = 1100;
        s.ryw = settle_read_your_writes(s.ryw, b);
        b[0].health.lsn = 9000;
        b[0].health.sampled_at_ns = 5000;
        b[2].health.lsn = 5000;
        CHECK(settle_read_your_writes(s.ryw, b).min_lsn == 5000);
        CHECK(slot_of(kRead, s, b) == 2);
        // A new commit makes the session wait for a sample after it, then for 9000.
        note_commit(s.ryw, 6000);
        CHECK(slot_of(kRead, s, b) == 0);
        b[0].health.sampled_at_ns = 6100;
        s.ryw = settle_read_your_writes(s.ryw, b);
        CHECK(s.ryw.min_lsn == 9000);
        CHECK(slot_of(kRead, s, b) == 0);
        b[1].health.lsn = 9000;
        CHECK(slot_of(kRead, s, b) == 1);
    }
    SECTION("no master: a pending commit cannot be served by any standby") {
        b[0].health.status = BackendStatus::Failed;
        b[1].health.lsn = 999999;
        CHECK(route(kRead, s, b, 0).sqlstate == "08006");
        // A settled requirement still lets caught-up standbys serve.
        s.ryw = ReadYourWrites{0, 5000};
        b[2].health.lag = 1 << 30;  // lagging by the watcher's old reference, but past 5000
        b[2].health.lsn = 5000;
        CHECK(slot_of(kRead, s, b) == 1);
        b[1].health.status = BackendStatus::Failed;
        CHECK(slot_of(kRead, s, b) == 2);
        b[2].health.lsn = 4999;
        CHECK(route(kRead, s, b, 0).sqlstate == "08006");
    }
    SECTION("read-only transactions obey it too") {
        Classification begin_ro = unit(StatementKind::TransactionBegin);
        begin_ro.read_only = true;
        CHECK(slot_of(begin_ro, s, b) == 0);
    }
    SECTION("no requirement: every standby is fresh enough") {
        ReadYourWrites none;
        BackendView fresh = backend(5, BackendRole::Slave);
        fresh.health.lsn = 0;
        CHECK(fresh_enough(none, fresh));
        CHECK(settle_read_your_writes(none, b).min_lsn == 0);
    }
}

TEST_CASE("router: consistency controls and time lag", "[router][route_controls]") {
    std::vector<BackendView> b = cluster();
    b[0].health.lsn = 5000;
    b[1].health.lsn = 4000;  // 1000 behind
    b[1].health.lag = 1000;
    b[1].health.lag_ns = 800'000'000;
    b[2].health.lsn = 5000;  // caught up
    RouteSession s;
    struct Case {
        const char* what;
        RouteControls controls;
        std::vector<int> allowed;  // slots reads may land on
    };
    RouteControls primary;
    primary.primary = true;
    RouteControls token_4000, token_4500, token_9000;
    token_4000.min_lsn = 4000;
    token_4500.min_lsn = 4500;
    token_9000.min_lsn = 9000;
    RouteControls bytes_512, bytes_2k, time_500ms, time_1s, zero;
    bytes_512.staleness.bytes = 512;
    bytes_2k.staleness.bytes = 2048;
    time_500ms.staleness.ns = 500'000'000;
    time_1s.staleness.ns = 1'000'000'000;
    zero.staleness = {0, 0};
    const std::vector<Case> cases = {
        {"no controls", {}, {1, 2}},
        {"route primary", primary, {0}},
        {"min_lsn both have", token_4000, {1, 2}},
        {"min_lsn one has", token_4500, {2}},
        {"min_lsn none has", token_9000, {0}},
        {"512 bytes", bytes_512, {2}},
        {"2 kB", bytes_2k, {1, 2}},
        {"500 ms", time_500ms, {2}},
        {"1 s", time_1s, {1, 2}},
        {"zero", zero, {2}},
    };
    std::mt19937_64 rng(7);
    for (const Case& c : cases) {
        INFO(c.what);
        s.controls = c.controls;
        std::set<int> seen;
        for (int i = 0; i < 2000; ++i) {
            RouteDecision d = route(kRead, s, b, rng());
            REQUIRE(d.ok());
            seen.insert(d.slot);
        }
        CHECK(seen == std::set<int>(c.allowed.begin(), c.allowed.end()));
    }
    s.controls = {};

    SECTION("a statement's hint: primary, or its own max_staleness") {
        Classification hinted = kRead;
        hinted.hint.primary = true;
        CHECK(slot_of(hinted, s, b) == 0);
        Classification bounded = kRead;
        bounded.hint.staleness.bytes = 10;
        for (int i = 0; i < 50; ++i)
            CHECK(slot_of(bounded, s, b, static_cast<std::uint64_t>(i) << 58) == 2);
        // The hint replaces a tighter session bound for its statement.
        s.controls.staleness = {0, 0};
        b[2].health.lag_ns = 1;
        CHECK(slot_of(kRead, s, b) == 0);
        Classification loose = kRead;
        loose.hint.staleness.ns = 1'000'000'000;
        CHECK(slot_of(loose, s, b) != 0);
    }
    SECTION("route primary with no master: 25006, even for a read") {
        s.controls.primary = true;
        b[0].health.status = BackendStatus::Failed;
        RouteDecision d = route(kRead, s, b, 0);
        CHECK(d.sqlstate == "25006");
    }
    SECTION("no master: configured bounds give way, the session's do not") {
        b[0].health.status = BackendStatus::Failed;
        b[2].health.lag = 5000;  // both over the 1024 threshold
        b[1].health.lag = 5000;
        CHECK(route(kRead, s, b, 0).ok());  // stale beats down
        s.controls.min_lsn = 4500;          // but not a causal token
        CHECK(slot_of(kRead, s, b) == 2);
        s.controls.min_lsn = 9000;
        CHECK(route(kRead, s, b, 0).sqlstate == "08006");
    }
    SECTION("the staleness directive: a time bound per backend") {
        b[1].spec.staleness_ns = 500'000'000;
        for (int i = 0; i < 50; ++i)
            CHECK(slot_of(kRead, s, b, static_cast<std::uint64_t>(i) << 58) == 2);
        b[1].health.lag_ns = 0;  // caught up in time (an idle master)
        std::vector<int> c = spread(kRead, s, b, 2000);
        CHECK(c[1] > 0);
    }
    SECTION("commit_lsn: the master's record end in the sample after the commit") {
        note_commit(s.ryw, 100);
        b[0].health.sampled_at_ns = 50;
        CHECK(settle_read_your_writes(s.ryw, b).commit_lsn == 0);
        b[0].health.sampled_at_ns = 150;
        b[0].health.lsn = 0x4000028;  // an idle master on a segment start
        ReadYourWrites r = settle_read_your_writes(s.ryw, b);
        CHECK(r.commit_at_ns == 0);
        CHECK(r.commit_lsn == 0x4000000);
        CHECK(r.min_lsn == 0x4000000);
        b[2].health.lsn = 0x4000000;  // a standby there serves the session
        b[1].health.lsn = 0x3000000;
        s.ryw = r;
        CHECK(slot_of(kRead, s, b) == 2);
    }
}
