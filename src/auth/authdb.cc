// Parsing of the authdb file (see authdb.h). Each line is read on its own so that an error
// names its line; a secret never appears in an error message.
#include "pgrouter/auth/authdb.h"

#include "pgrouter/auth/md5auth.h"
#include "pgrouter/base/line_cursor.h"

namespace pgrouter {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::size_t skip_space(std::string_view s, std::size_t at) {
    while (at < s.size() && is_space(s[at])) ++at;
    return at;
}

// A "quoted" field at `at` with "" for a quote; `at` moves past the closing quote.
bool read_quoted(std::string_view line, std::size_t& at, std::string& out) {
    if (at >= line.size() || line[at] != '"') return false;
    ++at;
    out.clear();
    while (at < line.size()) {
        char c = line[at++];
        if (c != '"') {
            out.push_back(c);
            continue;
        }
        if (at < line.size() && line[at] == '"') {
            out.push_back('"');
            ++at;
            continue;
        }
        return true;
    }
    return false;
}

}  // namespace

SecretKind classify_secret(std::string_view secret) {
    if (is_md5_secret(secret)) return SecretKind::Md5;
    if (secret.starts_with("SCRAM-SHA-256$") && parse_scram_verifier(secret)) {
        return SecretKind::ScramSha256;
    }
    return SecretKind::Plaintext;
}

const Secret* AuthDb::find(std::string_view user) const {
    auto it = users.find(std::string(user));
    return it == users.end() ? nullptr : &it->second;
}

AuthDbParseResult parse_authdb(std::string_view text, std::string_view file) {
    AuthDbParseResult result;
    auto fail = [&](int line, std::string_view message) {
        result.errors.push_back(std::string(file) + ":" + std::to_string(line) + ": " +
                                std::string(message));
    };

    LineCursor lines(text);
    std::string_view line;
    while (lines.next(line)) {
        const int lineno = lines.number();

        std::size_t at = skip_space(line, 0);
        if (at == line.size() || line[at] == ';' || line[at] == '#') continue;

        std::string user;
        std::string secret;
        if (line[at] != '"') {
            fail(lineno, "expected a quoted user name");
            continue;
        }
        if (!read_quoted(line, at, user)) {
            fail(lineno, "unterminated quoted user name");
            continue;
        }
        at = skip_space(line, at);
        if (at == line.size() || line[at] != '"') {
            fail(lineno, "expected a quoted secret after the user name");
            continue;
        }
        if (!read_quoted(line, at, secret)) {
            fail(lineno, "unterminated quoted secret");
            continue;
        }
        at = skip_space(line, at);
        if (at < line.size() && line[at] != ';' && line[at] != '#') {
            fail(lineno, "unexpected text after the secret");
            continue;
        }
        if (user.empty()) {
            fail(lineno, "empty user name");
            continue;
        }
        if (secret.empty()) {
            fail(lineno, "empty secret for user \"" + user + "\"");
            continue;
        }

        Secret s;
        s.line = lineno;
        if (is_md5_secret(secret)) {
            s.kind = SecretKind::Md5;
        } else if (secret.starts_with("SCRAM-SHA-256$")) {
            s.scram = parse_scram_verifier(secret);
            if (!s.scram) {
                fail(lineno, "invalid SCRAM-SHA-256 verifier for user \"" + user + "\"");
                continue;
            }
            s.kind = SecretKind::ScramSha256;
        }
        s.value = std::move(secret);

        auto [it, inserted] = result.db.users.try_emplace(user, std::move(s));
        if (!inserted) {
            fail(lineno, "duplicate user \"" + user + "\" (first at line " +
                             std::to_string(it->second.line) + ")");
        }
    }
    if (!result.errors.empty()) result.db.users.clear();
    return result;
}

}  // namespace pgrouter
