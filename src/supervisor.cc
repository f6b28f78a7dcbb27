// The supervisor's loop. Signals arrive on a signalfd and are acted on in order: reap dead
// children (and repair what they owned in shared memory), then shut down, then reload, then
// start children whose back-off has expired. Children leave with _exit() so nothing of the
// supervisor's cleanup ever runs in them. SIGUSR2 starts a new supervisor on the same
// listening sockets (os/upgrade.h); once it is ready this one retires its children and
// exits, and it takes the sockets back if the new one dies while it is still there.
#include "pgrouter/supervisor.h"

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "pgrouter/auth/access.h"
#include "pgrouter/base/log.h"
#include "pgrouter/config/directives.h"
#include "pgrouter/net/tls.h"
#include "pgrouter/os/child.h"
#include "pgrouter/os/child_table.h"
#include "pgrouter/os/counters.h"
#include "pgrouter/os/daemon.h"
#include "pgrouter/os/listener.h"
#include "pgrouter/os/proc_title.h"
#include "pgrouter/os/service_notify.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/os/signals.h"
#include "pgrouter/os/upgrade.h"

namespace pgrouter {

namespace {

constexpr std::int64_t kQuickDeathNs = 10'000'000'000;  // died sooner: counts as a crash
constexpr std::int64_t kSecondNs = 1'000'000'000;
constexpr std::int64_t kSuccessorReadyNs = 30 * kSecondNs;  // a new supervisor gets this long
constexpr std::int64_t kSuccessorStopNs = 10 * kSecondNs;   // then SIGTERM, then SIGKILL
constexpr int kReadyPollMs = 20;                            // while the workers are starting

std::string describe_exit(int status) {
    if (WIFSIGNALED(status)) {
        return "was terminated by signal " + std::to_string(WTERMSIG(status)) + ": " +
               strsignal(WTERMSIG(status));
    }
    return "exited with status " + std::to_string(WEXITSTATUS(status));
}

int worker_count(const Config& config) {
    if (config.workers > 0) return std::min(config.workers, kMaxWorkers);
    unsigned cpus = std::thread::hardware_concurrency();
    return std::clamp<int>(static_cast<int>(cpus), 1, kMaxWorkers);
}

class Supervisor {
  public:
    Supervisor(Config config, const SupervisorOptions& options)
        : config_(std::move(config)), options_(options) {}
    int run();

  private:
    [[nodiscard]] bool setup();
    [[nodiscard]] bool fail(const std::string& why);
    [[nodiscard]] int open_listener(std::string_view name, const Endpoint& where);
    [[nodiscard]] bool drop_privileges();
    void publish(const Config& config);
    void set_worker_count(int n);
    void start_due_children();
    void start_child(Child& child);
    void read_signals();
    void reap_children();
    void reload();
    void reload_config();
    void begin_shutdown(bool fast);
    [[nodiscard]] bool drained();
    void cleanup();
    bool any_running() const;
    bool ensure_child(ChildKind kind);
    // Readiness and systemd: the workers accept; what STATUS= says.
    bool workers_accepting() const;
    void check_ready();
    std::string status_text() const;
    void update_status();
    // A binary upgrade, from the old supervisor's side.
    void begin_upgrade();
    void read_successor_pipe();
    void successor_exited(int status);
    void check_successor_deadline();
    void hand_over(const std::string& adopted);
    void take_back();

    Config config_;
    SupervisorOptions options_;
    std::unique_ptr<SharedMemory> shm_;
    std::vector<Child> children_;
    std::string pidfile_;
    int listen_fd_ = -1;
    int monitor_fd_ = -1;
    int metrics_fd_ = -1;
    int signal_fd_ = -1;
    bool reload_requested_ = false;
    bool shutting_down_ = false;
    std::int64_t kill_at_ns_ = 0;
    std::string setup_error_;
    std::vector<std::string> adopted_;  // names of the sockets an upgrade handed us
    bool ready_ = false;                // the workers accepted once (READY=1 sent)
    bool announce_main_ = false;        // at ready: MAINPID= too (after an upgrade or a take-back)
    std::string last_status_;
    std::int64_t status_at_ns_ = 0;
    Successor successor_;  // pid 0: no upgrade in progress
    std::int64_t successor_deadline_ns_ = 0;
    bool successor_stopping_ = false;  // not ready in time: SIGTERM sent
    bool handed_over_ = false;         // the new one serves; our children are draining
};

bool Supervisor::fail(const std::string& why) {
    PGR_ERROR("%s", why.c_str());
    if (setup_error_.empty()) setup_error_ = why;
    return false;
}

// An upgrade's inherited socket when it was bound for the same address, else a new one.
int Supervisor::open_listener(std::string_view name, const Endpoint& where) {
    std::string error;
    if (options_.inherited.upgrading) {
        int fd = adopt_inherited(options_.inherited, name, where.to_string(), error);
        if (fd >= 0) {
            adopted_.emplace_back(name);
            return fd;
        }
        if (!error.empty()) return (void)fail(error), -1;
        PGR_NOTICE("%.*s is now %s: binding a new socket", static_cast<int>(name.size()),
                   name.data(), where.to_string().c_str());
    }
    int fd = bind_listener(where, error);
    if (fd < 0) (void)fail(error);
    return fd;
}

bool Supervisor::setup() {
    const bool upgrading = options_.inherited.upgrading;
    raise_open_files_limit();
    if (!options_.foreground || !config_.pidfile.empty()) {
        pidfile_ = config_.pidfile.empty() ? std::string(kDefaultPidfile) : config_.pidfile;
        std::string error;
        if (!pidfile_check(pidfile_, error, upgrading ? getppid() : 0)) return fail(error);
    }
    listen_fd_ = open_listener("listen", config_.listen);
    if (listen_fd_ < 0) return false;
    monitor_fd_ = open_listener("monitor", config_.monitor);
    if (monitor_fd_ < 0) return false;
    if (config_.metrics) {
        metrics_fd_ = open_listener("metrics", *config_.metrics);
        if (metrics_fd_ < 0) return false;
    }
    close_unadopted(options_.inherited, {listen_fd_, monitor_fd_, metrics_fd_});
    if (!options_.foreground) {
        // Started by an upgrade: already detached, and the old supervisor waits for us.
        if (!upgrading && !daemonize()) {
            return fail(std::string("cannot daemonize: ") + strerror(errno));
        }
        log_open(LogSink::Syslog);
    }
    std::string error;
    // After an upgrade the pidfile names the old supervisor until this one is ready.
    if (!pidfile_.empty() && !upgrading && !pidfile_write(pidfile_, error)) return fail(error);
    if (!drop_privileges()) return fail("cannot drop privileges");
    // Workers read hba and authdb as the user they run as: check that they can, now.
    AccessResult access = load_access(config_.hba, config_.authdb);
    if (!access.rules) {
        for (const std::string& e : access.errors) (void)fail(e);
        return false;
    }
    shm_ = SharedMemory::create();
    if (!shm_) return fail("cannot create the shared segment");
    signal_fd_ = signals_open_fd();
    if (signal_fd_ < 0) return fail(std::string("signalfd failed: ") + strerror(errno));
    announce_main_ = upgrading;
    publish(config_);
    children_.push_back(Child{ChildKind::Watcher, 0});
    children_.push_back(Child{ChildKind::Monitor, 0});
    set_worker_count(worker_count(config_));
    return true;
}

bool Supervisor::drop_privileges() {
    if (geteuid() != 0 || (config_.user.empty() && config_.group.empty())) return true;
    gid_t gid = getegid();
    if (!config_.group.empty()) {
        group* g = getgrnam(config_.group.c_str());
        if (g == nullptr) {
            PGR_ERROR("unknown group \"%s\"", config_.group.c_str());
            return false;
        }
        gid = g->gr_gid;
    }
    passwd* p = nullptr;
    if (!config_.user.empty()) {
        p = getpwnam(config_.user.c_str());
        if (p == nullptr) {
            PGR_ERROR("unknown user \"%s\"", config_.user.c_str());
            return false;
        }
        if (config_.group.empty()) gid = p->pw_gid;
    }
    if (setgid(gid) != 0 ||
        (p != nullptr ? initgroups(p->pw_name, gid) : setgroups(0, nullptr)) != 0 ||
        (p != nullptr && setuid(p->pw_uid) != 0)) {
        log_sys(LogLevel::Error, errno, "cannot drop privileges to %s:%s", config_.user.c_str(),
                config_.group.c_str());
        return false;
    }
    PGR_INFO("running as user %s group %s", config_.user.c_str(), config_.group.c_str());
    return true;
}

void Supervisor::publish(const Config& config) {
    Config shared = config;
    shared.log = log_level_raised(config_.log, options_.verbosity);
    log_set_level(shared.log);
    if (!publish_config(shm_->segment(), shared, worker_count(config))) {
        PGR_ERROR("configuration not published; keeping the previous one");
    }
}

// Workers in service are the wanted ones; those beyond n are retired (they drain in their
// slot until their sessions leave) and new ones take free slots, never a draining one's.
void Supervisor::set_worker_count(int n) {
    std::vector<Child*> active;
    for (Child& c : children_) {
        if (c.kind == ChildKind::Worker && c.wanted) active.push_back(&c);
    }
    std::sort(active.begin(), active.end(),
              [](const Child* a, const Child* b) { return a->index < b->index; });
    for (std::size_t i = static_cast<std::size_t>(n); i < active.size(); ++i) {
        Child& c = *active[i];
        c.wanted = false;
        if (c.pid > 0) {
            // Retired, not shut down: its sessions are not ended at transaction boundaries.
            PGR_INFO("stopping %s (workers now %d)", c.name().c_str(), n);
            kill(c.pid, SIGUSR1);
        }
    }
    for (int have = static_cast<int>(active.size()); have < n; ++have) {
        int slot = 0;
        while (slot < kMaxWorkers &&
               std::any_of(children_.begin(), children_.end(), [slot](const Child& c) {
                   return c.kind == ChildKind::Worker && c.index == slot;
               })) {
            ++slot;
        }
        if (slot == kMaxWorkers) {
            PGR_WARNING("no free worker slot while %d workers drain; running fewer",
                        static_cast<int>(children_.size()));
            return;
        }
        children_.push_back(Child{ChildKind::Worker, slot});
    }
}

void Supervisor::start_child(Child& child) {
    Segment& seg = shm_->segment();
    if (child.kind == ChildKind::Worker) reset_worker_slot(seg, child.index);
    pid_t supervisor = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        log_sys(LogLevel::Error, errno, "cannot fork %s", child.name().c_str());
        child.restart_at_ns = now_ns() + 1'000'000'000;
        return;
    }
    if (pid == 0) {
        signals_reset_in_child(SIGTERM);
        if (getppid() != supervisor) _exit(0);
        close(signal_fd_);
        if (successor_.pipe_fd >= 0) close(successor_.pipe_fd);
        if (options_.inherited.ready_fd >= 0) close(options_.inherited.ready_fd);
        log_set_role(child.name());
        proc_title_set("pgrouter: " + child.name());
        ChildContext ctx{&seg, listen_fd_, monitor_fd_, metrics_fd_, child.index};
        switch (child.kind) {
            case ChildKind::Watcher:
                run_watcher(ctx);
            case ChildKind::Monitor:
                run_monitor(ctx);
            case ChildKind::Worker:
                run_worker(ctx);
        }
        _exit(0);
    }
    child.pid = pid;
    child.started_ns = now_ns();
    if (child.kind == ChildKind::Worker) seg.workers[child.index].pid.store(pid);
    PGR_DEBUG("started %s (pid %d)", child.name().c_str(), static_cast<int>(pid));
}

void Supervisor::start_due_children() {
    if (shutting_down_) return;
    std::int64_t now = now_ns();
    for (Child& c : children_) {
        if (c.wanted && c.pid == 0 && c.restart_at_ns <= now) start_child(c);
    }
}

void Supervisor::read_signals() {
    signalfd_siginfo info{};
    while (read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        switch (info.ssi_signo) {
            case SIGHUP:
                reload_requested_ = true;
                break;
            case SIGTERM:
                begin_shutdown(false);
                break;
            case SIGINT:
                begin_shutdown(true);
                break;
            case SIGUSR2:
                begin_upgrade();
                break;
            default:
                break;  // SIGCHLD: reap_children() runs every loop anyway
        }
    }
}

void Supervisor::reap_children() {
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == successor_.pid) {
            successor_exited(status);
            continue;
        }
        auto it = std::find_if(children_.begin(), children_.end(),
                               [pid](const Child& c) { return c.pid == pid; });
        if (it == children_.end()) continue;
        Child& c = *it;
        c.pid = 0;
        Segment& seg = shm_->segment();
        if (c.kind == ChildKind::Worker) reset_worker_slot(seg, c.index);
        if (c.kind == ChildKind::Watcher) repair_after_watcher_death(seg);
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (WIFSIGNALED(status)) {
            PGR_LOG(shutting_down_ ? LogLevel::Info : LogLevel::Warning,
                    "%s (pid %d) was terminated by signal %d: %s", c.name().c_str(),
                    static_cast<int>(pid), WTERMSIG(status), strsignal(WTERMSIG(status)));
        } else if (!clean) {
            PGR_WARNING("%s (pid %d) exited with status %d", c.name().c_str(),
                        static_cast<int>(pid), WEXITSTATUS(status));
        } else {
            PGR_DEBUG("%s (pid %d) exited", c.name().c_str(), static_cast<int>(pid));
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == kExitFatal) {
            PGR_ERROR("%s cannot work; not restarting it", c.name().c_str());
            c.wanted = false;
        }
        std::int64_t now = now_ns();
        c.crashes = (now - c.started_ns < kQuickDeathNs) ? c.crashes + 1 : 1;
        c.restart_at_ns = now + restart_delay(c.crashes).count() * 1'000'000;
        if (c.kind == ChildKind::Worker && c.wanted && !shutting_down_) {
            count_worker_restart(seg);
        }
        if (c.wanted && !shutting_down_ && c.crashes > 1) {
            PGR_NOTICE("restarting %s in %lld ms", c.name().c_str(),
                       static_cast<long long>(restart_delay(c.crashes).count()));
        }
    }
    // Forget workers that were retired by a reload.
    std::erase_if(children_, [](const Child& c) { return !c.wanted && c.pid == 0; });
}

void Supervisor::reload() {
    reload_requested_ = false;
    if (handed_over_) {
        PGR_WARNING("received SIGHUP after handing over to the new supervisor (pid %d); ignoring",
                    static_cast<int>(successor_.pid));
        return;
    }
    PGR_INFO("received SIGHUP, reloading %s", options_.config_file.c_str());
    if (ready_) notify_reloading();
    reload_config();
    if (ready_) notify_ready(status_text());
}

void Supervisor::reload_config() {
    ConfigResult result = load_service_config(options_.config_file);
    if (!result.config) {
        for (const ConfigError& e : result.errors) PGR_ERROR("%s", e.to_string().c_str());
        PGR_ERROR("configuration has errors; keeping the previous one");
        count_reload(shm_->segment(), false);
        return;
    }
    Config next = std::move(*result.config);
    // What the directive table marks not reloadable keeps its running value.
    for (std::string_view name : keep_restart_only(config_, next)) {
        PGR_WARNING(
            "'%.*s' changed: needs a restart or an upgrade (SIGUSR2); keeping the running value",
            static_cast<int>(name.size()), name.data());
    }
    config_ = std::move(next);
    publish(config_);
    set_worker_count(worker_count(config_));
    PGR_INFO("configuration reloaded: %zu backends, %d workers", config_.backends.size(),
             worker_count(config_));
    count_reload(shm_->segment(), true);
}

void Supervisor::begin_shutdown(bool fast) {
    if (shutting_down_ && !fast) return;
    PGR_INFO("received %s, shutting down", fast ? "SIGINT" : "SIGTERM");
    shutting_down_ = true;
    // Workers cut what is left of their sessions at shutdown-timeout; a second later, the
    // ones that are still there are killed.
    std::int64_t drain_ns = config_.shutdown_timeout.count() * 1'000'000;
    kill_at_ns_ = now_ns() + (fast ? kSecondNs : drain_ns + kSecondNs);
    if (successor_.pid > 0 && !handed_over_) {
        // Not serving yet: it goes with us. After a hand-over it is the service; it stays.
        PGR_NOTICE("stopping the new supervisor (pid %d) of the upgrade in progress",
                   static_cast<int>(successor_.pid));
        kill(successor_.pid, fast ? SIGINT : SIGTERM);
    }
    for (Child& c : children_) {
        c.wanted = false;
        if (c.pid > 0) kill(c.pid, fast ? SIGINT : SIGTERM);
    }
    if (listen_fd_ >= 0) {
        close(listen_fd_);  // children still hold it until they stop accepting
        listen_fd_ = -1;
    }
}

bool Supervisor::any_running() const {
    if (successor_.pid > 0 && !handed_over_) return true;
    return std::any_of(children_.begin(), children_.end(),
                       [](const Child& c) { return c.pid > 0; });
}

// Shutting down or handed over: true once every child is gone; what outlives kill_at_ns_
// is killed.
bool Supervisor::drained() {
    if (!any_running()) return true;
    if (now_ns() < kill_at_ns_) return false;
    for (Child& c : children_) {
        if (c.pid > 0) {
            PGR_WARNING("%s did not stop in time; killing it", c.name().c_str());
            kill(c.pid, SIGKILL);
        }
    }
    if (successor_.pid > 0 && !handed_over_) kill(successor_.pid, SIGKILL);
    kill_at_ns_ = now_ns() + kSecondNs;
    return false;
}

// Adds a watcher or monitor entry unless one is there; false when it was.
bool Supervisor::ensure_child(ChildKind kind) {
    for (Child& c : children_) {
        if (c.kind == kind) {
            c.wanted = true;
            return false;
        }
    }
    children_.push_back(Child{kind, 0});
    return true;
}

void Supervisor::cleanup() {
    if (!pidfile_.empty()) pidfile_remove(pidfile_);
    shm_.reset();
}

bool Supervisor::workers_accepting() const {
    const Segment& seg = shm_->segment();
    bool any = false;
    for (const Child& c : children_) {
        if (c.kind != ChildKind::Worker || !c.wanted) continue;
        if (c.pid == 0 || !seg.workers[c.index].accepting.load()) return false;
        any = true;
    }
    return any;
}

// The first time every worker accepts: READY=1, and after an upgrade the pidfile and the
// word to the old supervisor, which then stops accepting.
void Supervisor::check_ready() {
    if (ready_ || !workers_accepting()) return;
    ready_ = true;
    std::string status = status_text();
    last_status_ = status;
    status_at_ns_ = now_ns();
    if (!announce_main_) {
        notify_ready(status);
        return;
    }
    announce_main_ = false;
    std::string error;
    if (!pidfile_.empty() && !pidfile_write(pidfile_, error)) PGR_WARNING("%s", error.c_str());
    if (options_.inherited.ready_fd >= 0) {
        PGR_NOTICE("upgrade: workers accept; the old supervisor (pid %d) stops accepting",
                   static_cast<int>(getppid()));
        report_ready(options_.inherited.ready_fd, adopted_);
    }
    notify_new_main(getpid(), status);
}

std::string Supervisor::status_text() const {
    const Segment& seg = shm_->segment();
    Snapshot snap;
    int ok = 0;
    int total = static_cast<int>(config_.backends.size());
    if (take_snapshot(seg, snap)) {
        total = static_cast<int>(snap.backends.size());
        for (const BackendView& b : snap.backends) {
            if (b.health.status == BackendStatus::Ok && !b.health.fenced) ++ok;
        }
    }
    long long clients = 0;
    for (const WorkerSlot& w : seg.workers) {
        if (w.pid.load(std::memory_order_relaxed) != 0) clients += w.clients.load();
    }
    return service_status(ok, total, clients);
}

// STATUS= at most once a second, and only when it changed.
void Supervisor::update_status() {
    if (!ready_ || now_ns() - status_at_ns_ < kSecondNs) return;
    status_at_ns_ = now_ns();
    std::string status = status_text();
    if (status == last_status_) return;
    last_status_ = status;
    notify_status(status);
}

void Supervisor::begin_upgrade() {
    if (shutting_down_) {
        PGR_WARNING("received SIGUSR2 while shutting down; ignoring it");
        return;
    }
    if (!ready_) {
        PGR_WARNING("received SIGUSR2 before the workers accept; ignoring it");
        return;
    }
    if (successor_.pid > 0) {
        PGR_WARNING(
            "received SIGUSR2 while an upgrade is in progress (new supervisor pid %d); "
            "ignoring it",
            static_cast<int>(successor_.pid));
        return;
    }
    PGR_NOTICE("received SIGUSR2, upgrading: starting %s", options_.executable.c_str());
    notify_reloading();
    std::vector<InheritedSocket> sockets{{"listen", listen_fd_, config_.listen.to_string()},
                                         {"monitor", monitor_fd_, config_.monitor.to_string()}};
    if (metrics_fd_ >= 0) sockets.push_back({"metrics", metrics_fd_, config_.metrics->to_string()});
    std::string error;
    std::optional<Successor> next =
        spawn_successor(options_.executable, options_.argv, sockets, error);
    if (!next) {
        PGR_ERROR("upgrade failed: %s; serving on", error.c_str());
        notify_ready(status_text());
        return;
    }
    successor_ = *next;
    successor_deadline_ns_ = now_ns() + kSuccessorReadyNs;
    successor_stopping_ = false;
    PGR_INFO("upgrade: new supervisor is pid %d", static_cast<int>(successor_.pid));
}

void Supervisor::read_successor_pipe() {
    std::string message;
    switch (read_successor(successor_.pipe_fd, message)) {
        case SuccessorNews::Nothing:
            return;
        case SuccessorNews::Ready:
            if (!shutting_down_) hand_over(message);
            break;
        case SuccessorNews::Failed:
            PGR_ERROR("upgrade: new supervisor (pid %d): %s", static_cast<int>(successor_.pid),
                      message.c_str());
            break;
        case SuccessorNews::Closed:
            break;
    }
    close(successor_.pipe_fd);
    successor_.pipe_fd = -1;
}

void Supervisor::successor_exited(int status) {
    pid_t pid = successor_.pid;
    successor_.pid = 0;
    if (successor_.pipe_fd >= 0) {
        read_successor_pipe();  // a last word (why it failed) may be waiting
        if (successor_.pipe_fd >= 0) close(successor_.pipe_fd);
        successor_.pipe_fd = -1;
    }
    std::string how = describe_exit(status);
    if (handed_over_) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            PGR_NOTICE("the new supervisor (pid %d) stopped", static_cast<int>(pid));
            successor_.pid = pid;  // for the last log line
            return;
        }
        PGR_WARNING("the new supervisor (pid %d) %s; taking the listening sockets back",
                    static_cast<int>(pid), how.c_str());
        take_back();
        return;
    }
    if (shutting_down_) {
        PGR_INFO("the new supervisor (pid %d) of the upgrade %s", static_cast<int>(pid),
                 how.c_str());
        return;
    }
    PGR_ERROR("upgrade failed: the new supervisor (pid %d) %s before it was ready; serving on",
              static_cast<int>(pid), how.c_str());
    if (ready_) notify_ready(status_text());
}

void Supervisor::check_successor_deadline() {
    if (successor_.pid == 0 || handed_over_ || now_ns() < successor_deadline_ns_) return;
    if (successor_stopping_) {
        kill(successor_.pid, SIGKILL);
        successor_deadline_ns_ = now_ns() + kSecondNs;
        return;
    }
    PGR_ERROR(
        "upgrade failed: the new supervisor (pid %d) was not ready within %lld s; "
        "stopping it, serving on",
        static_cast<int>(successor_.pid), static_cast<long long>(kSuccessorReadyNs / kSecondNs));
    kill(successor_.pid, SIGTERM);
    successor_stopping_ = true;
    successor_deadline_ns_ = now_ns() + kSuccessorStopNs;
}

// The new supervisor's workers accept: ours stop (their copies of the listening sockets
// close) and their sessions go on up to the upgrade's drain timeout. This process keeps its
// own copies until it exits, so that take_back() can serve on them.
void Supervisor::hand_over(const std::string& adopted) {
    handed_over_ = true;
    // A socket the new configuration moved elsewhere: nobody accepts on it any more.
    for (auto [name, fd] : {std::pair{"listen", &listen_fd_}, std::pair{"monitor", &monitor_fd_},
                            std::pair{"metrics", &metrics_fd_}}) {
        if (*fd >= 0 && !names_include(adopted, name)) {
            PGR_NOTICE("the new supervisor does not use the %s socket; closing it", name);
            close(*fd);
            *fd = -1;
        }
    }
    Millis drain = upgrade_drain_timeout(config_);
    PGR_NOTICE(
        "the new supervisor (pid %d) is ready; no longer accepting, sessions may go on "
        "for up to %lld s",
        static_cast<int>(successor_.pid), static_cast<long long>(drain.count() / 1000));
    Config draining = config_;
    draining.shutdown_timeout = drain;
    publish(draining);  // what the retired workers read as their drain timeout
    for (Child& c : children_) {
        c.wanted = false;
        if (c.pid > 0) kill(c.pid, c.kind == ChildKind::Worker ? SIGUSR1 : SIGTERM);
    }
    kill_at_ns_ = now_ns() + drain.count() * 1'000'000 + kSecondNs;
}

// The new supervisor died after the hand-over while we were still draining: start a
// watcher, a monitor and a full set of workers again on our copies of the sockets.
void Supervisor::take_back() {
    handed_over_ = false;
    std::string error;
    for (auto [where, fd] :
         {std::pair{&config_.listen, &listen_fd_}, std::pair{&config_.monitor, &monitor_fd_}}) {
        if (*fd < 0 && (*fd = bind_listener(*where, error)) < 0) {
            PGR_ERROR("cannot take back %s: %s", where->to_string().c_str(), error.c_str());
            begin_shutdown(false);
            return;
        }
    }
    publish(config_);
    ensure_child(ChildKind::Watcher);
    ensure_child(ChildKind::Monitor);
    set_worker_count(worker_count(config_));
    ready_ = false;
    announce_main_ = true;  // READY=1 with MAINPID= ours, and the pidfile, once they accept
}

int Supervisor::run() {
    if (!setup()) {
        report_failure(options_.inherited.ready_fd, setup_error_.empty()
                                                        ? std::string("start-up failed")
                                                        : "start-up failed: " + setup_error_);
        cleanup();
        return 1;
    }
    PGR_NOTICE("pgrouter started: listening on %s, monitor on %s, %zu backends",
               config_.listen.to_string().c_str(), config_.monitor.to_string().c_str(),
               config_.backends.size());
    start_due_children();
    for (;;) {
        std::int64_t now = now_ns();
        std::int64_t wake = now + kSecondNs;
        for (const Child& c : children_) {
            if (c.wanted && c.pid == 0) wake = std::min(wake, c.restart_at_ns);
        }
        if (shutting_down_ || handed_over_) wake = std::min(wake, kill_at_ns_);
        if (successor_.pid > 0 && !handed_over_) wake = std::min(wake, successor_deadline_ns_);
        int timeout_ms = static_cast<int>(std::max<std::int64_t>(0, wake - now) / 1'000'000);
        if (!ready_ && !shutting_down_) timeout_ms = std::min(timeout_ms, kReadyPollMs);
        pollfd pfd[2] = {{signal_fd_, POLLIN, 0}, {successor_.pipe_fd, POLLIN, 0}};
        poll(pfd, successor_.pipe_fd >= 0 ? 2 : 1, timeout_ms);
        read_signals();
        if (successor_.pipe_fd >= 0 && pfd[1].revents != 0) read_successor_pipe();
        reap_children();
        if (shutting_down_ || handed_over_) {
            if (drained()) break;
            continue;
        }
        check_successor_deadline();
        if (reload_requested_) reload();
        start_due_children();
        check_ready();
        update_status();
    }
    if (handed_over_) {
        PGR_NOTICE("pgrouter stopped; the new supervisor (pid %d) serves",
                   static_cast<int>(successor_.pid));
    } else {
        PGR_NOTICE("pgrouter stopped");
    }
    cleanup();
    return 0;
}

}  // namespace

ConfigResult load_service_config(const std::string& file) {
    ConfigResult result = load_config(file);
    if (result.config) {
        check_tls_config(*result.config, result.errors);
        if (!result.errors.empty()) result.config.reset();
    }
    return result;
}

int run_supervisor(Config config, const SupervisorOptions& options) {
    log_set_role("supervisor");
    proc_title_set("pgrouter: supervisor");
    Supervisor supervisor(std::move(config), options);
    return supervisor.run();
}

}  // namespace pgrouter
