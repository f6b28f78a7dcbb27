// SCRAM-SHA-256 for both ends of a PostgreSQL login (see scram.h). Message parsing follows
// PostgreSQL's auth-scram.c (server) and libpq's fe-auth-scram.c (client) so that errors
// read the same. Crypto is OpenSSL's; every secret comparison is CRYPTO_memcmp.
#include "pgrouter/auth/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>

#include "pgrouter/proto/sqlstate.h"

namespace pgrouter {
namespace {

using proto::kSqlstateFeatureNotSupported;
using proto::kSqlstateInternalError;
using proto::kSqlstateInvalidAuthorization;
using proto::kSqlstateInvalidPassword;
using proto::kSqlstateProtocolViolation;

using Status = ScramResult::Status;

constexpr std::string_view kB64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kTlsServerEndPoint = "tls-server-end-point";

const unsigned char* bytes_of(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

std::string_view view_of(const ScramKey& k) {
    return {reinterpret_cast<const char*>(k.data()), k.size()};
}

bool hmac_sha256(std::string_view key, std::string_view data, ScramKey& out) {
    unsigned int len = 0;
    return HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes_of(data), data.size(),
                out.data(), &len) != nullptr &&
           len == out.size();
}

bool sha256(std::string_view data, ScramKey& out) {
    unsigned int len = 0;
    return EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) == 1 &&
           len == out.size();
}

bool salted_password(std::string_view password, std::string_view salt, int iterations,
                     ScramKey& out) {
    return PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), bytes_of(salt),
                             static_cast<int>(salt.size()), iterations, EVP_sha256(),
                             static_cast<int>(out.size()), out.data()) == 1;
}

// ClientKey, StoredKey and ServerKey from a password.
bool derive_keys(std::string_view password, std::string_view salt, int iterations,
                 ScramKey& client_key, ScramKey& stored_key, ScramKey& server_key) {
    ScramKey salted{};
    bool ok = salted_password(password, salt, iterations, salted) &&
              hmac_sha256(view_of(salted), "Client Key", client_key) &&
              sha256(view_of(client_key), stored_key) &&
              hmac_sha256(view_of(salted), "Server Key", server_key);
    OPENSSL_cleanse(salted.data(), salted.size());
    return ok;
}

bool keys_equal(const ScramKey& a, const ScramKey& b) {
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

ScramResult error(std::string_view sqlstate, std::string message, std::string detail = {}) {
    ScramResult r;
    r.status = Status::Error;
    r.sqlstate = sqlstate;
    r.error = std::move(message);
    r.detail = std::move(detail);
    return r;
}

ScramResult malformed(std::string detail) {
    return error(kSqlstateProtocolViolation, "malformed SCRAM message", std::move(detail));
}

ScramResult failure(std::string reason) {
    ScramResult r;
    r.status = Status::Failure;
    r.sqlstate = kSqlstateInvalidPassword;
    r.detail = std::move(reason);
    return r;
}

ScramResult step(Status status, std::string message) {
    ScramResult r;
    r.status = status;
    r.message = std::move(message);
    return r;
}

// PostgreSQL's sanitize_char: printable ASCII quoted, anything else in hex.
std::string sanitize_char(std::string_view s, std::size_t at) {
    if (at >= s.size()) return "0x00";
    auto c = static_cast<unsigned char>(s[at]);
    char buf[8];
    if (c >= 0x21 && c <= 0x7e) {
        std::snprintf(buf, sizeof buf, "'%c'", c);
    } else {
        std::snprintf(buf, sizeof buf, "0x%02x", c);
    }
    return buf;
}

// RFC 5802 printable: %x21-2B / %x2D-7E.
bool is_printable(std::string_view s) {
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c < 0x21 || c > 0x7e || c == ',') return false;
    }
    return true;
}

// A cursor over a SCRAM message: attributes are `x=value` separated by ','.
class AttrReader {
  public:
    explicit AttrReader(std::string_view s) : s_(s) {}
    std::size_t pos() const { return pos_; }
    bool at_end() const { return pos_ >= s_.size(); }
    char peek() const { return at_end() ? '\0' : s_[pos_]; }
    std::string_view rest() const { return s_.substr(std::min(pos_, s_.size())); }

    // Reads `attr=value`; on error fills `err` with PostgreSQL's detail text.
    bool expect(char attr, std::string_view& value, std::string& err) {
        if (peek() != attr) {
            err = "Expected attribute \"" + std::string(1, attr) + "\" but found \"" +
                  sanitize_char(s_, pos_) + "\".";
            return false;
        }
        return value_after_attr(attr, value, err);
    }

    bool any(char& attr, std::string_view& value, std::string& err) {
        if (at_end()) {
            err = "Attribute expected, but found end of string.";
            return false;
        }
        attr = s_[pos_];
        if (!((attr >= 'A' && attr <= 'Z') || (attr >= 'a' && attr <= 'z'))) {
            err = "Attribute expected, but found invalid character \"" + sanitize_char(s_, pos_) +
                  "\".";
            return false;
        }
        return value_after_attr(attr, value, err);
    }

  private:
    bool value_after_attr(char attr, std::string_view& value, std::string& err) {
        ++pos_;
        if (peek() != '=') {
            err = "Expected character \"=\" for attribute \"" + std::string(1, attr) + "\".";
            return false;
        }
        ++pos_;
        std::size_t end = s_.find(',', pos_);
        if (end == std::string_view::npos) end = s_.size();
        value = s_.substr(pos_, end - pos_);
        pos_ = end < s_.size() ? end + 1 : end;
        return true;
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

bool parse_int(std::string_view s, int& out) {
    if (s.empty()) return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && ptr == s.data() + s.size();
}

std::optional<std::string> random_nonce() {
    unsigned char raw[kScramRawNonceLength];
    if (!random_bytes(raw, sizeof raw)) return std::nullopt;
    return base64_encode(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

bool decode_key(std::string_view b64, ScramKey& out) {
    auto raw = base64_decode(b64);
    if (!raw || raw->size() != out.size()) return false;
    std::memcpy(out.data(), raw->data(), out.size());
    return true;
}

}  // namespace

// ---- helpers ---------------------------------------------------------------------------

std::string base64_encode(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        std::uint32_t v = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                          (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                          std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
        out.push_back(kB64Alphabet[(v >> 18) & 63]);
        out.push_back(kB64Alphabet[(v >> 12) & 63]);
        out.push_back(kB64Alphabet[(v >> 6) & 63]);
        out.push_back(kB64Alphabet[v & 63]);
    }
    std::size_t left = bytes.size() - i;
    if (left > 0) {
        std::uint32_t v = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
        if (left == 2) v |= std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
        out.push_back(kB64Alphabet[(v >> 18) & 63]);
        out.push_back(kB64Alphabet[(v >> 12) & 63]);
        out.push_back(left == 2 ? kB64Alphabet[(v >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        std::uint32_t v = 0;
        int pad = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            char c = text[i + j];
            std::uint32_t d = 0;
            if (c == '=') {
                // Padding only in the last group, only at its end.
                if (i + 4 != text.size() || j < 2) return std::nullopt;
                ++pad;
            } else {
                if (pad > 0) return std::nullopt;
                std::size_t at = kB64Alphabet.find(c);
                if (at == std::string_view::npos) return std::nullopt;
                d = static_cast<std::uint32_t>(at);
            }
            v = (v << 6) | d;
        }
        out.push_back(static_cast<char>(v >> 16));
        if (pad < 2) out.push_back(static_cast<char>(v >> 8));
        if (pad < 1) out.push_back(static_cast<char>(v));
    }
    return out;
}

bool random_bytes(void* out, std::size_t n) {
    if (n > static_cast<std::size_t>(std::numeric_limits<int>::max())) return false;
    return RAND_bytes(static_cast<unsigned char*>(out), static_cast<int>(n)) == 1;
}

// ---- verifiers -------------------------------------------------------------------------

std::string ScramVerifier::to_string() const {
    return std::string(kScramSha256) + "$" + std::to_string(iterations) + ":" +
           base64_encode(salt) + "$" + base64_encode(view_of(stored_key)) + ":" +
           base64_encode(view_of(server_key));
}

std::optional<ScramVerifier> parse_scram_verifier(std::string_view text) {
    // SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey>
    std::size_t d1 = text.find('$');
    if (d1 == std::string_view::npos || text.substr(0, d1) != kScramSha256) return std::nullopt;
    std::size_t c1 = text.find(':', d1 + 1);
    if (c1 == std::string_view::npos) return std::nullopt;
    std::size_t d2 = text.find('$', c1 + 1);
    if (d2 == std::string_view::npos) return std::nullopt;
    std::size_t c2 = text.find(':', d2 + 1);
    if (c2 == std::string_view::npos) return std::nullopt;

    ScramVerifier v;
    if (!parse_int(text.substr(d1 + 1, c1 - d1 - 1), v.iterations) || v.iterations < 1) {
        return std::nullopt;
    }
    auto salt = base64_decode(text.substr(c1 + 1, d2 - c1 - 1));
    if (!salt || salt->empty()) return std::nullopt;
    v.salt = std::move(*salt);
    if (!decode_key(text.substr(d2 + 1, c2 - d2 - 1), v.stored_key) ||
        !decode_key(text.substr(c2 + 1), v.server_key)) {
        return std::nullopt;
    }
    return v;
}

std::optional<ScramVerifier> make_scram_verifier(std::string_view password, int iterations,
                                                 std::string_view salt) {
    if (iterations < 1) return std::nullopt;
    ScramVerifier v;
    v.iterations = iterations;
    if (salt.empty()) {
        v.salt.resize(kScramDefaultSaltLength);
        if (!random_bytes(v.salt.data(), v.salt.size())) return std::nullopt;
    } else {
        v.salt = salt;
    }
    ScramKey client_key{};
    bool ok = derive_keys(password, v.salt, iterations, client_key, v.stored_key, v.server_key);
    OPENSSL_cleanse(client_key.data(), client_key.size());
    if (!ok) return std::nullopt;
    return v;
}

ScramVerifier scram_mock_verifier(std::string_view user, std::string_view secret) {
    ScramVerifier v;
    v.iterations = kScramDefaultIterations;
    ScramKey digest{};
    std::string input(user);
    input.append(secret);
    if (!sha256(input, digest)) digest.fill(0);
    v.salt.assign(reinterpret_cast<const char*>(digest.data()), kScramDefaultSaltLength);
    return v;
}

// ---- server ----------------------------------------------------------------------------

ScramServer::ScramServer(ScramVerifier verifier, ScramServerOptions options)
    : verifier_(std::move(verifier)), options_(std::move(options)) {}

ScramResult ScramServer::handle_client_first(std::string_view msg) {
    if (state_ != State::Init) {
        state_ = State::Done;
        return error(kSqlstateProtocolViolation, "invalid SCRAM exchange state");
    }
    state_ = State::Done;  // until this step succeeds
    if (msg.empty()) return malformed("The message is empty.");
    if (msg.find('\0') != std::string_view::npos) {
        return malformed("The message length does not match input length.");
    }

    const bool binding = options_.plus_selected;
    cbind_flag_ = msg[0];
    std::string err;
    std::size_t authzid_at = 0;  // where the gs2 header's authzid part starts
    switch (cbind_flag_) {
        case 'n':
        case 'y':
            if (binding) {
                return malformed(
                    "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not "
                    "include channel binding data.");
            }
            if (cbind_flag_ == 'y' && options_.plus_offered) {
                return error(kSqlstateInvalidAuthorization,
                             "SCRAM channel binding negotiation error",
                             "The client supports SCRAM channel binding but thinks the server "
                             "does not.  However, this server does support channel binding.");
            }
            if (msg.size() < 2 || msg[1] != ',') {
                return malformed("Comma expected, but found character \"" + sanitize_char(msg, 1) +
                                 "\".");
            }
            authzid_at = 2;
            break;
        case 'p': {
            if (!binding) {
                return malformed(
                    "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM "
                    "message includes channel binding data.");
            }
            AttrReader r(msg);
            std::string_view type;
            if (!r.expect('p', type, err)) return malformed(err);
            if (type != kTlsServerEndPoint) {
                std::string shown;
                for (char c : type.substr(0, 30)) {
                    shown.push_back(c >= 0x21 && c <= 0x7e ? c : '?');
                }
                return error(kSqlstateProtocolViolation,
                             "unsupported SCRAM channel-binding type \"" + shown + "\"");
            }
            authzid_at = r.pos();
            break;
        }
        default:
            return malformed("Unexpected channel-binding flag \"" + sanitize_char(msg, 0) + "\".");
    }

    if (authzid_at < msg.size() && msg[authzid_at] == 'a') {
        return error(kSqlstateFeatureNotSupported,
                     "client uses authorization identity, but it is not supported");
    }
    if (authzid_at >= msg.size() || msg[authzid_at] != ',') {
        return malformed("Unexpected attribute \"" + sanitize_char(msg, authzid_at) +
                         "\" in client-first-message.");
    }
    std::size_t header_prefix = authzid_at;
    gs2_header_ = std::string(msg.substr(0, header_prefix + 1));
    client_first_bare_ = std::string(msg.substr(header_prefix + 1));

    AttrReader bare(client_first_bare_);
    if (bare.peek() == 'm') {
        return error(kSqlstateFeatureNotSupported,
                     "client requires an unsupported SCRAM extension");
    }
    std::string_view user;
    std::string_view nonce;
    if (!bare.expect('n', user, err) || !bare.expect('r', nonce, err)) return malformed(err);
    if (!is_printable(nonce)) {
        return error(kSqlstateProtocolViolation, "non-printable characters in SCRAM nonce");
    }
    while (!bare.at_end()) {
        char attr = 0;
        std::string_view value;
        if (!bare.any(attr, value, err)) return malformed(err);
    }
    client_nonce_ = nonce;

    std::string server_nonce = options_.server_nonce;
    if (server_nonce.empty()) {
        auto fresh = random_nonce();
        if (!fresh) return error(kSqlstateInternalError, "could not generate random nonce");
        server_nonce = std::move(*fresh);
    }
    server_first_ = "r=" + client_nonce_ + server_nonce + ",s=" + base64_encode(verifier_.salt) +
                    ",i=" + std::to_string(verifier_.iterations);
    state_ = State::SentServerFirst;
    return step(Status::Continue, server_first_);
}

ScramResult ScramServer::handle_client_final(std::string_view msg) {
    if (state_ != State::SentServerFirst) {
        state_ = State::Done;
        return error(kSqlstateProtocolViolation, "invalid SCRAM exchange state");
    }
    state_ = State::Done;
    if (msg.empty()) return malformed("The message is empty.");
    if (msg.find('\0') != std::string_view::npos) {
        return malformed("The message length does not match input length.");
    }

    AttrReader r(msg);
    std::string err;
    std::string_view cbind_b64;
    if (!r.expect('c', cbind_b64, err)) return malformed(err);
    std::string expected_cbind = gs2_header_;
    if (cbind_flag_ == 'p') expected_cbind += options_.tls_server_end_point;
    std::string expected_b64 = base64_encode(expected_cbind);
    if (cbind_b64 != expected_b64) {
        if (cbind_flag_ == 'p') {
            return error(kSqlstateInvalidAuthorization, "SCRAM channel binding check failed");
        }
        return error(kSqlstateProtocolViolation,
                     "unexpected SCRAM channel-binding attribute in client-final-message");
    }

    std::string_view final_nonce;
    if (!r.expect('r', final_nonce, err)) return malformed(err);

    // Extensions until the proof; the proof must be last.
    std::size_t proof_at = 0;
    std::string_view proof_b64;
    for (;;) {
        proof_at = r.pos();
        char attr = 0;
        if (!r.any(attr, proof_b64, err)) return malformed(err);
        if (attr == 'p') break;
    }
    ScramKey proof{};
    if (!decode_key(proof_b64, proof)) return malformed("Malformed proof in client-final-message.");
    if (!r.at_end()) return malformed("Garbage found at the end of client-final-message.");

    std::string_view server_nonce = std::string_view(server_first_).substr(2);
    server_nonce = server_nonce.substr(0, server_nonce.find(','));
    if (final_nonce != server_nonce) {
        return error(kSqlstateProtocolViolation, "invalid SCRAM response", "Nonce does not match.");
    }

    // proof_at points after the ',' that precedes "p=".
    std::string_view without_proof = msg.substr(0, proof_at - 1);
    std::string auth_message =
        client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);

    ScramKey signature{};
    ScramKey client_key{};
    ScramKey check{};
    if (!hmac_sha256(view_of(verifier_.stored_key), auth_message, signature)) {
        return error(kSqlstateInternalError, "could not calculate client signature");
    }
    for (std::size_t i = 0; i < client_key.size(); ++i) client_key[i] = proof[i] ^ signature[i];
    if (!sha256(view_of(client_key), check)) {
        return error(kSqlstateInternalError, "could not hash stored key");
    }
    // The proof is computed even for a doomed exchange, so timing tells nothing.
    bool proof_ok = keys_equal(check, verifier_.stored_key);
    if (!proof_ok || options_.doomed) {
        OPENSSL_cleanse(client_key.data(), client_key.size());
        return failure(options_.doomed ? "no usable SCRAM secret for this user"
                                       : "invalid SCRAM proof");
    }

    ScramKey server_signature{};
    if (!hmac_sha256(view_of(verifier_.server_key), auth_message, server_signature)) {
        return error(kSqlstateInternalError, "could not calculate server signature");
    }
    client_key_ = client_key;
    OPENSSL_cleanse(client_key.data(), client_key.size());
    return step(Status::Success, "v=" + base64_encode(view_of(server_signature)));
}

// ---- client ----------------------------------------------------------------------------

ScramClient ScramClient::with_password(std::string_view password, ScramClientOptions options) {
    ScramClient c;
    c.options_ = std::move(options);
    c.password_ = password;
    return c;
}

ScramClient ScramClient::with_client_key(const ScramKey& client_key, const ScramVerifier& verifier,
                                         ScramClientOptions options) {
    ScramClient c;
    c.options_ = std::move(options);
    c.have_keys_ = true;
    c.client_key_ = client_key;
    c.stored_key_ = verifier.stored_key;
    c.server_key_ = verifier.server_key;
    c.iterations_ = verifier.iterations;
    c.salt_ = verifier.salt;
    return c;
}

std::string_view ScramClient::mechanism() const {
    return options_.tls_server_end_point.empty() ? kScramSha256 : kScramSha256Plus;
}

std::optional<std::string> ScramClient::client_first() {
    if (state_ != State::Init) return std::nullopt;
    client_nonce_ = options_.client_nonce;
    if (client_nonce_.empty()) {
        auto fresh = random_nonce();
        if (!fresh) return std::nullopt;
        client_nonce_ = std::move(*fresh);
    }
    // SCRAM's saslname escapes ',' and '='.
    std::string user;
    for (char c : options_.user) {
        if (c == ',') {
            user += "=2C";
        } else if (c == '=') {
            user += "=3D";
        } else {
            user.push_back(c);
        }
    }
    client_first_bare_ = "n=" + user + ",r=" + client_nonce_;
    state_ = State::SentClientFirst;
    std::string header = options_.tls_server_end_point.empty()
                             ? std::string("n,,")
                             : "p=" + std::string(kTlsServerEndPoint) + ",,";
    return header + client_first_bare_;
}

ScramResult ScramClient::handle_server_first(std::string_view msg) {
    if (state_ != State::SentClientFirst) {
        state_ = State::Done;
        return error(kSqlstateProtocolViolation, "invalid SCRAM exchange state");
    }
    state_ = State::Done;
    AttrReader r(msg);
    std::string err;
    std::string_view nonce;
    std::string_view salt_b64;
    std::string_view iter_text;
    if (!r.expect('r', nonce, err)) return malformed(err);
    if (nonce.size() <= client_nonce_.size() || !nonce.starts_with(client_nonce_) ||
        !is_printable(nonce)) {
        return error(kSqlstateProtocolViolation, "invalid SCRAM response (nonce mismatch)");
    }
    if (!r.expect('s', salt_b64, err)) return malformed(err);
    auto salt = base64_decode(salt_b64);
    if (!salt || salt->empty()) return malformed("invalid salt");
    int iterations = 0;
    if (!r.expect('i', iter_text, err)) return malformed(err);
    if (!parse_int(iter_text, iterations) || iterations < 1) {
        return malformed("invalid iteration count");
    }
    if (!r.at_end()) return malformed("garbage at end of server-first-message");

    if (have_keys_) {
        // The proof can only be built from the same salted password the verifier holds.
        if (iterations != iterations_ || *salt != salt_) {
            return failure(
                "the backend's SCRAM salt or iteration count differs from the verifier in "
                "authdb");
        }
    } else {
        if (!derive_keys(password_, *salt, iterations, client_key_, stored_key_, server_key_)) {
            return error(kSqlstateInternalError, "could not compute SCRAM keys");
        }
    }

    std::string header =
        options_.tls_server_end_point.empty()
            ? std::string("n,,")
            : "p=" + std::string(kTlsServerEndPoint) + ",," + options_.tls_server_end_point;
    std::string without_proof = "c=" + base64_encode(header) + ",r=" + std::string(nonce);
    auth_message_ = client_first_bare_ + "," + std::string(msg) + "," + without_proof;

    ScramKey signature{};
    if (!hmac_sha256(view_of(stored_key_), auth_message_, signature)) {
        return error(kSqlstateInternalError, "could not calculate client signature");
    }
    ScramKey proof{};
    for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = client_key_[i] ^ signature[i];
    state_ = State::SentClientFinal;
    return step(Status::Continue, without_proof + ",p=" + base64_encode(view_of(proof)));
}

ScramResult ScramClient::handle_server_final(std::string_view msg) {
    if (state_ != State::SentClientFinal) {
        state_ = State::Done;
        return error(kSqlstateProtocolViolation, "invalid SCRAM exchange state");
    }
    state_ = State::Done;
    AttrReader r(msg);
    std::string err;
    std::string_view value;
    if (r.peek() == 'e') {
        if (!r.expect('e', value, err)) return malformed(err);
        return failure("error received from server in SCRAM exchange: " + std::string(value));
    }
    if (!r.expect('v', value, err)) return malformed(err);
    ScramKey received{};
    if (!decode_key(value, received)) return malformed("invalid server signature");
    ScramKey expected{};
    if (!hmac_sha256(view_of(server_key_), auth_message_, expected)) {
        return error(kSqlstateInternalError, "could not calculate server signature");
    }
    if (!keys_equal(received, expected)) return failure("incorrect server signature");
    return step(Status::Success, {});
}

}  // namespace pgrouter
