// Binding the listening sockets the supervisor hands to its children. Nothing here knows
// about the protocol spoken on them.
#pragma once

#include <string>

#include "pgrouter/config/config.h"

namespace pgrouter {

// A bound, listening, non-blocking, close-on-exec socket, or -1 with `error` set.
// "*" binds every address (IPv6 dual-stack when available, else 0.0.0.0).
[[nodiscard]] int bind_listener(const Endpoint& where, std::string& error);

}  // namespace pgrouter
