// The syntax layer of pgrouter.conf: turns text into a tree of statements (a name, its
// arguments, an optional block of statements) and reports only syntax errors (strings,
// braces). It knows no directive names; meaning is config.cc's job. Pure: no I/O, no throws.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pgrouter {

struct ConfigArg {
    std::string text;  // unquoted, escapes resolved
    int line = 0;
};

struct ConfigStatement {
    std::string name;
    int line = 0;
    std::vector<ConfigArg> args;
    bool has_block = false;
    int block_line = 0;  // line of the '{'
    std::vector<ConfigStatement> block;
};

struct ConfigSyntaxError {
    int line = 0;
    std::string message;
};

struct ConfigSyntax {
    std::vector<ConfigStatement> statements;
    std::vector<ConfigSyntaxError> errors;
};

// Statements end at a newline, ';', '{ ... }' or a '}' closing the enclosing block. A '{' may
// stand on the line after its directive. '#' outside a string begins a comment. Double
// quotes make one argument of anything up to the closing quote on the same line; inside them
// \" and \\ are escapes and any other backslash is kept as written. A statement holding a
// syntax error (an unterminated string) is dropped, so the caller never sees half of it.
[[nodiscard]] ConfigSyntax parse_config_syntax(std::string_view text);

}  // namespace pgrouter
