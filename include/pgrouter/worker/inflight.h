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

namespace pgrouter {

// A unit sent to a backend whose responses have not all come back yet.
struct InFlight {
    int slot = -1;
    int swallow = 0;     // ParseComplete/CloseComplete of injected messages, dropped
    bool ghost = false;  // injected by pgrouter (SET replay): nothing reaches the client
    bool hold = false;   // a read on a standby: hold responses back while a replay is possible
    bool sync = true;    // ends with ReadyForQuery (false after a Flush: the batch goes on)
    bool error = false;  // an ErrorResponse came back
    Classification cls;
    std::string tag;                     // the last CommandComplete tag ("COMMIT", ...)
    std::vector<SessionChange> changes;  // what it changes in the session, if it succeeds
};

enum class Answer : std::uint8_t {
    Swallow,     // the answer to an injected Parse/Close: nothing reaches the client
    Forward,     // to the client, now
    Hold,        // kept back with the held read's answer so far
    Release,     // the held answer, this message last, may go to the client: release_held()
    Drop,        // part of a ghost's answer, or of a refused read's: nothing reaches the client
    GhostError,  // a SET replay failed (dropped; worth a warning)
    Replay,      // the standby refused the held read: run it again on the master
    Lost,        // a FATAL (or PANIC): the backend is going away; it answers for nothing
                 // more, and the session treats it as the backend's loss (held_read_lost()
                 // for a held read). The FATAL itself never reaches the client.
    Done,        // ReadyForQuery: the head unit is finished (release_held() first when held)
};

class InflightQueue {
  public:
    bool empty() const { return units_.empty(); }
    std::size_t size() const { return units_.size(); }
    InFlight& front() { return units_.front(); }
    InFlight& back() { return units_.back(); }
    const std::vector<InFlight>& units() const { return units_; }

    // Queues a unit. The rest of a flushed batch on the same backend joins the batch (one
    // unit, one ReadyForQuery).
    void push(InFlight f);
    void pop_front() { units_.erase(units_.begin()); }
    // Everything in flight is lost (with its held answer).
    void clear() {
        units_.clear();
        held_.clear();
    }

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

  private:
    // Units in flight, oldest first: rarely more than two, so a vector (which, unlike a
    // deque, costs nothing while empty) serves as the queue.
    std::vector<InFlight> units_;
    std::string held_;           // responses of a held read
    bool replay_ = false;        // the held read must run again, on the master
    bool replay_wrote_ = false;  // ... because it writes (25006), not for lack of a feature
};

}  // namespace pgrouter
