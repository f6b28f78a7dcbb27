// pg_hba.conf subset (see hba.h). The tokenizer follows PostgreSQL's next_token() (quotes,
// "" inside quotes, comma lists that may span blanks, # comments) so that files copied from
// a PostgreSQL server read the same; what pgrouter cannot honour is a clear error, never a
// silently different meaning.
#include "pgrouter/auth/hba.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "pgrouter/base/line_cursor.h"

namespace pgrouter {
namespace {

struct Token {
    std::string text;
    bool quoted = false;  // began with a quote
};
using Field = std::vector<Token>;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// One token from `line` at `at` (PostgreSQL's next_token). Returns false when none is left.
bool next_token(std::string_view line, std::size_t& at, Token& tok, bool& trailing_comma) {
    tok = Token{};
    trailing_comma = false;
    while (at < line.size() && (is_blank(line[at]) || line[at] == ',')) ++at;

    bool in_quote = false;
    bool was_quote = false;
    bool saw_quote = false;
    while (at < line.size() && (!is_blank(line[at]) || in_quote)) {
        char c = line[at];
        if (c == '#' && !in_quote) {
            at = line.size();
            break;
        }
        ++at;
        if (c == ',' && !in_quote) {
            trailing_comma = true;
            break;
        }
        if (c != '"' || was_quote) tok.text.push_back(c);
        was_quote = in_quote && c == '"' ? !was_quote : false;
        if (c == '"') {
            in_quote = !in_quote;
            saw_quote = true;
            if (tok.text.empty()) tok.quoted = true;
        }
    }
    return saw_quote || !tok.text.empty();
}

// The fields of one line: each a comma list of tokens.
std::vector<Field> tokenize_line(std::string_view line) {
    std::vector<Field> fields;
    std::size_t at = 0;
    while (at < line.size()) {
        Field field;
        Token tok;
        bool comma = false;
        do {
            if (!next_token(line, at, tok, comma)) break;
            field.push_back(std::move(tok));
        } while (comma);
        if (field.empty()) break;
        fields.push_back(std::move(field));
    }
    return fields;
}

bool parse_prefix(std::string_view text, int max_bits, int& bits) {
    if (text.empty()) return false;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), bits);
    return ec == std::errc() && ptr == text.data() + text.size() && bits >= 0 && bits <= max_bits;
}

IpAddress prefix_mask(IpAddress::Family family, int bits) {
    IpAddress m;
    m.family = family;
    for (std::size_t i = 0; i < m.size(); ++i) {
        int take = bits > 8 ? 8 : (bits < 0 ? 0 : bits);
        m.bytes[i] = static_cast<std::uint8_t>(0xff00u >> take);
        bits -= 8;
    }
    return m;
}

bool in_network(const IpAddress& client, const IpAddress& net, const IpAddress& mask) {
    if (client.family != net.family) return false;
    for (std::size_t i = 0; i < client.size(); ++i) {
        if ((client.bytes[i] & mask.bytes[i]) != (net.bytes[i] & mask.bytes[i])) return false;
    }
    return true;
}

class LineParser {
  public:
    LineParser(std::vector<Field> fields, int line) : fields_(std::move(fields)) {
        rule_.line = line;
    }

    // Fills the rule or returns the error text.
    std::optional<std::string> parse();
    HbaRule& rule() { return rule_; }

  private:
    const Field* next() { return pos_ < fields_.size() ? &fields_[pos_++] : nullptr; }
    std::optional<std::string> parse_conn_type();
    std::optional<std::string> parse_names(std::vector<HbaName>& out, bool database);
    std::optional<std::string> parse_address();
    std::optional<std::string> parse_method();
    std::optional<std::string> parse_options();

    std::vector<Field> fields_;
    std::size_t pos_ = 0;
    HbaRule rule_;
};

std::optional<std::string> LineParser::parse() {
    if (auto e = parse_conn_type()) return e;
    if (pos_ >= fields_.size()) return "end-of-line before database specification";
    if (auto e = parse_names(rule_.databases, true)) return e;
    if (pos_ >= fields_.size()) return "end-of-line before role specification";
    if (auto e = parse_names(rule_.users, false)) return e;
    if (pos_ >= fields_.size()) return "end-of-line before IP address specification";
    if (auto e = parse_address()) return e;
    if (pos_ >= fields_.size()) return "end-of-line before authentication method";
    if (auto e = parse_method()) return e;
    return parse_options();
}

std::optional<std::string> LineParser::parse_conn_type() {
    const Field* f = next();
    if (f->size() > 1) return "multiple values specified for connection type";
    const std::string& t = (*f)[0].text;
    if (t == "host") {
        rule_.conn_type = HbaConnType::Host;
    } else if (t == "hostssl") {
        rule_.conn_type = HbaConnType::HostSsl;
    } else if (t == "hostnossl") {
        rule_.conn_type = HbaConnType::HostNoSsl;
    } else if (t == "local" || t == "hostgssenc" || t == "hostnogssenc") {
        return "connection type \"" + t + "\" is not supported by pgrouter";
    } else {
        return "invalid connection type \"" + t + "\"";
    }
    return std::nullopt;
}

std::optional<std::string> LineParser::parse_names(std::vector<HbaName>& out, bool database) {
    for (const Token& tok : *next()) {
        const std::string& t = tok.text;
        if (!tok.quoted && t.size() > 1 && t[0] == '@') {
            return "file inclusion (\"" + t + "\") is not supported by pgrouter";
        }
        if (!tok.quoted && t.size() > 1 && t[0] == '/') {
            return "regular expressions (\"" + t + "\") are not supported by pgrouter";
        }
        if (!database && !tok.quoted && t.size() > 1 && t[0] == '+') {
            return "group membership (\"" + t + "\") is not supported by pgrouter";
        }
        if (database && !tok.quoted && (t == "samerole" || t == "samegroup")) {
            return "\"" + t + "\" is not supported by pgrouter";
        }
        out.push_back(HbaName{t, tok.quoted});
    }
    return std::nullopt;
}

std::optional<std::string> LineParser::parse_address() {
    const Field* f = next();
    if (f->size() > 1) return "multiple values specified for host address";
    const Token& tok = (*f)[0];
    const std::string& text = tok.text;
    if (tok.quoted) return "invalid IP address \"" + text + "\"";
    if (text == "all") {
        rule_.any_address = true;
        return std::nullopt;
    }
    if (text == "samehost" || text == "samenet") {
        return "\"" + text + "\" is not supported by pgrouter";
    }
    std::size_t slash = text.find('/');
    std::string_view addr_text = std::string_view(text).substr(0, slash);
    auto addr = IpAddress::parse(addr_text);
    if (!addr) {
        return "invalid IP address \"" + std::string(addr_text) +
               "\": host names are not supported by pgrouter";
    }
    rule_.address = *addr;
    if (slash != std::string::npos) {
        int bits = 0;
        int max_bits = addr->family == IpAddress::Family::V4 ? 32 : 128;
        if (!parse_prefix(std::string_view(text).substr(slash + 1), max_bits, bits)) {
            return "invalid CIDR mask in address \"" + text + "\"";
        }
        rule_.mask = prefix_mask(addr->family, bits);
        return std::nullopt;
    }
    const Field* m = next();
    if (m == nullptr) return "end-of-line before netmask specification";
    if (m->size() > 1) return "multiple values specified for netmask";
    auto mask = IpAddress::parse((*m)[0].text);
    if (!mask) return "invalid IP mask \"" + (*m)[0].text + "\"";
    if (mask->family != addr->family) return "IP address and mask do not match";
    rule_.mask = *mask;
    return std::nullopt;
}

std::optional<std::string> LineParser::parse_method() {
    const Field* f = next();
    if (f->size() > 1) return "multiple values specified for authentication type";
    const std::string& m = (*f)[0].text;
    if (m == "trust") {
        rule_.method = HbaMethod::Trust;
    } else if (m == "reject") {
        rule_.method = HbaMethod::Reject;
    } else if (m == "password") {
        rule_.method = HbaMethod::Password;
    } else if (m == "md5") {
        rule_.method = HbaMethod::Md5;
    } else if (m == "scram-sha-256") {
        rule_.method = HbaMethod::ScramSha256;
    } else if (m == "ident" || m == "peer" || m == "gss" || m == "sspi" || m == "pam" ||
               m == "bsd" || m == "ldap" || m == "radius" || m == "cert") {
        return "authentication method \"" + m + "\" is not supported by pgrouter";
    } else {
        return "invalid authentication method \"" + m + "\"";
    }
    return std::nullopt;
}

std::optional<std::string> LineParser::parse_options() {
    while (const Field* f = next()) {
        for (const Token& tok : *f) {
            std::size_t eq = tok.text.find('=');
            if (eq == std::string::npos) {
                return "authentication option not in name=value format: " + tok.text;
            }
            std::string name = tok.text.substr(0, eq);
            std::string value = tok.text.substr(eq + 1);
            if (name == "clientcert") {
                if (rule_.conn_type != HbaConnType::HostSsl) {
                    return "clientcert can only be configured for \"hostssl\" rows";
                }
                if (value != "verify-ca" && value != "verify-full") {
                    return "invalid value for clientcert: \"" + value + "\"";
                }
            } else {
                return "unrecognized authentication option name: \"" + name + "\"";
            }
            rule_.options.emplace_back(std::move(name), std::move(value));
        }
    }
    return std::nullopt;
}

bool database_matches(const HbaRule& rule, std::string_view database, std::string_view user) {
    for (const HbaName& n : rule.databases) {
        if (n.is_keyword("all")) return true;
        if (n.is_keyword("sameuser")) {
            if (database == user) return true;
            continue;
        }
        // Only replication connections match `replication`, and pgrouter takes none.
        if (n.is_keyword("replication")) continue;
        if (n.name == database) return true;
    }
    return false;
}

bool user_matches(const HbaRule& rule, std::string_view user) {
    for (const HbaName& n : rule.users) {
        if (n.is_keyword("all") || n.name == user) return true;
    }
    return false;
}

std::string hba_message(std::string_view prefix, std::string_view host, std::string_view user,
                        std::string_view database, bool ssl) {
    std::string m(prefix);
    m += " for host \"";
    m += host;
    m += "\", user \"";
    m += user;
    m += "\", database \"";
    m += database;
    m += ssl ? "\", SSL encryption" : "\", no encryption";
    return m;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    IpAddress a;
    if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
        a.family = Family::V4;
        return a;
    }
    if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
        a.family = Family::V6;
        return a;
    }
    return std::nullopt;
}

IpAddress IpAddress::v4(std::array<std::uint8_t, 4> b) {
    IpAddress a;
    a.family = Family::V4;
    std::memcpy(a.bytes.data(), b.data(), b.size());
    return a;
}

IpAddress IpAddress::v6(const std::array<std::uint8_t, 16>& b) {
    IpAddress a;
    a.family = Family::V6;
    a.bytes = b;
    return a;
}

std::optional<IpAddress> IpAddress::unmapped_v4() const {
    static constexpr std::uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family != Family::V6 || std::memcmp(bytes.data(), kPrefix, sizeof kPrefix) != 0) {
        return std::nullopt;
    }
    return v4({bytes[12], bytes[13], bytes[14], bytes[15]});
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(family == Family::V4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
    return buf;
}

std::optional<std::string_view> HbaRule::option(std::string_view name) const {
    for (const auto& [n, v] : options) {
        if (n == name) return std::string_view(v);
    }
    return std::nullopt;
}

HbaParseResult parse_hba(std::string_view text, std::string_view file) {
    HbaParseResult result;
    LineCursor lines(text);
    std::string_view line;
    while (lines.next(line)) {
        const int lineno = lines.number();

        std::vector<Field> fields = tokenize_line(line);
        if (fields.empty()) continue;
        LineParser parser(std::move(fields), lineno);
        if (auto err = parser.parse()) {
            result.errors.push_back(std::string(file) + ":" + std::to_string(lineno) + ": " + *err);
            continue;
        }
        result.rules.push_back(std::move(parser.rule()));
    }
    if (!result.errors.empty()) result.rules.clear();
    return result;
}

const HbaRule* match_hba(std::span<const HbaRule> rules, const IpAddress& client, bool ssl,
                         std::string_view database, std::string_view user) {
    std::optional<IpAddress> v4 = client.unmapped_v4();
    for (const HbaRule& rule : rules) {
        if (rule.conn_type == HbaConnType::HostSsl && !ssl) continue;
        if (rule.conn_type == HbaConnType::HostNoSsl && ssl) continue;
        if (!rule.any_address) {
            bool hit = in_network(client, rule.address, rule.mask) ||
                       (v4 && in_network(*v4, rule.address, rule.mask));
            if (!hit) continue;
        }
        if (!database_matches(rule, database, user)) continue;
        if (!user_matches(rule, user)) continue;
        return &rule;
    }
    return nullptr;
}

std::string_view hba_method_name(HbaMethod method) {
    switch (method) {
        case HbaMethod::Trust:
            return "trust";
        case HbaMethod::Reject:
            return "reject";
        case HbaMethod::Password:
            return "password";
        case HbaMethod::Md5:
            return "md5";
        case HbaMethod::ScramSha256:
            return "scram-sha-256";
    }
    return "?";
}

std::string hba_no_entry_message(std::string_view host, std::string_view user,
                                 std::string_view database, bool ssl) {
    return hba_message("no pg_hba.conf entry", host, user, database, ssl);
}

std::string hba_reject_message(std::string_view host, std::string_view user,
                               std::string_view database, bool ssl) {
    return hba_message("pg_hba.conf rejects connection", host, user, database, ssl);
}

}  // namespace pgrouter
