// The watcher's pure parts: LSN text, lag arithmetic, the status/role state machine, split
// brain, foreign servers, what gets logged (once), and the probes' parsing and conninfo.
#include "pgrouter/health/health.h"

#include <catch2/catch.hpp>

#include "pgrouter/health/health_probe.h"
#include "pgrouter/health/replstatus.h"

using namespace pgrouter;

namespace {

constexpr std::uint64_t kCluster = 7711066887911821629ULL;
constexpr std::uint64_t kOther = 7711066887911829999ULL;
constexpr std::int64_t kSecond = 1'000'000'000;

HealthSample master_at(std::uint64_t lsn, std::uint32_t timeline = 1, std::uint64_t id = kCluster) {
    HealthSample s;
    s.in_recovery = false;
    s.lsn = lsn;
    s.timeline = timeline;
    s.system_identifier = id;
    return s;
}

HealthSample standby_at(std::uint64_t replay, std::uint64_t receive, std::uint32_t timeline = 1,
                        std::uint64_t id = kCluster) {
    HealthSample s;
    s.in_recovery = true;
    s.lsn = replay;
    s.receive_lsn = receive;
    s.streaming = true;
    s.timeline = timeline;
    s.system_identifier = id;
    return s;
}

// A model with backends 0..n-1 named "b0".."bN", slots equal to their configuration order.
HealthModel model_of(int n) {
    HealthModel m;
    for (int i = 0; i < n; ++i) m.track(i, "b" + std::to_string(i), 1, i);
    return m;
}

// b0 the master at 5000, b1 and b2 standbys that replayed it all, evaluated at time 1.
HealthModel master_and_two_standbys() {
    HealthModel m = model_of(3);
    m.record_sample(0, master_at(5000), 1, true);
    m.record_sample(1, standby_at(5000, 5000), 1, true);
    m.record_sample(2, standby_at(5000, 5000), 1, true);
    m.evaluate(1, kSecond);
    return m;
}

BackendStatus status(const HealthModel& m, int key) { return m.health(key)->status; }
BackendRole role(const HealthModel& m, int key) { return m.health(key)->role; }

bool logged(const std::vector<HealthLogLine>& lines, const std::string& text) {
    for (const HealthLogLine& l : lines) {
        if (l.text.find(text) != std::string::npos) return true;
    }
    return false;
}

}  // namespace

TEST_CASE("lsn: text form to 64 bits and back") {
    CHECK(parse_lsn("16/B374D848") == 0x16B374D848ULL);
    CHECK(parse_lsn("0/0") == 0u);
    CHECK(parse_lsn("0/3000108") == 0x3000108u);
    CHECK(wal_record_end(0x4000028u) == 0x4000000u);  // segment start: long header
    CHECK(wal_record_end(0x4002018u) == 0x4002000u);  // page start: short header
    CHECK(wal_record_end(0x4002000u) == 0x4002000u);
    CHECK(wal_record_end(0x3000108u) == 0x3000108u);
    CHECK(parse_lsn("FFFFFFFF/FFFFFFFF") == 0xFFFFFFFFFFFFFFFFULL);
    CHECK(parse_lsn("a/b") == 0xA0000000BULL);
    for (const char* bad : {"", "/", "16/", "/B3", "16B374D848", "1/2/3", "G/0", "123456789/0",
                            " 1/2", "1/2 ", "-1/2"}) {
        INFO(bad);
        CHECK_FALSE(parse_lsn(bad));
    }
    CHECK(format_lsn(0x16B374D848ULL) == "16/B374D848");
    CHECK(format_lsn(0) == "0/0");
}

TEST_CASE("lag: master position minus replay position, never negative") {
    CHECK(standby_lag(1000, 400) == 600);
    CHECK(standby_lag(1000, 1000) == 0);
    CHECK(standby_lag(400, 1000) == 0);  // the standby was sampled after the master
    CHECK(standby_lag(0x100000000ULL, 0xFFFFFFFFULL) == 1);
}

TEST_CASE("state: STARTING until the first check, then OK or FAILED; role kept while FAILED") {
    HealthModel m = model_of(1);
    m.evaluate(0, kSecond);
    CHECK(status(m, 0) == BackendStatus::Starting);
    CHECK(role(m, 0) == BackendRole::Unknown);

    m.record_sample(0, standby_at(100, 100), 10, true);
    auto lines = m.evaluate(10, kSecond);
    CHECK(status(m, 0) == BackendStatus::Ok);
    CHECK(role(m, 0) == BackendRole::Slave);
    CHECK(m.health(0)->sampled_at_ns == 10);
    CHECK(m.health(0)->checked_at_ns == 10);
    CHECK(logged(lines, "backend b0 is now OK (slave)"));

    m.record_failure(0, "connection refused", 20);
    lines = m.evaluate(20, kSecond);
    CHECK(status(m, 0) == BackendStatus::Failed);
    CHECK(role(m, 0) == BackendRole::Slave);
    CHECK(logged(lines, "backend b0 is now FAILED: connection refused"));

    m.record_sample(0, standby_at(200, 200), 30, true);
    m.evaluate(30, kSecond);
    CHECK(status(m, 0) == BackendStatus::Ok);

    // A lag sample updates the figures but not the time of the last full check.
    m.record_sample(0, standby_at(300, 300), 40, false);
    m.evaluate(40, kSecond);
    CHECK(m.health(0)->sampled_at_ns == 40);
    CHECK(m.health(0)->checked_at_ns == 30);
    CHECK(m.health(0)->system_identifier == kCluster);  // kept from the full check
}

TEST_CASE("state: a failure before any success is FAILED with an unknown role") {
    HealthModel m = model_of(1);
    m.record_failure(0, "timeout: no answer", 5);
    auto lines = m.evaluate(5, kSecond);
    CHECK(status(m, 0) == BackendStatus::Failed);
    CHECK(role(m, 0) == BackendRole::Unknown);
    CHECK(logged(lines, "backend b0 is now FAILED: timeout: no answer"));
}

TEST_CASE("state: each change is logged once, not on every check") {
    HealthModel m = model_of(2);
    m.record_sample(0, master_at(100), 1, true);
    m.record_sample(1, standby_at(100, 100), 1, true);
    auto first = m.evaluate(1, kSecond);
    CHECK(logged(first, "backend b0 is now OK (master)"));
    CHECK(logged(first, "backend b1 is now OK (slave)"));
    for (int i = 2; i < 10; ++i) {
        m.record_sample(0, master_at(100 + i), i * kSecond, true);
        m.record_sample(1, standby_at(100 + i, 100 + i), i * kSecond, true);
        CHECK(m.evaluate(i * kSecond, kSecond).empty());
    }
    for (int i = 10; i < 15; ++i) {
        m.record_failure(1, "password authentication failed for user \"x\"", i * kSecond);
        auto lines = m.evaluate(i * kSecond, kSecond);
        CHECK(lines.size() == (i == 10 ? 1u : 0u));
    }
    // A different reason while still FAILED is worth one line.
    m.record_failure(1, "connection refused", 20 * kSecond);
    auto lines = m.evaluate(20 * kSecond, kSecond);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].text == "backend b1 is still FAILED: connection refused");
}

TEST_CASE("lag: standbys against the master's current position, 0 on the master") {
    HealthModel m = model_of(3);
    m.record_sample(0, master_at(10'000'000), 1, true);
    m.record_sample(1, standby_at(9'000'000, 10'000'000), 1, true);
    m.record_sample(2, standby_at(10'000'000, 10'000'000), 1, true);
    m.evaluate(1, kSecond);
    CHECK(m.health(0)->lag == 0);
    CHECK(m.health(1)->lag == 1'000'000);
    CHECK(m.health(2)->lag == 0);
    CHECK(m.health(1)->lsn == 9'000'000);
    CHECK(m.health(1)->receive_lsn == 10'000'000);

    // Replay paused on b1: it receives everything but replays nothing, and its lag grows
    // with the master even though its own receive position keeps up.
    m.record_sample(0, master_at(15'000'000), 2, false);
    m.record_sample(1, standby_at(9'000'000, 15'000'000), 2, false);
    m.evaluate(2, kSecond);
    CHECK(m.health(1)->lag == 6'000'000);
    // No new WAL at all: the lag stays, it does not fall back to receive − replay = 0... or
    // to anything the standby says about itself.
    m.record_sample(1, standby_at(9'000'000, 9'000'000), 3, false);
    m.evaluate(3, kSecond);
    CHECK(m.health(1)->lag == 6'000'000);

    // A standby sampled after the master may be ahead of that sample: lag 0, not negative.
    m.record_sample(2, standby_at(15'000'100, 15'000'100), 4, false);
    m.evaluate(4, kSecond);
    CHECK(m.health(2)->lag == 0);
}

TEST_CASE("lag: without a master, against the last master position or the furthest standby") {
    HealthModel m = model_of(3);
    m.record_sample(0, master_at(5000), 1, true);
    m.record_sample(1, standby_at(4000, 5000), 1, true);
    m.record_sample(2, standby_at(5000, 5000), 1, true);
    m.evaluate(1, kSecond);
    m.record_failure(0, "connection refused", 2);
    m.record_sample(2, standby_at(6000, 6000), 2, false);
    auto lines = m.evaluate(2, kSecond);
    CHECK(m.master() == -1);
    CHECK(logged(lines, "no master backend"));
    CHECK(m.health(1)->lag == 2000);
    CHECK(m.health(2)->lag == 0);
    // Logged once.
    CHECK_FALSE(logged(m.evaluate(3, kSecond), "no master backend"));
}

TEST_CASE("promotion: a standby that leaves recovery becomes the master") {
    HealthModel m = master_and_two_standbys();
    CHECK(m.master() == 0);
    m.record_failure(0, "connection refused", 2);
    m.evaluate(2, kSecond);
    CHECK(role(m, 0) == BackendRole::Master);  // kept while FAILED
    m.record_sample(1, master_at(6000, 2), 3, false);
    auto lines = m.evaluate(3, kSecond);
    CHECK(m.master() == 1);
    CHECK(status(m, 1) == BackendStatus::Ok);
    CHECK(role(m, 1) == BackendRole::Master);
    CHECK(m.health(1)->lag == 0);
    CHECK(m.health(1)->timeline == 2);
    CHECK(m.health(2)->lag == 1000);
    CHECK(logged(lines, "backend b1 was promoted: now master on timeline 2"));
}

TEST_CASE("split brain: the higher timeline wins, the other is fenced and logged each check") {
    HealthModel m = model_of(3);
    m.record_sample(0, master_at(9000, 1), 1, true);  // the old primary, started again
    m.record_sample(1, master_at(6000, 2), 1, true);  // promoted
    m.record_sample(2, standby_at(6000, 6000, 2), 1, true);
    auto lines = m.evaluate(1, kSecond);
    CHECK(m.master() == 1);
    CHECK(status(m, 0) == BackendStatus::Failed);
    CHECK(m.health(0)->fenced);
    CHECK(role(m, 0) == BackendRole::Master);
    CHECK(status(m, 1) == BackendStatus::Ok);
    CHECK_FALSE(m.health(1)->fenced);
    CHECK(logged(lines,
                 "split brain: backend b0 is not in recovery (timeline 1) while b1 is the "
                 "master (timeline 2)"));
    CHECK_FALSE(logged(lines, "b0 is now FAILED"));

    // Not again before a check interval passed; again after it.
    CHECK_FALSE(logged(m.evaluate(kSecond / 2, kSecond), "split brain"));
    m.record_sample(0, master_at(9000, 1), kSecond + 1, true);
    CHECK(logged(m.evaluate(kSecond + 1, kSecond), "split brain: backend b0"));

    // Gone (rewound into a standby): no longer fenced, OK again.
    m.record_sample(0, standby_at(6000, 6000, 2), 2 * kSecond, true);
    lines = m.evaluate(2 * kSecond, kSecond);
    CHECK_FALSE(m.health(0)->fenced);
    CHECK(status(m, 0) == BackendStatus::Ok);
    CHECK(logged(lines, "backend b0 is no longer fenced"));
    CHECK(logged(lines, "backend b0 is now OK (slave)"));
}

TEST_CASE("split brain: on equal timelines the previous master keeps its place") {
    HealthModel m = model_of(2);
    m.record_sample(1, master_at(5000, 3), 1, true);
    m.record_sample(0, standby_at(5000, 5000, 3), 1, true);
    m.evaluate(1, kSecond);
    CHECK(m.master() == 1);
    // b0 leaves recovery on the same timeline number and is even further ahead.
    m.record_sample(0, master_at(7000, 3), 2, true);
    m.evaluate(2, kSecond);
    CHECK(m.master() == 1);
    CHECK(m.health(0)->fenced);
    CHECK(status(m, 0) == BackendStatus::Failed);
    CHECK(status(m, 1) == BackendStatus::Ok);
}

TEST_CASE("split brain: with no previous master, the most advanced, then the first configured") {
    HealthModel m = model_of(2);
    m.record_sample(0, master_at(5000, 1), 1, true);
    m.record_sample(1, master_at(7000, 1), 1, true);
    m.evaluate(1, kSecond);
    CHECK(m.master() == 1);

    HealthModel n = model_of(2);
    n.record_sample(1, master_at(5000, 1), 1, true);
    n.record_sample(0, master_at(5000, 1), 1, true);
    n.evaluate(1, kSecond);
    CHECK(n.master() == 0);
}

TEST_CASE("system identifier: a foreign server is fenced with a clear line, once") {
    HealthModel m = model_of(4);
    m.record_sample(3, master_at(99, 1, kOther), 1, true);  // answers first
    m.evaluate(1, kSecond);
    CHECK(status(m, 3) == BackendStatus::Starting);  // not trusted before the vote settles
    m.record_sample(0, master_at(5000, 1), 2, true);
    m.record_sample(1, standby_at(5000, 5000), 2, true);
    m.record_sample(2, standby_at(5000, 5000), 2, true);
    auto lines = m.evaluate(2, kSecond);
    CHECK(m.master() == 0);
    CHECK(status(m, 3) == BackendStatus::Failed);
    CHECK(m.health(3)->fenced);
    CHECK(logged(lines,
                 "backend b3 is fenced: its system identifier 7711066887911829999 differs "
                 "from the cluster's 7711066887911821629"));
    for (int i = 3; i < 6; ++i) {
        m.record_sample(3, master_at(99, 1, kOther), i * kSecond, true);
        CHECK_FALSE(logged(m.evaluate(i * kSecond, kSecond), "b3"));
    }
    // Even a foreign server on a higher timeline never wins.
    m.record_sample(3, master_at(99, 9, kOther), 7 * kSecond, true);
    m.evaluate(7 * kSecond, kSecond);
    CHECK(m.master() == 0);
    CHECK(status(m, 3) == BackendStatus::Failed);
}

TEST_CASE("system identifier: a failed backend keeps its vote") {
    HealthModel m = model_of(3);
    m.record_sample(0, master_at(5000), 1, true);
    m.record_sample(1, standby_at(5000, 5000), 1, true);
    m.record_sample(2, master_at(10, 1, kOther), 1, true);
    m.evaluate(1, kSecond);
    CHECK(m.health(2)->fenced);
    m.record_failure(1, "connection refused", 2);
    m.evaluate(2, kSecond);
    CHECK(m.health(2)->fenced);  // 1 against 1 present, but b1 still votes for the cluster
    CHECK(m.master() == 0);
}

TEST_CASE("system identifier: undecided while a backend has not answered and no majority") {
    HealthModel m = model_of(2);
    m.record_sample(0, master_at(5000), 1, true);
    m.evaluate(1, kSecond);
    CHECK(status(m, 0) == BackendStatus::Starting);
    m.record_failure(1, "timeout: no answer", 2);
    m.evaluate(2, kSecond);
    CHECK(status(m, 0) == BackendStatus::Ok);
    CHECK(m.master() == 0);
}

TEST_CASE("following: a standby on another timeline than the master is fenced, said once") {
    HealthModel m = master_and_two_standbys();
    // b0 dies, b1 is promoted; b2 still waits for b0 on timeline 1, its receiver down.
    m.record_failure(0, "connection refused", 2);
    m.evaluate(2, kSecond);
    CHECK(status(m, 2) == BackendStatus::Ok);  // no master: nothing to follow, reads stay
    m.record_sample(1, master_at(5200, 2), 3, false);
    HealthSample waiting = standby_at(5000, 5000, 1);
    waiting.streaming = false;
    m.record_sample(2, waiting, 4, false);
    auto lines = m.evaluate(4, kSecond);
    CHECK(m.master() == 1);
    CHECK(status(m, 2) == BackendStatus::Failed);
    CHECK(m.health(2)->fenced);
    CHECK(m.health(2)->fence == FenceReason::NotFollowing);
    CHECK(m.health(2)->lag == 200);  // against the new master, not 0
    CHECK(logged(lines,
                 "backend b2 is fenced: it does not follow the master (it is on timeline 1, the "
                 "master b1 on timeline 2)"));
    CHECK_FALSE(logged(lines, "b2 is now FAILED"));
    m.record_sample(2, waiting, 5, false);
    CHECK_FALSE(logged(m.evaluate(5, kSecond), "b2"));

    // Pointed at b1, it streams timeline 2: OK again.
    m.record_sample(2, standby_at(5200, 5200, 2), 6, false);
    lines = m.evaluate(6, kSecond);
    CHECK(status(m, 2) == BackendStatus::Ok);
    CHECK(m.health(2)->fence == FenceReason::None);
    CHECK(logged(lines, "backend b2 is no longer fenced"));
}

TEST_CASE("following: a standby ahead of the master's later sample is fenced") {
    HealthModel m = model_of(2);
    m.record_sample(0, master_at(5000, 2), 10, true);
    m.record_sample(1, standby_at(6000, 6000, 2), 1, true, 2);
    m.evaluate(10, kSecond);
    CHECK(m.health(1)->fence == FenceReason::NotFollowing);
    CHECK(status(m, 1) == BackendStatus::Failed);
    // Ahead only of a master sample taken before its own answer: not proof of anything.
    m.record_sample(1, standby_at(6000, 6000, 2), 20, false, 21);
    m.evaluate(21, kSecond);
    CHECK(m.health(1)->fence == FenceReason::None);
    CHECK(status(m, 1) == BackendStatus::Ok);
    CHECK(m.health(1)->lag == 0);
}

TEST_CASE("following: no WAL receiver is fenced unless replay advances; the lag grows") {
    HealthModel m = model_of(2);
    m.record_sample(0, master_at(5000), 1, true);
    m.record_sample(1, standby_at(5000, 5000), 1, true);
    m.evaluate(1, kSecond);
    CHECK(status(m, 1) == BackendStatus::Ok);
    HealthSample s = standby_at(5000, 5000);
    s.streaming = false;
    m.record_sample(0, master_at(8000), 2, false);
    m.record_sample(1, s, 2, false);
    m.evaluate(2, kSecond);
    CHECK(m.health(1)->fence == FenceReason::NotFollowing);
    CHECK(m.health(1)->lag == 3000);
    // Replaying from an archive: it advances, so it follows.
    s.lsn = 7000;
    m.record_sample(1, s, 3, false);
    m.evaluate(3, kSecond);
    CHECK(m.health(1)->fence == FenceReason::None);
    CHECK(m.health(1)->lag == 1000);
}

TEST_CASE("following: after a master change every standby waits for a sample taken since") {
    HealthModel m = master_and_two_standbys();
    CHECK(m.master_changes() == 0);
    m.record_failure(0, "connection refused", 2);
    m.record_sample(1, master_at(5100, 2), 10, false);
    m.record_sample(2, standby_at(5100, 5100, 2), 5, false);  // sent before b1's sample
    auto lines = m.evaluate(11, kSecond);
    CHECK(m.master() == 1);
    CHECK(m.master_changes() == 1);
    CHECK(m.health(2)->fence == FenceReason::NotFollowing);
    CHECK_FALSE(logged(lines, "b2 is fenced"));  // not verified yet is not worth a line
    m.record_sample(2, standby_at(5100, 5100, 2), 12, false);
    lines = m.evaluate(12, kSecond);
    CHECK(m.health(2)->fence == FenceReason::None);
    CHECK(status(m, 2) == BackendStatus::Ok);
    CHECK_FALSE(logged(lines, "b2"));
    // The same master back after a restart is no change.
    m.record_failure(1, "connection refused", 13);
    m.evaluate(13, kSecond);
    m.record_sample(1, master_at(5200, 2), 14, true);
    m.evaluate(14, kSecond);
    CHECK(m.master_changes() == 1);
}

TEST_CASE("adopt: a new model publishes the records found, until its own checks differ") {
    HealthModel m = model_of(4);
    m.record_sample(0, master_at(5000), 1, true);
    m.record_sample(1, standby_at(4000, 5000), 1, true);
    HealthSample behind = standby_at(5000, 5000, 1);
    behind.streaming = false;
    m.record_sample(2, behind, 1, true);
    m.record_failure(3, "connection refused", 1);
    m.evaluate(1, kSecond);
    REQUIRE(m.health(2)->fence == FenceReason::NotFollowing);

    HealthModel n = model_of(4);
    for (int i = 0; i < 4; ++i) n.adopt(i, *m.health(i));
    auto lines = n.evaluate(2, kSecond);
    CHECK(lines.empty());
    CHECK(n.master() == 0);
    for (int i = 0; i < 4; ++i) {
        INFO("b" << i);
        CHECK(n.health(i)->status == m.health(i)->status);
        CHECK(n.health(i)->role == m.health(i)->role);
        CHECK(n.health(i)->fence == m.health(i)->fence);
        CHECK(n.health(i)->lag == m.health(i)->lag);
    }
    // Its own checks decide from now on.
    n.record_failure(0, "connection refused", 3);
    n.evaluate(3, kSecond);
    CHECK(status(n, 0) == BackendStatus::Failed);
    // A record of an earlier occupant of the slot is not adopted.
    HealthModel o;
    o.track(0, "b0", 2, 0);
    o.adopt(0, *m.health(0));
    o.evaluate(2, kSecond);
    CHECK(status(o, 0) == BackendStatus::Starting);
}

TEST_CASE("track: a slot given to a new occupant starts over") {
    HealthModel m = model_of(1);
    m.record_sample(0, master_at(5000), 1, true);
    m.evaluate(1, kSecond);
    CHECK(status(m, 0) == BackendStatus::Ok);
    m.track(0, "other", 2, 0);
    m.evaluate(2, kSecond);
    CHECK(status(m, 0) == BackendStatus::Starting);
    CHECK(m.health(0)->epoch == 2);
    CHECK(m.master() == -1);
    m.untrack(0);
    CHECK(m.health(0) == nullptr);
}

TEST_CASE("probe: a result row becomes a sample") {
    using Row = std::vector<std::optional<std::string>>;
    auto s =
        parse_probe_row(Row{"f", "0/3000108", std::nullopt, "2", "f", "7711066887911821629"}, true);
    REQUIRE(s);
    CHECK_FALSE(s->in_recovery);
    CHECK(s->lsn == 0x3000108u);
    CHECK(s->receive_lsn == 0u);
    CHECK(s->timeline == 2u);
    CHECK(s->system_identifier == 7711066887911821629ULL);

    s = parse_probe_row(Row{"t", "16/B374D848", "16/B374D900", "1", "t"}, false);
    REQUIRE(s);
    CHECK(s->in_recovery);
    CHECK(s->streaming);
    CHECK(s->lsn == 0x16B374D848ULL);
    CHECK(s->receive_lsn == 0x16B374D900ULL);
    CHECK(s->system_identifier == 0u);

    // A promoted server still reports its last received position: ignored on a master.
    s = parse_probe_row(Row{"f", "0/5000000", "0/3000000", "2", "f"}, false);
    REQUIRE(s);
    CHECK(s->receive_lsn == 0u);
    CHECK_FALSE(s->streaming);
    s = parse_probe_row(Row{"t", "0/5000000", "0/5000000", "1", "f"}, false);
    REQUIRE(s);
    CHECK_FALSE(s->streaming);

    CHECK_FALSE(parse_probe_row(Row{"t", "0/1", "0/1", "1", "t"}, true));  // column missing
    CHECK_FALSE(parse_probe_row(Row{"t", "0/1", "0/1", "1"}, false));
    CHECK_FALSE(parse_probe_row(Row{"x", "0/1", "0/1", "1", "t"}, false));
    CHECK_FALSE(parse_probe_row(Row{"t", "bad", "0/1", "1", "t"}, false));
    CHECK_FALSE(parse_probe_row(Row{"t", std::nullopt, "0/1", "1", "t"}, false));
    CHECK_FALSE(parse_probe_row(Row{"t", "0/1", "0/1", "one", "t"}, false));
    CHECK_FALSE(parse_probe_row(Row{"t", "0/1", "0/1", "1", "yes"}, false));
    CHECK_FALSE(parse_probe_row(Row{"t", "0/1", "0/1", "1", std::nullopt}, false));
    CHECK_FALSE(parse_probe_row(Row{"f", "0/1", std::nullopt, "1", "f", "0"}, true));
}

TEST_CASE("probe: libpq messages shortened to one line") {
    CHECK(short_error("connection to server at \"127.0.0.1\", port 6433 failed: Connection "
                      "refused\n\tIs the server running on that host and accepting TCP/IP "
                      "connections?\n") == "connection refused");
    CHECK(short_error("connection to server at \"127.0.0.1\", port 5433 failed: FATAL:  password "
                      "authentication failed for user \"pgrtest\"\n") ==
          "password authentication failed for user \"pgrtest\"");
    CHECK(short_error("FATAL:  terminating connection due to administrator command\n") ==
          "terminating connection due to administrator command");
    CHECK(short_error("ERROR:  permission denied for function pg_control_system\n") ==
          "permission denied for function pg_control_system");
    CHECK(short_error("SSL SYSCALL error: EOF detected\n") == "SSL SYSCALL error: EOF detected");
    CHECK(short_error("") == "unknown error");
}

TEST_CASE("probe: conninfo keywords carry credentials and the TLS mode") {
    ProbeTarget t{"10.0.0.5", 6432, TlsMode::Off, "", "postgres", "pgtest", "sekrit squirrel"};
    auto get = [](const std::vector<std::pair<std::string, std::string>>& kv,
                  const std::string& key) -> std::optional<std::string> {
        for (const auto& [k, v] : kv) {
            if (k == key) return v;
        }
        return std::nullopt;
    };
    auto kv = probe_conninfo(t);
    CHECK(get(kv, "host") == "10.0.0.5");
    CHECK(get(kv, "port") == "6432");
    CHECK(get(kv, "dbname") == "postgres");
    CHECK(get(kv, "user") == "pgtest");
    CHECK(get(kv, "password") == "sekrit squirrel");
    CHECK(get(kv, "sslmode") == "disable");
    CHECK_FALSE(get(kv, "sslrootcert"));
    t.tls = TlsMode::SkipVerify;
    CHECK(get(probe_conninfo(t), "sslmode") == "require");
    t.tls = TlsMode::Verify;
    CHECK_FALSE(get(probe_conninfo(t), "sslrootcert").value_or("").empty());  // system store
    t.ca = "/etc/ssl/ca.pem";
    kv = probe_conninfo(t);
    CHECK(get(kv, "sslmode") == "verify-full");
    CHECK(get(kv, "sslrootcert") == "/etc/ssl/ca.pem");
    t.password.clear();
    CHECK_FALSE(get(probe_conninfo(t), "password"));
}

TEST_CASE("replstatus: the one-word answer") {
    CHECK(parse_replstatus("MASTER") == BackendRole::Master);
    CHECK(parse_replstatus("MASTER\n") == BackendRole::Master);
    CHECK(parse_replstatus("STANDBY\r\n") == BackendRole::Slave);
    CHECK_FALSE(parse_replstatus(""));
    CHECK_FALSE(parse_replstatus("master"));
    CHECK_FALSE(parse_replstatus("MASTERS"));
}
