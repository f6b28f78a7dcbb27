// Unit tests of the configuration parser: every directive and unit, every error message
// (exact text and line), the spec's example config, the directive table agreeing with the
// parser, and load_config's file checks (in a temporary directory).
#include "pgrouter/config/config.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "pgrouter/config/directives.h"
#include "pgrouter/net/tls.h"

namespace pgrouter {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

// Put before a snippet so that it has a backend without moving the snippet's lines.
constexpr std::string_view kB = "backend 192.0.2.1:5432; ";

std::vector<std::string> messages(const ConfigResult& r) {
    std::vector<std::string> out;
    for (const ConfigError& e : r.errors) out.push_back(e.to_string());
    return out;
}

Config parse_ok(const std::string& text) {
    ConfigResult r = parse_config(text, "t.conf");
    INFO(text);
    CHECK(messages(r) == std::vector<std::string>{});
    REQUIRE(r.config);
    return *r.config;
}

std::vector<std::string> parse_errors(const std::string& text) {
    ConfigResult r = parse_config(text, "t.conf");
    CHECK_FALSE(r.config);
    return messages(r);
}

std::string read_text(const std::string& rel) {
    // The tests run from the repository root; fall back to this file's location.
    for (auto base : {std::filesystem::path("."),
                      std::filesystem::path(__FILE__).parent_path() / ".." / ".."}) {
        std::ifstream in(base / rel);
        if (in) {
            std::ostringstream s;
            s << in.rdbuf();
            return s.str();
        }
    }
    FAIL("cannot read " << rel);
    return {};
}

TEST_CASE("config: the spec's example parses into the documented values") {
    Config c = parse_ok(read_text("etc/pgrouter.conf.example"));
    CHECK(c.file == "t.conf");
    CHECK(c.listen.host == "*");
    CHECK(c.listen.port == 5432);
    CHECK(c.monitor.to_string() == "127.0.0.1:9881");
    CHECK(c.workers == 64);
    CHECK(c.hba == "/path/to/hba");
    CHECK(c.authdb.empty());
    CHECK(c.tls.enabled);
    CHECK(c.tls.line == 8);
    CHECK(c.tls.ciphers == "ALL:!EXP:!LOW");
    CHECK(c.tls.cert == "/path/to/pem");
    CHECK(c.tls.key == "/path/to/pem");
    CHECK(c.tls.ca.empty());
    CHECK(c.user == "vcap");
    CHECK(c.group == "vcap");
    CHECK(c.pidfile == "/var/vcap/sys/run/pgrouter/pgrouter.pid");
    CHECK(c.log == LogLevel::Info);
    CHECK(c.health.timeout == 5s);
    CHECK(c.health.check == 15s);
    CHECK(c.health.lag_interval == 250ms);
    CHECK(c.health.database == "postgres");
    CHECK(c.health.username == "pgtest");
    CHECK(c.health.password == "sekrit squirrel");

    struct Want {
        std::string address;
        std::uint64_t lag;
        std::uint32_t weight;
        TlsMode tls;
        int line;
    };
    const std::vector<Want> want = {
        {"10.0.0.5:6432", 800, 100, TlsMode::SkipVerify, 32},
        {"10.0.0.6:6432", 200, 100, TlsMode::SkipVerify, 33},
        {"10.0.0.7:6432", 500, 125, TlsMode::Off, 36},
        {"10.0.0.8:6432", 200, 250, TlsMode::Off, 37},
    };
    REQUIRE(c.backends.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        const BackendConfig& b = c.backends[i];
        INFO(want[i].address);
        CHECK(b.address() == want[i].address);
        CHECK(b.lag == want[i].lag);
        CHECK(b.weight == want[i].weight);
        CHECK(b.tls == want[i].tls);
        CHECK(b.line == want[i].line);
        CHECK(b.ca.empty());
        CHECK(b.replstatus_port == 0);
    }
}

TEST_CASE("config: the example file is the spec's example, verbatim") {
    std::string spec;
    for (auto path :
         {"/work/shared/spec/pgrouter-design.txt", "../shared/spec/pgrouter-design.txt"}) {
        std::ifstream in(path);
        if (in) {
            std::ostringstream s;
            s << in.rdbuf();
            spec = s.str();
            break;
        }
    }
    if (spec.empty()) return;  // the spec lives beside the repository, not in it
    std::string example = read_text("etc/pgrouter.conf.example");
    CHECK(spec.find("```\n" + example + "```") != std::string::npos);
}

TEST_CASE("config: the packaged pgrouter.conf parses and mentions every directive") {
    std::string text = read_text("etc/pgrouter.conf");
    Config c = parse_ok(text);
    CHECK(c.listen.to_string() == "127.0.0.1:6432");
    CHECK(c.monitor.to_string() == "127.0.0.1:14231");
    CHECK(c.hba == "/etc/pgrouter/hba.conf");
    CHECK(c.pidfile == "/run/pgrouter/pgrouter.pid");
    CHECK(c.log == LogLevel::Info);
    REQUIRE(c.backends.size() == 1);
    CHECK(c.backends[0].address() == "127.0.0.1:5432");
    for (const Directive& d : directives()) {
        INFO(d.name);
        CHECK(text.find(std::string(d.name) + " ") != std::string::npos);
    }
}

TEST_CASE("config: defaults come from the directive table when nothing is set") {
    Config c = parse_ok("backend db:5432");
    CHECK(c.listen.to_string() == "*:5432");
    CHECK(c.monitor.to_string() == "127.0.0.1:14231");
    CHECK(c.workers == 0);
    CHECK(c.log == LogLevel::Info);
    CHECK(c.health.timeout == 5s);
    CHECK(c.health.check == 15s);
    CHECK(c.health.lag_interval == 250ms);
    CHECK(c.health.database == "postgres");
    CHECK(c.health.username == "postgres");
    CHECK(c.health.password.empty());
    CHECK_FALSE(c.tls.enabled);
    CHECK(c.hba.empty());
    CHECK(c.pidfile.empty());
    REQUIRE(c.backends.size() == 1);
    CHECK(c.backends[0].host == "db");
    CHECK(c.backends[0].port == 5432);
    CHECK(c.backends[0].weight == 100);
    CHECK(c.backends[0].lag == 1024 * 1024);
    CHECK(c.backends[0].tls == TlsMode::Off);
    CHECK(c.backends[0].line == 1);
}

// One valid use of each directive, and how to read its value back, so that the table and
// the parser are checked against each other in both directions.
struct Sample {
    DirectiveScope scope;
    std::string_view name;
    std::string snippet;  // a whole config using the directive
    std::function<std::string(const Config&)> get;
};

std::string ms(Millis m) { return std::to_string(m.count()) + "ms"; }

const std::vector<Sample>& samples() {
    using S = DirectiveScope;
    static const std::vector<Sample> s = {
        {S::Top, "listen", "listen 10.1.1.1:7000\nbackend h:1",
         [](const Config& c) { return c.listen.to_string(); }},
        {S::Top, "monitor", "monitor [::1]:9000\nbackend h:1",
         [](const Config& c) { return c.monitor.to_string(); }},
        {S::Top, "metrics", "metrics 127.0.0.1:9187\nbackend h:1",
         [](const Config& c) { return c.metrics ? c.metrics->to_string() : ""; }},
        {S::Top, "admin-users", "admin-users alice,bob\nbackend h:1",
         [](const Config& c) {
             std::string out;
             for (const std::string& n : c.admin_users) out += n + ";";
             return out;
         }},
        {S::Top, "log-connections", "log-connections on\nbackend h:1",
         [](const Config& c) { return c.log_connections ? "on" : "off"; }},
        {S::Top, "read-your-writes", "read-your-writes user\nbackend h:1",
         [](const Config& c) { return c.ryw_user ? "user" : "session"; }},
        {S::Top, "workers", "workers 8\nbackend h:1",
         [](const Config& c) { return std::to_string(c.workers); }},
        {S::Top, "hba", "hba /etc/hba\nbackend h:1", [](const Config& c) { return c.hba; }},
        {S::Top, "authdb", "authdb /etc/users\nbackend h:1",
         [](const Config& c) { return c.authdb; }},
        {S::Top, "tls", "tls { cert /c; key /k }\nbackend h:1",
         [](const Config& c) { return c.tls.enabled ? "on" : "off"; }},
        {S::Top, "user", "user nobody\nbackend h:1", [](const Config& c) { return c.user; }},
        {S::Top, "group", "group nogroup\nbackend h:1", [](const Config& c) { return c.group; }},
        {S::Top, "pidfile", "pidfile /run/p.pid\nbackend h:1",
         [](const Config& c) { return c.pidfile; }},
        {S::Top, "log", "log debug\nbackend h:1",
         [](const Config& c) { return std::string(log_level_name(c.log)); }},
        {S::Top, "max-message-size", "max-message-size 64M\nbackend h:1",
         [](const Config& c) { return std::to_string(c.max_message_size); }},
        {S::Top, "classify-limit", "classify-limit 4k\nbackend h:1",
         [](const Config& c) { return std::to_string(c.classify_limit); }},
        {S::Top, "shutdown-timeout", "shutdown-timeout 3s\nbackend h:1",
         [](const Config& c) { return ms(c.shutdown_timeout); }},
        {S::Top, "health", "health { }\nbackend h:1",
         [](const Config& c) { return ms(c.health.check); }},
        {S::Top, "backend", "backend h:1",
         [](const Config& c) { return c.backends.at(0).address(); }},
        {S::Tls, "ciphers", "tls { ciphers HIGH; cert /c; key /k }\nbackend h:1",
         [](const Config& c) { return c.tls.ciphers; }},
        {S::Tls, "cert", "tls { cert /c; key /k }\nbackend h:1",
         [](const Config& c) { return c.tls.cert; }},
        {S::Tls, "key", "tls { cert /c; key /k }\nbackend h:1",
         [](const Config& c) { return c.tls.key; }},
        {S::Tls, "ca", "tls { cert /c; key /k; ca /ca }\nbackend h:1",
         [](const Config& c) { return c.tls.ca; }},
        {S::Health, "timeout", "health { timeout 2s }\nbackend h:1",
         [](const Config& c) { return ms(c.health.timeout); }},
        {S::Health, "check", "health { check 1m }\nbackend h:1",
         [](const Config& c) { return ms(c.health.check); }},
        {S::Health, "lag-interval", "health { lag-interval 100ms }\nbackend h:1",
         [](const Config& c) { return ms(c.health.lag_interval); }},
        {S::Health, "database", "health { database db }\nbackend h:1",
         [](const Config& c) { return c.health.database; }},
        {S::Health, "username", "health { username u }\nbackend h:1",
         [](const Config& c) { return c.health.username; }},
        {S::Health, "password", "health { password p }\nbackend h:1",
         [](const Config& c) { return c.health.password; }},
        {S::Backend, "tls", "backend h:1 { tls verify }",
         [](const Config& c) { return std::string(tls_mode_name(c.backends.at(0).tls)); }},
        {S::Backend, "lag", "backend h:1 { lag 4k }",
         [](const Config& c) { return std::to_string(c.backends.at(0).lag); }},
        {S::Backend, "staleness", "backend h:1 { staleness 500ms }",
         [](const Config& c) { return ms(c.backends.at(0).staleness); }},
        {S::Backend, "weight", "backend h:1 { weight 7 }",
         [](const Config& c) { return std::to_string(c.backends.at(0).weight); }},
        {S::Backend, "ca", "backend h:1 { ca /ca }",
         [](const Config& c) { return c.backends.at(0).ca; }},
        {S::Backend, "replstatus", "backend h:1 { replstatus 5400 }",
         [](const Config& c) { return std::to_string(c.backends.at(0).replstatus_port); }},
        {S::Top, "pool", "pool { }\nbackend h:1",
         [](const Config& c) { return std::to_string(c.pool.enabled); }},
        {S::Pool, "mode", "pool { mode session }\nbackend h:1",
         [](const Config& c) {
             return std::to_string(c.pool.enabled) + std::to_string(int(c.pool.mode));
         }},
        {S::Pool, "size", "pool { size 7 }\nbackend h:1",
         [](const Config& c) { return std::to_string(c.pool.size); }},
        {S::Pool, "min-idle", "pool { min-idle 2 }\nbackend h:1",
         [](const Config& c) { return std::to_string(c.pool.min_idle); }},
        {S::Pool, "wait-timeout", "pool { wait-timeout 2s }\nbackend h:1",
         [](const Config& c) { return std::to_string(c.pool.wait_timeout.count()); }},
        {S::Pool, "idle-timeout", "pool { idle-timeout 30s }\nbackend h:1",
         [](const Config& c) { return std::to_string(c.pool.idle_timeout.count()); }},
        {S::Pool, "lifetime", "pool { lifetime 2h }\nbackend h:1",
         [](const Config& c) { return std::to_string(c.pool.lifetime.count()); }},
        {S::Pool, "max-clients", "pool { max-clients 100 }\nbackend h:1",
         [](const Config& c) { return std::to_string(c.pool.max_clients); }},
    };
    return s;
}

TEST_CASE("config: every directive in the table is accepted by the parser, and only those") {
    const auto& all = samples();
    REQUIRE(all.size() == directives().size());
    for (const Directive& d : directives()) {
        INFO(d.name);
        CHECK_FALSE(d.type.empty());
        CHECK_FALSE(d.doc.empty());
        auto it = std::find_if(all.begin(), all.end(), [&](const Sample& s) {
            return s.scope == d.scope && s.name == d.name;
        });
        REQUIRE(it != all.end());
        Config c = parse_ok(it->snippet);
        // The directive changed something a default Config does not have.
        Config with_backend = parse_ok("backend h:1");
        if (d.name != "health" && d.name != "backend") CHECK(it->get(c) != it->get(with_backend));
    }
    // A name outside the table is refused in every scope.
    CHECK(parse_errors("bogus 1; backend h:1") ==
          std::vector<std::string>{"t.conf:1: unknown directive 'bogus'"});
}

// What man/pgrouter.conf.5 and pgrouter(8) (SIGNALS) document for each directive: its
// default as config text ("" when it has none, or one resolved at run time) and whether
// SIGHUP applies a change.
struct Documented {
    DirectiveScope scope;
    std::string_view name;
    std::string_view default_value;
    bool reloadable;
};

const std::vector<Documented>& documented() {
    using S = DirectiveScope;
    static const std::vector<Documented> d = {
        {S::Top, "listen", "*:5432", false},
        {S::Top, "monitor", "127.0.0.1:14231", false},
        {S::Top, "metrics", "", false},
        {S::Top, "admin-users", "", true},
        {S::Top, "log-connections", "off", true},
        {S::Top, "workers", "", true},
        {S::Top, "hba", "", true},
        {S::Top, "authdb", "", true},
        {S::Top, "tls", "", true},
        {S::Top, "user", "", false},
        {S::Top, "group", "", false},
        {S::Top, "pidfile", "", false},
        {S::Top, "log", "INFO", true},
        {S::Top, "max-message-size", "1G", true},
        {S::Top, "classify-limit", "1M", true},
        {S::Top, "read-your-writes", "session", true},
        {S::Top, "shutdown-timeout", "10s", true},
        {S::Top, "health", "", true},
        {S::Top, "backend", "", true},
        {S::Tls, "ciphers", "", true},
        {S::Tls, "cert", "", true},
        {S::Tls, "key", "", true},
        {S::Tls, "ca", "", true},
        {S::Health, "timeout", "5s", true},
        {S::Health, "check", "15s", true},
        {S::Health, "lag-interval", "250ms", true},
        {S::Health, "database", "postgres", true},
        {S::Health, "username", "postgres", true},
        {S::Health, "password", "", true},
        {S::Backend, "tls", "off", true},
        {S::Backend, "lag", "1M", true},
        {S::Backend, "staleness", "", true},
        {S::Backend, "weight", "100", true},
        {S::Backend, "ca", "", true},
        {S::Backend, "replstatus", "", true},
        {S::Top, "pool", "", true},
        {S::Pool, "mode", "session", true},
        {S::Pool, "size", "20", true},
        {S::Pool, "min-idle", "0", true},
        {S::Pool, "wait-timeout", "10s", true},
        {S::Pool, "idle-timeout", "10m", true},
        {S::Pool, "lifetime", "1h", true},
        {S::Pool, "max-clients", "50000", false},
    };
    return d;
}

// The man page's entries for a directive, in page order: from its ".It Cm NAME" line to the
// next ".It Cm" (a name used in two scopes, tls and ca, has two).
std::vector<std::string> man_entries(const std::string& man, std::string_view name) {
    std::vector<std::string> out;
    const std::string head = "\n.It Cm ";
    for (std::size_t at = man.find(head); at != std::string::npos;) {
        std::size_t next = man.find(head, at + 1);
        std::string entry = man.substr(at + head.size(), next - at - head.size());
        std::size_t word = entry.find_first_of(" \n");
        if (entry.substr(0, word) == name) out.push_back(entry);
        at = next;
    }
    return out;
}

TEST_CASE("config: every directive's default and reloadable flag are the documented ones") {
    REQUIRE(documented().size() == directives().size());
    std::string man = read_text("man/pgrouter.conf.5");
    for (const Documented& want : documented()) {
        const Directive* d = find_directive(want.scope, want.name);
        INFO(want.name);
        REQUIRE(d != nullptr);
        CHECK(d->default_value == want.default_value);
        CHECK(d->reloadable == want.reloadable);
        // A directive that is not reloadable says how SIGHUP keeps it, and only those do.
        CHECK((d->keep != nullptr) == !d->reloadable);
        // The man page shows the same: the default as a literal, "needs a restart" when so.
        // The page documents the scopes in the table's order.
        std::size_t nth = static_cast<std::size_t>(std::count_if(
            directives().data(), d, [&](const Directive& e) { return e.name == d->name; }));
        std::vector<std::string> entries = man_entries(man, want.name);
        REQUIRE(nth < entries.size());
        const std::string& entry = entries[nth];
        if (!want.default_value.empty()) {
            std::string lit = want.default_value == "off" ? "Cm" : "Li";
            CHECK(entry.find("Default:\n." + lit + " " + std::string(want.default_value)) !=
                  std::string::npos);
        }
        CHECK((entry.find("Needs a restart to change.") != std::string::npos) == !want.reloadable);
    }
}

TEST_CASE("config: every default is accepted by its own directive") {
    // Each default is read like a line of the file; a bad one would be an error on line 0.
    ConfigResult r = parse_config("backend h:1", "t.conf");
    CHECK(messages(r) == std::vector<std::string>{});
}

TEST_CASE("config: a reload keeps what is not reloadable and names it") {
    Config old = parse_ok(
        "listen 127.0.0.1:1\nmonitor 127.0.0.1:2\nuser a\ngroup a\n"
        "pidfile /a.pid\nworkers 2\nlog INFO\nbackend h:1");
    SECTION("nothing changed") {
        Config next = old;
        CHECK(keep_restart_only(old, next).empty());
    }
    SECTION("every directive that needs a restart changed, and reloadable ones too") {
        Config next = parse_ok(
            "listen 127.0.0.1:3\nmonitor 127.0.0.1:4\nuser b\ngroup b\n"
            "pidfile /b.pid\nworkers 3\nlog DEBUG\nbackend h:2");
        CHECK(keep_restart_only(old, next) ==
              std::vector<std::string_view>{"listen", "monitor", "user", "group", "pidfile"});
        CHECK(next.listen == old.listen);
        CHECK(next.monitor == old.monitor);
        CHECK(next.user == "a");
        CHECK(next.group == "a");
        CHECK(next.pidfile == "/a.pid");
        CHECK(next.workers == 3);  // reloadable: the new values stay
        CHECK(next.log == LogLevel::Debug);
        CHECK(next.backends.at(0).address() == "h:2");
    }
}

TEST_CASE("config: the pool block, its defaults, limits and errors") {
    Config none = parse_ok("backend h:1");
    CHECK_FALSE(none.pool.enabled);
    CHECK(none.pool.max_clients == 50000);  // applies without a pool block too
    Config c = parse_ok("pool {\n  size 5\n  min-idle 1; wait-timeout 250ms\n}\nbackend h:1");
    CHECK(c.pool.enabled);
    CHECK(c.pool.mode == PoolMode::Session);
    CHECK(c.pool.size == 5);
    CHECK(c.pool.min_idle == 1);
    CHECK(c.pool.wait_timeout == 250ms);
    CHECK(c.pool.idle_timeout == 600s);
    CHECK(c.pool.lifetime == 3600s);
    CHECK(c.pool.line == 1);
    CHECK(parse_ok("pool { mode transaction }\nbackend h:1").pool.mode == PoolMode::Transaction);
    CHECK(parse_ok("pool { mode Session }\nbackend h:1").pool.mode == PoolMode::Session);
    struct Case {
        std::string text;
        std::string error;
    };
    const std::vector<Case> cases = {
        {"pool { mode statement }",
         "t.conf:1: bad pool mode 'statement' (expected session or transaction)"},
        {"pool { size 0 }", "t.conf:1: size 0 is out of range (expected 1-10000)"},
        {"pool { max-clients 70000 }",
         "t.conf:1: max-clients 70000 is out of range (expected 1-65536)"},
        {"pool { weight 3 }",
         "t.conf:1: 'weight' is not allowed in a 'pool' block (it belongs in "
         "a 'backend' block)"},
        {"size 3", "t.conf:1: 'size' is not allowed at top level (it belongs in a 'pool' block)"},
        {"pool size 3", "t.conf:1: too many arguments for 'pool' (expected a block)"},
    };
    for (const Case& k : cases) {
        INFO(k.text);
        CHECK(parse_errors(k.text + "\nbackend h:1") == std::vector<std::string>{k.error});
    }
    // max-clients needs a restart; the rest of the block is reloaded.
    Config old = parse_ok("pool { size 2; max-clients 10 }\nbackend h:1");
    Config next = parse_ok("pool { size 3; max-clients 20 }\nbackend h:1");
    CHECK(keep_restart_only(old, next) == std::vector<std::string_view>{"max-clients"});
    CHECK(next.pool.max_clients == 10);
    CHECK(next.pool.size == 3);
}

TEST_CASE("config: durations") {
    struct Case {
        std::string text;
        Millis want;
    };
    const std::vector<Case> cases = {
        {"500ms", 500ms}, {"5s", 5s},   {"5", 5s},  {"2m", 2min}, {"1h", 1h},   {"10MS", 10ms},
        {"7S", 7s},       {"3M", 3min}, {"2H", 2h}, {"1ms", 1ms}, {"90s", 90s}, {"0500ms", 500ms},
    };
    for (const Case& c : cases) {
        INFO(c.text);
        Config cfg = parse_ok("health { timeout " + c.text + "; check " + c.text +
                              "; lag-interval " + c.text + " }\nbackend h:1");
        CHECK(cfg.health.timeout == c.want);
        CHECK(cfg.health.check == c.want);
        CHECK(cfg.health.lag_interval == c.want);
    }
}

TEST_CASE("config: sizes") {
    struct Case {
        std::string text;
        std::uint64_t want;
    };
    const std::vector<Case> cases = {
        {"500b", 500},
        {"500", 500},
        {"0", 0},
        {"500B", 500},
        {"64k", 64 * 1024},
        {"64K", 64 * 1024},
        {"64kb", 64 * 1024},
        {"16M", 16 * 1024 * 1024},
        {"16m", 16 * 1024 * 1024},
        {"16MB", 16 * 1024 * 1024},
        {"1G", 1024ULL * 1024 * 1024},
        {"1g", 1024ULL * 1024 * 1024},
        {"3gb", 3ULL * 1024 * 1024 * 1024},
        {"8589934591G", 8589934591ULL * 1024 * 1024 * 1024},
    };
    for (const Case& c : cases) {
        INFO(c.text);
        Config cfg = parse_ok("backend h:1 { lag " + c.text + " }");
        CHECK(cfg.backends.at(0).lag == c.want);
    }
}

TEST_CASE("config: addresses for listen, monitor and backend") {
    struct Case {
        std::string text;
        std::string host;
        std::uint16_t port;
        std::string shown;
    };
    const std::vector<Case> cases = {
        {"*:5432", "*", 5432, "*:5432"},
        {"127.0.0.1:6432", "127.0.0.1", 6432, "127.0.0.1:6432"},
        {"[::1]:5432", "::1", 5432, "[::1]:5432"},
        {"[::]:1", "::", 1, "[::]:1"},
        {"[fe80::1%eth0]:5432", "fe80::1%eth0", 5432, "[fe80::1%eth0]:5432"},
        {"[2001:db8::7]:65535", "2001:db8::7", 65535, "[2001:db8::7]:65535"},
        {"localhost:1", "localhost", 1, "localhost:1"},
        {"db-1.example.com:6432", "db-1.example.com", 6432, "db-1.example.com:6432"},
        {"pg_primary:5432", "pg_primary", 5432, "pg_primary:5432"},
    };
    for (const Case& c : cases) {
        INFO(c.text);
        Config cfg = parse_ok("listen " + c.text + "\nmonitor " + c.text + "\nbackend h:1");
        CHECK(cfg.listen.host == c.host);
        CHECK(cfg.listen.port == c.port);
        CHECK(cfg.listen.to_string() == c.shown);
        CHECK(cfg.monitor.to_string() == c.shown);
        if (c.host != "*") {
            Config b = parse_ok("backend " + c.text);
            CHECK(b.backends.at(0).host == c.host);
            CHECK(b.backends.at(0).port == c.port);
            CHECK(b.backends.at(0).address() == c.shown);
        }
    }
}

TEST_CASE("config: log levels, any case") {
    const std::vector<std::pair<std::string, LogLevel>> cases = {
        {"EMERGENCY", LogLevel::Emergency}, {"ALERT", LogLevel::Alert},
        {"CRITICAL", LogLevel::Critical},   {"ERROR", LogLevel::Error},
        {"WARNING", LogLevel::Warning},     {"NOTICE", LogLevel::Notice},
        {"INFO", LogLevel::Info},           {"DEBUG", LogLevel::Debug},
        {"debug", LogLevel::Debug},         {"Warning", LogLevel::Warning},
    };
    for (const auto& [name, level] : cases) {
        INFO(name);
        CHECK(parse_ok("log " + name + "\nbackend h:1").log == level);
        CHECK(parse_log_level(name) == level);
    }
    for (int i = 0; i <= static_cast<int>(LogLevel::Debug); ++i) {
        auto level = static_cast<LogLevel>(i);
        CHECK(parse_log_level(log_level_name(level)) == level);
    }
    CHECK(log_level_name(LogLevel::Warning) == "WARNING");
    CHECK_FALSE(parse_log_level("WARN"));
    CHECK_FALSE(parse_log_level(""));
}

TEST_CASE("config: backend tls modes, ca, replstatus, weight and workers limits") {
    const std::vector<std::pair<std::string, TlsMode>> modes = {
        {"off", TlsMode::Off},
        {"verify", TlsMode::Verify},
        {"skipverify", TlsMode::SkipVerify},
        {"SkipVerify", TlsMode::SkipVerify},
    };
    for (const auto& [name, mode] : modes) {
        INFO(name);
        CHECK(parse_ok("backend h:1 { tls " + name + " }").backends.at(0).tls == mode);
    }
    CHECK(tls_mode_name(TlsMode::Off) == "off");
    CHECK(tls_mode_name(TlsMode::Verify) == "verify");
    CHECK(tls_mode_name(TlsMode::SkipVerify) == "skipverify");

    Config c = parse_ok(
        "backend h:1 { ca /etc/ca.pem; replstatus 5400; weight 0 }\n"
        "backend h:2 { weight 1000000 }");
    CHECK(c.backends.at(0).ca == "/etc/ca.pem");
    CHECK(c.backends.at(0).replstatus_port == 5400);
    CHECK(c.backends.at(0).weight == 0);
    CHECK(c.backends.at(1).weight == 1000000);
    CHECK(c.backends.at(1).replstatus_port == 0);
    CHECK(parse_ok("workers 1\nbackend h:1").workers == 1);
    CHECK(parse_ok("workers 256\nbackend h:1").workers == 256);
}

TEST_CASE("config: backend default applies to the backends that follow it") {
    Config c = parse_ok(
        "backend a:1\n"
        "backend default { lag 10; weight 5; tls verify; ca /ca; replstatus 9 }\n"
        "backend b:1\n"
        "backend c:1 { weight 6 }\n"
        "backend default { tls off }\n"
        "backend d:1\n");
    REQUIRE(c.backends.size() == 4);
    const auto& a = c.backends[0];
    CHECK((a.lag == 1024 * 1024 && a.weight == 100 && a.tls == TlsMode::Off && a.ca.empty()));
    const auto& b = c.backends[1];
    CHECK((b.lag == 10 && b.weight == 5 && b.tls == TlsMode::Verify && b.ca == "/ca"));
    CHECK(b.replstatus_port == 9);
    CHECK(c.backends[2].weight == 6);
    CHECK(c.backends[2].lag == 10);
    const auto& d = c.backends[3];
    CHECK((d.lag == 10 && d.weight == 5 && d.tls == TlsMode::Off && d.replstatus_port == 9));
    CHECK(d.line == 6);
}

TEST_CASE("config: statements, blocks, comments and strings") {
    SECTION("one-line blocks, semicolons, several statements on a line") {
        Config c = parse_ok("log DEBUG; workers 2;; user u\nbackend h:1 { lag 800; weight 3 }");
        CHECK(c.log == LogLevel::Debug);
        CHECK(c.workers == 2);
        CHECK(c.user == "u");
        CHECK(c.backends.at(0).lag == 800);
        CHECK(c.backends.at(0).weight == 3);
    }
    SECTION("a statement may follow a block on the same line") {
        Config c = parse_ok("health { check 1s } log ERROR\nbackend h:1");
        CHECK(c.health.check == 1s);
        CHECK(c.log == LogLevel::Error);
    }
    SECTION("the brace may stand on the next line") {
        Config c = parse_ok("health\n{\n    check 3s\n}\nbackend h:1\n{\n  weight 9\n}\n");
        CHECK(c.health.check == 3s);
        CHECK(c.backends.at(0).weight == 9);
    }
    SECTION("directive names and 'default' in any case") {
        Config c = parse_ok("LISTEN 10.0.0.1:1\nBackend Default { Weight 3 }\nBACKEND h:1");
        CHECK(c.listen.to_string() == "10.0.0.1:1");
        CHECK(c.backends.at(0).weight == 3);
        CHECK(parse_errors("log INFO\nLOG DEBUG\nbackend h:1") ==
              std::vector<std::string>{"t.conf:2: duplicate 'LOG' (first set on line 1)"});
    }
    SECTION("'#' outside a string starts a comment, even inside a word") {
        Config c = parse_ok("backend h:1 { lag 800#bytes\n weight 2# } is commented out\n}");
        CHECK(c.backends.at(0).lag == 800);
        CHECK(c.backends.at(0).weight == 2);
    }
    SECTION("comments") {
        Config c = parse_ok("# head\nlog DEBUG # trailing\n   # indented\nbackend h:1 # x {\n");
        CHECK(c.log == LogLevel::Debug);
        CHECK(c.backends.size() == 1);
    }
    SECTION("quoted strings and escapes") {
        Config c = parse_ok(
            "health {\n"
            "  password \"a \\\"b\\\" \\\\ c # not a comment; {}\"\n"
            "  username \"with space\"\n"
            "  database \"d\\n\"\n"
            "}\n"
            "user x#y\n"
            "group g;# after a semicolon\n"
            "backend \"h:1\"\n");
        CHECK(c.health.password == "a \"b\" \\ c # not a comment; {}");
        CHECK(c.health.username == "with space");
        CHECK(c.health.database == "d\\n");
        CHECK(c.user == "x");
        CHECK(c.group == "g");
        CHECK(c.backends.at(0).address() == "h:1");
    }
    SECTION("empty password, CRLF line ends, tabs") {
        Config c = parse_ok("health {\r\n\tpassword \"\"\r\n}\r\nbackend\th:1\r\n");
        CHECK(c.health.password.empty());
        CHECK(c.backends.at(0).address() == "h:1");
    }
}

TEST_CASE("config: every error names the line and what was expected") {
    struct Case {
        std::string text;  // kB is put before it, on the same line
        std::vector<std::string> want;
    };
    const std::vector<Case> cases = {
        // unknown directives
        {"lisen *:5432", {"t.conf:1: unknown directive 'lisen' (did you mean 'listen'?)"}},
        {"\n\nfrobnicate 1", {"t.conf:3: unknown directive 'frobnicate'"}},
        {"pidfiel /x", {"t.conf:1: unknown directive 'pidfiel' (did you mean 'pidfile'?)"}},
        {"backend h:2 { wieght 5 }",
         {"t.conf:1: unknown directive 'wieght' in a 'backend' block (did you mean 'weight'?)"}},
        {"health {\n timeot 1s\n}",
         {"t.conf:2: unknown directive 'timeot' in a 'health' block (did you mean 'timeout'?)"}},
        {"lag 5",
         {"t.conf:1: 'lag' is not allowed at top level (it belongs in a 'backend' block)"}},
        {"ca /x",
         {"t.conf:1: 'ca' is not allowed at top level (it belongs in a 'tls' block or in a "
          "'backend' block)"}},
        {"health { user x }",
         {"t.conf:1: 'user' is not allowed in a 'health' block (it belongs at top level)"}},
        // strings and braces
        {"user \"vcap\nlog INFO",
         {"t.conf:1: unterminated string (expected '\"' before the end of the line)"}},
        {"\ntls {\n cert /a\n key /b\n",
         {"t.conf:2: missing '}' to close the 'tls' block opened here"}},
        {"\nbackend h:2 {\n lag 1\nbackend h:3",
         {"t.conf:2: missing '}' to close the 'backend' block opened here",
          "t.conf:4: 'backend' is not allowed in a 'backend' block (it belongs at top level)"}},
        {"\n}\n", {"t.conf:2: unexpected '}' (no block is open)"}},
        {"log INFO }", {"t.conf:1: unexpected '}' (no block is open)"}},
        {"{ log INFO }", {"t.conf:1: unexpected '{' (expected a directive name)"}},
        {"user a\0b"s, {"t.conf:1: unexpected NUL byte"}},
        // ports and addresses
        {"listen 127.0.0.1:0", {"t.conf:1: bad port '0' in '127.0.0.1:0' (expected 1-65535)"}},
        {"listen 127.0.0.1:65536",
         {"t.conf:1: bad port '65536' in '127.0.0.1:65536' (expected 1-65535)"}},
        {"monitor 127.0.0.1:abc",
         {"t.conf:1: bad port 'abc' in '127.0.0.1:abc' (expected 1-65535)"}},
        {"listen *:-1", {"t.conf:1: bad port '-1' in '*:-1' (expected 1-65535)"}},
        {"listen 127.0.0.1", {"t.conf:1: missing port in '127.0.0.1' (expected HOST:PORT)"}},
        {"listen 127.0.0.1:", {"t.conf:1: missing port in '127.0.0.1:' (expected HOST:PORT)"}},
        {"listen [::1]", {"t.conf:1: missing port in '[::1]' (expected HOST:PORT)"}},
        {"listen :5432", {"t.conf:1: missing host in ':5432' (expected HOST:PORT)"}},
        {"listen ::1:5432",
         {"t.conf:1: IPv6 address needs brackets in '::1:5432' (expected [IPV6]:PORT)"}},
        {"listen [::1:5432", {"t.conf:1: bad address '[::1:5432' (expected [IPV6]:PORT)"}},
        {"listen [::1]5432", {"t.conf:1: bad address '[::1]5432' (expected [IPV6]:PORT)"}},
        {"listen [zz]:1", {"t.conf:1: bad IPv6 address 'zz' in '[zz]:1'"}},
        {"backend *:5432",
         {"t.conf:1: '*' is not a backend address in '*:5432' (expected a host name or an IP "
          "address)"}},
        {"backend 10.0.0.256:1",
         {"t.conf:1: bad host '10.0.0.256' in '10.0.0.256:1' (expected a host name or an IP "
          "address)"}},
        {"backend a/b:1",
         {"t.conf:1: bad host 'a/b' in 'a/b:1' (expected a host name or an IP address)"}},
        {"backend h:2 { replstatus 0 }",
         {"t.conf:1: bad port '0' for 'replstatus' (expected 1-65535)"}},
        {"backend h:2 { replstatus x }",
         {"t.conf:1: bad port 'x' for 'replstatus' (expected 1-65535)"}},
        // duplicates
        {"\nbackend 10.0.0.5:6432\nbackend 10.0.0.5:6432",
         {"t.conf:3: duplicate backend 10.0.0.5:6432 (first declared on line 2)"}},
        {"\nbackend DB:1\n\nbackend db:1",
         {"t.conf:4: duplicate backend db:1 (first declared on line 2)"}},
        {"\nbackend [::1]:1\nbackend [0:0::1]:1",
         {"t.conf:3: duplicate backend [0:0::1]:1 (first declared on line 2)"}},
        {"\nbackend [fe80::1%eth0]:1\nbackend [fe80::1%eth1]:1", {}},
        {"log INFO\nlog DEBUG", {"t.conf:2: duplicate 'log' (first set on line 1)"}},
        {"backend h:2 { lag 1; lag 2 }", {"t.conf:1: duplicate 'lag' (first set on line 1)"}},
        // numbers, sizes, durations
        {"backend h:2 { weight 1000001 }",
         {"t.conf:1: weight 1000001 is out of range (expected 0-1000000)"}},
        {"backend h:2 { weight -1 }", {"t.conf:1: weight -1 is out of range (expected 0-1000000)"}},
        {"backend h:2 { weight heavy }",
         {"t.conf:1: bad number 'heavy' for 'weight' (expected 0-1000000)"}},
        {"workers 0", {"t.conf:1: workers 0 is out of range (expected 1-256)"}},
        {"workers 257", {"t.conf:1: workers 257 is out of range (expected 1-256)"}},
        {"workers 99999999999999999999999",
         {"t.conf:1: workers 99999999999999999999999 is out of range (expected 1-256)"}},
        {"workers many", {"t.conf:1: bad number 'many' for 'workers' (expected 1-256)"}},
        {"max-message-size 2G", {"t.conf:1: max-message-size 2G is out of range (expected 1k-1G)"}},
        {"classify-limit 100", {"t.conf:1: classify-limit 100 is out of range (expected 1k-1G)"}},
        {"backend h:2 { lag M }",
         {"t.conf:1: bad size 'M' for 'lag' (expected a number with an optional unit: b, k, M "
          "or G)"}},
        {"backend h:2 { lag 5x }",
         {"t.conf:1: unknown unit 'x' in '5x' for 'lag' (expected b, k, M or G)"}},
        {"backend h:2 { lag 5T }",
         {"t.conf:1: unknown unit 'T' in '5T' for 'lag' (expected b, k, M or G)"}},
        {"backend h:2 { lag 1.5M }",
         {"t.conf:1: bad size '1.5M' for 'lag' (expected a number with an optional unit: b, k, "
          "M or G)"}},
        {"backend h:2 { lag 99999999999G }",
         {"t.conf:1: size '99999999999G' for 'lag' is too large"}},
        {"health { timeout s }",
         {"t.conf:1: bad duration 's' for 'timeout' (expected a number with an optional unit: "
          "ms, s, m or h)"}},
        {"health { check 5d }",
         {"t.conf:1: unknown unit 'd' in '5d' for 'check' (expected ms, s, m or h)"}},
        {"health { lag-interval 0 }", {"t.conf:1: 'lag-interval' must be greater than 0"}},
        {"health { timeout 0ms }", {"t.conf:1: 'timeout' must be greater than 0"}},
        {"health { timeout 9999999999999999h }",
         {"t.conf:1: duration '9999999999999999h' for 'timeout' is too large"}},
        // keywords
        {"backend h:2 { tls on }",
         {"t.conf:1: bad tls mode 'on' (expected off, verify or skipverify)"}},
        {"log LOUD",
         {"t.conf:1: bad log level 'LOUD' (expected EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, "
          "NOTICE, INFO or DEBUG)"}},
        // arguments and blocks
        {"listen", {"t.conf:1: missing argument for 'listen' (expected HOST:PORT)"}},
        {"backend h:2 { lag }", {"t.conf:1: missing argument for 'lag' (expected a size)"}},
        {"backend", {"t.conf:1: missing argument for 'backend' (expected HOST:PORT or 'default')"}},
        {"listen a:1 b:2", {"t.conf:1: too many arguments for 'listen' (expected HOST:PORT)"}},
        {"health { timeout 1s 2s }",
         {"t.conf:1: too many arguments for 'timeout' (expected a duration)"}},
        {"tls on { }", {"t.conf:1: too many arguments for 'tls' (expected a block)"}},
        {"health", {"t.conf:1: expected '{' after 'health'"}},
        {"backend default", {"t.conf:1: expected '{' after 'backend default'"}},
        {"log INFO { }", {"t.conf:1: 'log' does not take a block"}},
        {"tls { cert /c }", {"t.conf:1: missing 'key' in the 'tls' block"}},
        {"tls { }",
         {"t.conf:1: missing 'cert' in the 'tls' block",
          "t.conf:1: missing 'key' in the 'tls' "
          "block"}},
        {"user \"\"", {"t.conf:1: empty value for 'user'"}},
        // values in messages: control bytes escaped, long values cut
        {"lo\x01g INFO", {"t.conf:1: unknown directive 'lo\\x01g' (did you mean 'log'?)"}},
        {"listen " + std::string(100, 'a'),
         {"t.conf:1: missing port in '" + std::string(80, 'a') + "...' (expected HOST:PORT)"}},
    };
    for (const Case& c : cases) {
        std::string text = std::string(kB) + c.text;
        INFO(text);
        ConfigResult r = parse_config(text, "t.conf");
        CHECK(messages(r) == c.want);
        CHECK(r.config.has_value() == c.want.empty());
    }
}

TEST_CASE("config: no backends at all") {
    CHECK(parse_errors("") ==
          std::vector<std::string>{"t.conf: no backends configured (expected at least one "
                                   "'backend HOST:PORT')"});
    CHECK(parse_errors("log INFO\nbackend default { lag 1 }\n") ==
          std::vector<std::string>{
              "t.conf: no backends configured (expected at least one 'backend HOST:PORT')"});
    // A backend with a bad address still counts: its own error is enough.
    CHECK(parse_errors("backend h:0") ==
          std::vector<std::string>{"t.conf:1: bad port '0' in 'h:0' (expected 1-65535)"});
}

TEST_CASE("config: all errors are collected, in file order, and parsing recovers") {
    ConfigResult r = parse_config(
        "lisen *:1\n"                      // 1
        "backend h:1 {\n"                  // 2
        "  weight 2000000\n"               // 3
        "  tls maybe; lag 1\n"             // 4
        "}\n"                              // 5
        "log LOUD; workers 0\n"            // 6
        "backend h:1\n"                    // 7
        "health { timeout 1x }\n"          // 8
        "password \"open\n"                // 9
        "backend 10.0.0.9:1 { lag 5 }\n",  // 10
        "pgrouter.conf");
    CHECK_FALSE(r.config);
    CHECK(messages(r) ==
          std::vector<std::string>{
              "pgrouter.conf:1: unknown directive 'lisen' (did you mean 'listen'?)",
              "pgrouter.conf:3: weight 2000000 is out of range (expected 0-1000000)",
              "pgrouter.conf:4: bad tls mode 'maybe' (expected off, verify or skipverify)",
              "pgrouter.conf:6: bad log level 'LOUD' (expected EMERGENCY, ALERT, CRITICAL, ERROR, "
              "WARNING, NOTICE, INFO or DEBUG)",
              "pgrouter.conf:6: workers 0 is out of range (expected 1-256)",
              "pgrouter.conf:7: duplicate backend h:1 (first declared on line 2)",
              "pgrouter.conf:8: unknown unit 'x' in '1x' for 'timeout' (expected ms, s, m or h)",
              "pgrouter.conf:9: unterminated string (expected '\"' before the end of the line)",
          });
    REQUIRE(r.errors.size() == 8);
    CHECK(r.errors[0].file == "pgrouter.conf");
    CHECK(r.errors[0].line == 1);
}

TEST_CASE("config: ConfigError and Endpoint text") {
    CHECK(ConfigError{"a.conf", 12, "bad"}.to_string() == "a.conf:12: bad");
    CHECK(ConfigError{"a.conf", 0, "cannot read: x"}.to_string() == "a.conf: cannot read: x");
    CHECK(Endpoint{"10.0.0.1", 5432}.to_string() == "10.0.0.1:5432");
    CHECK(Endpoint{"::1", 5432}.to_string() == "[::1]:5432");
    CHECK(Endpoint{"*", 1}.to_string() == "*:1");
}

// A scratch directory, removed at the end of the test.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "pgr-config-XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        std::filesystem::create_directories((path / name).parent_path());
        std::ofstream(path / name) << text;
        return (path / name).string();
    }
};

// A self-signed P-256 certificate and its key, as PEM files.
void write_self_signed(const std::string& cert, const std::string& key) {
    EVP_PKEY* pkey = EVP_EC_gen("P-256");
    REQUIRE(pkey != nullptr);
    X509* x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("test"), -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    REQUIRE(X509_sign(x, pkey, EVP_sha256()) > 0);
    FILE* f = fopen(cert.c_str(), "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key.c_str(), "w");
    PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pkey);
}

TEST_CASE("config: load_config reads the file and resolves relative paths") {
    TempDir dir;
    dir.write("hba.conf", "host all all 127.0.0.1/32 trust\n");
    dir.write("users.txt", "");
    dir.write("tls/c.pem", "");
    write_self_signed((dir.path / "tls/c.pem").string(), (dir.path / "tls/k.pem").string());
    std::string file = dir.write("etc/pgrouter.conf",
                                 "hba ../hba.conf\n"
                                 "authdb " +
                                     (dir.path / "users.txt").string() +
                                     "\n"
                                     "pidfile run/p.pid\n"
                                     "tls { cert ../tls/c.pem; key ../tls/k.pem }\n"
                                     "backend h:1\n");
    ConfigResult r = load_config(file);
    REQUIRE(messages(r) == std::vector<std::string>{});
    REQUIRE(r.config);
    CHECK(r.config->file == file);
    CHECK(r.config->hba == (dir.path / "hba.conf").string());
    CHECK(r.config->authdb == (dir.path / "users.txt").string());
    CHECK(r.config->pidfile == (dir.path / "etc/run/p.pid").string());
    CHECK(r.config->tls.cert == (dir.path / "tls/c.pem").string());
    CHECK(r.config->tls.key == (dir.path / "tls/k.pem").string());
}

TEST_CASE("config: load_config reports files it cannot read, at the naming line") {
    TempDir dir;
    std::string file = dir.write("pgrouter.conf",
                                 "hba nope.conf\n"
                                 "\n"
                                 "authdb /\n"
                                 "tls {\n"
                                 "  cert c.pem\n"
                                 "  key k.pem\n"
                                 "}\n"
                                 "backend h:1 { ca ca.pem }\n");
    dir.write("c.pem", "");
    std::string d = dir.path.string();
    ConfigResult r = load_config(file);
    CHECK_FALSE(r.config);
    CHECK(messages(r) ==
          std::vector<std::string>{
              file + ":1: cannot read hba file '" + d + "/nope.conf': No such file or directory",
              file + ":3: cannot read authdb file '/': Is a directory",
              file + ":6: cannot read tls key '" + d + "/k.pem': No such file or directory",
              file + ":8: cannot read ca file of backend h:1 '" + d +
                  "/ca.pem': No such file or directory",
          });
}

TEST_CASE(
    "config: TLS files must parse and the key must match the certificate (check_tls_config)") {
    TempDir dir;
    dir.write("a.crt", "");
    write_self_signed((dir.path / "a.crt").string(), (dir.path / "a.key").string());
    write_self_signed((dir.path / "b.crt").string(), (dir.path / "b.key").string());
    dir.write("junk.pem", "not a certificate\n");
    std::string d = dir.path.string();
    auto load = [&](const std::string& tls, const std::string& backend = "") {
        ConfigResult r =
            load_config(dir.write("p.conf", "tls {\n" + tls + "}\nbackend h:1" + backend + "\n"));
        if (r.config) check_tls_config(*r.config, r.errors);
        return messages(r);
    };
    CHECK(load("  cert a.crt\n  key a.key\n").empty());
    CHECK(load("  cert a.crt\n  key a.key\n  ca b.crt\n  ciphers HIGH:!aNULL\n").empty());
    std::string file = d + "/p.conf";
    CHECK(load("  cert a.crt\n  key b.key\n") ==
          std::vector<std::string>{file + ":3: private key \"" + d +
                                   "/b.key\" does not match certificate \"" + d + "/a.crt\""});
    auto one = [](const std::vector<std::string>& m) { return m.size() == 1 ? m[0] : ""; };
    CHECK(one(load("  cert junk.pem\n  key a.key\n"))
              .rfind(file + ":2: cannot load certificate chain", 0) == 0);
    CHECK(one(load("  cert a.crt\n  key junk.pem\n"))
              .rfind(file + ":3: cannot load private key", 0) == 0);
    CHECK(one(load("  cert a.crt\n  key a.key\n  ca junk.pem\n"))
              .rfind(file + ":4: cannot load CA file", 0) == 0);
    CHECK(one(load("  cert a.crt\n  key a.key\n  ciphers NOSUCHCIPHER\n"))
              .rfind(file + ":1: no usable cipher", 0) == 0);
    CHECK(one(load("  cert a.crt\n  key a.key\n", " { tls verify; ca junk.pem }"))
              .rfind(file + ":5: ca file '" + d + "/junk.pem' of backend h:1 is unusable", 0) == 0);
}

TEST_CASE("config: load_config of a missing file, and of a file with syntax errors") {
    TempDir dir;
    std::string missing = (dir.path / "none.conf").string();
    ConfigResult r = load_config(missing);
    CHECK_FALSE(r.config);
    CHECK(messages(r) ==
          std::vector<std::string>{missing + ": cannot read: No such file or directory"});

    std::string bad = dir.write("bad.conf", "hba /nonexistent\nlisen *:1\nbackend h:1\n");
    r = load_config(bad);
    CHECK(messages(r) ==
          std::vector<std::string>{bad + ":2: unknown directive 'lisen' (did you mean 'listen'?)"});

    ConfigResult dir_result = load_config(dir.path.string());
    CHECK(messages(dir_result) ==
          std::vector<std::string>{dir.path.string() + ": cannot read: Is a directory"});
}

}  // namespace
}  // namespace pgrouter
