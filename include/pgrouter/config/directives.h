// The one table of pgrouter.conf directives (directives.cc): for each, where it may appear,
// the shape of its argument, its default, whether SIGHUP applies it, how it is read and its
// doc line. Everything else follows from it: the parser accepts exactly these names, every
// Config starts from these defaults, the supervisor's reload keeps the values of the
// directives that are not reloadable, and t/check-directives checks that man/pgrouter.conf.5
// and etc/pgrouter.conf name every one of them.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "pgrouter/config/config.h"
#include "pgrouter/config/config_lexer.h"

namespace pgrouter {

enum class DirectiveScope { Top, Tls, Health, Backend, Pool };
enum class BlockRule : std::uint8_t { None, Required, Optional };

class ConfigReader;  // src/config/config_reader.h: what a handler may use

struct Directive {
    std::string_view name;
    DirectiveScope scope;
    std::string_view type;    // "address", "duration", "size", "integer", "string", "path", ...
    int args;                 // exactly this many arguments
    std::string_view expect;  // the argument as "missing argument" messages describe it
    BlockRule block;
    // Config text read by `read` before the file is, so that it is the value when the file
    // does not set one. "": none (the value stays empty, or is resolved at run time as the
    // doc line says: workers, pidfile).
    std::string_view default_value;
    bool reloadable;  // SIGHUP applies a change; otherwise the running value stays
    // Not reloadable only: puts the running value (`old`) back into `next`; true when they
    // differed.
    bool (*keep)(const Config& old, Config& next);
    void (*read)(ConfigReader& in, const ConfigStatement& st);
    std::string_view doc;
};

std::span<const Directive> directives();

// The entry for `name` (lower case) in `scope`; null when there is none.
const Directive* find_directive(DirectiveScope scope, std::string_view name);

// For SIGHUP: keeps in `next` the running value of every directive that is not reloadable
// and returns the names of those whose value the file changed (each needs a restart).
std::vector<std::string_view> keep_restart_only(const Config& old, Config& next);

}  // namespace pgrouter
