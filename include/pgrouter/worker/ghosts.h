// Ghost units: statements pgrouter sends a backend on the session's behalf, whose answers
// the client never sees. The session's SETs replayed on a backend that has not run them, the
// check that a standby has replayed the catalog the session's SETs were interpreted against,
// the question of the master's WAL position after such a SET, the question whether the
// session still holds an advisory lock, and the start of a block that moves to the master.
// Pure: each writes its messages into the backend's output buffer and queues its InFlight;
// the session sends the buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pgrouter/worker/inflight.h"
#include "pgrouter/worker/session_state.h"
#include "pgrouter/worker/startup_params.h"
#include "pgrouter/worker/statements.h"

namespace pgrouter {

// How far one backend connection has taken the session's state.
struct StateApplied {
    std::uint64_t sets = 0;         // the SET log's entries up to this number ran there
    std::uint64_t catalog_lsn = 0;  // a standby: checked to have replayed the catalog this far
    bool discard = false;           // it carries another session's state: DISCARD ALL first
    bool startup = true;            // the client's startup parameters hold there (startup_params.h)
};

// Queues on backend `slot` what it lacks of the session's state: DISCARD ALL when it carries
// another session's (`applied.discard`), the client's startup parameters that its login
// lacks (`startup`, startup_difference(); again after each RESET of them the log replays,
// unless the log SETs them itself), the SET log's entries since `applied.sets`, and on a
// standby the catalog check when `catalog_lsn` passed what it was checked at. Each is a state
// replay: should one fail, the backend must not serve the session's next unit. Returns how
// many were queued.
int queue_state_replay(InflightQueue& q, std::string& out, int slot, const SetLog& log,
                       std::uint64_t catalog_lsn, bool standby, StateApplied& applied,
                       const ParamList& startup = {});

// Queues the question of the master's flushed WAL position (Answer::Lsn brings its DataRow).
void queue_lsn_capture(InflightQueue& q, std::string& out, int slot);

// Queues the question whether the session's backend holds a granted advisory lock
// (Answer::AdvisoryLocks brings its DataRow, a boolean). Sent between transactions, where
// only session-level advisory locks remain (SessionState::advisory_check_due()).
void queue_advisory_check(InflightQueue& q, std::string& out, int slot);

// The answer of queue_advisory_check()'s DataRow, its first column's text ("t" or "f");
// nullopt for anything else (a NULL, a row not understood): the pin stays.
[[nodiscard]] std::optional<bool> advisory_locks_held(std::string_view first_column);

// Queues, for statements `names` that `slot` lacks, a Parse of each (noted in `statements`),
// a Describe of each and a Sync: a ghost whose RowDescriptions and ParameterDescriptions the
// session compares with what the client saw (InflightQueue::answers_describe()).
void queue_shape_check(InflightQueue& q, std::string& out, int slot, Statements& statements,
                       const std::vector<std::string>& names);

// Queues a Close of each of `names` on `slot` (noted in `statements`) and a Sync.
void queue_statement_close(InflightQueue& q, std::string& out, int slot, Statements& statements,
                           const std::vector<std::string>& names);

// Queues `bytes` (whole protocol messages ending in a ReadyForQuery's worth: a Query) as a
// ghost whose answer is dropped.
void queue_ghost(InflightQueue& q, std::string& out, int slot, std::string_view bytes);

// A statement that succeeds on a standby once it has replayed WAL up to `lsn` (waiting for
// that up to about 50 ms), and fails (P0001, with a message saying so) on one that has not.
// Needs PL/pgSQL, there by default; without it the check fails and the standby does not
// serve the session's reads until the watcher has seen it replay that far.
[[nodiscard]] std::string catalog_check_query(std::uint64_t lsn);

}  // namespace pgrouter
