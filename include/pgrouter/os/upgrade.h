// The process mechanics of a binary upgrade (SIGUSR2): the environment variable that names
// the listening sockets a new supervisor inherits, starting that supervisor with them, and
// the pipe on which it tells the old one that its workers accept. Nothing here decides when
// to upgrade or what to do with the old children; the supervisor does.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgrouter {

// "listen:5:*:5432;monitor:6:127.0.0.1:9881": a name, a descriptor and the configured
// endpoint text of each inherited listening socket (as nginx's NGINX variable names its fds).
inline constexpr const char* kInheritedSocketsEnv = "PGROUTER_SOCKETS";
// The write end of the pipe on which the new supervisor reports "ready".
inline constexpr const char* kUpgradePipeEnv = "PGROUTER_UPGRADE_FD";

struct InheritedSocket {
    std::string name;      // "listen", "monitor"
    int fd = -1;           // the descriptor number in the new process
    std::string endpoint;  // Endpoint::to_string() of the address it was bound for
};

// Pure. The variable's value for `sockets`, and back; parse fails (nullopt, `error` set) on
// anything malformed: an empty or duplicate name, a descriptor below 3 or not a number.
std::string format_inherited(const std::vector<InheritedSocket>& sockets);
std::optional<std::vector<InheritedSocket>> parse_inherited(std::string_view text,
                                                            std::string& error);

// What a supervisor started by an upgrade received: its sockets and the pipe to its
// predecessor. Read from the environment once, at start; the variables are then removed.
struct Inheritance {
    bool upgrading = false;  // started by an old supervisor's SIGUSR2
    std::vector<InheritedSocket> sockets;
    int ready_fd = -1;  // write "ready" here once the workers accept
};
[[nodiscard]] std::optional<Inheritance> take_inheritance(std::string& error);

// The inherited socket of that name bound for `endpoint`: checked to be a listening
// socket, made non-blocking and close-on-exec. -1 when there is none for that endpoint
// (the configuration changed it: bind a new one); -1 with `error` set when it is unusable.
[[nodiscard]] int adopt_inherited(const Inheritance& from, std::string_view name,
                                  const std::string& endpoint, std::string& error);
// Closes the inherited descriptors adopt_inherited() did not hand out.
void close_unadopted(Inheritance& from, const std::vector<int>& adopted);

// The absolute path the running binary was started as (argv[0] made absolute against the
// start directory, or looked up in PATH), to exec again at upgrade time: whatever file is at
// that path then (an upgraded package's binary) is what runs.
std::string self_executable(const char* argv0);

// A new supervisor being started by an upgrade.
struct Successor {
    pid_t pid = 0;
    int pipe_fd = -1;  // read end: "ready\n", or why the exec failed; EOF when it is gone
};

// Forks and execs `exe` with `argv`, the sockets passed as inherited descriptors and named
// in the environment. The child unblocks every signal before exec (the supervisor blocks its
// own for the signalfd). Nullopt with `error` set when the pipe or the fork fails; a failed
// exec is reported on the pipe and the child exits 127.
[[nodiscard]] std::optional<Successor> spawn_successor(const std::string& exe,
                                                       const std::vector<std::string>& argv,
                                                       const std::vector<InheritedSocket>& sockets,
                                                       std::string& error);

// What arrived on the pipe of a successor: a line ("ready" and the names of the sockets it
// adopted, or why it failed) or EOF. For Ready, `message` is the names, space-separated.
enum class SuccessorNews { Nothing, Ready, Failed, Closed };
SuccessorNews read_successor(int pipe_fd, std::string& message);
// Pure: is `name` one of the space-separated `names`?
bool names_include(std::string_view names, std::string_view name);

// New supervisor: tell the old one that the workers accept, or why this one cannot start
// (one line each; both close the descriptor; nothing happens when it is -1).
void report_ready(int& ready_fd, const std::vector<std::string>& adopted);
void report_failure(int& ready_fd, const std::string& why);

}  // namespace pgrouter
