// The client's prepared statements, and which of the session's backends has which of them
// (PgBouncer's prepare.c): a statement the client parsed on one backend is parsed again,
// unseen, on another before a unit that uses it goes there, and a statement the client
// closes is closed lazily on the other backends that have it. Pure: it writes protocol
// messages into the caller's buffer and never touches a socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "pgrouter/route/classify.h"

namespace pgrouter {

// What one unit does with prepared statements.
struct StatementRefs {
    std::vector<std::string> uses;              // named by Bind, Describe 'S', Close 'S'
    std::set<std::string, std::less<>> parsed;  // defined by a Parse of the unit
    std::set<std::string, std::less<>> closed;  // closed by a Close 'S' of the unit
    void clear() {
        uses.clear();
        parsed.clear();
        closed.clear();
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
    // A Parse (the whole message) defining `name` as `sql`, which lies inside `parse`.
    const Statement& define(std::string_view name, std::string_view parse, std::string_view sql,
                            const Classification& cls);
    const Statement* find(std::string_view name) const;

    // Before a unit goes to backend `slot`: appends to `out` a Close for each statement the
    // client closed since on another backend and a Parse for each the unit uses that this
    // backend lacks (or has in an older version), and notes what the unit itself parses and
    // closes. Returns how many ParseComplete/CloseComplete the injected messages will bring,
    // which the client must not see.
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
    std::map<std::string, Statement, std::less<>> statements_;
    std::map<int, Backend> backends_;
    std::uint64_t versions_ = 0;
};

}  // namespace pgrouter
