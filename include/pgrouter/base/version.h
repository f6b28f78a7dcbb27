// The one source of pgrouter's version: -V, the man pages' check and the packages use it.
#pragma once

#include <string_view>

namespace pgrouter {

inline constexpr std::string_view kVersion = "0.1.0";

}  // namespace pgrouter
