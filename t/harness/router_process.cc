// The pgrouter child process for integration tests. The child gets its own process group so
// stop() and the cleanup paths can take down the router and its workers together, and
// PR_SET_PDEATHSIG so it dies with us.
#include "router_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <stdexcept>

#include "files.h"
#include "net.h"
#include "run.h"

extern char** environ;

namespace pgrouter::test {

namespace fs = std::filesystem;

namespace {

int decode_status(int st) {
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

std::string default_binary() {
    const char* env = getenv("PGROUTER_BIN");
    std::string bin = (env != nullptr && *env != '\0') ? env : "build/pgrouter";
    std::error_code ec;
    fs::path abs = fs::absolute(bin, ec);
    return ec ? bin : abs.string();
}

}  // namespace

RouterProcess::RouterProcess(const std::string& config_text, RouterOptions opts) {
    install_cleanup_handlers();
    binary_ = opts.binary.empty() ? default_binary() : opts.binary;
    if (access(binary_.c_str(), X_OK) != 0)
        throw std::runtime_error("router binary " + binary_ + " is not executable (build it, " +
                                 "or set PGROUTER_BIN)");
    dir_ = make_temp_dir("pgrouter-router-");
    config_path_ = dir_ + "/pgrouter.conf";
    log_path_ = dir_ + "/pgrouter.log";
    write_config(config_text);

    std::vector<std::string> args = {binary_};
    if (opts.args.empty()) {
        args.insert(args.end(), {"-F", "-vvvvv", "-c", config_path_});
    } else {
        args.insert(args.end(), opts.args.begin(), opts.args.end());
    }
    args.insert(args.end(), opts.extra_args.begin(), opts.extra_args.end());

    std::map<std::string, std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string kv = *e;
        auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : opts.env) {
        if (v.empty())
            env.erase(k);
        else
            env[k] = v;
    }
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> c_args, c_env;
    for (auto& a : args) c_args.push_back(a.data());
    c_args.push_back(nullptr);
    for (auto& e : env_strings) c_env.push_back(e.data());
    c_env.push_back(nullptr);

    int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) throw std::runtime_error("open " + log_path_ + ": " + std::strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(log_fd);
        throw std::runtime_error(std::string("fork: ") + std::strerror(e));
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(log_fd, 1);
        dup2(log_fd, 2);
        close_range(3, ~0U, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::signal(sig, SIG_DFL);
        execve(c_args[0], c_args.data(), c_env.data());
        dprintf(2, "RouterProcess: exec %s failed: %s\n", c_args[0], std::strerror(errno));
        _exit(127);
    }
    close(log_fd);
    setpgid(pid, pid);  // also from here, so the group exists before we signal it
    pid_ = pid;
    kill_slot_ = register_kill(-pid, SIGKILL);
    reaper_ = Reaper("kill -KILL -- -" + std::to_string(pid) + " 2>/dev/null\nrm -rf " +
                     shell_quote(dir_) + "\n");
}

RouterProcess::~RouterProcess() {
    try {
        stop();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "RouterProcess: stop failed: %s\n", e.what());
    }
    unregister_kill(kill_slot_);
    reaper_.disarm();
    // PGROUTER_TEST_KEEP_LOGS=1 keeps every router's directory (its log) for a post-mortem.
    const char* keep = getenv("PGROUTER_TEST_KEEP_LOGS");
    if (keep == nullptr || *keep == '\0') remove_tree(dir_);
}

std::string RouterProcess::expand(const std::string& text) const {
    std::string out = text;
    for (size_t at = out.find("@DIR@"); at != std::string::npos; at = out.find("@DIR@", at))
        out.replace(at, 5, dir_);
    return out;
}

void RouterProcess::write_config(const std::string& config_text) {
    // Written beside and renamed, so a reload never reads half a file.
    std::string tmp = config_path_ + ".new";
    write_file(tmp, expand(config_text));
    fs::rename(tmp, config_path_);
}

std::string RouterProcess::add_file(const std::string& name, const std::string& text) const {
    std::string path = dir_ + "/" + name;
    write_file(path, expand(text));
    return path;
}

std::string RouterProcess::log() const { return read_file(log_path_); }

size_t RouterProcess::log_size() const {
    std::error_code ec;
    auto n = fs::file_size(log_path_, ec);
    return ec ? 0 : static_cast<size_t>(n);
}

bool RouterProcess::wait_for_log(const std::string& regex, std::chrono::milliseconds deadline,
                                 size_t from) const {
    std::regex re(regex, std::regex::ECMAScript | std::regex::multiline);
    return wait_until(
        [&] {
            std::string text = log();
            if (from >= text.size()) return false;
            return std::regex_search(text.begin() + static_cast<std::ptrdiff_t>(from), text.end(),
                                     re);
        },
        deadline);
}

void RouterProcess::signal(int sig) const {
    if (pid_ > 0 && !status_) kill(pid_, sig);
}

bool RouterProcess::running() {
    if (status_ || pid_ <= 0) return false;
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        status_ = decode_status(st);
        return false;
    }
    return true;
}

std::optional<int> RouterProcess::wait_exit(std::chrono::milliseconds deadline) {
    wait_until([&] { return !running(); }, deadline);
    return status_;
}

void RouterProcess::reap_group() {
    // Workers should exit with their supervisor; give them 2 s, then make sure.
    auto group_gone = [&] { return !process_group_alive(pid_); };
    if (!wait_until(group_gone, std::chrono::seconds(2))) {
        stragglers_ = true;
        kill(-pid_, SIGKILL);
        wait_until(group_gone, std::chrono::seconds(5));
    }
}

int RouterProcess::stop(std::chrono::milliseconds deadline) {
    if (pid_ <= 0) return -1;
    if (status_) return *status_;
    if (running()) {
        kill(pid_, SIGTERM);
        if (!wait_exit(deadline)) {
            std::fprintf(stderr, "RouterProcess: pid %d ignored SIGTERM for %lld ms; SIGKILL\n",
                         pid_, static_cast<long long>(deadline.count()));
            kill(-pid_, SIGKILL);
            int st = 0;
            while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
            }
            status_ = decode_status(st);
        }
    }
    reap_group();
    unregister_kill(kill_slot_);
    kill_slot_ = -1;
    return *status_;
}

std::vector<pid_t> RouterProcess::children() const { return child_pids(pid_); }

std::vector<pid_t> RouterProcess::children_titled(const std::string& title) const {
    std::vector<pid_t> out;
    for (pid_t pid : children()) {
        std::string cmd = read_file("/proc/" + std::to_string(pid) + "/cmdline");
        if (cmd.rfind("pgrouter: " + title, 0) == 0) out.push_back(pid);
    }
    return out;
}

std::string RouterProcess::monitor(int port, const std::string& request) const {
    return read_tcp(port, request);
}

std::vector<pid_t> child_pids(pid_t ppid) {
    std::vector<pid_t> out;
    if (ppid <= 0) return out;
    DIR* proc = opendir("/proc");
    if (proc == nullptr) return out;
    while (dirent* e = readdir(proc)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end != '\0') continue;
        std::string stat = read_file(std::string("/proc/") + e->d_name + "/stat");
        // "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
        auto close_paren = stat.rfind(')');
        if (close_paren == std::string::npos) continue;
        char state = 0;
        long parent = 0;
        if (std::sscanf(stat.c_str() + close_paren + 1, " %c %ld", &state, &parent) != 2) continue;
        if (parent == ppid && state != 'Z') out.push_back(static_cast<pid_t>(pid));
    }
    closedir(proc);
    return out;
}

std::vector<std::string> log_problems(const std::string& log) {
    static const char* const kMarkers[] = {"AddressSanitizer", "runtime error:",   "assertion",
                                           "Assertion",        "terminate called", "segfault"};
    std::vector<std::string> out;
    size_t start = 0;
    while (start < log.size()) {
        size_t end = log.find('\n', start);
        if (end == std::string::npos) end = log.size();
        std::string line = log.substr(start, end - start);
        for (const char* m : kMarkers) {
            if (line.find(m) != std::string::npos) {
                out.push_back(line);
                break;
            }
        }
        start = end + 1;
    }
    return out;
}

}  // namespace pgrouter::test
