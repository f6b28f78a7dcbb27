// The one table of pgrouter.conf directives. The parser (config.cc) refuses every name that
// is not here, the man page and etc/pgrouter.conf are checked against it, so a directive is
// added here first. Defaults shown must match the member initialisers in config.h.
#include "pgrouter/config/directives.h"

#include <array>

namespace pgrouter {
namespace {

using S = DirectiveScope;

constexpr std::array kDirectives = {
    Directive{"listen", S::Top, "address", "*:5432", false,
              "address and port to accept client connections on ('*' for every address)"},
    Directive{"monitor", S::Top, "address", "127.0.0.1:14231", false,
              "address and port of the monitoring listener"},
    Directive{"workers", S::Top, "integer", "number of CPUs", false,
              "how many worker processes accept client connections (1-256)"},
    Directive{"hba", S::Top, "path", "", true,
              "host-based access file (pg_hba.conf syntax) checked for every client"},
    Directive{"authdb", S::Top, "path", "", true,
              "file of user names and password verifiers used to authenticate clients"},
    Directive{"tls", S::Top, "block", "", false,
              "block enabling TLS for clients: ciphers, cert, key, ca"},
    Directive{"user", S::Top, "string", "", false, "user to run as after binding the ports"},
    Directive{"group", S::Top, "string", "", false, "group to run as after binding the ports"},
    Directive{"pidfile", S::Top, "path", "/run/pgrouter/pgrouter.pid", false,
              "file holding the daemon's pid (none in the foreground unless set)"},
    Directive{"log", S::Top, "level", "INFO", true,
              "least severe messages logged: EMERGENCY ALERT CRITICAL ERROR WARNING NOTICE "
              "INFO DEBUG"},
    Directive{"health", S::Top, "block", "", true,
              "block of health-check settings: timeout, check, lag-interval, database, "
              "username, password"},
    Directive{"backend", S::Top, "address", "", true,
              "a PostgreSQL server to route to (HOST:PORT), or 'default' to set the defaults "
              "of the backends that follow"},

    Directive{"ciphers", S::Tls, "string", "", true,
              "OpenSSL cipher list offered to clients (empty: OpenSSL's default)"},
    Directive{"cert", S::Tls, "path", "", true, "certificate chain (PEM) shown to clients"},
    Directive{"key", S::Tls, "path", "", true, "private key (PEM) of the certificate"},
    Directive{"ca", S::Tls, "path", "", true, "CA bundle (PEM) for verifying client certificates"},

    Directive{"timeout", S::Health, "duration", "5s", true,
              "how long one health check of a backend may take"},
    Directive{"check", S::Health, "duration", "15s", true,
              "how often every backend is checked for health"},
    Directive{"lag-interval", S::Health, "duration", "250ms", true,
              "how often the replication lag of the standbys is measured"},
    Directive{"database", S::Health, "string", "postgres", true,
              "database the health checks connect to"},
    Directive{"username", S::Health, "string", "postgres", true,
              "user the health checks connect as"},
    Directive{"password", S::Health, "string", "", true, "password of the health-check user"},

    Directive{"tls", S::Backend, "tls-mode", "off", true,
              "TLS to this backend: off, verify or skipverify"},
    Directive{"lag", S::Backend, "size", "1M", true,
              "how far (bytes of WAL) a standby may trail the master and still take reads"},
    Directive{"weight", S::Backend, "integer", "100", true,
              "relative share of read queries (0-1000000; 0 takes none)"},
    Directive{"ca", S::Backend, "path", "", true,
              "CA bundle (PEM) for 'tls verify' (empty: the system's store)"},
    Directive{"replstatus", S::Backend, "port", "", true,
              "port of the bgw_replstatus probe on this backend (none unless set)"},
};

}  // namespace

std::span<const Directive> directives() { return kDirectives; }

}  // namespace pgrouter
