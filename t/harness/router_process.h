// Drives the real pgrouter binary for integration tests: writes its config into a private
// temporary directory, runs it in the foreground as our child (in its own process group,
// output to a log file), signals it, and stops it. It never outlives the test process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cleanup.h"

namespace pgrouter::test {

struct RouterOptions {
    std::string binary{};  // "" = $PGROUTER_BIN, else build/pgrouter (relative to the cwd)
    // "" = {"-F", "-vvvvv", "-c", <config>}; extra_args are appended either way.
    std::vector<std::string> args{};
    std::vector<std::string> extra_args{};
    std::map<std::string, std::string> env{};  // added to ours; an empty value removes one
};

class RouterProcess {
  public:
    // "@DIR@" in config_text is replaced by dir() (for hba files, sockets, pid files).
    explicit RouterProcess(const std::string& config_text, RouterOptions opts = {});
    ~RouterProcess();
    RouterProcess(const RouterProcess&) = delete;
    RouterProcess& operator=(const RouterProcess&) = delete;

    pid_t pid() const { return pid_; }
    const std::string& dir() const { return dir_; }
    const std::string& config_path() const { return config_path_; }
    const std::string& log_path() const { return log_path_; }
    const std::string& binary() const { return binary_; }

    std::string log() const;
    size_t log_size() const;  // a mark for wait_for_log(..., from)
    // Polls the log (from byte offset `from`) for an ECMAScript regex match; ^ and $ match at
    // line ends.
    bool wait_for_log(const std::string& regex,
                      std::chrono::milliseconds deadline = std::chrono::seconds(10),
                      size_t from = 0) const;

    // Replaces the config file ("@DIR@" substituted); send SIGHUP to make it count.
    void write_config(const std::string& config_text);
    // Writes dir()/name and returns its path (hba files, certificates, ...).
    std::string add_file(const std::string& name, const std::string& text) const;

    void signal(int sig) const;
    // Has it not exited yet? Reaps it if it has.
    bool running();
    // Waits for it to exit on its own; the exit status, or nullopt at the deadline.
    std::optional<int> wait_exit(std::chrono::milliseconds deadline = std::chrono::seconds(10));
    // SIGTERM, wait up to deadline, then SIGKILL the whole process group. Returns the exit
    // code, or 128 + signal if it died by a signal. Idempotent.
    int stop(std::chrono::milliseconds deadline = std::chrono::seconds(10));
    // After stop(): were processes of its group still alive 2 s after it exited (then
    // killed)? A router must take its workers down with it.
    bool left_stragglers() const { return stragglers_; }

    // Live processes whose parent is the router (its workers).
    std::vector<pid_t> children() const;
    // Those of children() whose process title starts with "pgrouter: " + title.
    std::vector<pid_t> children_titled(const std::string& title) const;
    // The monitor port's answer: connect to 127.0.0.1:port, read until EOF.
    std::string monitor(int port, const std::string& request = "") const;

  private:
    std::string expand(const std::string& text) const;
    void reap_group();

    std::string dir_;
    std::string config_path_;
    std::string log_path_;
    std::string binary_;
    pid_t pid_ = -1;
    std::optional<int> status_;
    bool stragglers_ = false;
    int kill_slot_ = -1;
    Reaper reaper_;
};

// Live processes whose parent is ppid (from /proc/*/stat).
std::vector<pid_t> child_pids(pid_t ppid);

// Lines of a router log that show a crash, a failed assertion or a sanitizer report
// ("AddressSanitizer", "runtime error:", "assertion", "Assertion", "terminate called",
// "segfault").
std::vector<std::string> log_problems(const std::string& log);

}  // namespace pgrouter::test
