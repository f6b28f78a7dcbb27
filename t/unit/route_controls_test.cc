// Unit tests of the consistency controls' pure pieces: max_staleness values, the parameter
// values and PostgreSQL's errors, the SET/RESET/SHOW reader, statement hints, connect-time
// options, the session state's SET/RESET/rollback semantics for pgrouter.*, and the time lag
// interpolated from the master's samples. Table-driven.
#include "pgrouter/route/route_controls.h"

#include <catch2/catch.hpp>

#include "pgrouter/base/lsn.h"
#include "pgrouter/health/time_lag.h"
#include "pgrouter/route/classify.h"
#include "pgrouter/route/classify_cache.h"
#include "pgrouter/worker/session_state.h"

using namespace pgrouter;

namespace {

constexpr std::int64_t kMs = 1'000'000;

using proto::TransactionStatus;
constexpr auto I = TransactionStatus::Idle;
constexpr auto T = TransactionStatus::InTransaction;

// Feeds `state` one unit of `sql` that came back with `tag` and status `after`.
void run(SessionState& state, const Classifier& classifier, std::string_view sql,
         std::string_view tag, TransactionStatus after, bool error = false) {
    Classification cls = classifier.classify(sql);
    std::vector<SessionChange> changes;
    collect_changes(sql, cls, changes);
    UnitOutcome u;
    u.status = after;
    u.slot = 1;
    u.tag = tag;
    u.error = error;
    u.cls = &cls;
    u.changes = &changes;
    (void)state.finish(u);
}

}  // namespace

TEST_CASE("route controls: max_staleness values", "[route_controls]") {
    struct Case {
        const char* text;
        bool ok;
        std::uint64_t bytes;
        std::int64_t ns;
    };
    const std::vector<Case> cases = {
        {"0", true, 0, 0},
        {"100ms", true, kNoByteBound, 100 * kMs},
        {"1s", true, kNoByteBound, 1000 * kMs},
        {"1.5s", true, kNoByteBound, 1500 * kMs},
        {"2min", true, kNoByteBound, 120'000 * kMs},
        {"500us", true, kNoByteBound, 500'000},
        {"250", true, kNoByteBound, 250 * kMs},  // a bare number: milliseconds
        {"64kB", true, 64 * 1024, kNoTimeBound},
        {"64 kb", true, 64 * 1024, kNoTimeBound},
        {"16MB", true, 16 << 20, kNoTimeBound},
        {"100B", true, 100, kNoTimeBound},
        {"0s", true, kNoByteBound, 0},
        {"-5ms", false, 0, 0},
        {"5 parsecs", false, 0, 0},
        {"ms", false, 0, 0},
        {"", false, 0, 0},
        {"1..2s", false, 0, 0},
        {"99999999999d", false, 0, 0},
    };
    for (const Case& c : cases) {
        INFO(c.text);
        auto b = parse_staleness(c.text);
        REQUIRE(b.has_value() == c.ok);
        if (!c.ok) continue;
        CHECK(b->bytes == c.bytes);
        CHECK(b->ns == c.ns);
    }
    CHECK(StalenessBound{10, kNoTimeBound}.tighter({kNoByteBound, 5}) == StalenessBound{10, 5});
    CHECK(!StalenessBound{}.bounded());
}

TEST_CASE("route controls: values, SHOW and PostgreSQL's errors", "[route_controls]") {
    ControlValues v;
    CHECK(v.show(Control::Route) == "auto");
    CHECK(v.show(Control::MinLsn) == "0/0");
    CHECK(v.show(Control::MaxStaleness) == "");

    CHECK(!v.set(Control::Route, "PRIMARY"));
    CHECK(v.controls().primary);
    CHECK(v.show(Control::Route) == "primary");
    CHECK(!v.set(Control::MinLsn, "16/B374D848"));
    CHECK(v.controls().min_lsn == 0x16B374D848ULL);
    CHECK(v.show(Control::MinLsn) == "16/B374D848");
    CHECK(!v.set(Control::MaxStaleness, " 64kB "));
    CHECK(v.show(Control::MaxStaleness) == "64kB");
    CHECK(v.controls().staleness.bytes == 65536);

    struct Bad {
        Control c;
        const char* value;
        const char* sqlstate;
        const char* message;
    };
    const std::vector<Bad> bad = {
        {Control::MinLsn, "zz", "22023",
         "invalid value for parameter \"pgrouter.min_lsn\": \"zz\""},
        {Control::MinLsn, "1/", "22023",
         "invalid value for parameter \"pgrouter.min_lsn\": \"1/\""},
        {Control::MinLsn, "123456789/0", "22023",
         "invalid value for parameter \"pgrouter.min_lsn\": \"123456789/0\""},
        {Control::Route, "replica", "22023",
         "invalid value for parameter \"pgrouter.route\": \"replica\""},
        {Control::MaxStaleness, "-1s", "22023",
         "invalid value for parameter \"pgrouter.max_staleness\": \"-1s\""},
        {Control::CommitLsn, "0/1", "55P02", "parameter \"pgrouter.commit_lsn\" cannot be changed"},
    };
    for (const Bad& b : bad) {
        INFO(b.value);
        ControlValues before = v;
        auto e = v.set(b.c, b.value);
        REQUIRE(e.has_value());
        CHECK(e->sqlstate == b.sqlstate);
        CHECK(e->message == b.message);
        CHECK(v.controls() == before.controls());  // nothing changed
    }
    CHECK(v.set(Control::Route, "x")->hint == "Available values: primary, auto.");

    ControlValues start;
    (void)start.set(Control::MinLsn, "0/10");
    v.reset(Control::MinLsn, start);
    CHECK(v.show(Control::MinLsn) == "0/10");
    v.reset(Control::MaxStaleness, start);
    CHECK(v.show(Control::MaxStaleness) == "");
    CHECK(!v.controls().staleness.bounded());

    ControlError unknown = unknown_control("pgrouter.xyz");
    CHECK(unknown.sqlstate == "42602");
    CHECK(unknown.message == "invalid configuration parameter name \"pgrouter.xyz\"");
    CHECK(unknown.detail == "\"pgrouter\" is a reserved prefix.");
    CHECK(unrecognized_control("pgrouter.xyz").sqlstate == "42704");
    CHECK(is_control_name("pgrouter.route"));
    CHECK(is_control_name("pgrouter.xyz"));
    CHECK(!is_control_name("pgrouter."));
    CHECK(!is_control_name("search_path"));
    CHECK(find_control("pgrouter.commit_lsn") == Control::CommitLsn);
    CHECK(!find_control("pgrouter.xyz"));
}

TEST_CASE("route controls: reading SET, RESET and SHOW", "[route_controls]") {
    using Verb = ControlStatement::Verb;
    struct Case {
        const char* sql;
        Verb verb;
        const char* name;
        std::vector<std::string> values;
    };
    const std::vector<Case> cases = {
        {"SET pgrouter.route = 'primary'", Verb::Set, "pgrouter.route", {"primary"}},
        {"set Pgrouter.Route to Auto", Verb::Set, "pgrouter.route", {"auto"}},
        {"SET SESSION pgrouter.min_lsn = '0/3'", Verb::Set, "pgrouter.min_lsn", {"0/3"}},
        {"SET LOCAL pgrouter.max_staleness = 0", Verb::SetLocal, "pgrouter.max_staleness", {"0"}},
        {"SET pgrouter.max_staleness = -5", Verb::Set, "pgrouter.max_staleness", {"-5"}},
        {"/* c */ SET -- x\n pgrouter.route = 'it''s'", Verb::Set, "pgrouter.route", {"it's"}},
        {"SET \"pgrouter\".\"route\" = E'pri\\'mary'", Verb::Set, "pgrouter.route", {"pri'mary"}},
        {"SET pgrouter.route = 'a', 'b'", Verb::Set, "pgrouter.route", {"a", "b"}},
        {"SET pgrouter.route TO DEFAULT", Verb::Reset, "pgrouter.route", {}},
        {"RESET pgrouter.min_lsn", Verb::Reset, "pgrouter.min_lsn", {}},
        {"RESET ALL", Verb::ResetAll, "", {}},
        {"SHOW pgrouter.commit_lsn", Verb::Show, "pgrouter.commit_lsn", {}},
        {"  show pgrouter.route  ", Verb::Show, "pgrouter.route", {}},
        {"SELECT set_config('pgrouter.route', 'primary', false)", Verb::Other, "", {}},
        {"SET pgrouter.route = 'unterminated", Verb::Other, "", {}},
        {"SHOW pgrouter.route extra", Verb::Other, "pgrouter.route", {}},
    };
    for (const Case& c : cases) {
        INFO(c.sql);
        ControlStatement st = read_control_statement(c.sql);
        CHECK(st.verb == c.verb);
        if (c.verb != Verb::Other) CHECK(st.name == c.name);
        CHECK(st.values == c.values);
    }
}

TEST_CASE("route controls: statement hints", "[route_controls]") {
    struct Case {
        const char* sql;
        bool primary;
        StalenessBound staleness;
    };
    const std::vector<Case> cases = {
        {"/* pgrouter: primary */ SELECT 1", true, {}},
        {"  /*pgrouter:primary*/SELECT 1", true, {}},
        {"/* pgrouter: max_staleness=1s */ SELECT 1", false, {kNoByteBound, 1000 * kMs}},
        {"/* PGROUTER: primary, max_staleness=64kB */ SELECT 1", true, {65536, kNoTimeBound}},
        {"/* pgrouter: max_staleness=bogus */ SELECT 1", false, {}},
        {"/* pgrouter: replica */ SELECT 1", false, {}},
        {"SELECT 1 /* pgrouter: primary */", false, {}},
        {"/* other */ /* pgrouter: primary */ SELECT 1", false, {}},
        {"/* pgrouter: primary", false, {}},
        {"-- pgrouter: primary\nSELECT 1", false, {}},
    };
    for (const Case& c : cases) {
        INFO(c.sql);
        StatementHint h = parse_hint(c.sql);
        CHECK(h.primary == c.primary);
        CHECK(h.staleness == c.staleness);
    }
    // The classifier carries the hint; merging units keeps the strongest.
    Classifier classifier;
    Classification hinted = classifier.classify("/* pgrouter: primary */ SELECT 1");
    CHECK(hinted.hint.primary);
    CHECK(hinted.kind == StatementKind::Read);
    CHECK(!classifier.classify("SELECT 1").hint.any());
    Classification merged = merge(classifier.classify("SELECT 2"), hinted);
    CHECK(merged.hint.primary);
    // A session's bound is replaced by the statement's; primary adds up.
    RouteControls session;
    session.staleness = {kNoByteBound, 10 * kMs};
    RouteControls c = with_hint(session, parse_hint("/* pgrouter: max_staleness=1s */ x"));
    CHECK(c.staleness.ns == 1000 * kMs);
    CHECK(!c.primary);
    CHECK(with_hint(session, StatementHint{}).staleness.ns == 10 * kMs);
    // The cache keys on the text with its hint: a hinted statement and the same one without
    // (or with another hint) never share an entry.
    ClassifyCache cache;
    CHECK(!cache.classify("SELECT 1", classifier).hint.any());
    CHECK(cache.classify("/* pgrouter: primary */ SELECT 1", classifier).hint.primary);
    CHECK(!cache.classify("SELECT 1", classifier).hint.any());
    CHECK(
        cache.classify("/* pgrouter: max_staleness=1s */ SELECT 1", classifier).hint.staleness.ns ==
        1000 * kMs);
    CHECK(
        cache.classify("/* pgrouter: max_staleness=2s */ SELECT 1", classifier).hint.staleness.ns ==
        2000 * kMs);
    CHECK(
        cache.classify("/* pgrouter: max_staleness=1s */ SELECT 1", classifier).hint.staleness.ns ==
        1000 * kMs);
    // names_controls marks what the session must look at.
    CHECK(classifier.classify("SET pgrouter.route = 'primary'").names_controls);
    CHECK(classifier.classify("SHOW pgrouter.commit_lsn").names_controls);
    CHECK(classifier.classify("SET LOCAL pgrouter.xyz = 1").names_controls);
    CHECK(!classifier.classify("SET search_path = x").names_controls);
    CHECK(!classifier.classify("SHOW work_mem").names_controls);
}

TEST_CASE("route controls: connect-time options", "[route_controls]") {
    using Pairs = std::vector<std::pair<std::string, std::string>>;
    CHECK(startup_controls("-c pgrouter.min_lsn=0/3") == Pairs{{"pgrouter.min_lsn", "0/3"}});
    CHECK(
        startup_controls("-c work_mem=4MB -cpgrouter.route=primary --pgrouter.max-staleness=1s") ==
        Pairs{{"pgrouter.route", "primary"}, {"pgrouter.max_staleness", "1s"}});
    CHECK(startup_controls("-c pgrouter.max_staleness=5\\ ms") ==
          Pairs{{"pgrouter.max_staleness", "5 ms"}});
    CHECK(startup_controls("").empty());
    CHECK(startup_controls("-c").empty());
    CHECK(startup_controls("-c pgrouter.route").empty());

    SessionState state;
    Pairs good{{"pgrouter.route", "primary"}, {"pgrouter.min_lsn", "0/30"}};
    CHECK(!state.start_controls(good));
    CHECK(state.route().controls.primary);
    CHECK(state.route().controls.min_lsn == 0x30);
    SessionState refused;
    Pairs bad{{"pgrouter.min_lsn", "zz"}};
    auto e = refused.start_controls(bad);
    REQUIRE(e);
    CHECK(e->sqlstate == "22023");
    Pairs unknown{{"pgrouter.nope", "1"}};
    CHECK(refused.start_controls(unknown)->sqlstate == "42602");
}

TEST_CASE("route controls: SET, SET LOCAL, RESET and rollbacks in the session state",
          "[route_controls][session_state]") {
    Classifier cl;
    struct Step {
        const char* sql;
        const char* tag;
        TransactionStatus after;
        const char* route;  // SHOW pgrouter.route after the step
        const char* min_lsn;
    };
    // Each row: the statement, its outcome, then what SHOW answers and the router sees.
    const std::vector<Step> steps = {
        {"SET pgrouter.route = 'primary'", "SET", I, "primary", "0/0"},
        {"RESET pgrouter.route", "RESET", I, "auto", "0/0"},
        {"BEGIN", "BEGIN", T, "auto", "0/0"},
        {"SET pgrouter.route = 'primary'", "SET", T, "primary", "0/0"},  // seen in the block
        {"ROLLBACK", "ROLLBACK", I, "auto", "0/0"},                      // and gone with it
        {"BEGIN", "BEGIN", T, "auto", "0/0"},
        {"SET pgrouter.min_lsn = '0/5'", "SET", T, "auto", "0/5"},
        {"SAVEPOINT s", "SAVEPOINT", T, "auto", "0/5"},
        {"SET pgrouter.min_lsn = '0/6'", "SET", T, "auto", "0/6"},
        {"ROLLBACK TO s", "ROLLBACK", T, "auto", "0/5"},
        {"SET LOCAL pgrouter.route = 'primary'", "SET", T, "primary", "0/5"},
        {"COMMIT", "COMMIT", I, "auto", "0/5"},  // LOCAL ends, the SET stays
        {"SET pgrouter.route = 'primary'; SET pgrouter.min_lsn = '0/7'", "SET", I, "primary",
         "0/7"},
        {"RESET ALL", "RESET", I, "auto", "0/0"},
        {"SET pgrouter.route TO 'primary'", "SET", I, "primary", "0/0"},
        {"DISCARD ALL", "DISCARD ALL", I, "auto", "0/0"},
        {"SET pgrouter.min_lsn = '0/8'", "SET", I, "auto", "0/8"},
        {"SET pgrouter.min_lsn TO DEFAULT", "SET", I, "auto", "0/0"},
        {"SET LOCAL pgrouter.route = 'primary'", "SET", I, "auto", "0/0"},  // outside a block
    };
    SessionState state;
    for (const Step& s : steps) {
        INFO(s.sql);
        run(state, cl, s.sql, s.tag, s.after);
        CHECK(state.controls().show(Control::Route) == s.route);
        CHECK(state.controls().show(Control::MinLsn) == s.min_lsn);
        CHECK(state.route().controls == state.controls().controls());
    }
    // A SET that failed changes nothing; a lost block takes its SETs with it.
    run(state, cl, "SET pgrouter.route = 'primary'", "", I, true);
    CHECK(state.controls().show(Control::Route) == "auto");
    run(state, cl, "BEGIN", "BEGIN", T);
    run(state, cl, "SET pgrouter.route = 'primary'", "SET", T);
    CHECK(state.route().controls.primary);
    state.block_lost();
    CHECK(!state.route().controls.primary);
    // RESET returns to the connection's start-up value.
    SessionState started;
    std::vector<std::pair<std::string, std::string>> opts{{"pgrouter.route", "primary"}};
    REQUIRE(!started.start_controls(opts));
    run(started, cl, "SET pgrouter.route = 'auto'", "SET", I);
    CHECK(!started.route().controls.primary);
    run(started, cl, "RESET pgrouter.route", "RESET", I);
    CHECK(started.route().controls.primary);
    run(started, cl, "SET pgrouter.route = 'auto'", "SET", I);
    run(started, cl, "RESET ALL", "RESET", I);
    CHECK(started.route().controls.primary);
}

TEST_CASE("route controls: savepoints take back SET LOCAL and SET, RELEASE keeps them",
          "[route_controls][session_state]") {
    Classifier cl;
    struct Step {
        const char* sql;
        const char* tag;
        TransactionStatus after;
        const char* route;  // SHOW pgrouter.route after the step
        const char* max_staleness;
    };
    // PostgreSQL's GUC stack: a rollback to a savepoint restores what was in force when the
    // savepoint was made, SET LOCAL included; RELEASE folds the savepoint's changes into the
    // enclosing level; a SET after a SET LOCAL of the same name wins, also after COMMIT.
    const std::vector<Step> steps = {
        {"BEGIN", "BEGIN", T, "auto", ""},
        {"SAVEPOINT a", "SAVEPOINT", T, "auto", ""},
        {"SET LOCAL pgrouter.route = 'primary'", "SET", T, "primary", ""},
        {"ROLLBACK TO a", "ROLLBACK", T, "auto", ""},
        {"SET LOCAL pgrouter.max_staleness = '1s'", "SET", T, "auto", "1s"},
        {"SAVEPOINT b", "SAVEPOINT", T, "auto", "1s"},
        {"SET LOCAL pgrouter.max_staleness = '2s'", "SET", T, "auto", "2s"},
        {"SET pgrouter.route = 'primary'", "SET", T, "primary", "2s"},
        {"ROLLBACK TO SAVEPOINT b", "ROLLBACK", T, "auto", "1s"},
        {"SAVEPOINT c", "SAVEPOINT", T, "auto", "1s"},
        {"SET LOCAL pgrouter.route = 'primary'", "SET", T, "primary", "1s"},
        {"RELEASE c", "RELEASE", T, "primary", "1s"},
        {"ROLLBACK TO a", "ROLLBACK", T, "auto", ""},  // a is still there: c went, a stays
        {"SET LOCAL pgrouter.route = 'primary'", "SET", T, "primary", ""},
        {"SET pgrouter.max_staleness = '64kB'", "SET", T, "primary", "64kB"},
        {"COMMIT", "COMMIT", I, "auto", "64kB"},
        {"BEGIN", "BEGIN", T, "auto", "64kB"},
        {"SET pgrouter.route = 'primary'", "SET", T, "primary", "64kB"},
        {"SET LOCAL pgrouter.route = 'auto'", "SET", T, "auto", "64kB"},  // masks the SET
        {"COMMIT", "COMMIT", I, "primary", "64kB"},                       // which then holds
        {"BEGIN", "BEGIN", T, "primary", "64kB"},
        {"SET LOCAL pgrouter.route = 'auto'", "SET", T, "auto", "64kB"},
        {"SET pgrouter.max_staleness = '0'", "SET", T, "auto", "0"},
        {"RESET pgrouter.route", "RESET", T, "auto", "0"},  // a RESET is a SET
        {"COMMIT", "COMMIT", I, "auto", "0"},
        {"BEGIN; SAVEPOINT s; SET LOCAL pgrouter.route = 'primary'; ROLLBACK TO s", "ROLLBACK", T,
         "auto", "0"},
        {"ROLLBACK", "ROLLBACK", I, "auto", "0"},
    };
    SessionState state;
    for (const Step& s : steps) {
        INFO(s.sql);
        run(state, cl, s.sql, s.tag, s.after);
        CHECK(state.controls().show(Control::Route) == s.route);
        CHECK(state.controls().show(Control::MaxStaleness) == s.max_staleness);
        CHECK(state.route().controls == state.controls().controls());
    }
    CHECK(state.pending().empty());
}

TEST_CASE("time lag: how long ago the master was at a standby's replay position", "[time_lag]") {
    MasterHistory h;
    CHECK(h.lag_ns(0x1000, 5 * kMs) == 0);  // nothing known
    // The master writes steadily: 0x1000 bytes per 100 ms from t = 1 s.
    for (int i = 0; i <= 10; ++i) h.record(0x100000 + 0x1000ULL * i, (1000 + 100 * i) * kMs);
    struct Case {
        std::uint64_t replay;
        std::int64_t at_ms;
        std::int64_t want_ms;
    };
    const std::vector<Case> cases = {
        {0x10A000, 2000, 0},    // replayed everything
        {0x10B000, 2000, 0},    // past the master's last sample
        {0x109000, 2000, 100},  // the master was there at 1.9 s
        {0x108800, 2000, 150},  // halfway between two samples
        {0x100000, 2000, 1000},
        {0x0F0000, 2000, 1000},  // older than the history: its oldest sample's age
        {0x109000, 1850, 0},     // the standby's sample came before the master got there
    };
    for (const Case& c : cases) {
        INFO(std::hex << c.replay << std::dec << " at " << c.at_ms);
        CHECK(h.lag_ns(c.replay, c.at_ms * kMs) == c.want_ms * kMs);
    }
    // An idle master: samples at one position make one run, and a standby that has
    // replayed it is not behind, however long the master stays idle.
    std::size_t runs = h.runs();
    for (int i = 1; i <= 50; ++i) h.record(0x10A000, (2000 + 100 * i) * kMs);
    CHECK(h.runs() == runs);
    CHECK(h.lag_ns(0x10A000, 7000 * kMs) == 0);
    // A paused standby falls behind at the clock's rate while the master writes again.
    h.record(0x10B000, 7100 * kMs);
    CHECK(h.lag_ns(0x10A000, 7100 * kMs) == 100 * kMs);
    h.record(0x10C000, 7600 * kMs);
    CHECK(h.lag_ns(0x10A000, 7600 * kMs) == 600 * kMs);
    // The master's position on a page start points past the header; replay stops before.
    MasterHistory page;
    page.record(0x4000028, 1000 * kMs);
    CHECK(page.lag_ns(0x4000000, 9000 * kMs) == 0);
    // A lower position starts a new history; the history is bounded.
    h.record(0x1000, 8000 * kMs);
    CHECK(h.runs() == 1);
    for (std::size_t i = 0; i < MasterHistory::kMaxRuns + 10; ++i) {
        h.record(0x2000 + 0x100 * i, static_cast<std::int64_t>(9000 + i) * kMs);
    }
    CHECK(h.runs() == MasterHistory::kMaxRuns);
}
