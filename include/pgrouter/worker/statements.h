// The client's prepared statements, and which of the session's backends has which of them
// (PgBouncer's prepare.c): a statement the client parsed on one backend is parsed again,
// unseen, on another before a unit that uses it goes there, and a statement the client
// closes is closed lazily on the other backends that have it. Pure: it writes protocol
// messages into the caller's buffer and never touches a socket. A Parse defines its
// statement as the unit is cut, before the server answers; the definition holds only once
// the server acknowledges it (settle()), else the one before comes back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "pgrouter/route/classify.h"

namespace pgrouter {

// What a ParseComplete or CloseComplete of a unit answers, in the order the server sends
// them: the version a client's Parse defined (Statement::version, never 0), a client's
// Close (of a statement or a portal), or a Parse or Close pgrouter injected before the
// client's messages (Statements::prepare), whose answer the client must not see.
inline constexpr std::uint64_t kClientClose = 0;
inline constexpr std::uint64_t kInjected = std::numeric_limits<std::uint64_t>::max();
inline bool is_client_parse(std::uint64_t c) { return c != kClientClose && c != kInjected; }

// What one unit does with prepared statements.
struct StatementRefs {
    std::vector<std::string> uses;              // named by Bind, Describe 'S', Close 'S'
    std::set<std::string, std::less<>> parsed;  // defined by a Parse of the unit
    std::set<std::string, std::less<>> closed;  // closed by a Close 'S' of the unit
    // Its Parses and Closes in order (kClientClose, or the version a Parse defined): what
    // each ParseComplete/CloseComplete the unit brings answers.
    std::vector<std::uint64_t> completes;
    void clear() {
        uses.clear();
        parsed.clear();
        closed.clear();
        completes.clear();
    }
};

// A named (or the unnamed) prepared statement as the client defined it.
struct Statement {
    std::string parse;  // the client's whole Parse message, to repeat on other backends
                        // (empty: too long to keep, never repeated)
    std::size_t sql_at = 0;
    std::size_t sql_size = 0;
    Classification cls;
    std::uint64_t version = 0;  // a new Parse of the same name is a new version
    // Its result as the client last saw it described (result_shape() of the RowDescription,
    // "" for NoData); described: a Describe answered at all.
    std::string shape;
    bool described = false;
    std::string params;  // its ParameterDescription, when a Describe of it showed one
    std::string_view sql() const { return std::string_view(parse).substr(sql_at, sql_size); }
};

class Statements {
  public:
    // A Parse (the whole message) defining `name` as `sql`, which lies inside `parse`. The
    // definition is pending until settle() (the definition it replaces is kept till then).
    const Statement& define(std::string_view name, std::string_view parse, std::string_view sql,
                            const Classification& cls);
    // A unit is answered: of its `completes` (InFlight::completes, in order), the first
    // `answered` got their ParseComplete/CloseComplete, the rest none (an error made the
    // server skip them, or refused the Parse itself). Each acknowledged Parse's definition
    // holds; each other one is undone: its name is defined as before (a named statement
    // the server refused keeps its old definition there) and its backend has what it had.
    // A refused Parse of the unnamed statement leaves no unnamed statement: the server
    // drops the old one before it parses the new. Definitions pending from before the
    // unit's, whose units were never answered (not sent, or lost with their backend), are
    // undone first.
    void settle(const std::vector<std::uint64_t>& completes, std::size_t answered);
    // Definitions not settled yet (tests).
    std::size_t pending() const { return pending_.size(); }
    const Statement* find(std::string_view name) const;
    // The latest definition of `name` (there must be one) becomes `sql` inside `parse`, in
    // the same version: the unit that defines it sends that text instead.
    void rewrite(std::string_view name, std::string_view parse, std::string_view sql,
                 const Classification& cls);

    // Before a unit goes to backend `slot`: appends to `out` a Close for each statement the
    // client closed since on another backend and a Parse for each the unit uses that this
    // backend lacks (or has in an older version), and notes what the unit itself parses and
    // closes. Returns how many ParseComplete/CloseComplete the injected messages will bring,
    // which the client must not see.
    // The versions the unit's own Parses define are noted as this backend's, pending too.
    int prepare(int slot, const StatementRefs& refs, std::string& out);
    // The client saw statement `name` described: result_shape() of the RowDescription (""
    // for NoData) and, from a Describe of the statement, its ParameterDescription.
    void note_shape(std::string_view name, const std::string& shape, const std::string& params);
    // The statements the unit uses that `slot` lacks and whose result the client has seen
    // described: parsed there afresh, they must describe the same result (PostgreSQL's own
    // check: "cached plan must not change result type").
    std::vector<std::string> to_verify(int slot, const StatementRefs& refs) const;
    // Appends a Parse of each of `names` for `slot` and notes that it has them.
    void reparse(int slot, const std::vector<std::string>& names, std::string& out);
    // Appends a Close of each of `names` for `slot`, which no longer has them.
    void close_on(int slot, const std::vector<std::string>& names, std::string& out);
    // SQL DEALLOCATE `name` (empty: DEALLOCATE ALL, every named one) succeeded on `slot`:
    // the statement is the client's no more, and the other backends close it lazily.
    void deallocated(int slot, std::string_view name);
    // Backend `slot` has a named statement of the client, in any version (the unnamed one
    // is replaced by the next Parse of it, so it leaves nothing behind).
    bool backend_has_named(int slot) const;
    // The connection to `slot` is gone, and the statements it had with it.
    void forget_backend(int slot) { backends_.erase(slot); }
    // Backend `slot` has `name` in its current version (tests, logs).
    bool backend_has(int slot, std::string_view name) const;
    std::size_t size() const { return statements_.size(); }

  private:
    struct Backend {
        std::map<std::string, std::uint64_t, std::less<>> have;  // name → Parse version
        std::set<std::string, std::less<>> to_close;             // closed by the client elsewhere
    };
    // A definition the server has not acknowledged yet, and what it replaced.
    struct Pending {
        std::uint64_t version = 0;
        std::string name;
        std::optional<Statement> previous;  // the definition before (none: the name was free)
        int slot = -1;                      // the backend prepare() noted as having it
        std::uint64_t had = 0;              // what that backend had of the name (0: nothing)
    };
    std::vector<Pending>::iterator pending(std::uint64_t version);
    void confirm(std::uint64_t version);
    void undo(std::uint64_t version);

    std::map<std::string, Statement, std::less<>> statements_;
    std::map<int, Backend> backends_;
    // Oldest first: rarely more than a unit's few, so a vector (nothing while empty).
    std::vector<Pending> pending_;
    std::uint64_t versions_ = 0;
};

}  // namespace pgrouter
