// pg_lsn's text form (see lsn.h).
#include "pgrouter/base/lsn.h"

#include <cstdio>

namespace pgrouter {

namespace {

std::optional<std::uint32_t> parse_hex32(std::string_view s) {
    if (s.empty() || s.size() > 8) return std::nullopt;
    std::uint32_t v = 0;
    for (char c : s) {
        int d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else {
            return std::nullopt;
        }
        v = (v << 4) | static_cast<std::uint32_t>(d);
    }
    return v;
}

}  // namespace

std::optional<std::uint64_t> parse_lsn(std::string_view text) {
    std::size_t slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto hi = parse_hex32(text.substr(0, slash));
    auto lo = parse_hex32(text.substr(slash + 1));
    if (!hi || !lo) return std::nullopt;
    return (static_cast<std::uint64_t>(*hi) << 32) | *lo;
}

std::string format_lsn(std::uint64_t lsn) {
    char out[24];
    std::snprintf(out, sizeof out, "%X/%X", static_cast<unsigned>(lsn >> 32),
                  static_cast<unsigned>(lsn));
    return out;
}

std::uint64_t wal_record_end(std::uint64_t insert_lsn) {
    constexpr std::uint64_t kPage = 8192;
    constexpr std::uint64_t kLongHeader = 40;  // SizeOfXLogLongPHD; a short one is 24
    std::uint64_t offset = insert_lsn % kPage;
    return offset <= kLongHeader ? insert_lsn - offset : insert_lsn;
}

}  // namespace pgrouter
