// The foundation against a real cluster: the CLI (-t, -V, usage), the byte relay to the
// master, the monitor's format and counters, daemon mode with its pidfile, SIGHUP reloads
// (good and broken), SIGTERM/SIGINT, worker restarts and the SIGKILL chaos test.
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <random>
#include <regex>
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

namespace {

std::string pgrouter_bin() {
    const char* env = getenv("PGROUTER_BIN");
    return env != nullptr ? env : "build/pgrouter";
}

struct Ports {
    int listen = free_port();
    int monitor = free_port();
};

std::string backend_lines(const Cluster& c, std::initializer_list<int> nodes) {
    std::string out;
    for (int i : nodes) out += "backend 127.0.0.1:" + std::to_string(c.port(i)) + "\n";
    return out;
}

std::string router_config(const Ports& p, const std::string& backends, int workers = 2,
                          const std::string& extra = "") {
    return "authdb " + authdb_file(Cluster::shared()) +
           "\nlisten 127.0.0.1:" + std::to_string(p.listen) +
           "\nmonitor 127.0.0.1:" + std::to_string(p.monitor) + "\nworkers " +
           std::to_string(workers) + "\nhealth { username postgres; password \"" + kSuperPassword +
           "\" }\n" + extra + backends;
}

std::string client_conninfo(const Ports& p, const std::string& user = kSuperUser,
                            const std::string& db = "postgres") {
    return "host=127.0.0.1 port=" + std::to_string(p.listen) + " user=" + user +
           " password=" + password_for(user) + " dbname=" + db + " connect_timeout=5";
}

// The value of a "name N" line of the monitor dump, or -1.
long monitor_count(const std::string& dump, const std::string& name) {
    std::smatch m;
    std::regex re("(^|\n)" + name + " ([0-9]+)\n");
    return std::regex_search(dump, m, re) ? std::stol(m[2]) : -1;
}

int backend_line_count(const std::string& dump) {
    std::regex line(R"(\S+:\d+ (master|slave) (OK \d+|FAILED|STARTING)\n)");
    return static_cast<int>(
        std::distance(std::sregex_iterator(dump.begin(), dump.end(), line), {}));
}

bool monitor_shows(const RouterProcess& r, const Ports& p, const std::string& name, long value) {
    return wait_until([&] { return monitor_count(r.monitor(p.monitor), name) == value; }, 10s);
}

// The processes of the router whose ps title names this role.
std::vector<pid_t> children_titled(const RouterProcess& r, const std::string& title) {
    std::vector<pid_t> out;
    for (pid_t pid : r.children()) {
        std::string cmd = read_file("/proc/" + std::to_string(pid) + "/cmdline");
        if (cmd.rfind("pgrouter: " + title, 0) == 0) out.push_back(pid);
    }
    return out;
}

}  // namespace

TEST_CASE("pgrouter -t accepts a good file and reports every error of a bad one", "[cli]") {
    std::string dir = make_temp_dir("pgrouter-cli");
    write_file(dir + "/good.conf", "listen 127.0.0.1:6432\nbackend 127.0.0.1:5432\n");
    RunResult good = run({pgrouter_bin(), "-t", "-c", dir + "/good.conf"});
    CHECK(good.status == 0);
    CHECK(good.out == "configuration OK\n");

    write_file(dir + "/bad.conf", "lisen 127.0.0.1:6432\nbackend 127.0.0.1:99999\nworkers x\n");
    RunResult bad = run({pgrouter_bin(), "-t", "-c", dir + "/bad.conf"});
    CHECK(bad.status == 1);
    CHECK(bad.err.find("bad.conf:1: unknown directive 'lisen' (did you mean 'listen'?)") !=
          std::string::npos);
    CHECK(bad.err.find("bad.conf:2:") != std::string::npos);
    CHECK(bad.err.find("bad.conf:3:") != std::string::npos);

    RunResult missing = run({pgrouter_bin(), "-t", "-c", dir + "/nope.conf"});
    CHECK(missing.status == 1);
    CHECK(missing.err.find("nope.conf") != std::string::npos);
    remove_tree(dir);
}

TEST_CASE("pgrouter -V, -h and unknown flags", "[cli]") {
    RunResult v = run({pgrouter_bin(), "-V"});
    CHECK(v.status == 0);
    CHECK(std::regex_match(v.out, std::regex("pgrouter [0-9]+\\.[0-9]+\\.[0-9]+\n")));
    RunResult h = run({pgrouter_bin(), "-h"});
    CHECK(h.status == 0);
    CHECK(h.out.find("usage: pgrouter") != std::string::npos);
    RunResult bad = run({pgrouter_bin(), "-Q"});
    CHECK(bad.status == 2);
    CHECK(bad.err.find("usage: pgrouter") != std::string::npos);
}

TEST_CASE("clients log in through pgrouter; writes reach the master; the monitor counts them",
          "[relay][monitor]") {
    Cluster& c = Cluster::shared();
    Ports p;
    RouterProcess r(router_config(p, backend_lines(c, {0, 1, 2})));
    REQUIRE(wait_until([&] { return can_connect(client_conninfo(p)); }, 10s));

    {
        PgConn a(client_conninfo(p));
        PgConn b(client_conninfo(p, kTestUser, kTestDb));
        CHECK(b.value("SELECT current_user") == kTestUser);
        a.exec("CREATE TABLE IF NOT EXISTS relay_t (v int)");
        CHECK(a.value("INSERT INTO relay_t VALUES (42) RETURNING inet_server_port()") ==
              std::to_string(c.port(0)));
        CHECK(a.value("SELECT count(*) FROM relay_t WHERE v = 42") != "0");  // its own write
        PgConn a2(client_conninfo(p));
        CHECK(wait_until(
            [&] { return a2.value("SELECT count(*) FROM relay_t WHERE v = 42") != "0"; }));

        std::string dump = r.monitor(p.monitor);
        INFO(dump);
        CHECK(std::regex_match(dump, std::regex("backends [0-9]+/3\nworkers 2\nclients 3\n"
                                                "connections [3-9]\n"
                                                "(127\\.0\\.0\\.1:[0-9]+ (master|slave) "
                                                "(OK [0-9]+|FAILED|STARTING)\n){3}")));
        CHECK(monitor_count(dump, "clients") == 3);
        CHECK(dump.find("127.0.0.1:" + std::to_string(c.port(1))) != std::string::npos);
    }
    CHECK(monitor_shows(r, p, "clients", 0));
    CHECK(monitor_shows(r, p, "connections", 0));

    // Real clients: psql and pgbench.
    RunResult psql = run({"psql", client_conninfo(p), "-Atc", "SELECT 6 * 7"});
    CHECK(psql.out == "42\n");
    RunResult init = run({"pgbench", "-i", "-q", client_conninfo(p)});
    CHECK(init.status == 0);
    RunResult sel = run({"pgbench", "-n", "-c", "4", "-j", "2", "-t", "50", "-b", "select-only",
                         client_conninfo(p)});
    INFO(sel.err);
    CHECK(sel.out.find("number of failed transactions: 0") != std::string::npos);
    c.exec(0, "DROP TABLE relay_t");
    CHECK(r.stop() == 0);
    check_log_clean(r);
}

TEST_CASE("a client gets an error when the master cannot be reached", "[relay]") {
    Ports p;
    int dead = free_port();
    RouterProcess r(router_config(p, "backend 127.0.0.1:" + std::to_string(dead) + "\n"));
    REQUIRE(wait_until([&] { return port_open(p.listen); }, 10s));
    RunResult psql = run({"psql", client_conninfo(p), "-Atc", "SELECT 1"});
    CHECK(psql.status != 0);
    INFO(psql.err);
    // Before the watcher's verdict the connect fails; after it there is no master at all.
    CHECK(std::regex_search(
        psql.err, std::regex("FATAL: +(could not connect to backend "
                             "127.0.0.1|no master backend is available|no backend is available)")));
    CHECK(r.stop() == 0);
    check_log_clean(r);
}

TEST_CASE("a silent monitor client does not block the monitor", "[monitor]") {
    Cluster& c = Cluster::shared();
    Ports p;
    RouterProcess r(router_config(p, backend_lines(c, {0})));
    REQUIRE(wait_until([&] { return port_open(p.monitor); }, 10s));
    // Clients that connect and never read: the monitor writes and closes each.
    std::vector<int> idle;
    for (int i = 0; i < 5; ++i) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(p.monitor));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        idle.push_back(fd);
    }
    auto start = std::chrono::steady_clock::now();
    std::string dump = r.monitor(p.monitor);
    auto took = std::chrono::steady_clock::now() - start;
    for (int fd : idle) close(fd);
    CHECK(dump.rfind("backends ", 0) == 0);
    CHECK(took < 3s);
    CHECK(r.stop() == 0);
}

TEST_CASE("daemon mode writes the pidfile, refuses a second instance, cleans up", "[daemon]") {
    Cluster& c = Cluster::shared();
    Ports p;
    std::string dir = make_temp_dir("pgrouter-daemon");
    std::string pidfile = dir + "/pgrouter.pid";
    std::string conf = dir + "/pgrouter.conf";
    write_file(conf, router_config(p, backend_lines(c, {0}), 1, "pidfile " + pidfile + "\n"));

    // A stale pidfile (a dead pid) does not stop the start.
    write_file(pidfile, "999999\n");
    RunResult start = run({pgrouter_bin(), "-c", conf}, {}, "", 20s);
    REQUIRE(start.status == 0);  // the parent returns once the daemon is detached
    REQUIRE(wait_until([&] { return read_file(pidfile) != "999999\n" && port_open(p.listen); }));
    pid_t pid = static_cast<pid_t>(std::stol(read_file(pidfile)));
    CHECK(kill(pid, 0) == 0);
    CHECK(getsid(pid) != getsid(0));  // its own session, detached from ours
    CHECK(can_connect(client_conninfo(p)));

    RunResult second = run({pgrouter_bin(), "-c", conf}, {}, "", 20s);
    CHECK(second.status == 1);
    CHECK(second.err.find("names a running pgrouter") != std::string::npos);

    REQUIRE(kill(pid, SIGTERM) == 0);
    CHECK(wait_until([&] { return kill(pid, 0) != 0; }, 15s));
    CHECK(wait_until([&] { return access(pidfile.c_str(), F_OK) != 0; }, 5s));
    CHECK_FALSE(port_open(p.listen));
    remove_tree(dir);
}

TEST_CASE("SIGHUP adds and removes backends and changes workers without dropping sessions",
          "[reload]") {
    Cluster& c = Cluster::shared();
    Ports p;
    RouterProcess r(router_config(p, backend_lines(c, {0})));
    REQUIRE(wait_until([&] { return can_connect(client_conninfo(p)); }, 10s));
    PgConn held(client_conninfo(p));
    CHECK(backend_line_count(r.monitor(p.monitor)) == 1);

    r.write_config(router_config(p, backend_lines(c, {0, 1, 2}), 3));
    r.signal(SIGHUP);
    CHECK(wait_until([&] { return backend_line_count(r.monitor(p.monitor)) == 3; }));
    CHECK(monitor_shows(r, p, "workers", 3));
    CHECK(held.value("SELECT 1") == "1");

    r.write_config(router_config(p, backend_lines(c, {0, 2}), 1));
    r.signal(SIGHUP);
    CHECK(wait_until([&] { return backend_line_count(r.monitor(p.monitor)) == 2; }));
    std::string dump = r.monitor(p.monitor);
    CHECK(dump.find(":" + std::to_string(c.port(1)) + " ") == std::string::npos);
    CHECK(held.value("SELECT 2") == "2");
    CHECK(can_connect(client_conninfo(p)));
    { PgConn done = std::move(held); }  // closed, so shutdown need not wait for it
    CHECK(r.wait_for_log("configuration reloaded"));
    CHECK(r.stop() == 0);
    check_log_clean(r);
}

TEST_CASE("SIGHUP keeps what needs a restart, names it, and applies the rest", "[reload]") {
    Cluster& c = Cluster::shared();
    Ports p;
    std::string pidfile = "pgrouter-reload.pid";
    RouterProcess r(router_config(p, backend_lines(c, {0}), 2, "pidfile " + pidfile + "\n"));
    REQUIRE(wait_until([&] { return can_connect(client_conninfo(p)); }, 10s));
    std::size_t mark = r.log_size();
    Ports moved;
    std::string next =
        router_config(moved, backend_lines(c, {0, 1}), 2, "pidfile other.pid\nlog DEBUG\n");
    r.write_config(next);
    r.signal(SIGHUP);
    for (const char* name : {"listen", "monitor", "pidfile"}) {
        INFO(name);
        CHECK(r.wait_for_log(std::string("'") + name + "' changed: needs a restart", 10s, mark));
    }
    CHECK(r.wait_for_log("configuration reloaded", 10s, mark));
    // The old sockets stay, the reloadable changes are in force.
    CHECK(wait_until([&] { return backend_line_count(r.monitor(p.monitor)) == 2; }));
    CHECK(can_connect(client_conninfo(p)));
    CHECK_FALSE(port_open(moved.listen));
    // Only those: the log lines before "configuration reloaded" name nothing reloadable.
    std::string reload_log = r.log().substr(mark);
    CHECK_FALSE(
        std::regex_search(reload_log, std::regex("'(workers|log|backend|authdb)' changed")));
    CHECK(r.stop() == 0);
    check_log_clean(r);
}

TEST_CASE("SIGHUP with a broken config keeps the old one and says why", "[reload]") {
    Cluster& c = Cluster::shared();
    Ports p;
    RouterProcess r(router_config(p, backend_lines(c, {0, 1})));
    REQUIRE(wait_until([&] { return can_connect(client_conninfo(p)); }, 10s));
    std::size_t mark = r.log_size();
    r.write_config("listen 127.0.0.1:1\nbackend 127.0.0.1:5432 { weight lots }\n");
    r.signal(SIGHUP);
    CHECK(r.wait_for_log("pgrouter.conf:2: .*weight", 10s, mark));
    CHECK(r.wait_for_log("keeping the previous one", 10s, mark));
    CHECK(backend_line_count(r.monitor(p.monitor)) == 2);
    CHECK(can_connect(client_conninfo(p)));
    CHECK(r.stop() == 0);
    check_log_clean(r);
}

TEST_CASE("SIGTERM and SIGINT stop everything and leave nothing behind", "[stop]") {
    Cluster& c = Cluster::shared();
    for (int sig : {SIGTERM, SIGINT}) {
        Ports p;
        RouterProcess r(router_config(p, backend_lines(c, {0})));
        REQUIRE(wait_until([&] { return can_connect(client_conninfo(p)); }, 10s));
        std::vector<pid_t> kids = r.children();
        CHECK(kids.size() == 4);  // watcher, monitor, 2 workers
        pid_t pid = r.pid();
        r.signal(sig);
        auto status = r.wait_exit(15s);
        REQUIRE(status.has_value());
        CHECK(*status == 0);
        for (pid_t k : kids) CHECK(wait_until([&] { return kill(k, 0) != 0; }, 5s));
        CHECK(access(("/dev/shm/pgrouter." + std::to_string(pid) + ".0").c_str(), F_OK) != 0);
        CHECK_FALSE(port_open(p.listen));
        check_log_clean(r);
    }
}

TEST_CASE("SIGTERM lets an open transaction finish its work", "[stop]") {
    Cluster& c = Cluster::shared();
    Ports p;
    RouterProcess r(router_config(p, backend_lines(c, {0}), 1));
    REQUIRE(wait_until([&] { return can_connect(client_conninfo(p)); }, 10s));
    PgConn held(client_conninfo(p));
    held.exec("BEGIN");
    r.signal(SIGTERM);
    CHECK(wait_until([&] { return !port_open(p.listen); }, 5s));
    CHECK(held.value("SELECT 'still here'") == "still here");
    CHECK(r.running());
    held.exec("COMMIT");  // the session ends after it (shutdown_test.cc has the details)
    auto status = r.wait_exit(10s);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
}

TEST_CASE("a worker killed with SIGKILL is restarted and serves again", "[restart]") {
    Cluster& c = Cluster::shared();
    Ports p;
    RouterProcess r(router_config(p, backend_lines(c, {0})));
    REQUIRE(wait_until([&] { return can_connect(client_conninfo(p)); }, 10s));
    std::vector<pid_t> workers = children_titled(r, "worker 0");
    REQUIRE(workers.size() == 1);
    REQUIRE(kill(workers[0], SIGKILL) == 0);
    CHECK(r.wait_for_log("worker 0 \\(pid " + std::to_string(workers[0]) +
                         "\\) was terminated by signal 9"));
    CHECK(wait_until([&] {
        auto now = children_titled(r, "worker 0");
        return now.size() == 1 && now[0] != workers[0];
    }));
    for (int i = 0; i < 10; ++i) CHECK(can_connect(client_conninfo(p)));
    CHECK(monitor_shows(r, p, "workers", 2));
    CHECK(r.stop() == 0);
    check_log_clean(r);
}

TEST_CASE("chaos: 200 SIGKILLs of random children never wedge the rest", "[chaos]") {
    Cluster& c = Cluster::shared();
    Ports p;
    const int workers = 16;  // enough children that back-off never idles the test
    RouterProcess r(router_config(p, backend_lines(c, {0, 1, 2}), workers));
    REQUIRE(wait_until([&] { return can_connect(client_conninfo(p)); }, 10s));

    std::atomic<bool> stop{false};
    std::atomic<int> ok{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 2; ++t) {
        clients.emplace_back([&] {
            while (!stop) {
                PGconn* conn = PQconnectdb(client_conninfo(p).c_str());
                if (PQstatus(conn) == CONNECTION_OK) {
                    PGresult* res = PQexec(conn, "SELECT 1");
                    if (PQresultStatus(res) == PGRES_TUPLES_OK) ++ok;
                    PQclear(res);
                }
                PQfinish(conn);
            }
        });
    }
    std::mt19937 rng(20261122);
    int kills = 0;
    auto deadline = std::chrono::steady_clock::now() + 150s;
    while (kills < 200 && std::chrono::steady_clock::now() < deadline) {
        std::vector<pid_t> kids = r.children();
        if (kids.empty()) {
            std::this_thread::sleep_for(10ms);
            continue;
        }
        pid_t victim = kids[rng() % kids.size()];
        if (kill(victim, SIGKILL) == 0) ++kills;
        std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 20));
    }
    stop = true;
    for (auto& t : clients) t.join();
    WARN("chaos: " << kills << " SIGKILLs, " << ok.load() << " client queries succeeded meanwhile");
    CHECK(kills >= 200);
    CHECK(ok > 0);

    // Everything comes back, and the counters tell the truth again.
    CHECK(wait_until([&] { return children_titled(r, "worker").size() == workers; }, 30s));
    CHECK(wait_until([&] { return children_titled(r, "watcher").size() == 1; }, 10s));
    CHECK(wait_until(
        [&] {
            return port_open(p.monitor) &&
                   monitor_count(r.monitor(p.monitor), "workers") == workers;
        },
        30s));
    CHECK(monitor_shows(r, p, "clients", 0));
    CHECK(monitor_shows(r, p, "connections", 0));
    {
        std::vector<std::unique_ptr<PgConn>> held;
        for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<PgConn>(client_conninfo(p)));
        for (auto& h : held) CHECK(h->value("SELECT 1") == "1");
        CHECK(monitor_shows(r, p, "clients", 3));
        // one or two backend connections per session (the master at login, a standby for reads)
        CHECK(wait_until([&] {
            long n = monitor_count(r.monitor(p.monitor), "connections");
            return n >= 3 && n <= 6;
        }));
    }
    CHECK(monitor_shows(r, p, "clients", 0));
    CHECK(r.stop(20s) == 0);
    check_log_clean(r);
}

TEST_CASE("started as root with user/group, the children drop to them", "[privileges]") {
    if (geteuid() != 0) {
        WARN("not root: privilege drop not exercised");
        return;
    }
    Cluster& c = Cluster::shared();
    Ports p;
    // The files the workers re-read must be readable by the unprivileged user.
    std::string dir = make_temp_dir("pgrouter-drop");
    chmod(dir.c_str(), 0755);
    write_file(dir + "/authdb.txt", read_file(authdb_file(c)));
    chmod((dir + "/authdb.txt").c_str(), 0644);
    std::string conf = "user nobody\ngroup nogroup\nauthdb " + dir +
                       "/authdb.txt\nlisten 127.0.0.1:" + std::to_string(p.listen) +
                       "\nmonitor 127.0.0.1:" + std::to_string(p.monitor) +
                       "\nworkers 1\nhealth { password \"" + kSuperPassword + "\" }\n" +
                       backend_lines(c, {0});
    RouterProcess r(conf);
    REQUIRE(wait_until([&] { return can_connect(client_conninfo(p)); }, 15s));
    auto uid_of = [](pid_t pid) {
        std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
        std::smatch m;
        return std::regex_search(status, m, std::regex("\nUid:\\s+([0-9]+)")) ? std::stoi(m[1])
                                                                              : -1;
    };
    CHECK(uid_of(r.pid()) == 65534);
    for (pid_t child : r.children()) CHECK(uid_of(child) == 65534);
    CHECK(r.stop() == 0);
    check_log_clean(r);
    remove_tree(dir);
}
