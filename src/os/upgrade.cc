// Binary upgrade mechanics: the inherited-socket variable, starting the new supervisor with
// those descriptors open across exec(), and the one-line pipe back to the old supervisor.
// The listening sockets are never closed here: both supervisors hold them the whole time.
#include "pgrouter/os/upgrade.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace pgrouter {

namespace {

std::optional<int> parse_fd(std::string_view text) {
    int fd = -1;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), fd);
    if (ec != std::errc() || end != text.data() + text.size() || fd <= STDERR_FILENO) {
        return std::nullopt;
    }
    return fd;
}

bool set_fd_flag(int fd, int get, int set, int flag, bool on) {
    int flags = fcntl(fd, get);
    if (flags < 0) return false;
    return fcntl(fd, set, on ? (flags | flag) : (flags & ~flag)) == 0;
}

// The environment of the new process: ours, with the upgrade variables replaced.
std::vector<std::string> successor_environment(const std::string& sockets, int pipe_fd) {
    std::vector<std::string> env;
    std::string socket_prefix = std::string(kInheritedSocketsEnv) + "=";
    std::string pipe_prefix = std::string(kUpgradePipeEnv) + "=";
    for (char** e = environ; *e != nullptr; ++e) {
        std::string_view v(*e);
        if (v.starts_with(socket_prefix) || v.starts_with(pipe_prefix)) continue;
        env.emplace_back(v);
    }
    env.push_back(socket_prefix + sockets);
    env.push_back(pipe_prefix + std::to_string(pipe_fd));
    return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (std::string& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

}  // namespace

std::string format_inherited(const std::vector<InheritedSocket>& sockets) {
    std::string out;
    for (const InheritedSocket& s : sockets) {
        if (!out.empty()) out += ';';
        out += s.name + ':' + std::to_string(s.fd) + ':' + s.endpoint;
    }
    return out;
}

std::optional<std::vector<InheritedSocket>> parse_inherited(std::string_view text,
                                                            std::string& error) {
    std::vector<InheritedSocket> out;
    while (!text.empty()) {
        std::size_t end = text.find(';');
        std::string_view item = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        std::size_t a = item.find(':');
        std::size_t b = a == std::string_view::npos ? a : item.find(':', a + 1);
        if (b == std::string_view::npos || a == 0) {
            error = "malformed inherited socket \"" + std::string(item) + "\"";
            return std::nullopt;
        }
        std::optional<int> fd = parse_fd(item.substr(a + 1, b - a - 1));
        if (!fd) {
            error = "bad descriptor in inherited socket \"" + std::string(item) + "\"";
            return std::nullopt;
        }
        InheritedSocket s{std::string(item.substr(0, a)), *fd, std::string(item.substr(b + 1))};
        if (std::any_of(out.begin(), out.end(),
                        [&](const InheritedSocket& o) { return o.name == s.name; })) {
            error = "inherited socket \"" + s.name + "\" named twice";
            return std::nullopt;
        }
        out.push_back(std::move(s));
    }
    return out;
}

std::optional<Inheritance> take_inheritance(std::string& error) {
    Inheritance in;
    const char* sockets = getenv(kInheritedSocketsEnv);
    const char* pipe = getenv(kUpgradePipeEnv);
    if (sockets == nullptr && pipe == nullptr) return in;
    std::string sockets_text = sockets != nullptr ? sockets : "";
    std::string pipe_text = pipe != nullptr ? pipe : "";
    unsetenv(kInheritedSocketsEnv);
    unsetenv(kUpgradePipeEnv);
    in.upgrading = true;
    auto parsed = parse_inherited(sockets_text, error);
    if (!parsed) return std::nullopt;
    in.sockets = std::move(*parsed);
    for (const InheritedSocket& s : in.sockets) {
        if (fcntl(s.fd, F_GETFD) < 0) {
            error =
                "inherited socket \"" + s.name + "\" (fd " + std::to_string(s.fd) + ") is not open";
            return std::nullopt;
        }
    }
    if (!pipe_text.empty()) {
        std::optional<int> fd = parse_fd(pipe_text);
        if (!fd || fcntl(*fd, F_GETFD) < 0) {
            error = std::string("bad ") + kUpgradePipeEnv + " \"" + pipe_text + "\"";
            return std::nullopt;
        }
        in.ready_fd = *fd;
        set_fd_flag(in.ready_fd, F_GETFD, F_SETFD, FD_CLOEXEC, true);
    }
    return in;
}

int adopt_inherited(const Inheritance& from, std::string_view name, const std::string& endpoint,
                    std::string& error) {
    for (const InheritedSocket& s : from.sockets) {
        if (s.name != name || s.endpoint != endpoint) continue;
        struct stat st {};
        int listening = 0;
        socklen_t len = sizeof listening;
        if (fstat(s.fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
            getsockopt(s.fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
            error = "inherited " + s.name + " socket (fd " + std::to_string(s.fd) +
                    ") is not a listening socket";
            return -1;
        }
        if (!set_fd_flag(s.fd, F_GETFL, F_SETFL, O_NONBLOCK, true) ||
            !set_fd_flag(s.fd, F_GETFD, F_SETFD, FD_CLOEXEC, true)) {
            error = "inherited " + s.name + " socket: " + strerror(errno);
            return -1;
        }
        return s.fd;
    }
    return -1;
}

void close_unadopted(Inheritance& from, const std::vector<int>& adopted) {
    for (const InheritedSocket& s : from.sockets) {
        if (std::find(adopted.begin(), adopted.end(), s.fd) == adopted.end()) close(s.fd);
    }
    from.sockets.clear();
}

std::string self_executable(const char* argv0) {
    std::string name = argv0 != nullptr ? argv0 : "";
    if (name.find('/') != std::string::npos) {
        if (name[0] == '/') return name;
        while (name.starts_with("./")) name.erase(0, 2);
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd) != nullptr) return std::string(cwd) + "/" + name;
    } else if (!name.empty()) {
        const char* path = getenv("PATH");
        std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
        while (!dirs.empty()) {
            std::size_t end = dirs.find(':');
            std::string dir(dirs.substr(0, end));
            dirs = end == std::string_view::npos ? std::string_view() : dirs.substr(end + 1);
            std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
            if (access(candidate.c_str(), X_OK) == 0) return candidate;
        }
    }
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : name;
}

std::optional<Successor> spawn_successor(const std::string& exe,
                                         const std::vector<std::string>& argv,
                                         const std::vector<InheritedSocket>& sockets,
                                         std::string& error) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        error = std::string("pipe: ") + strerror(errno);
        return std::nullopt;
    }
    // Built before fork(): the child only execs.
    std::vector<std::string> env = successor_environment(format_inherited(sockets), fds[1]);
    std::vector<std::string> args = argv;
    std::vector<char*> envp = c_strings(env);
    std::vector<char*> argvp = c_strings(args);
    std::string exec_error = "cannot exec " + exe + ": ";
    pid_t pid = fork();
    if (pid < 0) {
        error = std::string("fork: ") + strerror(errno);
        close(fds[0]);
        close(fds[1]);
        return std::nullopt;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        signal(SIGPIPE, SIG_DFL);
        for (const InheritedSocket& s : sockets) {
            set_fd_flag(s.fd, F_GETFD, F_SETFD, FD_CLOEXEC, false);
        }
        set_fd_flag(fds[1], F_GETFD, F_SETFD, FD_CLOEXEC, false);
        execve(exe.c_str(), argvp.data(), envp.data());
        exec_error += strerror(errno);
        exec_error += "\n";
        (void)!write(fds[1], exec_error.data(), exec_error.size());
        _exit(127);
    }
    close(fds[1]);
    set_fd_flag(fds[0], F_GETFL, F_SETFL, O_NONBLOCK, true);
    return Successor{pid, fds[0]};
}

SuccessorNews read_successor(int pipe_fd, std::string& message) {
    char buf[512];
    ssize_t n = read(pipe_fd, buf, sizeof buf);
    if (n == 0) return SuccessorNews::Closed;
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? SuccessorNews::Nothing : SuccessorNews::Closed;
    message.assign(buf, static_cast<std::size_t>(n));
    while (!message.empty() && message.back() == '\n') message.pop_back();
    if (message != "ready" && !message.starts_with("ready ")) return SuccessorNews::Failed;
    message.erase(0, std::min<std::size_t>(message.size(), 6));
    return SuccessorNews::Ready;
}

bool names_include(std::string_view names, std::string_view name) {
    while (!names.empty()) {
        std::size_t end = names.find(' ');
        if (names.substr(0, end) == name) return true;
        names = end == std::string_view::npos ? std::string_view() : names.substr(end + 1);
    }
    return false;
}

namespace {

void report_line(int& ready_fd, std::string line) {
    if (ready_fd < 0) return;
    line += '\n';
    (void)!write(ready_fd, line.data(), line.size());
    close(ready_fd);
    ready_fd = -1;
}

}  // namespace

void report_ready(int& ready_fd, const std::vector<std::string>& adopted) {
    std::string line = "ready";
    for (const std::string& name : adopted) line += " " + name;
    report_line(ready_fd, line);
}

void report_failure(int& ready_fd, const std::string& why) {
    std::string line = why.substr(0, 400);
    std::replace(line.begin(), line.end(), '\n', ' ');
    report_line(ready_fd, line.starts_with("ready") ? "not " + line : line);
}

}  // namespace pgrouter
