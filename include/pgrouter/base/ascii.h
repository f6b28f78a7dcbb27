// ASCII case folding for keywords, identifiers and setting names: locale-independent, as
// PostgreSQL folds unquoted identifiers. The one place the tree lower-cases text.
#pragma once

#include <string>
#include <string_view>

namespace pgrouter {

[[nodiscard]] constexpr char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// The C locale's isdigit/isalpha/isalnum/isspace, inline (the libc calls cost a call per
// character on the per-statement path).
[[nodiscard]] constexpr bool ascii_digit(char c) { return c >= '0' && c <= '9'; }
[[nodiscard]] constexpr bool ascii_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
[[nodiscard]] constexpr bool ascii_alnum(char c) { return ascii_alpha(c) || ascii_digit(c); }
[[nodiscard]] constexpr bool ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

[[nodiscard]] constexpr bool ascii_iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    }
    return true;
}

[[nodiscard]] inline std::string ascii_lowered(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

}  // namespace pgrouter
