// WAL positions in pg_lsn's text form ("16/B374D848"), both ways. Shared by the watcher
// (samples), the session (captured positions) and the pgrouter.* parameters (causal tokens).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgrouter {

// "16/B374D848" to its 64-bit value; nullopt when malformed (as pg_lsn's input refuses it:
// one to eight hex digits on each side of the slash, nothing else).
[[nodiscard]] std::optional<std::uint64_t> parse_lsn(std::string_view text);
std::string format_lsn(std::uint64_t lsn);

// The end of the last WAL record at or before master position `insert_lsn`: the master's
// insert position on an idle page start points just past the page header (0/4000028),
// where a standby's replay position, the end of the last record it replayed, stays at the
// page start (0/4000000). Assumes PostgreSQL's default 8 kB WAL pages.
[[nodiscard]] std::uint64_t wal_record_end(std::uint64_t insert_lsn);

}  // namespace pgrouter
