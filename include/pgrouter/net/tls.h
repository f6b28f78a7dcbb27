// TLS setup with OpenSSL through Asio's ssl::context: the client-facing server context built
// from the `tls` block, the per-process contexts for backends (one per tls mode and CA file),
// the checks load_config runs on the files, and channel-binding data. Never does socket I/O
// (Wire does the handshakes) and never blocks the event loop beyond reading PEM files.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "pgrouter/base/asio.h"  // before any other Asio header
#include "pgrouter/config/config.h"

namespace pgrouter {

namespace ssl = asio::ssl;

// PostgreSQL's ALPN protocol name (PostgreSQL 17, direct TLS negotiation).
inline constexpr std::string_view kAlpnPostgresql = "postgresql";
// The first byte of a TLS record carrying a handshake (a ClientHello).
inline constexpr char kTlsHandshakeRecord = 0x16;

struct ServerTlsFiles {
    std::string cert;  // PEM chain, leaf first
    std::string key;
    std::string ca;       // optional: CA bundle for client certificates
    std::string ciphers;  // optional: OpenSSL cipher list (TLS 1.2 and below)
};

// Which setting a problem is about, so that load_config can name its line.
struct TlsProblem {
    enum class Field : std::uint8_t { Cert, Key, Ca, Ciphers };
    Field field = Field::Cert;
    std::string message;
};

using ServerTlsResult = std::variant<std::shared_ptr<ssl::context>, TlsProblem>;

// A server context: TLS 1.2 minimum, no renegotiation, the chain and key (checked to match),
// the cipher list, ALPN "postgresql" selected when offered (another protocol only is refused
// with a fatal alert, as PostgreSQL 17 does). With `ca`, client certificates are requested
// and checked when sent, but not required.
[[nodiscard]] ServerTlsResult make_server_tls(const ServerTlsFiles& files);

// The checks a loaded config needs beyond readable files: the server certificate and key
// parse and match, the cipher list names a cipher, CA files hold certificates (else the
// workers could not use them). Appends to `errors` with the directive's line.
void check_tls_config(const Config& config, std::vector<ConfigError>& errors);

// "" when `path` holds at least one PEM certificate, else why not.
[[nodiscard]] std::string check_ca_file(const std::string& path);

// The client context for connections to backends in `mode` (not Off) with `ca` (empty: the
// system store), built on first use and kept for the life of the process. nullptr and
// `error` when the CA file cannot be loaded.
[[nodiscard]] ssl::context* backend_tls_context(TlsMode mode, const std::string& ca,
                                                std::string& error);

// RFC 5929 tls-server-end-point for `cert`: the hash of its DER encoding with its signature
// algorithm's digest, SHA-256 for MD5 and SHA-1. Empty when the digest is unknown (then
// channel binding is not offered).
[[nodiscard]] std::string tls_server_end_point(X509* cert);

// HBA's clientcert=verify-ca|verify-full: "" when the client presented a certificate that
// the handshake verified (and, for verify-full, whose CN is `user`), else PostgreSQL's
// message.
[[nodiscard]] std::string client_cert_problem(SSL* ssl, std::string_view mode,
                                              const std::string& user);

// The ALPN protocol the handshake agreed on ("" when none).
[[nodiscard]] std::string_view tls_alpn_selected(SSL* ssl);

// Logs a failed client handshake at most once a second per process, with a count of the
// lines left out since the last one, so that a flood of bad clients cannot flood the log.
void log_tls_failure(std::uint64_t session_id, const std::string& peer, const std::string& why);

// OpenSSL's reason for the last failure on this thread ("" when none), queue cleared.
[[nodiscard]] std::string tls_error_string();

}  // namespace pgrouter
