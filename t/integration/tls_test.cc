// TLS on both sides against real clients and servers: libpq's sslmodes and channel binding
// through pgrouter, hostssl/hostnossl, certificate rotation on SIGHUP, direct TLS (ALPN),
// hostile handshakes, and backends with ssl=on in each `tls` mode.
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <regex>

#include "../harness/cluster.h"
#include "../harness/files.h"
#include "../harness/log_check.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/router_process.h"
#include "../harness/run.h"
#include "../harness/tls_certs.h"
#include "pgrouter/proto/encoder.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

TlsCerts& certs() {
    static TlsCerts c;
    return c;
}

constexpr const char* kTlsHba =
    "hostssl all pgrtest 127.0.0.1/32 scram-sha-256\n"
    "hostnossl all demo 127.0.0.1/32 password\n"
    "host all tlstrust 127.0.0.1/32 trust\n"
    "host all postgres 127.0.0.1/32 scram-sha-256\n";

// A router with a `tls` block in front of `cluster` (node 0), and `backend_block` (e.g.
// "{ tls verify; ca FILE }") on its backend line.
struct TlsRouter {
    explicit TlsRouter(Cluster& c, int workers = 2, const std::string& backend_block = "",
                       bool wait = true)
        : cluster(c), workers(workers) {
        cluster.exec(0,
                     "DO $$BEGIN "
                     "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tlstrust') THEN "
                     "CREATE ROLE tlstrust LOGIN PASSWORD 'tlstrust-pw'; END IF; END$$");
        std::string authdb;
        for (const auto& row : cluster.query(0,
                                             "SELECT rolname, rolpassword FROM pg_authid "
                                             "WHERE rolname IN ('postgres', 'pgrtest', "
                                             "'demo')")) {
            authdb += "\"" + row[0] + "\" \"" + row[1] + "\"\n";
        }
        authdb += "\"tlstrust\" \"tlstrust-pw\"\n";
        write_file(files + "/hba.conf", kTlsHba);
        write_file(files + "/authdb.txt", authdb);
        write_file(files + "/server.crt", read_file(certs().cert()));
        write_file(files + "/server.key", read_file(certs().key()));
        router = std::make_unique<RouterProcess>(config(backend_block));
        if (wait) {
            REQUIRE(wait_until([&] { return can_connect(conninfo("pgrtest", "require")); }, 15s));
        }
    }

    std::string config(const std::string& backend_block) const {
        return "listen 127.0.0.1:" + std::to_string(port) +
               "\nmonitor 127.0.0.1:" + std::to_string(monitor) + "\nworkers " +
               std::to_string(workers) + "\nhba " + files + "/hba.conf\nauthdb " + files +
               "/authdb.txt\n" + "tls {\n  cert " + files + "/server.crt\n  key " + files +
               "/server.key\n" + tls_extra + "}\n" + "health { username postgres; password \"" +
               std::string(kSuperPassword) +
               "\"; check 1s }\nbackend 127.0.0.1:" + std::to_string(cluster.port(0)) + " " +
               backend_block + "\n";
    }

    std::string conninfo(const std::string& user, const std::string& sslmode,
                         const std::string& extra = "") const {
        std::string s = "host=127.0.0.1 port=" + std::to_string(port) + " user=" + user +
                        " dbname=" +
                        (user == "tlstrust"   ? "postgres"
                         : user == "postgres" ? "postgres"
                                              : user) +
                        " connect_timeout=10 sslmode=" + sslmode;
        std::string pw = password_for(user);
        if (!pw.empty()) s += " password=" + pw;
        return s + (extra.empty() ? "" : " " + extra);
    }

    // psql's error output for a failed connection, "" when it connected.
    std::string connect_error(const std::string& conninfo) const {
        RunResult r = run({"psql", conninfo, "-Atc", "SELECT 1"}, {{"PGPASSWORD", ""}});
        return r.status == 0 ? "" : r.err;
    }

    ~TlsRouter() {
        router.reset();
        remove_tree(files);
    }

    Cluster& cluster;
    int workers = 2;
    std::string tls_extra;  // more lines for the tls block
    std::string files = make_temp_dir("pgrouter-tls");
    int port = free_port();
    int monitor = free_port();
    std::unique_ptr<RouterProcess> router;
};

bool ssl_in_use(const PgConn& c) { return PQsslInUse(c.get()) == 1; }

// A plain blocking socket to 127.0.0.1:port.
int connect_raw(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        throw std::runtime_error("cannot connect to port " + std::to_string(port));
    }
    return fd;
}

// Reads until EOF (true) or the deadline (false).
bool wait_eof(int fd, std::chrono::milliseconds deadline) {
    auto end = std::chrono::steady_clock::now() + deadline;
    char buf[4096];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            end - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) return true;
    }
}

// PostgreSQL 17's direct TLS negotiation, done by hand: a ClientHello at once (ALPN
// "postgresql" unless `alpn` is empty), then a StartupMessage inside TLS. Returns the type
// bytes of the messages read until ReadyForQuery or an ErrorResponse; "" when the TLS
// handshake failed.
std::string direct_tls_login(int port, const std::string& user, const std::string& alpn) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    if (!alpn.empty()) {
        std::string wire = std::string(1, static_cast<char>(alpn.size())) + alpn;
        SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size()));
    }
    int fd = connect_raw(port);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    std::string types;
    if (SSL_connect(ssl) == 1) {
        std::string startup;
        pgrouter::proto::encode_startup_message(startup,
                                                {{"user", user}, {"database", "postgres"}});
        SSL_write(ssl, startup.data(), static_cast<int>(startup.size()));
        std::string in;
        char buf[4096];
        bool done = false;
        while (!done) {
            int n = SSL_read(ssl, buf, sizeof buf);
            if (n <= 0) break;
            in.append(buf, static_cast<std::size_t>(n));
            while (in.size() >= 5) {
                std::uint32_t len = (static_cast<unsigned char>(in[1]) << 24) |
                                    (static_cast<unsigned char>(in[2]) << 16) |
                                    (static_cast<unsigned char>(in[3]) << 8) |
                                    static_cast<unsigned char>(in[4]);
                if (in.size() < len + 1) break;
                types += in[0];
                if (in[0] == 'Z' || in[0] == 'E') done = true;
                in.erase(0, len + 1);
            }
        }
    }
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    return types;
}

std::string backend_status(const RouterProcess& r, int monitor_port, int backend_port) {
    try {
        std::string dump = r.monitor(monitor_port);
        std::smatch m;
        std::regex re("127\\.0\\.0\\.1:" + std::to_string(backend_port) +
                      " (master|slave) (OK|FAILED|STARTING)");
        if (std::regex_search(dump, m, re)) return m[2];
    } catch (const std::exception&) {
    }
    return "";
}

}  // namespace

TEST_CASE("tls: libpq sslmodes, channel binding, hostssl and hostnossl", "[tls]") {
    TlsRouter t(Cluster::shared());
    {
        PgConn c(t.conninfo("pgrtest", "require"));
        CHECK(ssl_in_use(c));
        CHECK(c.value("SELECT current_user") == "pgrtest");
    }
    {
        PgConn c(t.conninfo("pgrtest", "verify-full", "sslrootcert=" + certs().ca()));
        CHECK(ssl_in_use(c));
        CHECK(c.value("SELECT 42") == "42");
    }
    CHECK(t.connect_error(t.conninfo("pgrtest", "verify-full", "sslrootcert=" + certs().wrong_ca()))
              .find("certificate verify failed") != std::string::npos);
    {
        PgConn c(t.conninfo("pgrtest", "require", "channel_binding=require"));
        CHECK(ssl_in_use(c));
        CHECK(c.value("SELECT 1") == "1");
    }
    {
        // Protocol 3.0 clients with an SCRAM-SHA-256 secret on a host line, over TLS.
        PgConn c(t.conninfo("postgres", "require", "channel_binding=require"));
        CHECK(c.value("SELECT current_user") == "postgres");
    }
    // hostssl: a client without TLS matches no line, with PostgreSQL's message.
    std::string e = t.connect_error(t.conninfo("pgrtest", "disable"));
    CHECK(e.find("no pg_hba.conf entry for host \"127.0.0.1\", user \"pgrtest\", database "
                 "\"pgrtest\", no encryption") != std::string::npos);
    // hostnossl: the same user with TLS matches no line; without it logs in.
    e = t.connect_error(t.conninfo("demo", "require"));
    CHECK(e.find("no pg_hba.conf entry for host \"127.0.0.1\", user \"demo\", database "
                 "\"demo\", SSL encryption") != std::string::npos);
    {
        PgConn c(t.conninfo("demo", "disable"));
        CHECK_FALSE(ssl_in_use(c));
        CHECK(c.value("SELECT current_user") == "demo");
    }
    // channel_binding=require cannot be met without TLS.
    CHECK_FALSE(can_connect(t.conninfo("postgres", "disable", "channel_binding=require")));
    // pgbench -S over TLS.
    std::string ci = t.conninfo("pgrtest", "require");
    REQUIRE(run({"pgbench", "-i", "-q", "-s", "1", ci}).status == 0);
    RunResult bench = run({"pgbench", "-n", "-S", "-c", "4", "-j", "2", "-t", "200", ci});
    INFO(bench.out << bench.err);
    CHECK(bench.status == 0);
    CHECK(bench.out.find("number of failed transactions: 0") != std::string::npos);
    CHECK(t.router->stop() == 0);
    check_log_clean(*t.router);
}

TEST_CASE("tls: clientcert=verify-ca and verify-full on hostssl lines", "[tls]") {
    TlsRouter t(Cluster::shared());
    write_file(t.files + "/hba.conf",
               "hostssl all pgrtest 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n"
               "hostssl all demo 127.0.0.1/32 password clientcert=verify-full\n"
               "hostssl all postgres 127.0.0.1/32 scram-sha-256 clientcert=verify-ca\n");
    t.tls_extra = "  ca " + certs().ca() + "\n";
    t.router->write_config(t.config(""));
    t.router->signal(SIGHUP);
    std::string with_cert = "sslcert=" + certs().client_cert() + " sslkey=" + certs().client_key();
    CHECK(wait_until([&] {
        return t.connect_error(t.conninfo("pgrtest", "require", "sslcert=/nonexistent"))
                   .find("connection requires a valid client certificate") != std::string::npos;
    }));
    {
        PgConn c(t.conninfo("pgrtest", "require", with_cert));
        CHECK(c.value("SELECT current_user") == "pgrtest");
    }
    CHECK(t.connect_error(t.conninfo("demo", "require", with_cert))
              .find("certificate validation (clientcert=verify-full) failed for user \"demo\": CN "
                    "mismatch") != std::string::npos);
    CHECK(can_connect(t.conninfo("postgres", "require", with_cert)));  // verify-ca: any CN
    CHECK(t.router->stop() == 0);
    check_log_clean(*t.router);
}

TEST_CASE("tls: SIGHUP serves a rotated certificate, sessions keep theirs, bad files rejected",
          "[tls]") {
    TlsRouter t(Cluster::shared());
    std::string old_fp = TlsCerts::fingerprint(certs().cert());
    std::string new_fp = TlsCerts::fingerprint(certs().rotated_cert());
    REQUIRE(old_fp != new_fp);
    CHECK(TlsCerts::served_fingerprint(t.port) == old_fp);
    PgConn established(t.conninfo("pgrtest", "verify-full", "sslrootcert=" + certs().ca()));
    CHECK(established.value("SELECT 1") == "1");

    // A key that does not match the certificate: a config error with file:line for -t and
    // for a reload, which keeps the running certificate.
    write_file(t.files + "/server.crt", read_file(certs().rotated_cert()));
    RunResult check = run({t.router->binary(), "-t", "-c", t.router->config_path()});
    CHECK(check.status != 0);
    CHECK(std::regex_search(check.out + check.err,
                            std::regex(":[0-9]+: private key .* does not match certificate")));
    size_t mark = t.router->log_size();
    t.router->signal(SIGHUP);
    CHECK(t.router->wait_for_log("does not match certificate", 10s, mark));
    CHECK(TlsCerts::served_fingerprint(t.port) == old_fp);

    // Both files rotated: new connections get the new certificate after SIGHUP.
    write_file(t.files + "/server.key", read_file(certs().rotated_key()));
    t.router->signal(SIGHUP);
    CHECK(wait_until([&] { return TlsCerts::served_fingerprint(t.port) == new_fp; }, 10s, 200ms));
    CHECK(can_connect(t.conninfo("pgrtest", "verify-full", "sslrootcert=" + certs().ca())));
    // The session opened before keeps working on its TLS session.
    CHECK(established.value("SELECT 2") == "2");
    { PgConn done = std::move(established); }
    CHECK(t.router->stop() == 0);
    check_log_clean(*t.router);
}

TEST_CASE("tls: direct TLS with ALPN, garbage and stalled handshakes harm no one", "[tls]") {
    TlsRouter t(Cluster::shared(), 1);  // one worker: all sessions share its loop
    // Direct negotiation: ClientHello first, ALPN "postgresql", StartupMessage inside TLS.
    std::string types = direct_tls_login(t.port, "tlstrust", "postgresql");
    CHECK(types.find('R') != std::string::npos);
    CHECK(types.back() == 'Z');
    // Without ALPN a direct connection is refused.
    types = direct_tls_login(t.port, "tlstrust", "");
    CHECK(types.find('Z') == std::string::npos);

    PgConn healthy(t.conninfo("pgrtest", "require"));
    // Garbage after SSLRequest: the handshake fails and the connection closes at once.
    int garbage = connect_raw(t.port);
    std::string req;
    pgrouter::proto::encode_ssl_request(req);
    REQUIRE(write(garbage, req.data(), req.size()) == static_cast<ssize_t>(req.size()));
    char answer = 0;
    REQUIRE(read(garbage, &answer, 1) == 1);
    CHECK(answer == 'S');
    std::string junk(200, '\x42');
    REQUIRE(write(garbage, junk.data(), junk.size()) == static_cast<ssize_t>(junk.size()));
    CHECK(wait_eof(garbage, 5s));
    close(garbage);
    // A TLS record header promising more than is ever sent: stalls until the deadline.
    int staller = connect_raw(t.port);
    std::string partial("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
    REQUIRE(write(staller, partial.data(), partial.size()) == 11);
    int staller2 = connect_raw(t.port);
    REQUIRE(write(staller2, req.data(), req.size()) == static_cast<ssize_t>(req.size()));
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 50; ++i) {
        CHECK(healthy.value("SELECT " + std::to_string(i)) == std::to_string(i));
    }
    CHECK(can_connect(t.conninfo("pgrtest", "require")));
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(wait_eof(staller, 12s));  // the startup deadline (10 s) closes them
    CHECK(wait_eof(staller2, 5s));
    close(staller);
    close(staller2);
    { PgConn done = std::move(healthy); }
    CHECK(t.router->stop() == 0);
    check_log_clean(*t.router);
    // Failures are logged, rate-limited.
    CHECK(t.router->log().find("TLS handshake with 127.0.0.1 failed") != std::string::npos);
}

TEST_CASE("tls: backends with ssl=on in each tls mode; a wrong CA fails the backend",
          "[tls][backend-tls]") {
    ClusterOptions o;
    o.standbys = 0;
    o.quiet = true;
    Cluster c(o);
    certs().install_server(c.datadir(0));
    c.append_conf(0, "ssl = on\n");
    c.reload(0);
    REQUIRE(wait_until([&] { return c.exec(0, "SHOW ssl") == "on"; }));
    const std::string ssl_query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    struct Mode {
        std::string block;
        std::string ssl;
    };
    for (const Mode& m : {Mode{"", "f"}, Mode{"{ tls off }", "f"}, Mode{"{ tls skipverify }", "t"},
                          Mode{"{ tls verify; ca " + certs().ca() + " }", "t"}}) {
        INFO(m.block);
        TlsRouter t(c, 2, m.block);
        PgConn conn(t.conninfo("pgrtest", "require"));
        CHECK(conn.value(ssl_query) == m.ssl);
        CHECK(conn.value("SELECT count(*) FROM generate_series(1, 100000)") == "100000");
        { PgConn done = std::move(conn); }
        CHECK(t.router->stop() == 0);
        check_log_clean(*t.router);
    }
    {
        TlsRouter t(c, 2, "{ tls verify; ca " + certs().wrong_ca() + " }", false);
        CHECK(
            wait_until([&] { return backend_status(*t.router, t.monitor, c.port(0)) == "FAILED"; },
                       15s, 100ms));
        std::string e = t.connect_error(t.conninfo("pgrtest", "require"));
        CHECK_FALSE(e.empty());
        CHECK(t.router->stop() == 0);
    }
    // A backend without ssl under tls skipverify: refused, FAILED.
    c.append_conf(0, "ssl = off\n");
    c.reload(0);
    REQUIRE(wait_until([&] { return c.exec(0, "SHOW ssl") == "off"; }));
    {
        TlsRouter t(c, 2, "{ tls skipverify }", false);
        CHECK(
            wait_until([&] { return backend_status(*t.router, t.monitor, c.port(0)) == "FAILED"; },
                       15s, 100ms));
        CHECK_FALSE(t.connect_error(t.conninfo("pgrtest", "require")).empty());
        CHECK(t.router->stop() == 0);
    }
}

TEST_CASE("tls: a client asking for renegotiation is refused and closed; others carry on",
          "[tls]") {
    TlsRouter t(Cluster::shared(), 1);
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);  // renegotiation exists up to 1.2
    const unsigned char alpn[] = "\x0apostgresql";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    int fd = connect_raw(t.port);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    REQUIRE(SSL_connect(ssl) == 1);
    CHECK(SSL_renegotiate(ssl) == 1);
    CHECK(SSL_do_handshake(ssl) != 1);  // the server will not renegotiate
    PgConn other(t.conninfo("pgrtest", "require"));
    CHECK(other.value("SELECT 7") == "7");
    CHECK(wait_eof(fd, 12s));  // no StartupMessage came: the startup deadline closes it
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    { PgConn done = std::move(other); }
    CHECK(t.router->stop() == 0);
    check_log_clean(*t.router);
}
