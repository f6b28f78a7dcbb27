// PostgreSQL's md5 password scheme: the stored secret `md5` + md5hex(password + user) and
// the challenge answer `md5` + md5hex(md5hex(password + user) + salt). Either side of the
// exchange works from the stored secret alone, so pgrouter never needs the password.
// OpenSSL's EVP digest; comparisons in constant time; no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgrouter {

using Md5Salt = std::array<std::uint8_t, 4>;

// Lower-case hex MD5 of `data` (32 characters).
[[nodiscard]] std::string md5_hex(std::string_view data);

// True for `md5` followed by exactly 32 lower-case hex digits (PostgreSQL's test).
[[nodiscard]] bool is_md5_secret(std::string_view secret);

// `md5` + md5hex(password + user): what pg_authid stores.
[[nodiscard]] std::string md5_secret(std::string_view password, std::string_view user);

// The PasswordMessage answering AuthenticationMD5Password(salt), from the stored secret
// (which must satisfy is_md5_secret) or from the password.
[[nodiscard]] std::string md5_response_from_secret(std::string_view md5_secret,
                                                   const Md5Salt& salt);
[[nodiscard]] std::string md5_response_from_password(std::string_view password,
                                                     std::string_view user, const Md5Salt& salt);

// Server side: does the client's answer match `stored`, an md5 secret or a plaintext
// password? Constant time in the answer's content.
[[nodiscard]] bool md5_check_response(std::string_view response, std::string_view stored,
                                      std::string_view user, const Md5Salt& salt);

// A fresh random salt; nullopt only if OpenSSL cannot produce random bytes.
[[nodiscard]] std::optional<Md5Salt> md5_random_salt();

}  // namespace pgrouter
