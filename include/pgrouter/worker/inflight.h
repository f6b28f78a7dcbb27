// The units a session has sent to its backends and whose answers have not all come back,
// oldest first, and what each backend message means for the unit it answers: forward it to
// the client, swallow it (the answer to a message pgrouter injected), hold it (a read on a
// standby that may still have to run again on the master), drop it (a SET replay's answer),
// replay the unit on the master (the standby refused it), or finish the unit. Pure: the
// session does what the answer says.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pgrouter/proto/message.h"
#include "pgrouter/route/classify.h"
#include "pgrouter/worker/session_state.h"
#include "pgrouter/worker/statements.h"

namespace pgrouter {

// A unit sent to a backend whose responses have not all come back yet.
struct InFlight {
    int slot = -1;
    int swallow = 0;  // ParseComplete/CloseComplete of injected messages, dropped
    // What each ParseComplete/CloseComplete of the unit answers, in order (kInjected, then
    // the client's StatementRefs::completes; push() puts the injected ones first), and how
    // many came: after an error the server sends none for the rest, whose Parses it never
    // took (Statements::settle).
    std::vector<std::uint64_t> completes;
    std::size_t completed = 0;
    bool ghost = false;  // injected by pgrouter (SET replay): nothing reaches the client
    bool hold = false;   // a read on a standby: hold responses back while a replay is possible
    bool sync = true;    // ends with ReadyForQuery (false after a Flush: the batch goes on)
    bool error = false;  // an ErrorResponse came back
    // A ghost that brings its backend to the session's state (a SET replay, the catalog
    // check): if it fails, the backend must not serve the session's next unit.
    bool replays_state = false;
    bool captures_lsn = false;     // a ghost asking the master its WAL position (its DataRow)
    bool checks_advisory = false;  // a ghost asking whether the session holds advisory locks
    bool unapplied = false;        // the session's state failed to apply before this unit
    // A simple Query that only sets the transaction's modes (BEGIN READ ONLY), sent to a
    // standby: its bytes, should its block move to the master (MovableBlock).
    std::string modes_text;
    // The statements its Describes describe, in order, and how many were answered; a ghost
    // with verifies_shape re-parsed them to compare their result with the client's.
    std::vector<std::string> described;
    std::size_t described_at = 0;
    std::string params;  // the ParameterDescription before the next RowDescription/NoData
    bool verifies_shape = false;
    // An unsynced unit whose answers can be counted (Unit::answers): how many are still due.
    int answers_left = -1;
    std::int64_t sent_ns = 0;  // when it was sent (SessionStats::unit_sent)
    Classification cls;
    std::string tag;                     // the last CommandComplete tag ("COMMIT", ...)
    std::vector<SessionChange> changes;  // what it changes in the session, if it succeeds
};

// What an error from a standby says about the statement: nothing special, or that only a
// standby refuses it (the master would run it): 25006 (a write: "cannot execute INSERT in a
// read-only transaction", or a command refused during recovery), 0A000 "cannot use
// serializable mode in a hot standby" / "cannot set transaction read-write mode during
// recovery", 55000 "recovery is in progress" (WAL control functions). 0A000 and 55000 are
// told apart from their other uses by PostgreSQL's (English) message.
enum class StandbyRefusal : std::uint8_t { None, Write, Feature };
[[nodiscard]] StandbyRefusal standby_refusal(std::string_view sqlstate, std::string_view message);

enum class Answer : std::uint8_t {
    Swallow,        // the answer to an injected Parse/Close: nothing reaches the client
    Forward,        // to the client, now
    Hold,           // kept back with the held read's answer so far
    Release,        // the held answer, this message last, may go to the client: release_held()
    Drop,           // part of a ghost's answer, or of a refused read's: nothing reaches the client
    StateFailed,    // a ghost bringing the backend to the session's state failed: that backend
                    // must not serve the session until it is brought up to date again
    Lsn,            // the DataRow of a ghost that asked the master its WAL position
    AdvisoryLocks,  // the DataRow of a ghost that asked whether the session holds advisory
                    // locks (advisory_locks_held())
    Replay,         // the standby refused the held read (or could not take the session's
                    // state before it): run it again on the master
    Lost,           // a FATAL (or PANIC): the backend is going away; it answers for nothing
                    // more, and the session treats it as the backend's loss (held_read_lost()
                    // for a held read). The FATAL itself never reaches the client.
    Done,           // ReadyForQuery: the head unit is finished (release_held() first when held)
    Complete,       // forward it: the last answer of an unsynced unit that counts its answers
};

class InflightQueue {
  public:
    bool empty() const { return units_.empty(); }
    std::size_t size() const { return units_.size(); }
    InFlight& front() { return units_.front(); }
    InFlight& back() { return units_.back(); }
    const std::vector<InFlight>& units() const { return units_; }
    // The latest unit whose answer goes to the client (not a ghost); null when none.
    const InFlight* last_answering() const;
    // Whether state replays (or shape checks) sent to backend `slot` are still to be answered.
    bool replaying_state(int slot) const;

    // Queues a unit. The rest of a flushed batch on the same backend joins the batch (one
    // unit, one ReadyForQuery; what it injected is answered after the batch's own messages).
    // A unit queued behind ghosts that replay the session's state must be a held read: should
    // they fail, it is replayed on the master (a unit that cannot be held waits for the
    // ghosts' answers before it is sent).
    void push(InFlight f);
    void pop_front() { units_.erase(units_.begin()); }
    // Everything in flight is lost (with its held answer).
    void clear() {
        units_.clear();
        held_.clear();
    }

    // The statement whose Describe `m` (a RowDescription or NoData of the head unit) answers;
    // null for any other message. A statement's Describe sends its ParameterDescription
    // first: `params` gets that one's payload ("" for a portal's Describe).
    const std::string* answers_describe(const proto::Message& m, std::string& params);
    // What message `m` from the head unit's backend means for that unit.
    Answer on_message(const proto::Message& m);
    // Appends the held answer to `client_out`; the head unit is no longer held.
    void release_held(std::string& client_out);

    // Is a read held? Only the ghosts of its SET replay can be in flight with it, in front.
    bool holds_read() const;
    // The held read's backend closed: it must run again elsewhere, and everything that was
    // in flight there is lost.
    void held_read_lost();
    // A replay is due (after Replay or held_read_lost()): clears it. `wrote`: the standby
    // refused a write (25006), so the replay counts as one for read-your-writes.
    bool take_replay(bool& wrote);
    // Why the last replay was due: the standby's SQLSTATE (08006: it was lost; empty: the
    // session's state did not apply there).
    std::string_view replay_sqlstate() const { return replay_sqlstate_; }

  private:
    // Units in flight, oldest first: rarely more than two, so a vector (which, unlike a
    // deque, costs nothing while empty) serves as the queue.
    std::vector<InFlight> units_;
    std::string held_;           // responses of a held read
    bool replay_ = false;        // the held read must run again, on the master
    bool replay_wrote_ = false;  // ... because it writes (25006), not for lack of a feature
    std::string_view replay_sqlstate_;
};

}  // namespace pgrouter
