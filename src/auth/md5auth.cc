// md5 password authentication (see md5auth.h), both directions, from the stored secret.
#include "pgrouter/auth/md5auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace pgrouter {
namespace {

constexpr std::size_t kMd5SecretLength = 35;  // "md5" + 32 hex digits

}  // namespace

std::string md5_hex(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    std::string out;
    if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr) != 1) return out;
    static constexpr char kHex[] = "0123456789abcdef";
    out.reserve(2 * len);
    for (unsigned int i = 0; i < len; ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 15]);
    }
    return out;
}

bool is_md5_secret(std::string_view secret) {
    if (secret.size() != kMd5SecretLength || !secret.starts_with("md5")) return false;
    for (char c : secret.substr(3)) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

std::string md5_secret(std::string_view password, std::string_view user) {
    std::string input(password);
    input.append(user);
    std::string out = "md5" + md5_hex(input);
    OPENSSL_cleanse(input.data(), input.size());
    return out;
}

std::string md5_response_from_secret(std::string_view md5_secret, const Md5Salt& salt) {
    std::string input(md5_secret.substr(md5_secret.starts_with("md5") ? 3 : 0));
    input.append(reinterpret_cast<const char*>(salt.data()), salt.size());
    std::string out = "md5" + md5_hex(input);
    OPENSSL_cleanse(input.data(), input.size());
    return out;
}

std::string md5_response_from_password(std::string_view password, std::string_view user,
                                       const Md5Salt& salt) {
    std::string secret = md5_secret(password, user);
    std::string out = md5_response_from_secret(secret, salt);
    OPENSSL_cleanse(secret.data(), secret.size());
    return out;
}

bool md5_check_response(std::string_view response, std::string_view stored, std::string_view user,
                        const Md5Salt& salt) {
    std::string expected = is_md5_secret(stored) ? md5_response_from_secret(stored, salt)
                                                 : md5_response_from_password(stored, user, salt);
    bool ok = expected.size() == kMd5SecretLength && response.size() == expected.size() &&
              CRYPTO_memcmp(response.data(), expected.data(), expected.size()) == 0;
    OPENSSL_cleanse(expected.data(), expected.size());
    return ok;
}

std::optional<Md5Salt> md5_random_salt() {
    Md5Salt salt{};
    if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) return std::nullopt;
    return salt;
}

}  // namespace pgrouter
