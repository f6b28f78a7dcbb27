// Who may connect: a pg_hba.conf subset (`host|hostssl|hostnossl DATABASE USER ADDRESS
// METHOD [name=value...]`) parsed into rules, and first-match lookup of a client's address,
// TLS state, database and user. Parsing never touches the file system or DNS; errors carry
// `file:line`. Rejection texts and SQLSTATEs are PostgreSQL's.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgrouter {

// An IPv4 or IPv6 address, without port or scope.
struct IpAddress {
    enum class Family : std::uint8_t { V4, V6 };
    Family family = Family::V4;
    std::array<std::uint8_t, 16> bytes{};  // V4 uses the first 4

    [[nodiscard]] static std::optional<IpAddress> parse(std::string_view text);
    static IpAddress v4(std::array<std::uint8_t, 4> b);
    static IpAddress v6(const std::array<std::uint8_t, 16>& b);
    std::size_t size() const { return family == Family::V4 ? 4 : 16; }
    // For ::ffff:a.b.c.d, the IPv4 address a.b.c.d.
    std::optional<IpAddress> unmapped_v4() const;
    std::string to_string() const;
    bool operator==(const IpAddress&) const = default;
};

enum class HbaConnType : std::uint8_t { Host, HostSsl, HostNoSsl };
enum class HbaMethod : std::uint8_t { Trust, Reject, Password, Md5, ScramSha256 };

// A name from a DATABASE or USER list. Keywords (all, sameuser, replication) count only
// when not quoted, as in PostgreSQL.
struct HbaName {
    std::string name;
    bool quoted = false;
    bool is_keyword(std::string_view k) const { return !quoted && name == k; }
};

struct HbaRule {
    int line = 0;
    HbaConnType conn_type = HbaConnType::Host;
    std::vector<HbaName> databases;
    std::vector<HbaName> users;
    bool any_address = false;  // ADDRESS `all`
    IpAddress address;         // with mask: the network
    IpAddress mask;
    HbaMethod method = HbaMethod::Reject;
    std::vector<std::pair<std::string, std::string>> options;  // name=value after METHOD

    // The value of an option, or nullopt.
    std::optional<std::string_view> option(std::string_view name) const;
};

struct HbaParseResult {
    std::vector<HbaRule> rules;
    std::vector<std::string> errors;  // `file:line: message`; rules are empty when set
};

[[nodiscard]] HbaParseResult parse_hba(std::string_view text, std::string_view file);

// The first rule matching the connection, or nullptr (which must reject it). An IPv4 client
// seen on an IPv6 socket as ::ffff:a.b.c.d matches IPv4 rules as a.b.c.d.
[[nodiscard]] const HbaRule* match_hba(std::span<const HbaRule> rules, const IpAddress& client,
                                       bool ssl, std::string_view database, std::string_view user);

std::string_view hba_method_name(HbaMethod method);

// PostgreSQL's FATAL texts, both SQLSTATE 28000 (kSqlstateInvalidAuthorization): no rule
// matched, or the matching rule is `reject`. `host` is the client address as text.
[[nodiscard]] std::string hba_no_entry_message(std::string_view host, std::string_view user,
                                               std::string_view database, bool ssl);
[[nodiscard]] std::string hba_reject_message(std::string_view host, std::string_view user,
                                             std::string_view database, bool ssl);

}  // namespace pgrouter
