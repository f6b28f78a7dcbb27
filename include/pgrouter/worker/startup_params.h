// A client's startup parameters as session state that can move between pooled server
// connections. A pooled connection keeps the parameters it was logged in with (RESET, RESET
// ALL and DISCARD ALL return to them); a client whose values differ takes it anyway when the
// parameters are ones any session may SET (application_name, DateStyle, ...), and the
// difference is SET on it. Any other parameter (options, ...) must match exactly. Pure.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgrouter {

using ParamList = std::vector<std::pair<std::string, std::string>>;

// A startup parameter that any session may SET, whose value therefore need not match.
[[nodiscard]] bool movable_startup_param(std::string_view name);

// What a pooled connection logged in with `params` must share with a client to serve it:
// the exact values of the other parameters and the names of the movable ones, in a canonical
// order (clients send them in any order).
[[nodiscard]] std::string pool_params_key(const ParamList& params);

// The movable parameters whose value for `client` differs from what `login` (a connection's
// login, with the same pool_params_key) has: (lower-case name, the client's value).
[[nodiscard]] ParamList startup_difference(const ParamList& login, const ParamList& client);

// A statement that sets `name` to `value` for the session, whatever the connection's
// standard_conforming_strings: SELECT pg_catalog.set_config('name', E'value', false).
[[nodiscard]] std::string set_startup_param_query(std::string_view name, std::string_view value);

}  // namespace pgrouter
