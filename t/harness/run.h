// Running external programs for tests: capture stdout/stderr/exit code, feed stdin, and
// run PostgreSQL's binaries as the `postgres` user when the tests run as root. Owns no
// long-lived processes: every call waits for its child (or kills it at the timeout).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace pgrouter::test {

using namespace std::chrono_literals;

struct RunResult {
    int status = -1;  // exit code, or 128 + signal number when killed by a signal
    std::string out;
    std::string err;
    bool timed_out = false;
    bool ok() const { return status == 0 && !timed_out; }
};

// Runs argv (argv[0] looked up in PATH) with the current environment plus env (an empty
// value removes the variable), writes input to its stdin, and waits. After timeout the
// child is killed with SIGKILL and timed_out is set. cwd: the child's directory ("" keeps
// ours). Never throws for a failing program; throws std::runtime_error if fork fails.
RunResult run(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env = {}, const std::string& input = "",
              std::chrono::milliseconds timeout = 120s, const std::string& cwd = "");

// Like run() but throws std::runtime_error carrying the command and its stderr on a nonzero
// exit status.
RunResult run_checked(const std::vector<std::string>& argv,
                      const std::map<std::string, std::string>& env = {},
                      const std::string& input = "", std::chrono::milliseconds timeout = 120s,
                      const std::string& cwd = "");

// Polls pred every interval until it returns true (true) or deadline passes (false). pred is
// always called at least once, and once more at the deadline. An exception thrown by pred
// counts as false, except from that last call, where it propagates (so a test shows why).
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds deadline = 10s,
                std::chrono::milliseconds interval = 20ms);

// The directory of PostgreSQL's server binaries: $PG_BINDIR, else the newest
// /usr/lib/postgresql/N/bin (Debian), /usr/pgsql-N/bin (RPM), else where initdb is on PATH.
const std::string& pg_bindir();
std::string pg_bin(const std::string& name);  // pg_bindir() + "/" + name

// True while pid exists and is not a zombie (kill(pid, 0) also succeeds for zombies, which
// an init that never reaps, as in some containers, leaves behind).
bool process_alive(pid_t pid);
// True while any non-zombie process belongs to process group pgid.
bool process_group_alive(pid_t pgid);

bool running_as_root();
// argv prefixed with `runuser -u postgres --` when running as root; PostgreSQL refuses root.
std::vector<std::string> as_postgres(std::vector<std::string> argv);
// Gives path to the postgres user when root (no-op otherwise); recursive for directories.
void chown_to_postgres(const std::string& path, bool recursive = false);

// Shell-style quoting for messages and the `sh -c` command lines built by tests.
std::string shell_quote(const std::string& s);
std::string join_command(const std::vector<std::string>& argv);

}  // namespace pgrouter::test
