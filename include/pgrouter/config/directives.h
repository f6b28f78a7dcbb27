// The one table of configuration directives: name, where it may appear, value type,
// default and a one-line description. The parser accepts exactly these names; the man
// page and the sample config are checked against this table (t/unit/directives_doc_test).
#pragma once

#include <span>
#include <string_view>

namespace pgrouter {

enum class DirectiveScope { Top, Tls, Health, Backend };

struct Directive {
    std::string_view name;
    DirectiveScope scope;
    std::string_view type;  // "address", "duration", "size", "integer", "string", "path", ...
    std::string_view default_value;
    bool reloadable;  // takes effect on SIGHUP without a restart
    std::string_view doc;
};

std::span<const Directive> directives();

}  // namespace pgrouter
