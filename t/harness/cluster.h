// A real PostgreSQL replication cluster for tests: a primary and N hot standbys made by
// pg_basebackup, optionally an independent "foreign" server, on free loopback ports in one
// directory. Runs the servers as `postgres` when root. Unless kept, everything is stopped
// and removed by the destructor, and by a Reaper if this process dies first.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cleanup.h"
#include "pq.h"

namespace pgrouter::test {

// Roles every cluster has. Passwords are stored as SCRAM except md5user's (MD5; pg_hba
// lets only that role log in with the md5 method).
constexpr const char* kSuperUser = "postgres";
constexpr const char* kSuperPassword = "postgres";
constexpr const char* kTestUser = "pgrtest";  // owns database pgrtest
constexpr const char* kTestPassword = "pgrtest-secret";
constexpr const char* kTestDb = "pgrtest";
constexpr const char* kMd5User = "md5user";
constexpr const char* kMd5Password = "md5-secret";
constexpr const char* kDemoUser = "demo";  // owns database demo
constexpr const char* kDemoPassword = "demo";
constexpr const char* kDemoDb = "demo";

// The password of one of the roles above; "" for any other name.
std::string password_for(const std::string& user);

struct ClusterOptions {
    int standbys = 2;
    bool foreign = false;     // also an independent server (its own initdb) at foreign_index()
    bool replstatus = false;  // load bgw_replstatus on every node (see replstatus_available)
    std::string dir{};        // "" = a fresh $TMPDIR/pgrouter-cluster-XXXXXX
    bool keep = false;        // leave servers running and the directory in place
    bool quiet = false;       // no timing line on stderr
    // false: autovacuum = off. The tests' shared cluster runs without it: its WAL, written
    // at moments no test chose, moves the master's position past what a standby has
    // replayed, and routing rightly follows (a session's catalog floor, the lag bound).
    bool autovacuum = true;
};

enum class NodeRole { Primary, Standby, Foreign };

class Cluster {
  public:
    explicit Cluster(ClusterOptions opts = {});
    ~Cluster();
    Cluster(const Cluster&) = delete;
    Cluster& operator=(const Cluster&) = delete;

    // One cluster (two standbys, no foreign) built on first use and reused by tests that
    // leave it as they found it. Nodes found stopped are started again.
    static Cluster& shared();

    // Takes over a cluster made with keep (reads DIR/cluster.env). The result is kept
    // unless set_keep(false) is called; destroy() tears it down either way.
    static std::unique_ptr<Cluster> attach(const std::string& dir);

    // Is bgw_replstatus installed for the server binaries in use?
    static bool replstatus_available();

    // Primary + standbys; the foreign server, if any, is at index node_count().
    int node_count() const { return static_cast<int>(nodes_.size()) - (has_foreign_ ? 1 : 0); }
    int standby_count() const { return node_count() - 1; }
    int foreign_index() const { return has_foreign_ ? node_count() : -1; }

    const std::string& host() const { return host_; }
    const std::string& dir() const { return dir_; }
    int port(int i) const { return node(i).port; }
    int replstatus_port(int i) const { return node(i).replstatus_port; }  // 0 if off
    std::string name(int i) const { return node(i).name; }  // primary, standby1, foreign
    std::string datadir(int i) const { return node(i).dir + "/data"; }
    std::string log_path(int i) const { return node(i).dir + "/server.log"; }
    std::string server_log(int i) const;
    NodeRole role(int i) const { return node(i).role; }
    int primary() const;  // index of the node currently promoted or primary from the start

    // "host=127.0.0.1 port=P user=U password=W dbname=D connect_timeout=10"
    std::string conninfo(int i, const std::string& user = kSuperUser,
                         const std::string& db = "postgres") const;
    // First column of the first row ("" if none); throws std::runtime_error on error.
    std::string exec(int i, const std::string& sql, const std::string& user = kSuperUser,
                     const std::string& db = "postgres") const;
    Rows query(int i, const std::string& sql, const std::string& user = kSuperUser,
               const std::string& db = "postgres") const;

    // pg_ctl; mode "immediate", "fast" or "smart". stop() on a stopped node does nothing.
    void stop(int i, const std::string& mode = "immediate");
    void start(int i);
    void restart(int i, const std::string& mode = "fast");
    void promote(int i);  // pg_ctl promote -w; the node becomes a primary
    bool running(int i) const;
    pid_t postmaster_pid(int i) const;  // 0 when not running
    void reload(int i);
    // Appends lines to the node's postgresql.conf (takes effect on reload or restart).
    void append_conf(int i, const std::string& lines);
    // Points a standby at another upstream (ALTER SYSTEM primary_conninfo + reload).
    void follow(int standby, int upstream);

    // Waits until every running standby shows up as `streaming` in pg_stat_replication of
    // its running upstream; throws std::runtime_error with the view's contents on timeout.
    void wait_streaming(std::chrono::milliseconds deadline = std::chrono::seconds(30)) const;
    // Waits until standby has replayed everything its upstream had written when called.
    void wait_replayed(int standby,
                       std::chrono::milliseconds deadline = std::chrono::seconds(30)) const;
    // pg_wal_replay_pause()/resume(); pause waits until replay is actually paused.
    void pause_replay(int standby);
    void resume_replay(int standby);
    std::string system_identifier(int i) const;

    void set_keep(bool keep) { keep_ = keep; }
    bool kept() const { return keep_; }
    // Stops every server (immediately) and removes the directory; idempotent.
    void destroy();
    // Shell-sourceable description (written to DIR/cluster.env).
    std::string env_text() const;
    double setup_seconds() const { return setup_seconds_; }

  private:
    struct Node {
        std::string name;
        std::string dir;
        int port = 0;
        int replstatus_port = 0;
        NodeRole role = NodeRole::Primary;
        int upstream = -1;
        int kill_slot = -1;
    };
    struct AttachTag {};
    Cluster(AttachTag, const std::string& dir);

    const Node& node(int i) const;
    Node& node(int i);
    void prepare_dir(const std::string& dir);
    void init_server(Node& n);
    void write_server_conf(Node& n, bool with_base);
    void start_new(Node& n);  // first start, retrying on another port when bind fails
    void pg_ctl_start(Node& n);
    void track_pid(Node& n);
    void create_roles();
    void make_standby(Node& n, int upstream);
    void write_env() const;

    ClusterOptions opts_;
    std::string host_ = "127.0.0.1";
    std::string dir_;
    std::vector<Node> nodes_;
    bool has_foreign_ = false;
    bool keep_ = false;
    bool destroyed_ = false;
    double setup_seconds_ = 0;
    Reaper reaper_;
};

}  // namespace pgrouter::test
