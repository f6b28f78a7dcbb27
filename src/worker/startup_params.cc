// Startup parameters that move with a client (see startup_params.h).
#include "pgrouter/worker/startup_params.h"

#include <algorithm>
#include <array>

#include "pgrouter/base/ascii.h"

namespace pgrouter {

namespace {

// Parameters drivers send at startup that any session may SET (PGC_USERSET), lower case.
constexpr std::array<std::string_view, 14> kMovable = {"application_name",
                                                       "client_encoding",
                                                       "datestyle",
                                                       "extra_float_digits",
                                                       "intervalstyle",
                                                       "lock_timeout",
                                                       "search_path",
                                                       "statement_timeout",
                                                       "timezone",
                                                       "bytea_output",
                                                       "default_transaction_isolation",
                                                       "default_transaction_read_only",
                                                       "idle_in_transaction_session_timeout",
                                                       "standard_conforming_strings"};

// A literal that reads the same with standard_conforming_strings on or off.
std::string escaped_literal(std::string_view s) {
    std::string out = "E'";
    for (char ch : s) {
        if (ch == '\'' || ch == '\\') out += ch;
        out += ch;
    }
    out += '\'';
    return out;
}

}  // namespace

bool movable_startup_param(std::string_view name) {
    std::string lower = ascii_lowered(name);
    return std::find(kMovable.begin(), kMovable.end(), lower) != kMovable.end();
}

std::string pool_params_key(const ParamList& params) {
    std::vector<std::string> parts;
    parts.reserve(params.size());
    for (const auto& [name, value] : params) {
        std::string part = ascii_lowered(name);
        if (!movable_startup_param(part)) {
            part += '=';
            part += value;
        }
        parts.push_back(std::move(part));
    }
    std::sort(parts.begin(), parts.end());
    std::string key;
    for (const std::string& p : parts) {
        key += p;
        key += '\0';
    }
    return key;
}

ParamList startup_difference(const ParamList& login, const ParamList& client) {
    ParamList out;
    for (const auto& [name, value] : client) {
        if (!movable_startup_param(name)) continue;
        std::string lower = ascii_lowered(name);
        auto had = std::find_if(login.begin(), login.end(),
                                [&](const auto& p) { return ascii_lowered(p.first) == lower; });
        if (had == login.end() || had->second != value) out.emplace_back(lower, value);
    }
    return out;
}

std::string set_startup_param_query(std::string_view name, std::string_view value) {
    return "SELECT pg_catalog.set_config(" + escaped_literal(name) + ", " + escaped_literal(value) +
           ", false)";
}

}  // namespace pgrouter
