// The routing policy: (a unit's classification, the session's routing state, a snapshot
// of the backends, a random draw) → the backend that runs the unit, or the error to send.
// Pure: no sockets, no clock, no shared memory, no allocation; the session feeds in what
// it knows and applies the decision. Also the read-your-writes bookkeeping, in LSNs.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "pgrouter/os/shm.h"
#include "pgrouter/route/classify.h"

namespace pgrouter {

// Read-your-writes, from the watcher's samples. The session calls note_commit() with the
// monotonic time T at which it saw a unit that may have written complete on the master
// (its ReadyForQuery after the commit, so the commit record is in the master's WAL by T).
// Any sample of the master whose query started at or after T reports a WAL position L at
// or past that commit; a standby whose replay position has reached L has replayed the
// commit, so it shows the session its own write. Until the watcher has such a sample, the
// session's reads go to the master.
//
// Contract with the watcher: health.sampled_at_ns of a master must not be later than the
// moment its sample query started (a stamp taken on receipt of the answer could postdate T
// while the position it carries predates the commit), and the master's health.lsn must be
// at or past every commit acknowledged before that moment (pg_current_wal_lsn() is, with
// synchronous_commit on or local; with synchronous_commit off use the insert position).
// A standby's health.lsn is its replay position, which only grows, so any of its samples
// is a lower bound of where it is now.
struct ReadYourWrites {
    std::int64_t commit_at_ns = 0;  // T of the latest write not yet matched by a master
                                    // sample; 0: none pending
    std::uint64_t min_lsn = 0;      // standbys serve this session only from this replay
                                    // position on; 0: no requirement
    // The master's position in the latest sample that settled a commit: at or past every
    // commit the session saw acknowledged (SHOW pgrouter.commit_lsn); 0: nothing written.
    std::uint64_t commit_lsn = 0;
};

// Records a commit seen at `now_ns` (monotonic). A later commit replaces a pending one: a
// master sample after the later T also covers the earlier commit.
void note_commit(ReadYourWrites& ryw, std::int64_t now_ns);

// Turns a pending commit into an LSN once `backends` holds a master sample taken after it:
// min_lsn becomes the larger of min_lsn and that sample's position. Idempotent; the
// session stores the result so that later, higher master samples do not raise the bar.
[[nodiscard]] ReadYourWrites settle_read_your_writes(const ReadYourWrites& ryw,
                                                     std::span<const BackendView> backends);

// Whether `standby` may serve a read of a session with requirement `ryw` (settled or not).
[[nodiscard]] bool fresh_enough(const ReadYourWrites& ryw, const BackendView& standby);

// What the router needs to know about a session.
struct RouteSession {
    int block_slot = -1;   // shm slot of the backend running the open transaction block
                           // (ReadyForQuery 'T' or 'E'); -1 outside a block
    int pinned_slot = -1;  // shm slot of the master holding the session's pinned state; -1
                           // when not pinned. Pin with the decision's slot and epoch.
    std::uint32_t pinned_epoch = 0;  // that slot's spec.epoch (a slot can change hands)
    bool read_only_default = false;  // default_transaction_read_only is on in this session
    ReadYourWrites ryw;
    RouteControls controls;  // the session's pgrouter.* parameters (route_controls.h)
};

// The router's answer. Either a backend (index into the snapshot, and its shm slot) or an
// error to send to the client (fatal: then close the session).
struct RouteDecision {
    int index = -1;  // into the snapshot; -1 with an error, or when the block's backend left
                     // the snapshot (a reload): the session keeps using its connection
    int slot = -1;   // the shm slot of the target (== block_slot inside a block)
    std::uint32_t epoch = 0;    // the target's spec.epoch, when index >= 0
    std::string_view reason;    // for debug logs ("read: weighted standby")
    std::string_view sqlstate;  // non-empty: an error
    std::string_view message;
    std::string_view detail;
    bool fatal = false;

    [[nodiscard]] bool ok() const { return sqlstate.empty(); }
};

// The errors the router can produce (PostgreSQL error style):
//  25006 read_only_sql_transaction  "no master backend is available right now" — a unit
//        that needs the master (write, read-write BEGIN, pin, pinned session) while none is
//        up. 25006 is what the client would get from a read-only server, and it does not
//        claim the connection is broken: reads keep working on it.
//  08006 connection_failure "no backend is available right now" — a read with no backend
//        at all able to serve it (or none that has replayed this session's writes).
//  57P01 admin_shutdown (fatal) "terminating connection because its session state was lost
//        with the old master" — a pinned session whose master is no longer the master.
//
// Rules, in order:
//  1. Inside a transaction block: the block's backend, whatever its health.
//  2. A pinned session, or a unit that pins: the master; 57P01 when the master changed.
//  3. Write, TransactionBegin not READ ONLY (unless default_transaction_read_only is on and
//     READ WRITE was not given): the master, else 25006.
//  4. A unit that asks about the server itself (Classification::server_local), or that
//     changes session settings (Classification::set: interpreted against the master's
//     catalog, then replayed on standbys): the master; with no master, as rule 5.
//  4b. pgrouter.route = primary (or a /* pgrouter: primary */ hint): the master, else 25006.
//  5. Everything else (Read, read-only BEGIN, Session, TransactionEnd and SET TRANSACTION
//     outside a block): weighted random among standbys that are Ok, Slave, not fenced,
//     weight > 0, lag <= lag_threshold, time lag <= staleness, fresh_enough(), and within
//     the session's controls (replayed to min_lsn, within max_staleness; a statement's hint
//     replaces the max_staleness); none → the master; no master → the same standbys
//     ignoring the configured bounds (stale beats down) but never the controls, which the
//     client asked for; none → 08006.
// `draw` is a uniformly random 64-bit number.
[[nodiscard]] RouteDecision route(const Classification& unit, const RouteSession& session,
                                  std::span<const BackendView> backends, std::uint64_t draw);

// Index of the backend that is Ok, Master and not fenced (the first, should the watcher
// publish two); -1 when there is none.
[[nodiscard]] int find_master(std::span<const BackendView> backends);

}  // namespace pgrouter
