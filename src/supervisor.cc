// The supervisor's loop. Signals arrive on a signalfd and are acted on in order: reap dead
// children (and repair what they owned in shared memory), then shut down, then reload, then
// start children whose back-off has expired. Children leave with _exit() so nothing of the
// supervisor's cleanup ever runs in them.
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
#include "pgrouter/os/shm.h"
#include "pgrouter/os/signals.h"

namespace pgrouter {

namespace {

constexpr std::int64_t kQuickDeathNs = 10'000'000'000;  // died sooner: counts as a crash

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
    [[nodiscard]] bool drop_privileges();
    void publish();
    void set_worker_count(int n);
    void start_due_children();
    void start_child(Child& child);
    void read_signals();
    void reap_children();
    void reload();
    void begin_shutdown(bool fast);
    void cleanup();
    bool any_running() const;

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
};

bool Supervisor::setup() {
    if (!options_.foreground || !config_.pidfile.empty()) {
        pidfile_ = config_.pidfile.empty() ? std::string(kDefaultPidfile) : config_.pidfile;
        std::string error;
        if (!pidfile_check(pidfile_, error)) {
            PGR_ERROR("%s", error.c_str());
            return false;
        }
    }
    std::string error;
    listen_fd_ = bind_listener(config_.listen, error);
    if (listen_fd_ < 0) {
        PGR_ERROR("%s", error.c_str());
        return false;
    }
    monitor_fd_ = bind_listener(config_.monitor, error);
    if (monitor_fd_ < 0) {
        PGR_ERROR("%s", error.c_str());
        return false;
    }
    if (config_.metrics) {
        metrics_fd_ = bind_listener(*config_.metrics, error);
        if (metrics_fd_ < 0) {
            PGR_ERROR("%s", error.c_str());
            return false;
        }
    }
    if (!options_.foreground) {
        if (!daemonize()) {
            PGR_ERROR("cannot daemonize: %s", strerror(errno));
            return false;
        }
        log_open(LogSink::Syslog);
    }
    if (!pidfile_.empty() && !pidfile_write(pidfile_, error)) {
        PGR_ERROR("%s", error.c_str());
        return false;
    }
    if (!drop_privileges()) return false;
    // Workers read hba and authdb as the user they run as: check that they can, now.
    AccessResult access = load_access(config_.hba, config_.authdb);
    if (!access.rules) {
        for (const std::string& e : access.errors) PGR_ERROR("%s", e.c_str());
        return false;
    }
    shm_ = SharedMemory::create();
    if (!shm_) return false;
    signal_fd_ = signals_open_fd();
    if (signal_fd_ < 0) {
        log_sys(LogLevel::Error, errno, "signalfd failed");
        return false;
    }
    publish();
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

void Supervisor::publish() {
    Config shared = config_;
    shared.log = log_level_raised(config_.log, options_.verbosity);
    log_set_level(shared.log);
    if (!publish_config(shm_->segment(), shared, worker_count(config_))) {
        PGR_ERROR("configuration not published; keeping the previous one");
    }
}

void Supervisor::set_worker_count(int n) {
    for (Child& c : children_) {
        if (c.kind != ChildKind::Worker) continue;
        bool keep = c.index < n;
        if (!keep && c.wanted && c.pid > 0) {
            // Retired, not shut down: its sessions are not ended at transaction boundaries.
            PGR_INFO("stopping %s (workers now %d)", c.name().c_str(), n);
            kill(c.pid, SIGUSR1);
        }
        c.wanted = keep;
    }
    for (int i = 0; i < n; ++i) {
        bool have = false;
        for (Child& c : children_) {
            if (c.kind == ChildKind::Worker && c.index == i) {
                c.wanted = true;
                have = true;
            }
        }
        if (!have) children_.push_back(Child{ChildKind::Worker, i});
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
            default:
                break;  // SIGCHLD: reap_children() runs every loop anyway
        }
    }
}

void Supervisor::reap_children() {
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
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
    PGR_INFO("received SIGHUP, reloading %s", options_.config_file.c_str());
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
        PGR_WARNING("'%.*s' changed: needs a restart; keeping the running value",
                    static_cast<int>(name.size()), name.data());
    }
    config_ = std::move(next);
    publish();
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
    kill_at_ns_ = now_ns() + (fast ? 1'000'000'000 : drain_ns + 1'000'000'000);
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
    return std::any_of(children_.begin(), children_.end(),
                       [](const Child& c) { return c.pid > 0; });
}

void Supervisor::cleanup() {
    if (!pidfile_.empty()) pidfile_remove(pidfile_);
    shm_.reset();
}

int Supervisor::run() {
    if (!setup()) {
        cleanup();
        return 1;
    }
    PGR_NOTICE("pgrouter started: listening on %s, monitor on %s, %zu backends",
               config_.listen.to_string().c_str(), config_.monitor.to_string().c_str(),
               config_.backends.size());
    start_due_children();
    for (;;) {
        std::int64_t now = now_ns();
        std::int64_t wake = now + 1'000'000'000;
        for (const Child& c : children_) {
            if (c.wanted && c.pid == 0) wake = std::min(wake, c.restart_at_ns);
        }
        if (shutting_down_) wake = std::min(wake, kill_at_ns_);
        int timeout_ms = static_cast<int>(std::max<std::int64_t>(0, wake - now) / 1'000'000);
        pollfd pfd{signal_fd_, POLLIN, 0};
        poll(&pfd, 1, timeout_ms);
        read_signals();
        reap_children();
        if (shutting_down_) {
            if (!any_running()) break;
            if (now_ns() >= kill_at_ns_) {
                for (Child& c : children_) {
                    if (c.pid > 0) {
                        PGR_WARNING("%s did not stop in time; killing it", c.name().c_str());
                        kill(c.pid, SIGKILL);
                    }
                }
                kill_at_ns_ = now_ns() + 1'000'000'000;
            }
            continue;
        }
        if (reload_requested_) reload();
        start_due_children();
    }
    PGR_NOTICE("pgrouter stopped");
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
