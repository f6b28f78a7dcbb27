// Building, driving and tearing down a test replication cluster. Everything PostgreSQL does
// goes through its own tools (initdb, pg_ctl, pg_basebackup) run as the postgres user when
// root; servers are stopped by pid or pg_ctl, never by process name.
#include "cluster.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <sstream>
#include <stdexcept>

#include "files.h"
#include "net.h"
#include "run.h"

namespace pgrouter::test {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string sql_literal(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        out += c;
        if (c == '\'') out += '\'';
    }
    return out + "'";
}

// Settings shared by every node: fast and forgiving rather than durable.
constexpr const char* kBaseConf = R"(
# --- pgrouter test cluster ---
listen_addresses = '127.0.0.1'
fsync = off
full_page_writes = off
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 64MB
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 200ms
shared_buffers = 32MB
max_connections = 200
max_prepared_transactions = 10
password_encryption = 'scram-sha-256'
logging_collector = off
log_min_messages = warning
log_min_error_statement = error
log_connections = on
log_line_prefix = '%m [%p] %q%u@%d '
log_checkpoints = off
)";

constexpr const char* kHba = R"(# pgrouter test cluster
local   all          all                     trust
local   replication  all                     trust
host    all          md5user  127.0.0.1/32   md5
host    all          all      127.0.0.1/32   scram-sha-256
host    replication  all      127.0.0.1/32   scram-sha-256
)";

// sun_path holds 108 bytes; PostgreSQL appends "/.s.PGSQL.NNNNN.lock".
constexpr size_t kMaxSocketDir = 85;

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string tail(const std::string& text, size_t max_chars = 3000) {
    return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

}  // namespace

std::string password_for(const std::string& user) {
    static const std::map<std::string, std::string> passwords = {
        {kSuperUser, kSuperPassword},
        {kTestUser, kTestPassword},
        {kMd5User, kMd5Password},
        {kDemoUser, kDemoPassword},
    };
    auto it = passwords.find(user);
    return it == passwords.end() ? "" : it->second;
}

bool Cluster::replstatus_available() {
    std::error_code ec;
    return fs::exists(fs::path(pg_bindir()).parent_path() / "lib" / "bgw_replstatus.so", ec);
}

Cluster::Cluster(ClusterOptions opts) : opts_(std::move(opts)), keep_(opts_.keep) {
    if (opts_.standbys < 0) throw std::invalid_argument("Cluster: negative standby count");
    if (opts_.replstatus && !replstatus_available())
        throw std::runtime_error("Cluster: bgw_replstatus is not installed");
    auto t0 = Clock::now();
    install_cleanup_handlers();
    dir_ = opts_.dir.empty() ? make_temp_dir("pgrouter-cluster-", fast_temp_base()) : opts_.dir;
    prepare_dir(dir_);
    // Even a kept cluster is removed if this process dies while building it.
    reaper_ = Reaper(stop_postmasters_script(dir_));
    try {
        nodes_.push_back({"primary", dir_ + "/primary", 0, 0, NodeRole::Primary, -1, -1});
        for (int s = 1; s <= opts_.standbys; ++s) {
            std::string name = "standby" + std::to_string(s);
            nodes_.push_back({name, dir_ + "/" + name, 0, 0, NodeRole::Standby, 0, -1});
        }
        if (opts_.foreign) {
            nodes_.push_back({"foreign", dir_ + "/foreign", 0, 0, NodeRole::Foreign, -1, -1});
            has_foreign_ = true;
        }

        // The foreign server's initdb runs beside the primary's: two cores, two initdbs.
        std::future<void> foreign_init;
        if (has_foreign_) {
            Node& f = nodes_.back();
            foreign_init = std::async(std::launch::async, [this, &f] { init_server(f); });
        }
        auto t = Clock::now();
        init_server(nodes_[0]);
        double t_initdb = seconds_since(t);

        t = Clock::now();
        start_new(nodes_[0]);
        create_roles();
        double t_primary = seconds_since(t);

        t = Clock::now();
        {
            // Base backups and first starts of the standbys run side by side.
            std::vector<std::future<void>> standbys;
            for (int s = 1; s <= opts_.standbys; ++s) {
                Node& n = nodes_[static_cast<size_t>(s)];
                standbys.push_back(
                    std::async(std::launch::async, [this, &n] { make_standby(n, 0); }));
            }
            for (auto& f : standbys) f.get();
        }
        double t_standbys = seconds_since(t);

        if (has_foreign_) {
            foreign_init.get();
            start_new(nodes_.back());
        }
        t = Clock::now();
        wait_streaming();
        double t_stream = seconds_since(t);

        write_env();
        if (keep_) {
            for (auto& n : nodes_) {
                unregister_kill(n.kill_slot);
                n.kill_slot = -1;
            }
            reaper_.disarm();
        }
        setup_seconds_ = seconds_since(t0);
        if (!opts_.quiet) {
            std::fprintf(stderr,
                         "cluster: primary + %d standby(s)%s ready in %.2f s (initdb %.2f, "
                         "primary start + roles %.2f, standbys %.2f, streaming %.2f) in %s\n",
                         opts_.standbys, has_foreign_ ? " + foreign" : "", setup_seconds_, t_initdb,
                         t_primary, t_standbys, t_stream, dir_.c_str());
        }
    } catch (...) {
        destroy();
        throw;
    }
}

Cluster::Cluster(AttachTag, const std::string& dir) : dir_(dir), keep_(true) {
    std::string env = read_file(dir + "/cluster.env");
    if (env.empty())
        throw std::runtime_error(dir + " is not a test cluster directory (no cluster.env)");
    std::map<std::string, std::string> vars;
    std::istringstream in(env);
    for (std::string line; std::getline(in, line);) {
        auto eq = line.find('=');
        if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
        std::string v = line.substr(eq + 1);
        if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') v = v.substr(1, v.size() - 2);
        vars[line.substr(0, eq)] = v;
    }
    std::istringstream names(vars["NODES"]);
    for (std::string name; names >> name;) {
        Node n;
        n.name = name;
        n.dir = dir + "/" + name;
        n.port = std::atoi(vars[upper(name) + "_PORT"].c_str());
        n.replstatus_port = std::atoi(vars[upper(name) + "_REPLSTATUS_PORT"].c_str());
        n.role = name == "primary"   ? NodeRole::Primary
                 : name == "foreign" ? NodeRole::Foreign
                                     : NodeRole::Standby;
        n.upstream = n.role == NodeRole::Standby ? 0 : -1;
        if (n.role == NodeRole::Foreign) has_foreign_ = true;
        nodes_.push_back(n);
    }
    if (nodes_.empty() || nodes_[0].name != "primary")
        throw std::runtime_error(dir + "/cluster.env names no primary");
    opts_.standbys = static_cast<int>(nodes_.size()) - 1 - (has_foreign_ ? 1 : 0);
    opts_.dir = dir;
}

std::unique_ptr<Cluster> Cluster::attach(const std::string& dir) {
    return std::unique_ptr<Cluster>(new Cluster(AttachTag{}, dir));
}

Cluster::~Cluster() {
    try {
        if (keep_) {
            for (auto& n : nodes_) unregister_kill(n.kill_slot);
            reaper_.disarm();
        } else {
            destroy();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cluster: teardown of %s failed: %s\n", dir_.c_str(), e.what());
    }
}

Cluster& Cluster::shared() {
    static std::unique_ptr<Cluster> instance;
    static std::string failure;
    if (!failure.empty()) throw std::runtime_error("shared cluster unavailable: " + failure);
    if (!instance) {
        try {
            ClusterOptions opts;
            opts.autovacuum = false;
            instance = std::make_unique<Cluster>(opts);
        } catch (const std::exception& e) {
            failure = e.what();
            throw;
        }
        return *instance;
    }
    bool restarted = false;
    for (int i = 0; i < instance->node_count(); ++i) {
        if (!instance->running(i)) {
            instance->start(i);
            restarted = true;
        }
    }
    if (restarted) instance->wait_streaming();
    return *instance;
}

const Cluster::Node& Cluster::node(int i) const {
    if (i < 0 || i >= static_cast<int>(nodes_.size()))
        throw std::out_of_range("cluster has no node " + std::to_string(i));
    return nodes_[static_cast<size_t>(i)];
}

Cluster::Node& Cluster::node(int i) {
    return const_cast<Node&>(static_cast<const Cluster*>(this)->node(i));
}

void Cluster::prepare_dir(const std::string& dir) {
    std::error_code ec;
    bool created = fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create " + dir + ": " + ec.message());
    if (!fs::is_empty(dir, ec)) throw std::runtime_error(dir + " is not empty");
    if (chmod(dir.c_str(), 0700) != 0)
        throw std::runtime_error("chmod " + dir + ": " + std::strerror(errno));
    chown_to_postgres(dir);
    if (running_as_root() && !run(as_postgres({"test", "-w", dir})).ok()) {
        if (created) remove_tree(dir);
        throw std::runtime_error("the postgres user cannot reach " + dir +
                                 ": a parent directory is closed to it (chmod o+x the parents, "
                                 "or use a directory under /tmp)");
    }
}

void Cluster::init_server(Node& n) {
    fs::create_directories(n.dir);
    chown_to_postgres(n.dir);
    std::string pwfile = n.dir + "/pwfile";
    write_file(pwfile, std::string(kSuperPassword) + "\n");
    chown_to_postgres(pwfile);
    run_checked(as_postgres({pg_bin("initdb"), "-D", n.dir + "/data", "-U", kSuperUser, "--pwfile",
                             pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E",
                             "UTF8", "--locale=C", "-N"}),
                {}, "", std::chrono::seconds(120), n.dir);
    remove_tree(pwfile);
    write_server_conf(n, true);
    write_file(n.dir + "/data/pg_hba.conf", kHba);
}

void Cluster::write_server_conf(Node& n, bool with_base) {
    std::string conf;
    if (with_base) conf += kBaseConf;
    if (n.port == 0) n.port = free_port();
    conf += "# node " + n.name + "\nport = " + std::to_string(n.port) + "\n";
    std::string sockdir = n.dir.size() <= kMaxSocketDir ? n.dir : "";
    conf += "unix_socket_directories = " + sql_literal(sockdir) + "\n";
    if (!opts_.autovacuum) conf += "autovacuum = off\n";
    if (opts_.replstatus) {
        if (n.replstatus_port == 0) n.replstatus_port = free_port();
        conf += "shared_preload_libraries = 'bgw_replstatus'\n";
        conf += "bgw_replstatus.port = " + std::to_string(n.replstatus_port) + "\n";
        conf += "bgw_replstatus.bind = '127.0.0.1'\n";
    }
    write_file(n.dir + "/data/postgresql.conf", conf, true);
}

void Cluster::start_new(Node& n) {
    for (int attempt = 0;; ++attempt) {
        size_t log_before = read_file(n.dir + "/server.log").size();
        try {
            pg_ctl_start(n);
            return;
        } catch (const std::runtime_error&) {
            std::string log = read_file(n.dir + "/server.log");
            log = log.size() > log_before ? log.substr(log_before) : "";
            bool bind_failed = log.find("could not bind") != std::string::npos ||
                               log.find("could not create any TCP/IP") != std::string::npos;
            if (!bind_failed || attempt >= 4) throw;
        }
        std::fprintf(stderr, "cluster: port %d of %s taken, retrying on another\n", n.port,
                     n.name.c_str());
        n.port = free_port();
        if (opts_.replstatus) n.replstatus_port = free_port();
        write_server_conf(n, false);
    }
}

void Cluster::pg_ctl_start(Node& n) {
    RunResult r = run(as_postgres({pg_bin("pg_ctl"), "-D", n.dir + "/data", "-l",
                                   n.dir + "/server.log", "-w", "-t", "60", "start"}),
                      {}, "", std::chrono::seconds(90), n.dir);
    if (!r.ok()) {
        throw std::runtime_error("pg_ctl start " + n.name + " failed (status " +
                                 std::to_string(r.status) + "): " + r.err + r.out +
                                 "\nserver.log:\n" + tail(read_file(n.dir + "/server.log")));
    }
    track_pid(n);
}

void Cluster::track_pid(Node& n) {
    std::string pidfile = read_file(n.dir + "/data/postmaster.pid");
    pid_t pid = static_cast<pid_t>(std::atol(pidfile.c_str()));
    if (n.kill_slot < 0)
        n.kill_slot = register_kill(pid, SIGQUIT);
    else
        update_kill(n.kill_slot, pid);
}

void Cluster::create_roles() {
    PgConn c(conninfo(0));
    const std::string statements[] = {
        "SET password_encryption = 'scram-sha-256'",
        std::string("CREATE ROLE ") + kTestUser + " LOGIN PASSWORD " + sql_literal(kTestPassword),
        std::string("CREATE DATABASE ") + kTestDb + " OWNER " + kTestUser,
        std::string("CREATE ROLE ") + kDemoUser + " LOGIN PASSWORD " + sql_literal(kDemoPassword),
        std::string("CREATE DATABASE ") + kDemoDb + " OWNER " + kDemoUser,
        "SET password_encryption = 'md5'",
        std::string("CREATE ROLE ") + kMd5User + " LOGIN PASSWORD " + sql_literal(kMd5Password),
        "RESET password_encryption",
    };
    for (const auto& sql : statements) c.exec(sql);
}

void Cluster::make_standby(Node& n, int upstream) {
    fs::create_directories(n.dir);
    chown_to_postgres(n.dir);
    const Node& up = node(upstream);
    std::string src = "host=" + host_ + " port=" + std::to_string(up.port) + " user=" + kSuperUser +
                      " password=" + kSuperPassword + " application_name=" + n.name;
    run_checked(as_postgres({pg_bin("pg_basebackup"), "-D", n.dir + "/data", "-R", "-X", "stream",
                             "-c", "fast", "--no-sync", "-d", src}),
                {}, "", std::chrono::seconds(120), n.dir);
    n.upstream = upstream;
    n.role = NodeRole::Standby;
    write_server_conf(n, false);
    start_new(n);
}

std::string Cluster::server_log(int i) const { return read_file(log_path(i)); }

int Cluster::primary() const {
    // The most recently promoted node wins; the original primary otherwise.
    for (int i = node_count() - 1; i >= 0; --i)
        if (node(i).role == NodeRole::Primary && (i == 0 || running(i))) return i;
    return 0;
}

std::string Cluster::conninfo(int i, const std::string& user, const std::string& db) const {
    std::string ci = "host=" + host_ + " port=" + std::to_string(port(i)) + " user=" + user;
    std::string pw = password_for(user);
    if (!pw.empty()) ci += " password=" + pw;
    return ci + " dbname=" + db + " connect_timeout=10";
}

std::string Cluster::exec(int i, const std::string& sql, const std::string& user,
                          const std::string& db) const {
    return query_value(conninfo(i, user, db), sql);
}

Rows Cluster::query(int i, const std::string& sql, const std::string& user,
                    const std::string& db) const {
    return query_rows(conninfo(i, user, db), sql);
}

pid_t Cluster::postmaster_pid(int i) const {
    std::string pidfile = read_file(datadir(i) + "/postmaster.pid");
    pid_t pid = static_cast<pid_t>(std::atol(pidfile.c_str()));
    if (pid <= 0) return 0;
    return process_alive(pid) ? pid : 0;
}

bool Cluster::running(int i) const { return postmaster_pid(i) != 0; }

void Cluster::stop(int i, const std::string& mode) {
    Node& n = node(i);
    if (!running(i)) return;
    run_checked(as_postgres({pg_bin("pg_ctl"), "-D", n.dir + "/data", "-m", mode, "-w", "-t", "60",
                             "stop"}),
                {}, "", std::chrono::seconds(90), n.dir);
    update_kill(n.kill_slot, 0);
}

void Cluster::start(int i) {
    if (running(i)) return;
    pg_ctl_start(node(i));
}

void Cluster::restart(int i, const std::string& mode) {
    stop(i, mode);
    start(i);
}

void Cluster::promote(int i) {
    Node& n = node(i);
    run_checked(as_postgres({pg_bin("pg_ctl"), "-D", n.dir + "/data", "-w", "-t", "60", "promote"}),
                {}, "", std::chrono::seconds(90), n.dir);
    n.role = NodeRole::Primary;
    n.upstream = -1;
}

void Cluster::reload(int i) {
    Node& n = node(i);
    run_checked(as_postgres({pg_bin("pg_ctl"), "-D", n.dir + "/data", "reload"}), {}, "",
                std::chrono::seconds(30), n.dir);
}

void Cluster::append_conf(int i, const std::string& lines) {
    write_file(datadir(i) + "/postgresql.conf", "\n" + lines + "\n", true);
}

void Cluster::follow(int standby, int upstream) {
    Node& n = node(standby);
    const Node& up = node(upstream);
    std::string src = "host=" + host_ + " port=" + std::to_string(up.port) + " user=" + kSuperUser +
                      " password=" + kSuperPassword + " application_name=" + n.name;
    exec(standby, "ALTER SYSTEM SET primary_conninfo = " + sql_literal(src));
    exec(standby, "SELECT pg_reload_conf()");
    n.upstream = upstream;
}

void Cluster::wait_streaming(std::chrono::milliseconds deadline) const {
    std::string missing;
    auto all_streaming = [&] {
        missing.clear();
        for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
            const Node& n = nodes_[static_cast<size_t>(i)];
            if (n.role != NodeRole::Standby || n.upstream < 0 || !running(i) ||
                !running(n.upstream))
                continue;
            try {
                std::string state = exec(n.upstream,
                                         "SELECT state FROM pg_stat_replication "
                                         "WHERE application_name = " +
                                             sql_literal(n.name));
                if (state != "streaming")
                    missing += " " + n.name + "(" + (state.empty() ? "absent" : state) + ")";
            } catch (const std::exception& e) {
                missing += " " + n.name + "(" + e.what() + ")";
            }
        }
        return missing.empty();
    };
    if (wait_until(all_streaming, deadline)) return;
    throw std::runtime_error("standbys not streaming before the deadline:" + missing);
}

void Cluster::wait_replayed(int standby, std::chrono::milliseconds deadline) const {
    int up = node(standby).upstream;
    if (up < 0) up = primary();
    std::string target = exec(up,
                              "SELECT CASE WHEN pg_is_in_recovery() THEN "
                              "pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END");
    std::string sql = "SELECT pg_last_wal_replay_lsn() >= " + sql_literal(target) + "::pg_lsn";
    bool ok = wait_until(
        [&] {
            try {
                return exec(standby, sql) == "t";
            } catch (const std::exception&) {
                return false;
            }
        },
        deadline);
    if (!ok)
        throw std::runtime_error(name(standby) + " did not replay up to " + target +
                                 " before the deadline");
}

void Cluster::pause_replay(int standby) {
    exec(standby, "SELECT pg_wal_replay_pause()");
    bool ok = wait_until(
        [&] { return exec(standby, "SELECT pg_get_wal_replay_pause_state()") == "paused"; },
        std::chrono::seconds(30));
    if (!ok) throw std::runtime_error(name(standby) + ": replay did not pause");
}

void Cluster::resume_replay(int standby) { exec(standby, "SELECT pg_wal_replay_resume()"); }

std::string Cluster::system_identifier(int i) const {
    return exec(i, "SELECT system_identifier FROM pg_control_system()");
}

void Cluster::destroy() {
    if (destroyed_) return;
    destroyed_ = true;
    std::vector<pid_t> pids;
    for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
        pid_t pid = postmaster_pid(i);
        if (pid != 0 && kill(pid, SIGQUIT) == 0) pids.push_back(pid);
    }
    auto all_gone = [&] {
        for (pid_t p : pids)
            if (process_alive(p)) return false;
        return true;
    };
    if (!wait_until(all_gone, std::chrono::seconds(15))) {
        for (pid_t p : pids) kill(p, SIGKILL);
        wait_until(all_gone, std::chrono::seconds(5));
    }
    for (auto& n : nodes_) {
        unregister_kill(n.kill_slot);
        n.kill_slot = -1;
    }
    if (!dir_.empty()) remove_tree(dir_);
    reaper_.disarm();
}

std::string Cluster::env_text() const {
    std::string names;
    for (const auto& n : nodes_) names += (names.empty() ? "" : " ") + n.name;
    std::string out = "# pgrouter test cluster; source it: . " + dir_ + "/cluster.env\n";
    out += "CLUSTER_DIR=" + shell_quote(dir_) + "\n";
    out += "PGHOST=" + host_ + "\n";
    out += "NODES='" + names + "'\n";
    for (const auto& n : nodes_) {
        out += upper(n.name) + "_PORT=" + std::to_string(n.port) + "\n";
        if (n.replstatus_port != 0)
            out += upper(n.name) + "_REPLSTATUS_PORT=" + std::to_string(n.replstatus_port) + "\n";
    }
    out += "PG_BINDIR=" + shell_quote(pg_bindir()) + "\n";
    out += std::string("SUPERUSER=") + kSuperUser + "\nSUPERUSER_PASSWORD=" + kSuperPassword + "\n";
    out += std::string("TEST_USER=") + kTestUser + "\nTEST_PASSWORD=" + kTestPassword +
           "\nTEST_DB=" + kTestDb + "\n";
    out += std::string("MD5_USER=") + kMd5User + "\nMD5_PASSWORD=" + kMd5Password + "\n";
    out += std::string("DEMO_USER=") + kDemoUser + "\nDEMO_PASSWORD=" + kDemoPassword +
           "\nDEMO_DB=" + kDemoDb + "\n";
    return out;
}

void Cluster::write_env() const { write_file(dir_ + "/cluster.env", env_text()); }

}  // namespace pgrouter::test
