// The routing policy (see router.h). Everything here is a function of its arguments: the
// session owns its state, the watcher owns the health figures, the caller owns the random
// source. No allocation: the candidate set is scanned twice instead of collected.
#include "pgrouter/route/router.h"

#include <algorithm>

#include "pgrouter/base/lsn.h"
#include "pgrouter/proto/sqlstate.h"

namespace pgrouter {

namespace {

constexpr std::string_view kNoMasterState = proto::kSqlstateReadOnlySqlTransaction;
constexpr std::string_view kNoMasterMessage = "no master backend is available right now";
constexpr std::string_view kNoMasterDetail =
    "Writes, read-write transactions and sessions holding state on the master are refused "
    "until a backend is master again; reads are still served by the standbys.";
constexpr std::string_view kNoBackendState = proto::kSqlstateConnectionFailure;
constexpr std::string_view kNoBackendMessage = "no backend is available right now";
constexpr std::string_view kNoBackendDetail =
    "No standby that has replayed this session's writes is up, and no master is.";
constexpr std::string_view kLostState = proto::kSqlstateAdminShutdown;
constexpr std::string_view kLostMessage =
    "terminating connection because its session state was lost with the old master";
constexpr std::string_view kLostDetail =
    "Temporary tables, LISTEN, prepared statements, WITH HOLD cursors, advisory locks or "
    "sequence state of this session lived on a backend that is no longer the master.";

bool usable(const BackendView& b) {
    return b.health.status == BackendStatus::Ok && !b.health.fenced;
}

bool is_master(const BackendView& b) { return usable(b) && b.health.role == BackendRole::Master; }

enum class Freshness : std::uint8_t { WithinThreshold, Any };

// The standby's bounds: the configured ones (lag, staleness) unless `f` is Any, and always
// the session's (its own writes, its causal token, its max_staleness).
bool serves_reads(const BackendView& b, const ReadYourWrites& ryw, const RouteControls& ctl,
                  Freshness f) {
    if (!usable(b) || b.health.role != BackendRole::Slave || b.spec.weight == 0) return false;
    if (f == Freshness::WithinThreshold &&
        (b.health.lag > b.spec.lag_threshold || b.health.lag_ns > b.spec.staleness_ns)) {
        return false;
    }
    return fresh_enough(ryw, b) && b.health.lsn >= ctl.min_lsn &&
           b.health.lag <= ctl.staleness.bytes && b.health.lag_ns <= ctl.staleness.ns;
}

// Weighted choice among the standbys that serve reads; -1 when there is none. Multiply-shift
// maps the draw onto [0, total) without a division and without modulo bias worth the name.
int pick_standby(std::span<const BackendView> backends, const ReadYourWrites& ryw,
                 const RouteControls& ctl, Freshness f, std::uint64_t draw) {
    std::uint64_t total = 0;
    for (const BackendView& b : backends) {
        if (serves_reads(b, ryw, ctl, f)) total += b.spec.weight;
    }
    if (total == 0) return -1;
    auto point = static_cast<std::uint64_t>((static_cast<unsigned __int128>(draw) * total) >> 64);
    for (std::size_t i = 0; i < backends.size(); ++i) {
        const BackendView& b = backends[i];
        if (!serves_reads(b, ryw, ctl, f)) continue;
        if (point < b.spec.weight) return static_cast<int>(i);
        point -= b.spec.weight;
    }
    return -1;  // unreachable: point < total
}

RouteDecision to(std::span<const BackendView> backends, int index, std::string_view reason) {
    RouteDecision d;
    d.index = index;
    d.slot = backends[index].slot;
    d.epoch = backends[index].spec.epoch;
    d.reason = reason;
    return d;
}

RouteDecision error(std::string_view sqlstate, std::string_view message, std::string_view detail,
                    std::string_view reason, bool fatal = false) {
    RouteDecision d;
    d.sqlstate = sqlstate;
    d.message = message;
    d.detail = detail;
    d.reason = reason;
    d.fatal = fatal;
    return d;
}

}  // namespace

void note_commit(ReadYourWrites& ryw, std::int64_t now_ns) { ryw.commit_at_ns = now_ns; }

ReadYourWrites settle_read_your_writes(const ReadYourWrites& ryw,
                                       std::span<const BackendView> backends) {
    if (ryw.commit_at_ns == 0) return ryw;
    int m = find_master(backends);
    if (m < 0 || backends[m].health.sampled_at_ns < ryw.commit_at_ns) return ryw;
    // A standby's replay stops at the end of the last record, where the master's position on
    // an idle page start points past the page header (wal_record_end()).
    std::uint64_t at = wal_record_end(backends[m].health.lsn);
    ReadYourWrites out;
    out.min_lsn = std::max(ryw.min_lsn, at);
    out.commit_lsn = std::max(ryw.commit_lsn, at);
    return out;
}

bool fresh_enough(const ReadYourWrites& ryw, const BackendView& standby) {
    return ryw.commit_at_ns == 0 && standby.health.lsn >= ryw.min_lsn;
}

int find_master(std::span<const BackendView> backends) {
    for (std::size_t i = 0; i < backends.size(); ++i) {
        if (is_master(backends[i])) return static_cast<int>(i);
    }
    return -1;
}

RouteDecision route(const Classification& unit, const RouteSession& session,
                    std::span<const BackendView> backends, std::uint64_t draw) {
    // 1. A transaction block never moves.
    if (session.block_slot >= 0) {
        for (std::size_t i = 0; i < backends.size(); ++i) {
            if (backends[i].slot == session.block_slot) {
                return to(backends, static_cast<int>(i), "inside a transaction block");
            }
        }
        RouteDecision d;
        d.slot = session.block_slot;
        d.reason = "inside a transaction block (backend no longer configured)";
        return d;
    }

    int master = find_master(backends);

    // 2. State that lives on one master.
    if (session.pinned_slot >= 0 || unit.pins_master()) {
        if (master < 0) {
            return error(kNoMasterState, kNoMasterMessage, kNoMasterDetail,
                         "pinned to the master, none available");
        }
        if (session.pinned_slot >= 0 && (backends[master].slot != session.pinned_slot ||
                                         backends[master].spec.epoch != session.pinned_epoch)) {
            return error(kLostState, kLostMessage, kLostDetail, "pinned to a former master", true);
        }
        return to(backends, master,
                  session.pinned_slot >= 0 ? "session pinned to the master"
                                           : "unit pins the session to the master");
    }

    // 3. Writes and read-write transaction blocks.
    bool needs_master = unit.kind == StatementKind::Write;
    if (unit.kind == StatementKind::TransactionBegin) {
        bool read_only = unit.read_only || (session.read_only_default && !unit.read_write);
        needs_master = !read_only;
    }
    if (needs_master) {
        if (master < 0) {
            return error(kNoMasterState, kNoMasterMessage, kNoMasterDetail,
                         "needs the master, none available");
        }
        return to(backends, master,
                  unit.kind == StatementKind::Write ? "write" : "read-write transaction");
    }

    // 4. Questions about the server itself: the client sees one server, the master. With
    // no master, a standby answers rather than nobody.
    if (!unit.server_local.empty() && master >= 0) {
        return to(backends, master, "server_local: the master answers");
    }
    // A SET is interpreted where it first runs: on the master, whose catalog is current
    // (a role or schema created a moment ago exists there); the session replays it on its
    // standbys afterwards. With no master, a standby takes it rather than nobody.
    if (unit.set && master >= 0) return to(backends, master, "SET: the master first");

    // 4b. A session (or a statement) that asked for the master.
    RouteControls ctl = with_hint(session.controls, unit.hint);
    if (ctl.primary) {
        if (master < 0) {
            return error(kNoMasterState, kNoMasterMessage, kNoMasterDetail,
                         "pgrouter.route primary, no master");
        }
        return to(backends, master, "pgrouter.route primary: the master");
    }

    // 5. Reads (and what may run anywhere).
    ReadYourWrites ryw = settle_read_your_writes(session.ryw, backends);
    int standby = pick_standby(backends, ryw, ctl, Freshness::WithinThreshold, draw);
    if (standby >= 0) return to(backends, standby, "read: weighted standby");
    if (master >= 0) {
        return to(backends, master,
                  ryw.commit_at_ns != 0 ? "read: own write not yet sampled, master"
                                        : "read: no eligible standby, master");
    }
    standby = pick_standby(backends, ryw, ctl, Freshness::Any, draw);
    if (standby >= 0) return to(backends, standby, "read: no master, lagging standby");
    return error(kNoBackendState, kNoBackendMessage, kNoBackendDetail, "no backend for a read");
}

}  // namespace pgrouter
