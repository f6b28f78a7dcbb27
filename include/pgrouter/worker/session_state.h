// What a session is, apart from its connections (PgBouncer's varcache.c, grown): the SET log
// that brings any of its backends to the client's settings, the savepoints and pending SETs
// of the open block, the pins, the transaction status and the router's view of the session.
// Pure: no sockets, no clock, no shared memory; the session feeds in each finished unit.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pgrouter/proto/message.h"
#include "pgrouter/route/classify.h"
#include "pgrouter/route/router.h"

namespace pgrouter {

// A change of the session's settings or savepoints, from the classifier's facts about one
// text (a Query, or a prepared statement that a unit executes).
struct SessionChange {
    NamedAction action = NamedAction::Set;       // SetLocal only for pgrouter.* (route_controls.h)
    Isolation isolation = Isolation::Unchanged;  // the value, for default_transaction_isolation
    std::string name;  // the parameter or savepoint; empty: a parameter that is not known
    std::string text;  // the statement that made it (replayed for Set, Reset, ResetAll)
};

// Appends the changes `text` (classified as `cls`) makes. When the classifier had to drop
// facts of a SET, the whole text is one more change, keyed by itself.
void collect_changes(std::string_view text, const Classification& cls,
                     std::vector<SessionChange>& out);

// The session's settings in force, compacted by parameter: one entry per parameter (the
// latest SET or RESET of it), RESET ALL / DISCARD ALL first when one was made, so a client
// that SETs in a loop never grows it. Entries carry increasing sequence numbers; a backend
// that has run every entry up to number N catches up by running those after N, in order.
class SetLog {
  public:
    struct Entry {
        std::string key;   // the parameter; the text itself for a parameter not known
        std::string text;  // what to run
        Isolation isolation = Isolation::Unchanged;
        std::uint64_t seq = 0;
        bool reset = false;  // a RESET (key: the parameter) or RESET ALL (key empty)
    };

    // Records a Set, Reset or ResetAll (other actions are ignored).
    void record(const SessionChange& c);
    // The number of the latest entry ever recorded (0: none).
    std::uint64_t head() const { return seq_; }
    // The entries a backend up to date to `applied` must still run, in order.
    template <class F>
    void since(std::uint64_t applied, F&& run) const {
        for (const Entry& e : entries_) {
            if (e.seq > applied) run(e);
        }
    }
    const std::vector<Entry>& entries() const { return entries_; }
    // default_transaction_isolation is SERIALIZABLE in the session (a standby refuses such
    // transactions, so its blocks start on the master).
    bool serializable_default() const { return serializable_default_; }

  private:
    std::vector<Entry> entries_;
    std::uint64_t seq_ = 0;
    bool serializable_default_ = false;
};

// A unit that came back with its ReadyForQuery.
struct UnitOutcome {
    proto::TransactionStatus status = proto::TransactionStatus::Idle;  // after the unit
    int slot = -1;                                                     // the backend that ran it
    bool on_master = false;                                            // that backend is the master
    std::uint32_t epoch = 0;                                           // its spec.epoch
    bool error = false;                                                // an ErrorResponse came back
    std::string_view tag;  // the last CommandComplete tag
    const Classification* cls = nullptr;
    const std::vector<SessionChange>* changes = nullptr;
    std::int64_t now_ns = 0;  // when (monotonic), for read-your-writes
};

// The start of a transaction block on a standby that can still move to the master: the
// block ran only BEGIN and SET TRANSACTION (simple Queries) so far. When its next statement
// is one that only a standby refuses (SET TRANSACTION ISOLATION LEVEL SERIALIZABLE), the
// session rolls the standby's block back, runs these on the master, and the statement there.
class MovableBlock {
  public:
    // A unit finished. `text`: its bytes when it only sets transaction modes and is a simple
    // Query (empty otherwise); `on_standby`: where it ran; the block status before and after.
    void finished(bool was_in_block, bool in_block, bool on_standby, bool error,
                  std::string_view text);
    bool movable() const { return !start_.empty(); }
    const std::vector<std::string>& start() const { return start_; }
    void clear() { start_.clear(); }

  private:
    std::vector<std::string> start_;  // the block's units so far, as sent
};

class SessionState {
  public:
    // Applies a finished unit. A SET made outside a block holds at once; one made inside a
    // block holds only if the block commits (a rolled-back SET must not reach the session's
    // other backends), and ROLLBACK TO a savepoint drops the SETs made after it. True when
    // the session became pinned or unpinned.
    bool finish(const UnitOutcome& u);
    // The block's backend was lost: the block and its pending SETs are gone.
    void block_lost();

    const SetLog& log() const { return log_; }
    RouteSession& route() { return route_; }
    const RouteSession& route() const { return route_; }
    proto::TransactionStatus txn_status() const { return txn_status_; }
    bool in_block() const { return txn_status_ != proto::TransactionStatus::Idle; }
    std::uint16_t pins() const { return pins_; }
    // Whether to ask the server, in front of the session's next unit, if the session still
    // holds a session-level advisory lock: a unit that may have taken none (a try-lock) or
    // released the last one (an unlock), or that failed after a lock function, finished;
    // that lock is the session's only pin; no block is open (between transactions only
    // session-level advisory locks remain, so the answer is about those).
    bool advisory_check_due() const {
        return advisory_unsure_ && pins_ == kPinAdvisoryLock && !in_block();
    }
    // Whether to ask right behind unit `cls`, in the same write, rather than in front of the
    // next unit (so that a client idle after its last unlock is not left pinned): the unit
    // may release or not take the session's advisory lock, it neither opens a block nor
    // takes COPY data, it is sent between transactions (so the question runs between
    // transactions too), and after it that lock is the session's only pin.
    bool advisory_check_behind(const Classification& cls) const;
    // The question was sent, or answered that a lock is held: not asked again until another
    // unit calls a lock function.
    void advisory_check_sent() { advisory_unsure_ = false; }
    // The server answered that the session holds no advisory lock: kPinAdvisoryLock goes
    // (and the pinned backend with it when no other pin is left). True when a pin went.
    bool advisory_locks_gone();
    // The master's WAL position after the session's latest SET that names catalog objects
    // (0: none known): a standby serves the session only once it has replayed that far.
    std::uint64_t catalog_lsn() const { return catalog_lsn_; }
    void catalog_seen(std::uint64_t lsn) { catalog_lsn_ = std::max(catalog_lsn_, lsn); }
    // A backend could not take the session's state: standbys serve the session only once
    // the watcher has seen them replay the catalog position of its SETs.
    void state_refused() { route_.ryw.min_lsn = std::max(route_.ryw.min_lsn, catalog_lsn_); }
    // The pending changes of the open block (tests).
    const std::vector<SessionChange>& pending() const { return pending_; }

    // The pgrouter.* parameters given at connection start (startup_controls()): the values
    // RESET returns to. An error for a bad one: the connection is refused, as PostgreSQL
    // refuses a bad -c option.
    [[nodiscard]] std::optional<ControlError> start_controls(
        std::span<const std::pair<std::string, std::string>> settings);
    // The pgrouter.* parameters in force, as the units finished so far left them: SETs of
    // the open block count at once (as on the server), SET LOCAL until the block ends, a
    // rollback takes them back, ROLLBACK TO a savepoint takes back those made after it (SET
    // LOCAL too; RELEASE keeps them), RESET ALL and DISCARD ALL reset them.
    // Their routing part is route().controls.
    const ControlValues& controls() const { return controls_; }

  private:
    bool finish_unit(const UnitOutcome& u);
    // The pins after unit `u`; `unsure`: those of them it may have dropped (or not taken),
    // which only the server knows. True when they changed.
    bool set_pins(const UnitOutcome& u, std::uint16_t pins, std::uint16_t unsure);
    void update_controls();
    void note_changes(const UnitOutcome& u, bool was_in_block);
    void pending_change(const SessionChange& c);

    SetLog log_;
    RouteSession route_;
    proto::TransactionStatus txn_status_ = proto::TransactionStatus::Idle;
    std::uint16_t pins_ = 0;
    bool advisory_unsure_ = false;  // kPinAdvisoryLock may be held for nothing (see above)
    std::uint64_t catalog_lsn_ = 0;
    bool block_wrote_ = false;  // the open block wrote on the master
    // The open block's changes (SET LOCAL pgrouter.* included), savepoints as markers.
    std::vector<SessionChange> pending_;
    ControlValues start_controls_;    // pgrouter.* at connection start
    ControlValues controls_;          // pgrouter.* in force
    bool controls_in_block_ = false;  // the open block touched pgrouter.*
};

}  // namespace pgrouter
