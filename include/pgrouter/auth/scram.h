// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it: verifiers in pg_authid's
// format, the server side that authenticates a client and recovers its ClientKey, and the
// client side that logs in to a backend with a password or with that recovered ClientKey.
// Crypto from OpenSSL, comparisons in constant time; no I/O, no logging, nothing thrown.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgrouter {

inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
inline constexpr std::string_view kScramSha256Plus = "SCRAM-SHA-256-PLUS";
inline constexpr int kScramDefaultIterations = 4096;  // PostgreSQL's scram_iterations
inline constexpr std::size_t kScramDefaultSaltLength = 16;
inline constexpr std::size_t kScramRawNonceLength = 18;
inline constexpr std::size_t kScramKeyLength = 32;

using ScramKey = std::array<std::uint8_t, kScramKeyLength>;

// Standard base64 with padding (RFC 4648), as SCRAM and pg_authid use it. decode rejects
// anything else (bad characters, bad padding, whitespace).
[[nodiscard]] std::string base64_encode(std::string_view bytes);
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

// Cryptographically random bytes (RAND_bytes); false only if OpenSSL cannot seed.
[[nodiscard]] bool random_bytes(void* out, std::size_t n);

// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
struct ScramVerifier {
    int iterations = 0;
    std::string salt;  // raw bytes
    ScramKey stored_key{};
    ScramKey server_key{};

    [[nodiscard]] std::string to_string() const;
};

[[nodiscard]] std::optional<ScramVerifier> parse_scram_verifier(std::string_view text);

// SASLprep limitation: passwords are used as bytes (exact for ASCII, where SASLprep changes
// nothing PostgreSQL would keep). PostgreSQL applies SASLprep (NFKC and friends) to
// non-ASCII passwords, so a plaintext secret or client password with non-ASCII characters
// that SASLprep changes will not match. Verifiers exported from pg_authid and ClientKey
// logins are unaffected: they never see the password.
//
// Derives a verifier from a password. An empty salt means a fresh random one of
// kScramDefaultSaltLength bytes. nullopt only when OpenSSL fails.
[[nodiscard]] std::optional<ScramVerifier> make_scram_verifier(
    std::string_view password, int iterations = kScramDefaultIterations,
    std::string_view salt = {});

// A verifier for a user that does not exist, stable per user and `secret` (PostgreSQL's
// scram_mock_salt): the exchange then looks the same as for a real user and fails at the end.
[[nodiscard]] ScramVerifier scram_mock_verifier(std::string_view user, std::string_view secret);

// The outcome of one step of an exchange.
struct ScramResult {
    enum class Status : std::uint8_t {
        Continue,  // send `message` (server-first / client-final) and wait for the answer
        Success,   // done; `message` is the server-final to send (server) or empty (client)
        Failure,   // authentication failed: 28P01 "password authentication failed for user"
        Error,     // malformed or unsupported message: send sqlstate + error (+ detail)
    };
    Status status = Status::Error;
    std::string message;
    std::string_view sqlstate;  // Failure and Error
    std::string error;          // Error: the message text (PostgreSQL's wording)
    std::string detail;         // Error: errdetail; Failure: the reason, for the log only
};

struct ScramServerOptions {
    // The client chose SCRAM-SHA-256-PLUS in its SASLInitialResponse.
    bool plus_selected = false;
    // The server advertised SCRAM-SHA-256-PLUS (TLS with channel binding available).
    bool plus_offered = false;
    // tls-server-end-point data: the hash of the server's certificate (RFC 5929). Required
    // when plus_selected.
    std::string tls_server_end_point;
    // Fail at the end whatever the proof (unknown user, unusable secret), as PostgreSQL's
    // "doomed" exchange does, so that a client cannot probe for user names.
    bool doomed = false;
    // Tests only: the server's part of the nonce (printable, no ','); random when empty.
    std::string server_nonce;
};

// One server-side exchange: handle_client_first() then handle_client_final(), each once.
class ScramServer {
  public:
    ScramServer(ScramVerifier verifier, ScramServerOptions options = {});

    // `msg` is the data of SASLInitialResponse. Continue carries the server-first message.
    // A SASLInitialResponse without data (length -1) is answered, as PostgreSQL does, with
    // an empty AuthenticationSASLContinue; the next SASLResponse's data then comes here.
    [[nodiscard]] ScramResult handle_client_first(std::string_view msg);
    // `msg` is the data of SASLResponse. Success carries the server-final message.
    [[nodiscard]] ScramResult handle_client_final(std::string_view msg);

    // After Success: ClientProof XOR HMAC(StoredKey, AuthMessage), already checked against
    // StoredKey. Keep it in the session only.
    const std::optional<ScramKey>& client_key() const { return client_key_; }
    const ScramVerifier& verifier() const { return verifier_; }

  private:
    enum class State : std::uint8_t { Init, SentServerFirst, Done };
    ScramVerifier verifier_;
    ScramServerOptions options_;
    State state_ = State::Init;
    char cbind_flag_ = 'n';
    std::string gs2_header_;
    std::string client_nonce_;
    std::string client_first_bare_;
    std::string server_first_;
    std::optional<ScramKey> client_key_;
};

struct ScramClientOptions {
    // Sent as n=; PostgreSQL ignores it and libpq sends it empty.
    std::string user;
    // tls-server-end-point data of the backend's certificate: when set, SCRAM-SHA-256-PLUS
    // with channel binding; when empty, SCRAM-SHA-256 with gs2 header "n,,".
    std::string tls_server_end_point;
    // Tests only: the client nonce; random when empty.
    std::string client_nonce;
};

// One client-side exchange: client_first(), handle_server_first(), handle_server_final().
class ScramClient {
  public:
    // Log in with a password (salt and iterations come from the server).
    [[nodiscard]] static ScramClient with_password(std::string_view password,
                                                   ScramClientOptions options = {});
    // Log in with a recovered ClientKey and the verifier it was checked against: the
    // backend must use the same salt and iteration count (the same pg_authid row).
    [[nodiscard]] static ScramClient with_client_key(const ScramKey& client_key,
                                                     const ScramVerifier& verifier,
                                                     ScramClientOptions options = {});

    // The mechanism to name in SASLInitialResponse.
    std::string_view mechanism() const;
    // The data of SASLInitialResponse; nullopt only if no random nonce could be made.
    [[nodiscard]] std::optional<std::string> client_first();
    // The data of AuthenticationSASLContinue. Continue carries the client-final message.
    [[nodiscard]] ScramResult handle_server_first(std::string_view msg);
    // The data of AuthenticationSASLFinal: Success once the server signature checks out.
    [[nodiscard]] ScramResult handle_server_final(std::string_view msg);

  private:
    enum class State : std::uint8_t { Init, SentClientFirst, SentClientFinal, Done };
    ScramClient() = default;
    ScramClientOptions options_;
    std::string password_;
    bool have_keys_ = false;  // true: client_key_ etc. are given, not derived
    ScramKey client_key_{};
    ScramKey stored_key_{};
    ScramKey server_key_{};
    int iterations_ = 0;  // with_client_key: what the backend must announce
    std::string salt_;
    State state_ = State::Init;
    std::string client_nonce_;
    std::string client_first_bare_;
    std::string auth_message_;
};

}  // namespace pgrouter
