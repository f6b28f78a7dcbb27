// What the scripted fake backend (fake_backend.h) plays on one session connection: steps
// of "expect these client messages" and "send these bytes, written like this", and the
// server messages to build those bytes from. A script is plain data, so a test reads as
// the conversation it stages.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace pgrouter::test::fake {

struct Step {
    enum class Kind {
        Expect,  // read client messages of `types`, in order (nothing else in between)
        Send,    // write `bytes`, `chunk` bytes per write (0: one write), `delay` between
        Pause,   // sleep `delay`
        Close,   // close the connection now
        Serve,   // answer whatever comes (see serve()) until the client leaves
        Gate,    // wait until the test opens gate `types` (FakeBackend::open_gate)
    };
    Kind kind = Kind::Serve;
    std::string types;     // Expect: one type byte per message, e.g. "PBES"; Gate: its name
    std::string contains;  // Expect: the last expected message's payload contains this
    std::string bytes;     // Send
    std::size_t chunk = 0;
    std::chrono::milliseconds delay{0};
};

using Script = std::vector<Step>;

// ---- steps ---------------------------------------------------------------------------------

Step expect(std::string types, std::string contains = "");
// A simple Query whose text contains `sql`.
Step expect_query(std::string sql);
Step send(std::string bytes);
// Writes `bytes` in pieces of `chunk` bytes (1: byte by byte), `delay` after each piece.
Step send_split(std::string bytes, std::size_t chunk,
                std::chrono::milliseconds delay = std::chrono::milliseconds(0));
Step pause(std::chrono::milliseconds delay);
Step close_now();
// Blocks until the test calls open_gate(name): for "answer only after the test has seen X".
Step wait_gate(std::string name);
// Answers every message until the client leaves: a Query with its own text as one row of
// one column "echo" (then ReadyForQuery, 'T' inside BEGIN ... COMMIT/ROLLBACK), Parse,
// Bind, Close with their completions, Describe with NoData, Execute with "SELECT 0", Sync
// with ReadyForQuery. A script that ends without Close or Serve serves from there on.
Step serve();

// ---- server messages -----------------------------------------------------------------------

std::string row_description(const std::vector<std::string>& columns);  // text columns
std::string data_row(const std::vector<std::string>& values);
std::string command_complete(const std::string& tag);
std::string ready(char status = 'I');
std::string error(const std::string& sqlstate, const std::string& message,
                  const std::string& severity = "ERROR");
std::string notice(const std::string& message);
std::string notification(std::int32_t pid, const std::string& channel, const std::string& payload);
std::string parameter_status(const std::string& name, const std::string& value);
std::string parse_complete();
std::string bind_complete();
std::string no_data();
// A raw message: the type byte, the length word (payload size + 4), the payload.
std::string message(char type, const std::string& payload);

// One column "?column?" with these rows, the tag "SELECT n", no ReadyForQuery.
std::string rows(const std::vector<std::string>& values);
// rows() then ReadyForQuery: a whole answer to a simple Query.
std::string select_answer(const std::vector<std::string>& values, char status = 'I');
// The answer to Bind/Execute/Sync of a statement returning one row (no Parse).
std::string bound_answer(const std::string& value, char status = 'I');
// What serve() answers to a simple Query with text `sql` (status after it).
std::string echo_answer(const std::string& sql, char status = 'I');

}  // namespace pgrouter::test::fake
