// The monitor's backend lines as tests read them: parse a dump, look up one backend, poll
// until a line satisfies a predicate (with a deadline, never a fixed sleep).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace pgrouter::test {

class RouterProcess;

struct MonitorLine {
    std::string role;    // master | slave
    std::string status;  // OK | FAILED | STARTING
    long long lag = -1;  // OK lines only
};

// "127.0.0.1:5432" → its line, for every backend line of a dump.
std::map<std::string, MonitorLine> parse_monitor(const std::string& dump);

// The line of `backend` in the monitor's answer on `port`; nullopt when the monitor does not
// answer or has no such line.
std::optional<MonitorLine> monitor_line(const RouterProcess& r, int port,
                                        const std::string& backend);

// Polls every few ms until `pred` holds for the backend's line; the time from `since` in ms,
// or -1 at the deadline.
double wait_monitor_line(const RouterProcess& r, int port, const std::string& backend,
                         const std::function<bool(const MonitorLine&)>& pred,
                         std::chrono::steady_clock::time_point since,
                         std::chrono::milliseconds deadline = std::chrono::seconds(10));

}  // namespace pgrouter::test
