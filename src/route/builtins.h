// The classifier's tables of built-in names, apart from the walk that consults them: what
// calling a built-in function means for routing (writes, pins, set_config), and the
// server-local table: functions, relations and settings whose answer describes the server
// that runs the statement (its recovery state and WAL, its backends and locks, its
// statistics, its transaction ids, its files) rather than the data. A client of pgrouter
// sees one server, which is not in recovery, so reads of these go to the master. Private to
// the classifier; constant data and pure lookups.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace pgrouter {

// What calling a built-in function means for routing.
enum class Effect : std::uint8_t {
    Write,           // must run on the master
    WritePinSeq,     // setval: master, and currval/lastval state afterwards
    PinSeq,          // currval, lastval: needs this session's sequence state
    WritePinLock,    // session advisory lock
    WriteTryLock,    // pg_try_advisory_lock*(): may take nothing (it returns false)
    WriteUnlock,     // pg_advisory_unlock*(k): may release the session's last lock
    WriteUnpinLock,  // pg_advisory_unlock_all(): drops every session advisory lock
    SetConfig,       // set_config(name, value, is_local)
};

struct FunctionRule {
    std::string_view name;
    Effect effect;
    std::string_view reason;
};

// Every function rule; names are lower-case and unqualified (built-ins of pg_catalog).
[[nodiscard]] std::span<const FunctionRule> function_rules();

// The reasons, one per family of the table (Classification::server_local is one of them).
inline constexpr std::string_view kServerLocalRecovery = "recovery and WAL";
inline constexpr std::string_view kServerLocalBackend = "the session's backend";
inline constexpr std::string_view kServerLocalStatistics = "statistics";
inline constexpr std::string_view kServerLocalXid = "transaction ids";
inline constexpr std::string_view kServerLocalServer = "server files and administration";

// What a name in the table refers to.
enum class ServerLocalObject : unsigned char { Function, Relation, Setting };

// Why `name` (lower-case, unqualified) is server-local, as a static literal ("recovery and
// WAL", "statistics"...); empty when it is not in the table.
[[nodiscard]] std::string_view server_local(ServerLocalObject what, std::string_view name);

// Whether setting parameter `name` (lower-case) names catalog objects that a statement
// resolves against the catalog (a role, a schema, a tablespace, a text search
// configuration): on a standby it means what it meant on the master only once the standby
// has replayed the catalog as of the SET. An empty name (not known) counts as one.
[[nodiscard]] bool names_catalog_objects(std::string_view name);

}  // namespace pgrouter
