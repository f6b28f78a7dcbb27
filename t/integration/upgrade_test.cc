// Binary upgrade without downtime (issue 17): SIGUSR2 under pgbench with the binary swapped
// on disk first, the failure paths (broken configuration, a binary that exits at once or
// cannot be run, SIGUSR2 twice, SIGTERM during the upgrade, SIGKILL of the new supervisor
// after the hand-over) and the systemd notifications, read from a NOTIFY_SOCKET of our own.
// Who serves a session is read from /proc: the process holding the accepted socket.
#include <dirent.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "../harness/auth_files.h"
#include "../harness/cluster.h"
#include "../harness/files.h"
#include "../harness/log_check.h"
#include "../harness/net.h"
#include "../harness/pq.h"
#include "../harness/router_process.h"
#include "../harness/run.h"

using namespace pgrouter::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string built_binary() {
    const char* env = getenv("PGROUTER_BIN");
    return env != nullptr ? env : "build/pgrouter";
}

ino_t inode_of(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Puts a fresh copy of the built binary at `path` (rename over it: a running process keeps
// the old file), as a package upgrade does; returns the new file's inode.
ino_t install_binary(const std::string& path) {
    run_checked({"cp", built_binary(), path + ".new"});
    REQUIRE(rename((path + ".new").c_str(), path.c_str()) == 0);
    return inode_of(path);
}

void install_script(const std::string& path, const std::string& body) {
    write_file(path + ".new", "#!/bin/sh\n" + body);
    REQUIRE(chmod((path + ".new").c_str(), 0755) == 0);
    REQUIRE(rename((path + ".new").c_str(), path.c_str()) == 0);
}

pid_t parent_of(pid_t pid) {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    std::size_t close = stat.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream in(stat.substr(close + 2));
    std::string state;
    long ppid = 0;
    in >> state >> ppid;
    return static_cast<pid_t>(ppid);
}

// Live processes of process group `pgid` (from /proc).
std::vector<pid_t> group_members(pid_t pgid) {
    std::vector<pid_t> out;
    DIR* d = opendir("/proc");
    if (d == nullptr) return out;
    while (dirent* e = readdir(d)) {
        pid_t pid = static_cast<pid_t>(atoi(e->d_name));
        if (pid > 0 && getpgid(pid) == pgid && process_alive(pid)) out.push_back(pid);
    }
    closedir(d);
    return out;
}

// The socket inodes of established TCP connections whose local port is `port`, keyed by
// the remote port.
std::map<int, std::string> accepted_sockets(int port) {
    std::map<int, std::string> out;
    std::istringstream in(read_file("/proc/net/tcp"));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
        std::istringstream f(line);
        std::string sl, local, remote, st, queues, timer, retr, uid, timeout, inode;
        f >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode;
        if (st != "01") continue;  // ESTABLISHED
        int lport = std::stoi(local.substr(local.find(':') + 1), nullptr, 16);
        if (lport != port) continue;
        out[std::stoi(remote.substr(remote.find(':') + 1), nullptr, 16)] = inode;
    }
    return out;
}

// Which of `pids` holds each socket inode.
std::map<std::string, pid_t> socket_holders(const std::vector<pid_t>& pids) {
    std::map<std::string, pid_t> out;
    for (pid_t pid : pids) {
        std::string dir = "/proc/" + std::to_string(pid) + "/fd";
        DIR* d = opendir(dir.c_str());
        if (d == nullptr) continue;
        while (dirent* e = readdir(d)) {
            char target[128];
            std::string link = dir + "/" + e->d_name;
            ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
            if (n <= 0) continue;
            std::string t(target, static_cast<std::size_t>(n));
            if (t.rfind("socket:[", 0) == 0) out[t.substr(8, t.size() - 9)] = pid;
        }
        closedir(d);
    }
    return out;
}

// How many client sessions on `port` the children of `supervisor` hold.
int sessions_of(pid_t supervisor, int port) {
    auto holders = socket_holders(child_pids(supervisor));
    int n = 0;
    for (const auto& [remote, inode] : accepted_sockets(port)) n += holders.count(inode);
    return n;
}

// The supervisor whose child serves `conn` (0: none found).
pid_t serving_supervisor(const PgConn& conn, int port, pid_t a, pid_t b) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    getsockname(PQsocket(conn.get()), reinterpret_cast<sockaddr*>(&addr), &len);
    auto sockets = accepted_sockets(port);
    auto it = sockets.find(ntohs(addr.sin_port));
    if (it == sockets.end()) return 0;
    for (pid_t sup : {a, b}) {
        if (socket_holders(child_pids(sup)).count(it->second) != 0) return sup;
    }
    return 0;
}

// A router started from its own copy of the binary (so that the test can replace the file),
// with a pidfile: how the test finds the new supervisor.
struct UpgradeRig {
    explicit UpgradeRig(Cluster& cluster, RouterOptions opts = {})
        : c(cluster),
          bindir(make_temp_dir("pgrouter-upgrade-bin")),
          port(free_port()),
          monitor(free_port()) {
        chmod(bindir.c_str(), 0755);
        bin = bindir + "/pgrouter";
        install_binary(bin);
        opts.binary = bin;
        r = std::make_unique<RouterProcess>(config(), opts);
        pidfile = r->dir() + "/pgrouter.pid";
        REQUIRE(wait_until([&] { return can_connect(conninfo()); }, 15s));
        REQUIRE(wait_until([&] { return pidfile_pid() == r->pid(); }, 5s));
    }
    ~UpgradeRig() {
        // Whatever a failed test left: the group is the old router's.
        if (r && process_group_alive(r->pid())) kill(-r->pid(), SIGKILL);
        remove_tree(bindir);
    }

    std::string config(const std::string& extra = "") const {
        return "listen 127.0.0.1:" + std::to_string(port) +
               "\nmonitor 127.0.0.1:" + std::to_string(monitor) + "\nworkers 2\nauthdb " +
               authdb_file(c) + "\npidfile @DIR@/pgrouter.pid\nhealth { username postgres; " +
               "password \"" + kSuperPassword + "\"; check 1s; lag-interval 100ms }\n" + extra +
               "backend 127.0.0.1:" + std::to_string(c.port(0)) +
               "\nbackend 127.0.0.1:" + std::to_string(c.port(1)) + "\n";
    }
    std::string conninfo() const {
        return "host=127.0.0.1 port=" + std::to_string(port) + " user=" + kSuperUser +
               " password=" + kSuperPassword + " dbname=postgres sslmode=disable" +
               " connect_timeout=10";
    }
    pid_t pidfile_pid() const {
        try {
            return static_cast<pid_t>(std::stol(read_file(pidfile)));
        } catch (const std::exception&) {
            return 0;
        }
    }
    // The supervisor the pidfile names once it is not the old one (0 at the deadline).
    pid_t wait_new_supervisor(std::chrono::milliseconds deadline = 20s) const {
        pid_t fresh = 0;
        wait_until(
            [&] {
                fresh = pidfile_pid();
                return fresh > 0 && fresh != r->pid();
            },
            deadline);
        return fresh != r->pid() ? fresh : 0;
    }
    // Only the old supervisor and its own children are left in its group.
    bool only_old_processes() const {
        for (pid_t p : group_members(r->pid())) {
            if (p != r->pid() && parent_of(p) != r->pid()) return false;
        }
        return true;
    }
    // Stops the new supervisor (not our child: polled, not waited for); true when it and
    // every process of the group are gone.
    bool stop_new(pid_t fresh) const {
        kill(fresh, SIGTERM);
        return wait_until([&] { return !process_alive(fresh); }, 20s) &&
               wait_until([&] { return group_members(r->pid()).empty(); }, 10s);
    }
    bool shm_left_by(pid_t pid) const {
        std::string prefix = "pgrouter." + std::to_string(pid) + ".";
        DIR* d = opendir("/dev/shm");
        bool found = false;
        while (d != nullptr && !found) {
            dirent* e = readdir(d);
            if (e == nullptr) break;
            found = std::string(e->d_name).rfind(prefix, 0) == 0;
        }
        if (d != nullptr) closedir(d);
        return found;
    }

    Cluster& c;
    std::string bindir;
    std::string bin;
    int port;
    int monitor;
    std::string pidfile;
    std::unique_ptr<RouterProcess> r;
};

// Connect, SELECT 1, disconnect in a loop, timestamping each success: the longest pause
// between two successes is the accept gap a client could see.
struct ConnectProbe {
    explicit ConnectProbe(std::string conninfo) : info(std::move(conninfo)) {
        thread = std::thread([this] {
            while (!stop) {
                PGconn* conn = PQconnectdb(info.c_str());
                bool ok = PQstatus(conn) == CONNECTION_OK;
                if (ok) {
                    PGresult* res = PQexec(conn, "SELECT 1");
                    ok = PQresultStatus(res) == PGRES_TUPLES_OK;
                    PQclear(res);
                }
                if (!ok) {
                    std::lock_guard<std::mutex> g(mu);
                    errors.push_back(PQerrorMessage(conn));
                }
                PQfinish(conn);
                if (ok) {
                    std::lock_guard<std::mutex> g(mu);
                    successes.push_back(Clock::now());
                }
            }
        });
    }
    ~ConnectProbe() { finish(); }
    void finish() {
        stop = true;
        if (thread.joinable()) thread.join();
    }
    // The longest pause between successes inside [from, to], in ms.
    double longest_gap(Clock::time_point from, Clock::time_point to) const {
        double worst = 0;
        for (std::size_t i = 1; i < successes.size(); ++i) {
            if (successes[i] < from || successes[i - 1] > to) continue;
            worst = std::max(
                worst,
                std::chrono::duration<double, std::milli>(successes[i] - successes[i - 1]).count());
        }
        return worst;
    }

    std::string info;
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<Clock::time_point> successes;
    std::vector<std::string> errors;
    std::thread thread;
};

void check_pgbench(const RunResult& b) {
    INFO(b.out << b.err);
    CHECK(b.status == 0);
    CHECK(b.out.find("number of failed transactions: 0 ") != std::string::npos);
    CHECK(b.err.find("aborted") == std::string::npos);
}

// A stand-in for the new binary that waits until the test creates `gate`, then runs the
// real one: an upgrade that is still starting for as long as the test needs.
std::string gated_binary(const std::string& gate, const std::string& real) {
    return "while [ ! -e " + shell_quote(gate) + " ]; do sleep 0.05; done\nexec " +
           shell_quote(real) + " \"$@\"\n";
}

}  // namespace

TEST_CASE("SIGUSR2 under pgbench: zero failed transactions, zero refused connections",
          "[upgrade][pgbench]") {
    Cluster& c = Cluster::shared();
    UpgradeRig u(c);
    const std::string conninfo = u.conninfo();
    REQUIRE(run({"pgbench", "-i", "-q", "-s", "1", conninfo}).status == 0);
    const pid_t old = u.r->pid();

    RunResult long_lived, per_connect;
    std::thread long_run([&] {
        long_lived =
            run({"pgbench", "-n", "-S", "-c", "8", "-j", "2", "-T", "12", conninfo}, {}, "", 60s);
    });
    ConnectProbe probe(conninfo);
    // The 8 long-lived sessions are up, on the old supervisor's workers.
    REQUIRE(wait_until([&] { return sessions_of(old, u.port) >= 8; }, 15s));
    std::thread connect_run([&] {
        per_connect =
            run({"pgbench", "-n", "-S", "-C", "-c", "1", "-T", "8", conninfo}, {}, "", 60s);
    });

    ino_t new_file = install_binary(u.bin);
    auto sent = Clock::now();
    u.r->signal(SIGUSR2);
    pid_t fresh = u.wait_new_supervisor();
    auto named = Clock::now();
    REQUIRE(fresh > 0);
    CHECK(parent_of(fresh) == old);
    // The file now at the path was exec'd, not the one the old supervisor runs.
    CHECK(inode_of("/proc/" + std::to_string(fresh) + "/exe") == new_file);
    CHECK(inode_of("/proc/" + std::to_string(old) + "/exe") != new_file);
    REQUIRE(u.r->wait_for_log("the new supervisor \\(pid " + std::to_string(fresh) +
                              "\\) is ready; no longer accepting"));

    // Long-lived sessions stay on the old workers; a new connection is served by a child of
    // the new supervisor.
    CHECK(sessions_of(old, u.port) >= 8);
    {
        PgConn fresh_conn(conninfo);
        CHECK(fresh_conn.value("SELECT 1") == "1");
        CHECK(serving_supervisor(fresh_conn, u.port, old, fresh) == fresh);
    }

    long_run.join();
    connect_run.join();
    probe.finish();
    check_pgbench(long_lived);
    check_pgbench(per_connect);
    CHECK(probe.errors.empty());
    if (!probe.errors.empty()) INFO(probe.errors.front());
    double during = probe.longest_gap(sent, named + 500ms);
    double before = probe.longest_gap(sent - 3s, sent);
    std::printf(
        "upgrade: %zu probe connections, longest pause between successes %.1f ms around "
        "the hand-over (%.1f ms in the 3 s before it)\n",
        probe.successes.size(), during, before);

    // Its sessions done, the old supervisor leaves, with all its children and its segment.
    CHECK(u.r->wait_exit(30s) == std::optional<int>(0));
    CHECK(wait_until(
        [&] {
            for (pid_t p : group_members(old)) {
                if (p != fresh && parent_of(p) != fresh) return false;
            }
            return true;
        },
        10s));
    CHECK_FALSE(u.shm_left_by(old));
    CHECK(u.pidfile_pid() == fresh);
    CHECK(can_connect(conninfo));
    CHECK(u.stop_new(fresh));
    CHECK_FALSE(u.shm_left_by(fresh));
    check_log_clean(*u.r);
}

TEST_CASE(
    "SIGUSR2 with a broken configuration, a binary that exits at once or is missing: "
    "the old supervisor serves on",
    "[upgrade]") {
    Cluster& c = Cluster::shared();
    UpgradeRig u(c);
    const pid_t old = u.r->pid();
    auto still_serving = [&] {
        CHECK(u.pidfile_pid() == old);
        CHECK(can_connect(u.conninfo()));
        CHECK(wait_until([&] { return u.only_old_processes(); }, 10s));
        CHECK(u.r->children_titled("worker").size() == 2);
        CHECK(access((u.pidfile + ".tmp").c_str(), F_OK) != 0);
    };

    std::size_t mark = u.r->log_size();
    u.r->write_config(u.config("no-such-directive 1\n"));
    u.r->signal(SIGUSR2);
    CHECK(
        u.r->wait_for_log("upgrade: new supervisor \\(pid [0-9]+\\): configuration error: .*"
                          "no-such-directive",
                          15s, mark));
    CHECK(
        u.r->wait_for_log("upgrade failed: the new supervisor \\(pid [0-9]+\\) exited with "
                          "status 1 before it was ready; serving on",
                          15s, mark));
    still_serving();
    u.r->write_config(u.config());

    mark = u.r->log_size();
    install_script(u.bin, "exit 3\n");
    u.r->signal(SIGUSR2);
    CHECK(u.r->wait_for_log("exited with status 3 before it was ready; serving on", 15s, mark));
    still_serving();

    mark = u.r->log_size();
    REQUIRE(unlink(u.bin.c_str()) == 0);
    u.r->signal(SIGUSR2);
    CHECK(u.r->wait_for_log("cannot exec " + u.bin + ": No such file or directory", 15s, mark));
    CHECK(u.r->wait_for_log("exited with status 127 before it was ready", 15s, mark));
    still_serving();

    CHECK(u.r->stop() == 0);
    CHECK_FALSE(u.r->left_stragglers());
    check_log_clean(*u.r);
}

TEST_CASE("SIGUSR2 applies new listen and monitor addresses without dropping a session",
          "[upgrade]") {
    Cluster& c = Cluster::shared();
    UpgradeRig u(c);
    const int old_port = u.port, old_monitor = u.monitor;
    auto held = std::make_unique<PgConn>(u.conninfo());
    CHECK(held->value("SELECT 1") == "1");

    u.port = free_port();
    u.monitor = free_port();
    u.r->write_config(u.config());
    u.r->signal(SIGUSR2);
    pid_t fresh = u.wait_new_supervisor();
    REQUIRE(fresh > 0);
    CHECK(u.r->wait_for_log("listen is now 127.0.0.1:" + std::to_string(u.port) +
                            ": binding a new socket"));
    CHECK(u.r->wait_for_log("does not use the listen socket; closing it"));
    CHECK(can_connect(u.conninfo()));
    CHECK(u.r->monitor(u.monitor).rfind("backends ", 0) == 0);
    // The old addresses close at the hand-over (nobody would accept there), while the
    // session on them goes on.
    CHECK(wait_until([&] { return !port_open(old_port) && !port_open(old_monitor); }, 10s));
    CHECK(held->value("SELECT 2") == "2");
    held.reset();
    CHECK(u.r->wait_exit(20s) == std::optional<int>(0));
    CHECK(u.stop_new(fresh));
    check_log_clean(*u.r);
}

TEST_CASE("SIGUSR2 twice: the second is ignored while the first upgrade runs", "[upgrade]") {
    Cluster& c = Cluster::shared();
    UpgradeRig u(c);
    const pid_t old = u.r->pid();
    std::string real = u.bindir + "/pgrouter.real";
    run_checked({"cp", built_binary(), real});
    std::string gate = u.bindir + "/go";
    install_script(u.bin, gated_binary(gate, real));

    u.r->signal(SIGUSR2);
    REQUIRE(u.r->wait_for_log("upgrade: new supervisor is pid [0-9]+"));
    u.r->signal(SIGUSR2);
    CHECK(u.r->wait_for_log("received SIGUSR2 while an upgrade is in progress .*ignoring it"));
    write_file(gate, "");
    pid_t fresh = u.wait_new_supervisor();
    REQUIRE(fresh > 0);
    CHECK(u.r->wait_exit(20s) == std::optional<int>(0));
    std::string log = u.r->log();
    std::regex started("received SIGUSR2, upgrading");
    CHECK(std::distance(std::sregex_iterator(log.begin(), log.end(), started), {}) == 1);
    // One supervisor left, the new one, with its own children.
    CHECK(wait_until(
        [&] {
            for (pid_t p : group_members(old)) {
                if (p != fresh && parent_of(p) != fresh) return false;
            }
            return true;
        },
        10s));
    CHECK(can_connect(u.conninfo()));
    CHECK(u.stop_new(fresh));
    check_log_clean(*u.r);
}

TEST_CASE("SIGTERM during an upgrade stops the new supervisor too and leaves nothing",
          "[upgrade]") {
    Cluster& c = Cluster::shared();
    UpgradeRig u(c);
    std::string real = u.bindir + "/pgrouter.real";
    run_checked({"cp", built_binary(), real});
    install_script(u.bin, gated_binary(u.bindir + "/go", real));

    u.r->signal(SIGUSR2);
    REQUIRE(u.r->wait_for_log("upgrade: new supervisor is pid [0-9]+"));
    u.r->signal(SIGTERM);
    CHECK(u.r->wait_for_log("stopping the new supervisor \\(pid [0-9]+\\) of the upgrade"));
    CHECK(u.r->wait_exit(20s) == std::optional<int>(0));
    CHECK(wait_until([&] { return group_members(u.r->pid()).empty(); }, 10s));
    CHECK(access(u.pidfile.c_str(), F_OK) != 0);
    CHECK_FALSE(port_open(u.port));
    check_log_clean(*u.r);
}

TEST_CASE(
    "SIGKILL of the new supervisor after the hand-over: the old one takes the sockets "
    "back and serves on",
    "[upgrade]") {
    Cluster& c = Cluster::shared();
    UpgradeRig u(c);
    const pid_t old = u.r->pid();
    PgConn held(u.conninfo());  // keeps the old supervisor draining
    CHECK(held.value("SELECT 1") == "1");

    u.r->signal(SIGUSR2);
    pid_t fresh = u.wait_new_supervisor();
    REQUIRE(fresh > 0);
    REQUIRE(u.r->wait_for_log("is ready; no longer accepting"));
    REQUIRE(kill(fresh, SIGKILL) == 0);
    CHECK(u.r->wait_for_log("the new supervisor \\(pid " + std::to_string(fresh) +
                            "\\) was terminated by signal 9.*taking the listening sockets back"));
    CHECK(wait_until([&] { return u.pidfile_pid() == old; }, 10s));
    CHECK(held.value("SELECT 2") == "2");
    {
        PgConn again(u.conninfo());
        CHECK(again.value("SELECT 3") == "3");
        CHECK(serving_supervisor(again, u.port, old, fresh) == old);
    }
    // The dead supervisor's children follow it; the old one has a full set again, beside
    // the retired worker that still serves `held` and leaves with it.
    CHECK(wait_until([&] { return u.only_old_processes(); }, 15s));
    CHECK(wait_until([&] { return u.r->children_titled("worker").size() == 3; }, 15s));
    CHECK(wait_until([&] { return u.r->children_titled("monitor").size() == 1; }, 15s));
    CHECK(u.r->monitor(u.monitor).rfind("backends ", 0) == 0);
    held = PgConn(u.conninfo());
    CHECK(wait_until([&] { return u.r->children_titled("worker").size() == 2; }, 15s));
    CHECK(held.value("SELECT 4") == "4");
    CHECK(u.r->stop() == 0);
    CHECK_FALSE(u.r->left_stragglers());
    check_log_clean(*u.r);
}

TEST_CASE(
    "NOTIFY_SOCKET gets READY, RELOADING around SIGHUP, MAINPID of the new supervisor, "
    "STATUS",
    "[upgrade][notify]") {
    std::string dir = make_temp_dir("pgrouter-notify");
    chmod(dir.c_str(), 0755);
    std::string path = dir + "/notify";
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    chmod(path.c_str(), 0777);

    std::vector<std::string> seen;
    // The next message for which `pred` holds; the others are kept in `seen`.
    auto next = [&](const std::function<bool(const std::string&)>& pred) -> std::string {
        auto deadline = Clock::now() + 20s;
        while (Clock::now() < deadline) {
            pollfd p{fd, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0) continue;
            char buf[4096];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) continue;
            std::string m(buf, static_cast<std::size_t>(n));
            seen.push_back(m);
            if (pred(m)) return m;
        }
        return "";
    };
    auto has = [](const std::string& what) {
        return [what](const std::string& m) { return m.find(what) != std::string::npos; };
    };

    Cluster& c = Cluster::shared();
    RouterOptions opts;
    opts.env["NOTIFY_SOCKET"] = path;
    UpgradeRig u(c, opts);
    std::string ready = next(has("READY=1"));
    CHECK(ready.find("STATUS=backends ") != std::string::npos);
    CHECK(ready.find("MAINPID=") == std::string::npos);
    CHECK(next(has("STATUS=backends 2/2 OK")) != "");

    u.r->signal(SIGHUP);
    std::string reloading = next(has("RELOADING=1"));
    CHECK(reloading.find("MONOTONIC_USEC=") != std::string::npos);
    CHECK(next(has("READY=1")).find("STATUS=backends 2/2 OK") != std::string::npos);

    u.r->signal(SIGUSR2);
    CHECK(next(has("RELOADING=1")) != "");
    std::string main = next(has("MAINPID="));
    pid_t fresh = u.wait_new_supervisor();
    REQUIRE(fresh > 0);
    INFO([&] {
        std::string all;
        for (const std::string& m : seen) all += "[" + m + "]\n";
        return all;
    }());
    CHECK(main.rfind("MAINPID=" + std::to_string(fresh) + "\nREADY=1\nSTATUS=backends ", 0) == 0);
    // The new supervisor's own view of the backends, at once or a check later.
    CHECK((main.find("STATUS=backends 2/2 OK, ") != std::string::npos ||
           next(has("STATUS=backends 2/2 OK, ")) != ""));
    CHECK(u.r->wait_exit(20s) == std::optional<int>(0));
    CHECK(u.stop_new(fresh));
    close(fd);
    remove_tree(dir);
    check_log_clean(*u.r);
}
