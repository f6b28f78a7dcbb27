// The credentials file (`authdb`), in pgbouncer's userlist.txt format: one `"user" "secret"`
// per line, `""` for a quote inside a name, `;` and `#` comment lines. A secret is a
// plaintext password, an md5 secret or a SCRAM-SHA-256 verifier exactly as in
// pg_authid.rolpassword. Parsing only (no file I/O); errors never quote a secret.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pgrouter/auth/scram.h"

namespace pgrouter {

enum class SecretKind : std::uint8_t { Plaintext, Md5, ScramSha256 };

struct Secret {
    SecretKind kind = SecretKind::Plaintext;
    std::string value;                   // as written in the file
    std::optional<ScramVerifier> scram;  // parsed, for ScramSha256
    int line = 0;
};

// PostgreSQL's get_password_type: `md5` + 32 hex digits is md5, a parseable
// `SCRAM-SHA-256$...` is SCRAM, anything else is a plaintext password.
[[nodiscard]] SecretKind classify_secret(std::string_view secret);

struct AuthDb {
    std::unordered_map<std::string, Secret> users;

    const Secret* find(std::string_view user) const;
};

// Either a usable AuthDb (errors empty) or the list of `file:line: message` errors.
struct AuthDbParseResult {
    AuthDb db;
    std::vector<std::string> errors;
};

[[nodiscard]] AuthDbParseResult parse_authdb(std::string_view text, std::string_view file);

}  // namespace pgrouter
