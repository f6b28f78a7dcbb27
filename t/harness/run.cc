// Child processes for tests: fork/exec with pipes, a poll loop that feeds stdin and drains
// stdout/stderr, and a hard timeout. Never leaves a child unreaped.
#include "run.h"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace pgrouter::test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> build_env(const std::map<std::string, std::string>& overrides) {
    std::map<std::string, std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : overrides) {
        if (v.empty())
            env.erase(k);
        else
            env[k] = v;
    }
    std::vector<std::string> out;
    out.reserve(env.size());
    for (const auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

void make_pipe(int fds[2]) {
    if (pipe2(fds, O_CLOEXEC) != 0)
        throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
}

int decode_status(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

}  // namespace

RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              const std::string& input, std::chrono::milliseconds timeout, const std::string& cwd) {
    if (argv.empty()) throw std::invalid_argument("run: empty argv");
    static const bool sigpipe_ignored = [] {
        ::signal(SIGPIPE, SIG_IGN);
        return true;
    }();
    (void)sigpipe_ignored;

    std::vector<std::string> args = argv;
    std::vector<std::string> envs = build_env(env);
    std::vector<char*> c_args = c_strings(args);
    std::vector<char*> c_envs = c_strings(envs);

    int in[2], out[2], err[2];
    make_pipe(in);
    make_pipe(out);
    make_pipe(err);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
        throw std::runtime_error(std::string("fork: ") + std::strerror(e));
    }
    if (pid == 0) {
        // Child: only async-signal-safe calls until exec.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close_range(3, ~0U, 0);
        if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
        ::signal(SIGPIPE, SIG_DFL);
        execvpe(c_args[0], c_args.data(), c_envs.data());
        const char msg[] = "run: exec failed\n";
        ssize_t n = write(2, msg, sizeof msg - 1);
        (void)n;
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);

    RunResult res;
    int in_fd = in[1];
    if (input.empty()) {
        close(in_fd);
        in_fd = -1;
    } else {
        fcntl(in_fd, F_SETFL, O_NONBLOCK);
    }
    size_t in_off = 0;
    int out_fd = out[0], err_fd = err[0];
    auto deadline = Clock::now() + timeout;
    char buf[65536];
    while (out_fd >= 0 || err_fd >= 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            res.timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        pollfd pfds[3];
        int n = 0;
        if (in_fd >= 0) pfds[n++] = {in_fd, POLLOUT, 0};
        if (out_fd >= 0) pfds[n++] = {out_fd, POLLIN, 0};
        if (err_fd >= 0) pfds[n++] = {err_fd, POLLIN, 0};
        int r = poll(pfds, n, static_cast<int>(std::min<long>(left.count(), 1000)));
        if (r < 0 && errno != EINTR) break;
        for (int i = 0; i < n; ++i) {
            if (pfds[i].revents == 0) continue;
            int fd = pfds[i].fd;
            if (fd == in_fd) {
                ssize_t w = write(in_fd, input.data() + in_off, input.size() - in_off);
                if (w > 0) in_off += static_cast<size_t>(w);
                if (w < 0 && errno != EAGAIN && errno != EINTR) in_off = input.size();
                if (in_off >= input.size()) {
                    close(in_fd);
                    in_fd = -1;
                }
                continue;
            }
            ssize_t got = read(fd, buf, sizeof buf);
            if (got > 0) {
                (fd == out_fd ? res.out : res.err).append(buf, static_cast<size_t>(got));
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(fd);
                (fd == out_fd ? out_fd : err_fd) = -1;
            }
        }
    }
    for (int fd : {in_fd, out_fd, err_fd})
        if (fd >= 0) close(fd);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    res.status = decode_status(st);
    if (res.timed_out) res.err += "\n[run: killed after timeout]\n";
    return res;
}

RunResult run_checked(const std::vector<std::string>& argv,
                      const std::map<std::string, std::string>& env, const std::string& input,
                      std::chrono::milliseconds timeout, const std::string& cwd) {
    RunResult r = run(argv, env, input, timeout, cwd);
    if (!r.ok()) {
        throw std::runtime_error("command failed (status " + std::to_string(r.status) +
                                 "): " + join_command(argv) + "\n" + r.err + r.out);
    }
    return r;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds deadline,
                std::chrono::milliseconds interval) {
    auto end = Clock::now() + deadline;
    for (;;) {
        bool last = Clock::now() >= end;
        if (last) return pred();  // the final try lets an exception out
        try {
            if (pred()) return true;
        } catch (const std::exception&) {
        }
        auto now = Clock::now();
        if (now < end) std::this_thread::sleep_for(std::min<Clock::duration>(interval, end - now));
    }
}

namespace {

// Highest numeric subdirectory of base holding bin/initdb; "" if none.
std::string newest_versioned(const std::string& base, const std::string& prefix) {
    std::error_code ec;
    long best = -1;
    std::string best_dir;
    if (!fs::is_directory(base, ec)) return "";
    for (const auto& e : fs::directory_iterator(base, ec)) {
        std::string name = e.path().filename().string();
        if (name.rfind(prefix, 0) != 0) continue;
        std::string num = name.substr(prefix.size());
        if (num.empty() || !std::all_of(num.begin(), num.end(), ::isdigit)) continue;
        long v = std::stol(num);
        if (v > best && fs::exists(e.path() / "bin" / "initdb", ec)) {
            best = v;
            best_dir = (e.path() / "bin").string();
        }
    }
    return best_dir;
}

std::string find_bindir() {
    if (const char* d = getenv("PG_BINDIR"); d != nullptr && *d != '\0') return d;
    if (auto d = newest_versioned("/usr/lib/postgresql", ""); !d.empty()) return d;
    if (auto d = newest_versioned("/usr", "pgsql-"); !d.empty()) return d;
    if (const char* path = getenv("PATH")) {
        std::string p = path;
        size_t start = 0;
        while (start <= p.size()) {
            size_t end = p.find(':', start);
            if (end == std::string::npos) end = p.size();
            fs::path dir = p.substr(start, end - start);
            std::error_code ec;
            if (!dir.empty() && fs::exists(dir / "initdb", ec)) return dir.string();
            start = end + 1;
        }
    }
    throw std::runtime_error("no PostgreSQL server binaries found (set PG_BINDIR)");
}

}  // namespace

const std::string& pg_bindir() {
    static const std::string dir = find_bindir();
    return dir;
}

std::string pg_bin(const std::string& name) { return pg_bindir() + "/" + name; }

namespace {

// State and process group from /proc/PID/stat ("pid (comm) state ppid pgrp ..."; comm may
// hold spaces and parentheses). False when the process is gone.
bool read_stat(const std::string& pid, char& state, long& pgrp) {
    FILE* f = std::fopen(("/proc/" + pid + "/stat").c_str(), "r");
    if (f == nullptr) return false;
    char buf[1024];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const char* close_paren = std::strrchr(buf, ')');
    long ppid = 0;
    return close_paren != nullptr &&
           std::sscanf(close_paren + 1, " %c %ld %ld", &state, &ppid, &pgrp) == 3;
}

}  // namespace

bool process_alive(pid_t pid) {
    char state = 0;
    long pgrp = 0;
    return pid > 0 && read_stat(std::to_string(pid), state, pgrp) && state != 'Z';
}

bool process_group_alive(pid_t pgid) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
        std::string name = e.path().filename().string();
        if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
        char state = 0;
        long pgrp = 0;
        if (read_stat(name, state, pgrp) && pgrp == pgid && state != 'Z') return true;
    }
    return false;
}

bool running_as_root() { return geteuid() == 0; }

std::vector<std::string> as_postgres(std::vector<std::string> argv) {
    if (!running_as_root()) return argv;
    std::vector<std::string> out = {"runuser", "-u", "postgres", "--"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

void chown_to_postgres(const std::string& path, bool recursive) {
    if (!running_as_root()) return;
    // Looked up once: getpwnam() is not thread-safe and clusters may be built in threads.
    static const std::pair<uid_t, gid_t> ids = [] {
        passwd* pw = getpwnam("postgres");
        if (pw == nullptr)
            throw std::runtime_error("running as root but there is no postgres user");
        return std::pair<uid_t, gid_t>(pw->pw_uid, pw->pw_gid);
    }();
    auto give = [&](const std::string& p) {
        if (lchown(p.c_str(), ids.first, ids.second) != 0)
            throw std::runtime_error("chown " + p + ": " + std::strerror(errno));
    };
    give(path);
    std::error_code ec;
    if (recursive && fs::is_directory(path, ec)) {
        for (const auto& e : fs::recursive_directory_iterator(path)) give(e.path().string());
    }
}

std::string shell_quote(const std::string& s) {
    if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("-_./=:,+@%", c);
        }))
        return s;
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

std::string join_command(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv) {
        if (!out.empty()) out += ' ';
        out += shell_quote(a);
    }
    return out;
}

}  // namespace pgrouter::test
