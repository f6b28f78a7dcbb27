// Abnormal-exit cleanup. The signal handler only calls kill(2) on a fixed table of pids; the
// heavier work (waiting for postmasters, rm -rf) is done by Reaper shells, which outlive us.
#include "cleanup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "run.h"

namespace pgrouter::test {

namespace {

constexpr int kSlots = 256;
struct Slot {
    std::atomic<pid_t> target{0};
    std::atomic<int> sig{0};
    std::atomic<bool> used{false};
};
Slot g_slots[kSlots];

constexpr int kHandled[] = {SIGINT,  SIGTERM, SIGHUP, SIGQUIT, SIGABRT,
                            SIGSEGV, SIGBUS,  SIGFPE, SIGILL};

void on_fatal_signal(int sig) {
    kill_registered();
    ::signal(sig, SIG_DFL);
    raise(sig);
}

void on_exit_hook() { kill_registered(); }

}  // namespace

void kill_registered() {
    int saved = errno;
    for (auto& s : g_slots) {
        pid_t t = s.target.load();
        if (s.used.load() && t != 0) kill(t, s.sig.load());
    }
    errno = saved;
}

void install_cleanup_handlers() {
    static std::atomic<bool> done{false};
    if (done.exchange(true)) return;
    std::atexit(on_exit_hook);
    for (int sig : kHandled) {
        struct sigaction sa {};
        sa.sa_handler = on_fatal_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESETHAND;
        sigaction(sig, &sa, nullptr);
    }
    ::signal(SIGPIPE, SIG_IGN);
}

int register_kill(pid_t target, int sig) {
    for (int i = 0; i < kSlots; ++i) {
        bool expected = false;
        if (g_slots[i].used.compare_exchange_strong(expected, true)) {
            g_slots[i].sig.store(sig);
            g_slots[i].target.store(target);
            return i;
        }
    }
    return -1;
}

void update_kill(int slot, pid_t target) {
    if (slot >= 0 && slot < kSlots) g_slots[slot].target.store(target);
}

void unregister_kill(int slot) {
    if (slot < 0 || slot >= kSlots) return;
    g_slots[slot].target.store(0);
    g_slots[slot].used.store(false);
}

Reaper::Reaper(const std::string& script) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    // The guardian reads one line: "done" means disarmed; EOF means we died.
    std::string full = "read -r line; [ \"$line\" = done ] && exit 0\n" + script;
    const char* argv[] = {"/bin/sh", "-c", full.c_str(), nullptr};
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        throw std::runtime_error(std::string("fork: ") + std::strerror(e));
    }
    if (pid == 0) {
        setsid();
        for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::signal(sig, SIG_IGN);
        int null = open("/dev/null", O_RDWR);
        dup2(fds[0], 0);
        dup2(null, 1);
        dup2(null, 2);
        close_range(3, ~0U, 0);
        execv("/bin/sh", const_cast<char* const*>(argv));
        _exit(127);
    }
    close(fds[0]);
    fd_ = fds[1];
    pid_ = pid;
}

Reaper::~Reaper() { disarm(); }

Reaper::Reaper(Reaper&& other) noexcept : fd_(other.fd_), pid_(other.pid_) {
    other.fd_ = -1;
    other.pid_ = -1;
}

Reaper& Reaper::operator=(Reaper&& other) noexcept {
    if (this != &other) {
        disarm();
        fd_ = other.fd_;
        pid_ = other.pid_;
        other.fd_ = -1;
        other.pid_ = -1;
    }
    return *this;
}

void Reaper::disarm() {
    if (fd_ < 0) return;
    const char done[] = "done\n";
    ssize_t n = write(fd_, done, sizeof done - 1);
    (void)n;
    close(fd_);
    fd_ = -1;
    int st;
    while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

std::string stop_postmasters_script(const std::string& dir) {
    // kill -0 succeeds for zombies, which a non-reaping init leaves; read /proc instead.
    return "dir=" + shell_quote(dir) +
           "\n"
           "pids() { for f in \"$dir\"/*/data/postmaster.pid; do\n"
           "  [ -f \"$f\" ] && head -n 1 \"$f\"; done; }\n"
           "alive() { s=$(cat /proc/$1/stat 2>/dev/null) || return 1; s=${s##*) }\n"
           "  [ \"${s%% *}\" != Z ]; }\n"
           "for p in $(pids); do kill -QUIT \"$p\" 2>/dev/null; done\n"
           "i=0\n"
           "while [ $i -lt 100 ]; do\n"
           "  n=0\n"
           "  for p in $(pids); do alive \"$p\" && n=1; done\n"
           "  [ $n = 0 ] && break\n"
           "  sleep 0.1; i=$((i+1))\n"
           "done\n"
           "for p in $(pids); do alive \"$p\" && kill -KILL \"$p\" 2>/dev/null; done\n"
           "rm -rf \"$dir\"\n";
}

}  // namespace pgrouter::test
