// Daemonizing and the pidfile. A pidfile whose pid is dead, or belongs to a process that is
// not pgrouter (pid reuse after a crash), is stale and silently replaced.
#include "pgrouter/os/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "pgrouter/base/log.h"

namespace pgrouter {

bool daemonize() {
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid > 0) _exit(0);
    setsid();
    pid = fork();
    if (pid < 0) return false;
    if (pid > 0) _exit(0);
    if (chdir("/") != 0) return false;
    umask(022);
    int null = open("/dev/null", O_RDWR);
    if (null < 0) return false;
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    if (null > STDERR_FILENO) close(null);
    return true;
}

namespace {

bool is_live_pgrouter(pid_t pid) {
    if (pid <= 0 || pid == getpid()) return false;
    if (kill(pid, 0) != 0 && errno == ESRCH) return false;
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return cmd.find("pgrouter") != std::string::npos;
}

}  // namespace

bool pidfile_check(const std::string& path, std::string& error, pid_t allowed) {
    std::ifstream in(path);
    long pid = 0;
    if (in >> pid && (allowed == 0 || pid != allowed) &&
        is_live_pgrouter(static_cast<pid_t>(pid))) {
        error = "pidfile " + path + " names a running pgrouter (pid " + std::to_string(pid) + ")";
        return false;
    }
    return true;
}

bool pidfile_write(const std::string& path, std::string& error) {
    std::string tmp = path + ".tmp";
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        error = "cannot write pidfile " + path + ": " + strerror(errno);
        return false;
    }
    std::string text = std::to_string(getpid()) + "\n";
    bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    close(fd);
    if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
        error = "cannot write pidfile " + path + ": " + strerror(errno);
        unlink(tmp.c_str());
        return false;
    }
    return true;
}

void pidfile_remove(const std::string& path) {
    std::ifstream in(path);
    long pid = 0;
    if (in >> pid && pid == getpid()) unlink(path.c_str());
}

void raise_open_files_limit() {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) {
        log_sys(LogLevel::Warning, errno, "getrlimit(RLIMIT_NOFILE) failed");
        return;
    }
    rlim_t soft = r.rlim_cur;
    if (r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0) {
            log_sys(LogLevel::Warning, errno, "setrlimit(RLIMIT_NOFILE, %llu) failed",
                    static_cast<unsigned long long>(r.rlim_max));
            r.rlim_cur = soft;
        }
    }
    PGR_INFO("open files limit: %llu (was %llu, hard limit %llu)",
             static_cast<unsigned long long>(r.rlim_cur), static_cast<unsigned long long>(soft),
             static_cast<unsigned long long>(r.rlim_max));
}

}  // namespace pgrouter
