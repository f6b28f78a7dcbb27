// The pgrouter.* session parameters (route, max_staleness, min_lsn and the read-only
// commit_lsn) and the statement hints (/* pgrouter: primary */): their table, the syntax of
// their values, PostgreSQL's errors for bad ones, and the routing bounds they stand for.
// Pure: text in, values or errors out. The session state keeps them through SET, RESET and
// rollbacks (session_state.h); the router obeys them (router.h). Never touches a socket.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgrouter {

inline constexpr std::uint64_t kNoByteBound = ~0ULL;
inline constexpr std::int64_t kNoTimeBound = INT64_MAX;

// How far a standby may trail the master and still serve a read: WAL bytes (its lag) and
// time (how long ago the master was where the standby's replay is now). Both must hold.
struct StalenessBound {
    std::uint64_t bytes = kNoByteBound;
    std::int64_t ns = kNoTimeBound;

    [[nodiscard]] bool bounded() const { return bytes != kNoByteBound || ns != kNoTimeBound; }
    // The stricter of both bounds, each figure on its own.
    [[nodiscard]] StalenessBound tighter(const StalenessBound& o) const;
    bool operator==(const StalenessBound&) const = default;
};

// What the router obeys for a session (RouteSession::controls), or for one statement when
// its hint is laid over the session's values (with_hint()).
struct RouteControls {
    bool primary = false;       // pgrouter.route = primary: every statement on the master
    StalenessBound staleness;   // pgrouter.max_staleness
    std::uint64_t min_lsn = 0;  // pgrouter.min_lsn: standbys replayed at least this far
    bool operator==(const RouteControls&) const = default;
};

// A hint at the start of a statement's text: /* pgrouter: primary */,
// /* pgrouter: max_staleness=1s */, or both, separated by commas or blanks.
struct StatementHint {
    bool primary = false;
    StalenessBound staleness;
    [[nodiscard]] bool any() const { return primary || staleness.bounded(); }
};

// The hint of `sql`: the first comment before its first token, when that comment starts
// with "pgrouter:". Items it does not know are ignored (a comment never fails a statement).
[[nodiscard]] StatementHint parse_hint(std::string_view sql);

// The session's controls with a statement's hint on top.
[[nodiscard]] RouteControls with_hint(const RouteControls& session, const StatementHint& hint);

enum class Control : std::uint8_t { Route, MaxStaleness, MinLsn, CommitLsn };

// Whether `name` (lower-cased) is in pgrouter's namespace, "pgrouter." and more.
[[nodiscard]] bool is_control_name(std::string_view name);
// The parameter `name` (lower-cased) names; nullopt for any other name.
[[nodiscard]] std::optional<Control> find_control(std::string_view name);
[[nodiscard]] std::string_view control_name(Control c);

// An error worded as PostgreSQL words it (message, detail, hint; empty ones are left out).
struct ControlError {
    std::string_view sqlstate;
    std::string message;
    std::string detail;
    std::string hint;
};

// SET or RESET of a pgrouter.* name that is not one of the parameters: 42602, PostgreSQL
// 15's answer for a name under a prefix an extension reserved.
[[nodiscard]] ControlError unknown_control(std::string_view name);
// SHOW of such a name: 42704, as for any parameter that does not exist.
[[nodiscard]] ControlError unrecognized_control(std::string_view name);

// A max_staleness value: "0" (nothing behind), a size ("64kB": B, kB, MB, GB, TB) or a
// duration ("100ms": us, ms, s, min, h, d; a bare number is milliseconds). Units as
// PostgreSQL writes them, matched without regard to case; blanks between number and unit.
[[nodiscard]] std::optional<StalenessBound> parse_staleness(std::string_view value);

// The values of the settable parameters in force, with what SHOW answers for them.
class ControlValues {
  public:
    // SET: nothing changes on an error (22023 for a bad value, 55P02 for commit_lsn).
    [[nodiscard]] std::optional<ControlError> set(Control c, std::string_view value);
    // RESET: back to `base`'s value (the connection's start-up value, or the default).
    void reset(Control c, const ControlValues& base);
    [[nodiscard]] const RouteControls& controls() const { return controls_; }
    // What SHOW answers: "auto"/"primary", the max_staleness as set ("" when not set), the
    // min_lsn as an LSN ("0/0" when not set). Not for CommitLsn (the session knows it).
    [[nodiscard]] std::string show(Control c) const;

  private:
    RouteControls controls_;
    std::string staleness_text_;
};

// A statement, as the grammar accepted it, that sets, resets or shows one parameter.
struct ControlStatement {
    enum class Verb : std::uint8_t { Other, Set, SetLocal, Reset, ResetAll, Show };
    Verb verb = Verb::Other;
    std::string name;                 // lower-cased
    std::vector<std::string> values;  // Set, SetLocal: each value as text (quotes removed)
};

// Reads SET [SESSION | LOCAL] name {TO | =} value[, ...], SET name {TO | =} DEFAULT (a Reset),
// RESET name, RESET ALL and SHOW name; comments and blanks anywhere. Anything else is Other.
[[nodiscard]] ControlStatement read_control_statement(std::string_view stmt);

// The pgrouter.* settings given at connection start: "-c name=value" and "--name=value" in
// the options parameter (backslash escapes a blank, as PostgreSQL splits it), in order.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> startup_controls(
    std::string_view options);

}  // namespace pgrouter
