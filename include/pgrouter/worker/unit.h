// Cutting the client's messages into units, the pieces pgrouter routes as one: a Query, a
// FunctionCall, or extended-protocol messages up to a Sync (or a Flush, after which the rest
// of the batch follows to the same backend). The cutter is the one place that decides where
// a unit ends and how it is classified; it also keeps the client's prepared statements up
// to date (Parse) and collects what the unit changes in the session. Pure: messages in,
// units out.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pgrouter/proto/message.h"
#include "pgrouter/route/classify.h"
#include "pgrouter/worker/session_state.h"
#include "pgrouter/worker/statements.h"

namespace pgrouter {

struct Unit {
    std::string bytes;  // the client's messages, as sent
    Classification cls;
    bool sync = true;  // ends with ReadyForQuery (false after a Flush: the batch goes on)
    StatementRefs refs;
    std::vector<SessionChange> changes;  // SETs and savepoints, in order
    // The statement each Describe of the unit describes, in order (a portal's: the one bound
    // to it in this unit; kUnknownStatement when it was bound before).
    std::vector<std::string> described;
    // A unit that ends with a Flush and only parses, describes and closes (asyncpg's
    // Parse/Describe/Flush): the number of messages that answer it, all of which the backend
    // sends at the Flush. Once they are in, nothing of it is in flight, and the rest of the
    // batch is a unit of its own (held, replayable). -1 for any other unit.
    int answers = -1;
};

inline const std::string kUnknownStatement(1, '\x01');

class UnitCutter {
  public:
    using Classify = std::function<Classification(std::string_view sql)>;

    UnitCutter(Statements& statements, Classify classify)
        : statements_(statements), classify_(std::move(classify)) {}

    // Adds one client message (anything but Terminate and the Copy messages, which belong to
    // no unit). True when it ends the unit: then unit() is complete until the next add().
    bool add(const proto::Message& m);
    // Whether a message of `type` longer than the classification limit is taken in part by
    // add_long() (a Query or a Parse); any other is read whole and given to add().
    static bool takes_long(char type);
    // The start of such a message, `first` (header included; the rest follows and goes
    // where the unit went). Its SQL is not classified: it ends the unit, a write for the
    // master; after a Parse the batch goes on to the same backend, as after a Flush. The
    // statement a long Parse defines is not kept to repeat elsewhere: a write, only where
    // it was parsed.
    Unit& add_long(char type, std::string_view first);
    Unit& unit() { return unit_; }

  private:
    void begin();
    void extended(const proto::Message& m);
    void use(std::string_view name);

    Statements& statements_;
    Classify classify_;
    Unit unit_;
    bool complete_ = false;  // unit_ was handed out: the next add() starts a new one
    bool have_cls_ = false;  // some message of the unit was classified
    // Bound in the unit: portal, statement.
    std::vector<std::pair<std::string, std::string>> portals_;
    int answers_ = 0;  // messages that answer the unit so far; -1 once it binds or executes
};

}  // namespace pgrouter
