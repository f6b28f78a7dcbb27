// TLS contexts and helpers (see tls.h). OpenSSL errors are turned into messages here; no
// exception leaves this file.
#include "pgrouter/net/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstring>
#include <map>
#include <utility>

#include "pgrouter/base/log.h"

namespace pgrouter {

namespace {

// Encrypted keys are refused rather than prompted for on a terminal nobody watches.
int no_passphrase(char*, int, int, void*) { return 0; }

// Selects "postgresql" when the client offers it; a client offering only other protocols
// gets a fatal no_application_protocol alert; one offering none goes on without ALPN.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    for (unsigned int i = 0; i < inlen;) {
        unsigned int len = in[i];
        if (i + 1 + len > inlen) break;
        std::string_view name(reinterpret_cast<const char*>(in + i + 1), len);
        if (name == kAlpnPostgresql) {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

TlsProblem problem(TlsProblem::Field field, const std::string& what) {
    std::string why = tls_error_string();
    return TlsProblem{field, why.empty() ? what : what + ": " + why};
}

void common_options(SSL_CTX* ctx) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

}  // namespace

std::string tls_error_string() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        const char* reason = ERR_reason_error_string(e);
        if (!out.empty()) out += "; ";
        out += reason != nullptr ? reason : buf;
    }
    return out;
}

ServerTlsResult make_server_tls(const ServerTlsFiles& files) {
    using Field = TlsProblem::Field;
    ERR_clear_error();
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* c = ctx->native_handle();
    common_options(c);
    SSL_CTX_set_default_passwd_cb(c, no_passphrase);
    if (SSL_CTX_use_certificate_chain_file(c, files.cert.c_str()) != 1) {
        return problem(Field::Cert, "cannot load certificate chain \"" + files.cert + "\"");
    }
    EVP_PKEY* key = nullptr;
    if (BIO* bio = BIO_new_file(files.key.c_str(), "r")) {
        key = PEM_read_bio_PrivateKey(bio, nullptr, no_passphrase, nullptr);
        BIO_free(bio);
    }
    if (key == nullptr) {
        return problem(Field::Key, "cannot load private key \"" + files.key + "\"");
    }
    bool matches = X509_check_private_key(SSL_CTX_get0_certificate(c), key) == 1;
    bool used = matches && SSL_CTX_use_PrivateKey(c, key) == 1;
    EVP_PKEY_free(key);
    if (!matches) {
        ERR_clear_error();
        return TlsProblem{Field::Key, "private key \"" + files.key +
                                          "\" does not match certificate \"" + files.cert + "\""};
    }
    if (!used) return problem(Field::Key, "cannot use private key \"" + files.key + "\"");
    if (!files.ciphers.empty() && SSL_CTX_set_cipher_list(c, files.ciphers.c_str()) != 1) {
        return problem(Field::Ciphers, "no usable cipher in \"" + files.ciphers + "\"");
    }
    if (!files.ca.empty()) {
        if (SSL_CTX_load_verify_locations(c, files.ca.c_str(), nullptr) != 1) {
            return problem(Field::Ca, "cannot load CA file \"" + files.ca + "\"");
        }
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.ca.c_str());
        if (names != nullptr) SSL_CTX_set_client_CA_list(c, names);
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    }
    SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);
    // Sessions are not resumed across workers; a cache would only hold memory.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c, 0);
    return ctx;
}

std::string check_ca_file(const std::string& path) {
    ERR_clear_error();
    X509_STORE* store = X509_STORE_new();
    if (store == nullptr) return "out of memory";
    std::string why;
    if (X509_STORE_load_file(store, path.c_str()) != 1) {
        why = tls_error_string();
        if (why.empty()) why = "no certificate found";
    }
    X509_STORE_free(store);
    return why;
}

ssl::context* backend_tls_context(TlsMode mode, const std::string& ca, std::string& error) {
    static std::map<std::pair<TlsMode, std::string>, std::unique_ptr<ssl::context>> contexts;
    auto key = std::pair{mode, mode == TlsMode::Verify ? ca : std::string()};
    auto it = contexts.find(key);
    if (it != contexts.end()) return it->second.get();
    ERR_clear_error();
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX* c = ctx->native_handle();
    common_options(c);
    if (mode == TlsMode::Verify) {
        int ok = ca.empty() ? SSL_CTX_set_default_verify_paths(c)
                            : SSL_CTX_load_verify_locations(c, ca.c_str(), nullptr);
        if (ok != 1) {
            error = "cannot load CA " + (ca.empty() ? std::string("store") : "\"" + ca + "\"") +
                    ": " + tls_error_string();
            return nullptr;
        }
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    }
    ssl::context* raw = ctx.get();
    contexts.emplace(std::move(key), std::move(ctx));
    return raw;
}

std::string tls_server_end_point(X509* cert) {
    if (cert == nullptr) return {};
    int md_nid = NID_undef;
    if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, nullptr) != 1) return {};
    if (md_nid == NID_md5 || md_nid == NID_sha1) md_nid = NID_sha256;
    const EVP_MD* md = EVP_get_digestbynid(md_nid);
    if (md == nullptr) return {};
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, md, hash, &len) != 1) return {};
    return std::string(reinterpret_cast<const char*>(hash), len);
}

std::string client_cert_problem(SSL* ssl, std::string_view mode, const std::string& user) {
    X509* cert = ssl != nullptr ? SSL_get0_peer_certificate(ssl) : nullptr;
    if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) {
        return "connection requires a valid client certificate";
    }
    if (mode != "verify-full") return {};
    char cn[256] = {};
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    if (n < 0 || static_cast<std::size_t>(n) != std::strlen(cn) || user != cn) {
        return "certificate validation (clientcert=verify-full) failed for user \"" + user +
               "\": CN mismatch";
    }
    return {};
}

std::string_view tls_alpn_selected(SSL* ssl) {
    const unsigned char* data = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl, &data, &len);
    return data == nullptr ? std::string_view()
                           : std::string_view(reinterpret_cast<const char*>(data), len);
}

void log_tls_failure(std::uint64_t session_id, const std::string& peer, const std::string& why) {
    static std::chrono::steady_clock::time_point last{};
    static unsigned long suppressed = 0;
    auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::seconds(1)) {
        ++suppressed;
        return;
    }
    last = now;
    if (suppressed == 0) {
        PGR_NOTICE("session %llu: TLS handshake with %s failed: %s",
                   static_cast<unsigned long long>(session_id), peer.c_str(), why.c_str());
    } else {
        PGR_NOTICE("session %llu: TLS handshake with %s failed: %s (%lu more failures not logged)",
                   static_cast<unsigned long long>(session_id), peer.c_str(), why.c_str(),
                   suppressed);
    }
    suppressed = 0;
}

// Readable is not enough: the certificate and key must parse and match, the cipher list
// must name a cipher and CA files must hold certificates, or the workers could not use them.
void check_tls_config(const Config& config, std::vector<ConfigError>& errors) {
    const std::string& file = config.file;
    if (config.tls.enabled) {
        ServerTlsResult r =
            make_server_tls({config.tls.cert, config.tls.key, config.tls.ca, config.tls.ciphers});
        if (auto* p = std::get_if<TlsProblem>(&r)) {
            int line = config.tls.line;
            switch (p->field) {
                case TlsProblem::Field::Cert:
                    line = config.tls.cert_line;
                    break;
                case TlsProblem::Field::Key:
                    line = config.tls.key_line;
                    break;
                case TlsProblem::Field::Ca:
                    line = config.tls.ca_line;
                    break;
                case TlsProblem::Field::Ciphers:
                    break;
            }
            errors.push_back({file, line, p->message});
        }
    }
    for (const BackendConfig& b : config.backends) {
        if (b.ca.empty()) continue;
        std::string why = check_ca_file(b.ca);
        if (!why.empty()) {
            errors.push_back(
                {file, b.line,
                 "ca file " + quote(b.ca) + " of backend " + b.address() + " is unusable: " + why});
        }
    }
}

}  // namespace pgrouter
