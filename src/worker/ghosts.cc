// Ghost units (see ghosts.h).
#include "pgrouter/worker/ghosts.h"

#include <algorithm>

#include "pgrouter/health/health.h"
#include "pgrouter/proto/encoder.h"

namespace pgrouter {

namespace {

void queue(InflightQueue& q, int slot, bool replays_state, bool captures_lsn,
           bool checks_advisory = false) {
    InFlight g;
    g.slot = slot;
    g.ghost = true;
    g.replays_state = replays_state;
    g.captures_lsn = captures_lsn;
    g.checks_advisory = checks_advisory;
    q.push(std::move(g));
}

}  // namespace

int queue_state_replay(InflightQueue& q, std::string& out, int slot, const SetLog& log,
                       std::uint64_t catalog_lsn, bool standby, StateApplied& applied,
                       const ParamList& startup) {
    int queued = 0;
    auto replay = [&](std::string_view text) {
        proto::encode_query(out, text);
        queue(q, slot, true, false);
        ++queued;
    };
    if (applied.discard) {
        // The previous client's settings, statements, cursors and locks go; the connection
        // keeps its startup parameters, which are this client's (the pool's key has them).
        replay("DISCARD ALL");
        applied.discard = false;
        applied.startup = false;
    }
    // The client's startup values the connection's login lacks, but for those the log SETs.
    auto set_by_log = [&](const std::string& name) {
        const auto& entries = log.entries();
        return std::any_of(entries.begin(), entries.end(),
                           [&](const SetLog::Entry& e) { return e.key == name && !e.reset; });
    };
    auto startup_values = [&](std::string_view only) {
        for (const auto& [name, value] : startup) {
            if ((only.empty() || name == only) && !set_by_log(name)) {
                replay(set_startup_param_query(name, value));
            }
        }
    };
    if (!applied.startup) startup_values({});
    applied.startup = true;
    log.since(applied.sets, [&](const SetLog::Entry& e) {
        replay(e.text);
        if (e.reset) startup_values(e.key);  // RESET returns to the login's value
    });
    applied.sets = log.head();
    if (standby && catalog_lsn > applied.catalog_lsn) {
        replay(catalog_check_query(catalog_lsn));
        applied.catalog_lsn = catalog_lsn;
    }
    return queued;
}

void queue_lsn_capture(InflightQueue& q, std::string& out, int slot) {
    // The flush position, not the insert one: a committed catalog change (synchronous
    // commit) is flushed before others see it, while the insert position also counts
    // records nobody waits for (a background snapshot of running transactions), which
    // reach the standbys only at the WAL writer's next round, after the check gave up.
    proto::encode_query(out, "SELECT pg_catalog.pg_current_wal_flush_lsn()");
    queue(q, slot, false, true);
}

void queue_advisory_check(InflightQueue& q, std::string& out, int slot) {
    proto::encode_query(out,
                        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = "
                        "'advisory' AND pid = pg_catalog.pg_backend_pid() AND granted)");
    queue(q, slot, false, false, true);
}

std::optional<bool> advisory_locks_held(std::string_view first_column) {
    if (first_column == "t") return true;
    if (first_column == "f") return false;
    return std::nullopt;
}

void queue_shape_check(InflightQueue& q, std::string& out, int slot, Statements& statements,
                       const std::vector<std::string>& names) {
    statements.reparse(slot, names, out);
    for (const std::string& name : names) {
        proto::MessageBuilder(out, proto::FrontendMsg::Describe).u8('S').cstr(name);
    }
    proto::MessageBuilder(out, proto::FrontendMsg::Sync);
    InFlight g;
    g.slot = slot;
    g.ghost = true;
    g.verifies_shape = true;
    g.described = names;
    q.push(std::move(g));
}

void queue_statement_close(InflightQueue& q, std::string& out, int slot, Statements& statements,
                           const std::vector<std::string>& names) {
    statements.close_on(slot, names, out);
    proto::MessageBuilder(out, proto::FrontendMsg::Sync);
    queue(q, slot, false, false);
}

void queue_ghost(InflightQueue& q, std::string& out, int slot, std::string_view bytes) {
    out += bytes;
    queue(q, slot, false, false);
}

std::string catalog_check_query(std::uint64_t lsn) {
    // Replay runs a few milliseconds behind a busy master: wait for it, briefly (about
    // kWaitMs), rather than fail at once and send the read to the master.
    constexpr int kWaitMs = 50;
    std::string lsn_text = format_lsn(lsn);
    std::string replayed =
        "pg_catalog.pg_last_wal_replay_lsn() >= '" + lsn_text + "'::pg_catalog.pg_lsn";
    return "DO $pgrouter$ BEGIN FOR i IN 1.." + std::to_string(kWaitMs) + " LOOP EXIT WHEN " +
           replayed + "; PERFORM pg_catalog.pg_sleep(0.001); END LOOP; IF NOT COALESCE(" +
           replayed + ", false) THEN RAISE EXCEPTION 'pgrouter: this standby has not replayed " +
           "the catalog up to " + lsn_text + "'; END IF; END $pgrouter$";
}

}  // namespace pgrouter
