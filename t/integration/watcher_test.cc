// The watcher against real servers, read through the monitor port: failure and recovery of a
// standby, promotion, split brain, a foreign server, replication lag with replay paused, a
// black-hole backend, a SIGKILLed watcher, health logins that fail, bgw_replstatus. Every
// detection time is measured from the moment the cluster tool returned, and printed.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <thread>

#include "../harness/cluster.h"
#include "../harness/files.h"
#include "../harness/log_check.h"
#include "../harness/monitor_lines.h"
#include "../harness/net.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

constexpr double kFastTargetMs = 500;  // promotion seen, refused standby FAILED

struct Ports {
    int listen = free_port();
    int monitor = free_port();
};

// "check 500ms" and friends; credentials of the cluster's superuser unless overridden.
std::string health_block(const std::string& timing,
                         const std::string& credentials = std::string("username postgres\n"
                                                                      "password \"") +
                                                          kSuperPassword + "\"\n") {
    return "health {\n" + timing + credentials + "}\n";
}

const std::string kTiming = "timeout 2s\ncheck 1s\nlag-interval 250ms\n";

std::string router_config(const Ports& p, const std::string& health, const std::string& backends) {
    return "listen 127.0.0.1:" + std::to_string(p.listen) +
           "\nmonitor 127.0.0.1:" + std::to_string(p.monitor) + "\nworkers 1\n" + health + backends;
}

std::string addr(int port) { return "127.0.0.1:" + std::to_string(port); }
std::string addr(const Cluster& c, int node) { return addr(c.port(node)); }

std::string backend_lines(const Cluster& c, std::initializer_list<int> nodes,
                          const std::string& block = "") {
    std::string out;
    for (int i : nodes) out += "backend " + addr(c, i) + block + "\n";
    return out;
}

using Line = MonitorLine;

std::optional<Line> line_of(const RouterProcess& r, const Ports& p, const std::string& backend) {
    return monitor_line(r, p.monitor, backend);
}

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

double wait_line(const RouterProcess& r, const Ports& p, const std::string& backend,
                 const std::function<bool(const Line&)>& pred, Clock::time_point since,
                 std::chrono::milliseconds deadline = 10s) {
    return wait_monitor_line(r, p.monitor, backend, pred, since, deadline);
}

auto is(const std::string& role, const std::string& status) {
    return [role, status](const Line& l) { return l.role == role && l.status == status; };
}
auto has_status(const std::string& status) {
    return [status](const Line& l) { return l.status == status; };
}

bool all_ok(const RouterProcess& r, const Ports& p, const Cluster& c,
            std::initializer_list<int> nodes, std::chrono::milliseconds deadline = 15s) {
    return wait_until(
        [&] {
            std::map<std::string, Line> lines;
            try {
                lines = parse_monitor(r.monitor(p.monitor));
            } catch (const std::exception&) {
                return false;
            }
            for (int i : nodes) {
                auto it = lines.find(addr(c, i));
                if (it == lines.end() || it->second.status != "OK") return false;
            }
            return true;
        },
        deadline);
}

void report(const std::string& what, double ms) {
    std::printf("watcher timing: %-58s %8.1f ms\n", what.c_str(), ms);
    std::fflush(stdout);
}

std::size_t count_of(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = text.find(needle); at != std::string::npos;
         at = text.find(needle, at + needle.size())) {
        ++n;
    }
    return n;
}

// A literal for RouterProcess::wait_for_log's regex.
std::string literal(const std::string& text) {
    static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
    return std::regex_replace(text, special, R"(\$&)");
}

// Resumes replay on scope exit so a failing test does not leave the shared cluster paused.
struct ReplayResumer {
    Cluster& c;
    int standby;
    ~ReplayResumer() {
        try {
            c.resume_replay(standby);
        } catch (...) {
        }
    }
};

// Starts a stopped node again on scope exit: the shared cluster is left as found.
struct Restarter {
    Cluster& c;
    int node;
    ~Restarter() {
        try {
            c.start(node);
        } catch (...) {
        }
    }
};

// A TCP port that accepts connections (the kernel completes the handshake into the
// backlog) and never says a word: the worst kind of dead backend.
class BlackHole {
  public:
    BlackHole() {
        fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            listen(fd_, 64) != 0) {
            throw std::runtime_error("black hole: cannot listen");
        }
        socklen_t len = sizeof a;
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
    }
    ~BlackHole() { close(fd_); }
    int port() const { return port_; }

  private:
    int fd_ = -1;
    int port_ = 0;
};

}  // namespace

TEST_CASE("watcher: a stopped standby is FAILED at once and OK again after a restart",
          "[watcher]") {
    Cluster& c = Cluster::shared();
    Ports p;
    RouterProcess r(router_config(p, health_block(kTiming), backend_lines(c, {0, 1, 2})));
    REQUIRE(all_ok(r, p, c, {0, 1, 2}));
    CHECK(line_of(r, p, addr(c, 0))->role == "master");
    CHECK(line_of(r, p, addr(c, 2))->role == "slave");

    {
        Restarter restart{c, 2};
        c.stop(2, "immediate");
        auto stopped = Clock::now();
        double failed = wait_line(r, p, addr(c, 2), is("slave", "FAILED"), stopped, 5s);
        report("stopped standby (pg_ctl stop -m immediate) FAILED after", failed);
        CHECK(failed >= 0);
        CHECK(failed < kFastTargetMs);
        CHECK(line_of(r, p, addr(c, 0))->status == "OK");
        CHECK(line_of(r, p, addr(c, 1))->status == "OK");

        c.start(2);
        auto started = Clock::now();
        double ok = wait_line(r, p, addr(c, 2), is("slave", "OK"), started, 10s);
        report("restarted standby OK again after (check 1s)", ok);
        CHECK(ok >= 0);
        CHECK(ok < 1000 + kFastTargetMs);
    }
    c.wait_streaming();
    CHECK(r.stop() == 0);
    std::string log = r.log();
    INFO(log);
    CHECK(count_of(log, "backend " + addr(c, 2) + " is now FAILED") == 1);
    CHECK(count_of(log, "backend " + addr(c, 2) + " is now OK (slave)") == 2);
    CHECK(count_of(log, "backend " + addr(c, 0) + " is now OK (master)") == 1);
    check_log_clean(r);
}

TEST_CASE("watcher: lag of a standby whose replay is paused grows past its threshold",
          "[watcher]") {
    Cluster& c = Cluster::shared();
    Ports p;
    RouterProcess r(
        router_config(p, health_block(kTiming),
                      backend_lines(c, {0}) + backend_lines(c, {1, 2}, " { lag 1MB }")));
    REQUIRE(all_ok(r, p, c, {0, 1, 2}));
    constexpr long long kThreshold = 1 << 20;

    ReplayResumer resume{c, 1};
    c.pause_replay(1);
    c.exec(0, "DROP TABLE IF EXISTS watcher_lag");
    c.exec(0,
           "CREATE TABLE watcher_lag AS SELECT g, repeat('x', 1000) AS pad "
           "FROM generate_series(1, 4000) g");
    auto written = Clock::now();
    double over = wait_line(
        r, p, addr(c, 1), [&](const Line& l) { return l.status == "OK" && l.lag > kThreshold; },
        written, 5s);
    report("paused standby's lag above 1MB after the write, in", over);
    CHECK(over >= 0);
    CHECK(over < kFastTargetMs);
    auto paused = line_of(r, p, addr(c, 1));
    REQUIRE(paused);
    INFO("paused standby lag " << paused->lag);
    CHECK(paused->lag > 4'000'000);
    // Replay stays paused and no new WAL arrives: the lag does not shrink.
    std::this_thread::sleep_for(600ms);
    CHECK(line_of(r, p, addr(c, 1))->lag >= paused->lag);
    // The other standby keeps up.
    CHECK(wait_line(
              r, p, addr(c, 2), [&](const Line& l) { return l.lag < kThreshold; }, Clock::now(),
              5s) >= 0);

    c.resume_replay(1);
    auto resumed = Clock::now();
    double under = wait_line(
        r, p, addr(c, 1), [&](const Line& l) { return l.status == "OK" && l.lag < kThreshold; },
        resumed, 10s);
    report("resumed standby's lag back under 1MB after", under);
    CHECK(under >= 0);
    c.exec(0, "DROP TABLE watcher_lag");
    CHECK(r.stop() == 0);
    check_log_clean(r);
}

TEST_CASE("watcher: a black-hole backend is FAILED after the timeout; the others stay fresh",
          "[watcher]") {
    Cluster& c = Cluster::shared();
    BlackHole hole;
    Ports p;
    auto started = Clock::now();
    RouterProcess r(router_config(p, health_block("timeout 3s\ncheck 1s\nlag-interval 250ms\n"),
                                  backend_lines(c, {0}) + backend_lines(c, {1}, " { lag 1MB }") +
                                      "backend " + addr(hole.port()) + "\n"));
    REQUIRE(all_ok(r, p, c, {0, 1}, 5s));
    CHECK(line_of(r, p, addr(hole.port()))->status == "STARTING");

    // While the black hole's check hangs, the other backends are still sampled: replay
    // paused on the standby shows up as lag at once.
    {
        ReplayResumer resume{c, 1};
        c.pause_replay(1);
        c.exec(0, "DROP TABLE IF EXISTS watcher_hole");
        c.exec(0,
               "CREATE TABLE watcher_hole AS SELECT g, repeat('x', 1000) AS pad "
               "FROM generate_series(1, 3000) g");
        auto written = Clock::now();
        double lagged = wait_line(
            r, p, addr(c, 1), [](const Line& l) { return l.lag > (1 << 20); }, written, 3s);
        report("lag seen while a black-hole check hangs, after", lagged);
        CHECK(lagged >= 0);
        CHECK(lagged < kFastTargetMs);
        CHECK(line_of(r, p, addr(hole.port()))->status == "STARTING");
    }
    double failed = wait_line(r, p, addr(hole.port()), has_status("FAILED"), started, 10s);
    report("black hole FAILED after router start (timeout 3s)", failed);
    CHECK(failed >= 2900);
    CHECK(failed < 3000 + kFastTargetMs);
    CHECK(line_of(r, p, addr(c, 0))->status == "OK");
    CHECK(line_of(r, p, addr(c, 1))->status == "OK");
    CHECK(
        r.wait_for_log("backend " + addr(hole.port()) +
                           " is now FAILED: timeout: no answer to the health login within 3000 ms",
                       1s));
    c.exec(0, "DROP TABLE watcher_hole");
    CHECK(r.stop() == 0);
    check_log_clean(r);
}

TEST_CASE("watcher: a SIGKILLed watcher is restarted and shows no stale OK", "[watcher]") {
    Cluster& c = Cluster::shared();
    Ports p;
    RouterProcess r(router_config(p, health_block(kTiming), backend_lines(c, {0, 1, 2})));
    REQUIRE(all_ok(r, p, c, {0, 1, 2}));
    auto watchers = r.children_titled("watcher");
    REQUIRE(watchers.size() == 1);
    pid_t old_watcher = watchers[0];

    Restarter restart{c, 2};
    // Frozen, the watcher cannot see the standby go: shared memory still says OK.
    REQUIRE(kill(old_watcher, SIGSTOP) == 0);
    c.stop(2, "immediate");
    CHECK(line_of(r, p, addr(c, 2))->status == "OK");
    REQUIRE(kill(old_watcher, SIGKILL) == 0);
    auto killed = Clock::now();
    double failed = wait_line(r, p, addr(c, 2), has_status("FAILED"), killed, 5s);
    report("stale OK replaced after the watcher's SIGKILL, in", failed);
    CHECK(failed >= 0);
    CHECK(failed < 2000);  // one timeout
    watchers = r.children_titled("watcher");
    REQUIRE(watchers.size() == 1);
    CHECK(watchers[0] != old_watcher);
    // From now on the standby never reads OK while it is down.
    auto until = Clock::now() + 500ms;
    while (Clock::now() < until) {
        auto l = line_of(r, p, addr(c, 2));
        REQUIRE(l);
        CHECK(l->status != "OK");
    }
    CHECK(line_of(r, p, addr(c, 0))->status == "OK");
    c.start(2);
    CHECK(wait_line(r, p, addr(c, 2), has_status("OK"), Clock::now(), 10s) >= 0);
    c.wait_streaming();
    CHECK(r.stop() == 0);
    check_log_clean(r);
}

TEST_CASE("watcher: health logins that fail are logged once; credentials never shown",
          "[watcher]") {
    Cluster& c = Cluster::shared();
    const std::string wrong = "wrong-watcher-Secret-42";
    auto credentials = [](const std::string& password) {
        return std::string("database ") + kTestDb + "\nusername " + kTestUser + "\npassword \"" +
               password + "\"\n";
    };
    const std::string timing = "timeout 2s\ncheck 300ms\nlag-interval 100ms\n";
    Ports p;
    RouterProcess r(router_config(p, health_block(timing, credentials(kTestPassword)),
                                  backend_lines(c, {0, 1})));
    REQUIRE(all_ok(r, p, c, {0, 1}));

    // SIGHUP: a wrong password, and a backend more.
    r.write_config(
        router_config(p, health_block(timing, credentials(wrong)), backend_lines(c, {0, 1, 2})));
    r.signal(SIGHUP);
    for (int i : {0, 1, 2}) {
        INFO("node " << c.name(i));
        CHECK(wait_line(r, p, addr(c, i), has_status("FAILED"), Clock::now(), 5s) >= 0);
    }
    // Several checks come and go; each backend's failure is logged once, with the server's
    // own words.
    std::this_thread::sleep_for(1200ms);
    std::string log = r.log();
    for (int i : {0, 1, 2}) {
        INFO(log);
        CHECK(count_of(log, "backend " + addr(c, i) +
                                " is now FAILED: password authentication failed for user \"" +
                                kTestUser + "\"") == 1);
    }
    std::string dump = r.monitor(p.monitor);

    // SIGHUP: the right password again, one backend fewer.
    r.write_config(router_config(p, health_block(timing, credentials(kTestPassword)),
                                 backend_lines(c, {0, 2})));
    r.signal(SIGHUP);
    REQUIRE(all_ok(r, p, c, {0, 2}));
    CHECK(wait_until([&] { return !line_of(r, p, addr(c, 1)); }, 5s));

    // Neither password in the log, the monitor output or any process title.
    std::vector<pid_t> pids = r.children();
    pids.push_back(r.pid());
    for (pid_t pid : pids) {
        std::string cmd = read_file("/proc/" + std::to_string(pid) + "/cmdline");
        CHECK(cmd.find(wrong) == std::string::npos);
        CHECK(cmd.find(kTestPassword) == std::string::npos);
    }
    CHECK(r.stop() == 0);
    log = r.log();
    CHECK(log.find(wrong) == std::string::npos);
    CHECK(log.find(kTestPassword) == std::string::npos);
    CHECK(dump.find(wrong) == std::string::npos);
    check_log_clean(r);
}

TEST_CASE("watcher: failover, split brain, a foreign server and bgw_replstatus", "[watcher]") {
    ClusterOptions opts;
    opts.standbys = 2;
    opts.foreign = true;
    opts.replstatus = Cluster::replstatus_available();
    Cluster c(opts);
    const int foreign = c.foreign_index();
    Ports p;
    RouterProcess r(router_config(p, health_block("timeout 2s\ncheck 500ms\nlag-interval 250ms\n"),
                                  backend_lines(c, {0, 1, 2, foreign})));
    REQUIRE(all_ok(r, p, c, {0, 1, 2}));

    // A server of another cluster (its own initdb) is fenced, never OK.
    CHECK(wait_line(r, p, addr(c, foreign), has_status("FAILED"), Clock::now(), 5s) >= 0);
    CHECK(r.wait_for_log("backend " + addr(c, foreign) + " is fenced: its system identifier " +
                             c.system_identifier(foreign) + " differs from the cluster's " +
                             c.system_identifier(0),
                         2s));
    CHECK(r.log().find("backend " + addr(c, foreign) + " is now OK") == std::string::npos);

    // Failover: the primary stops, a standby is promoted.
    c.stop(0, "immediate");
    CHECK(wait_line(r, p, addr(c, 0), is("master", "FAILED"), Clock::now(), 5s) >= 0);
    c.promote(1);
    auto promoted = Clock::now();
    double master = wait_line(r, p, addr(c, 1), is("master", "OK"), promoted, 5s);
    report("promoted standby is the master after pg_ctl promote, in", master);
    CHECK(master >= 0);
    CHECK(master < kFastTargetMs);
    CHECK(r.wait_for_log("backend " + addr(c, 1) + " was promoted: now master on timeline 2", 1s));
    // Standby 2 still follows the dead primary on timeline 1: fenced until it follows the
    // new master (and moved before the old primary is back, which it would follow again).
    CHECK(wait_line(r, p, addr(c, 2), is("slave", "FAILED"), promoted, 5s) >= 0);
    c.follow(2, 1);
    CHECK(wait_line(r, p, addr(c, 2), is("slave", "OK"), Clock::now(), 30s) >= 0);

    // Split brain: the old primary comes back, still a primary, on the old timeline.
    c.start(0);
    auto restarted = Clock::now();
    double fenced = wait_line(r, p, addr(c, 0), is("master", "FAILED"), restarted, 5s);
    CHECK(fenced >= 0);
    std::string split = "split brain: backend " + addr(c, 0) +
                        " is not in recovery (timeline 1) while " + addr(c, 1) +
                        " is the master (timeline 2)";
    bool split_logged = r.wait_for_log(literal(split), 3s);
    INFO(r.log());
    REQUIRE(split_logged);
    report("old primary started again: fenced (logged) after", ms_since(restarted));
    CHECK(line_of(r, p, addr(c, 1))->status == "OK");
    // Logged again at every check while it lasts.
    CHECK(wait_until([&] { return count_of(r.log(), split) >= 2; }, 3s));
    CHECK(r.log().find("backend " + addr(c, foreign) + " is now OK") == std::string::npos);
    CHECK(r.stop() == 0);
    check_log_clean(r);

    if (!opts.replstatus) {
        WARN("bgw_replstatus is not installed: its probe is not tested");
        return;
    }
    // bgw_replstatus: with SQL samples only every 3 s, the role probe still sees standby2's
    // promotion at once. Standby 2 follows standby 1 on timeline 2; promoted, it is on
    // timeline 3 and wins over standby 1.
    Ports q;
    std::string backends = "backend " + addr(c, 1) + " { replstatus " +
                           std::to_string(c.replstatus_port(1)) + " }\nbackend " + addr(c, 2) +
                           " { replstatus " + std::to_string(c.replstatus_port(2)) + " }\n";
    RouterProcess rs(
        router_config(q, health_block("timeout 2s\ncheck 30s\nlag-interval 3s\n"), backends));
    REQUIRE(all_ok(rs, q, c, {1, 2}));
    CHECK(line_of(rs, q, addr(c, 1))->role == "master");
    c.promote(2);
    auto promoted2 = Clock::now();
    double seen = wait_line(rs, q, addr(c, 2), is("master", "OK"), promoted2, 5s);
    report("bgw_replstatus: second promotion seen (lag-interval 3s), in", seen);
    CHECK(seen >= 0);
    CHECK(seen < kFastTargetMs);
    CHECK(rs.wait_for_log("replstatus: backend " + addr(c, 2) + " reports MASTER; checking it now",
                          1s));
    CHECK(rs.wait_for_log(
        literal("split brain: backend " + addr(c, 1) + " is not in recovery (timeline 2) while " +
                addr(c, 2) + " is the master (timeline 3)"),
        1s));
    CHECK(line_of(rs, q, addr(c, 1))->status == "FAILED");
    CHECK(rs.stop() == 0);
    check_log_clean(rs);
}

TEST_CASE("watcher: a backend's tls mode reaches the health login", "[watcher]") {
    Cluster& c = Cluster::shared();  // its servers offer no TLS
    Ports p;
    RouterProcess r(router_config(
        p, health_block(kTiming),
        backend_lines(c, {0}, " { tls off }") + backend_lines(c, {1}, " { tls skipverify }")));
    REQUIRE(all_ok(r, p, c, {0}));
    CHECK(wait_line(r, p, addr(c, 1), has_status("FAILED"), Clock::now(), 5s) >= 0);
    CHECK(r.wait_for_log("backend " + addr(c, 1) +
                             " is now FAILED: server does not support SSL, but SSL was required",
                         2s));
    CHECK(r.stop() == 0);
    check_log_clean(r);
}
