// Startup parameters that move with a client between pooled connections (startup_params.h),
// and their replay among the session's state (ghosts.h).
#include "pgrouter/worker/startup_params.h"

#include <catch2/catch.hpp>

#include "pgrouter/worker/ghosts.h"

using namespace pgrouter;

TEST_CASE("startup params: only SET-able ones may differ between a connection and a client",
          "[startup_params]") {
    CHECK(movable_startup_param("application_name"));
    CHECK(movable_startup_param("DateStyle"));
    CHECK(movable_startup_param("TimeZone"));
    CHECK_FALSE(movable_startup_param("options"));
    CHECK_FALSE(movable_startup_param("replication"));
    CHECK_FALSE(movable_startup_param("session_preload_libraries"));
    // Same names, other values of movable ones, any order: one key.
    ParamList a = {{"application_name", "a"}, {"DateStyle", "ISO"}, {"options", "-c geqo=off"}};
    ParamList b = {{"options", "-c geqo=off"}, {"datestyle", "SQL"}, {"application_name", "b"}};
    CHECK(pool_params_key(a) == pool_params_key(b));
    // Another options value, or a name the other lacks: another key.
    ParamList c = {{"application_name", "a"}, {"DateStyle", "ISO"}, {"options", ""}};
    ParamList d = {{"application_name", "a"}};
    CHECK(pool_params_key(a) != pool_params_key(c));
    CHECK(pool_params_key(a) != pool_params_key(d));
    // What b must SET on a connection logged in with a: the values that differ, lower-cased.
    ParamList diff = startup_difference(a, b);
    REQUIRE(diff.size() == 2);
    CHECK(diff[0] == std::pair<std::string, std::string>{"datestyle", "SQL"});
    CHECK(diff[1] == std::pair<std::string, std::string>{"application_name", "b"});
    CHECK(startup_difference(a, a).empty());
}

TEST_CASE("startup params: the SET reads the same whatever standard_conforming_strings says",
          "[startup_params]") {
    CHECK(set_startup_param_query("application_name", "o'k\\x") ==
          "SELECT pg_catalog.set_config(E'application_name', E'o''k\\\\x', false)");
}

TEST_CASE("startup params: replayed first, again after a RESET the log replays, never over a SET",
          "[startup_params][ghosts]") {
    ParamList startup = {{"application_name", "b"}, {"datestyle", "SQL"}};
    SetLog log;
    log.record(SessionChange{NamedAction::Set, Isolation::Unchanged, "datestyle",
                             "SET datestyle = German"});
    log.record(SessionChange{NamedAction::Reset, Isolation::Unchanged, "application_name",
                             "RESET application_name"});
    InflightQueue q;
    std::string out;
    StateApplied applied;
    applied.discard = true;
    applied.startup = false;
    // DISCARD ALL; the startup application_name (datestyle is the log's); the log's SET; the
    // RESET; application_name again after it.
    CHECK(queue_state_replay(q, out, 0, log, 0, false, applied, startup) == 5);
    auto at = [&](std::string_view s) { return out.find(s); };
    CHECK(at("DISCARD ALL") < at("set_config(E'application_name', E'b'"));
    CHECK(at("set_config(E'datestyle'") == std::string::npos);
    CHECK(at("SET datestyle = German") < at("RESET application_name"));
    CHECK(out.rfind("set_config(E'application_name'") > at("RESET application_name"));
    CHECK(applied.startup);
    CHECK_FALSE(applied.discard);
    // Up to date: nothing more.
    CHECK(queue_state_replay(q, out, 0, log, 0, false, applied, startup) == 0);
}
