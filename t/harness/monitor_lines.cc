// Monitor dumps to per-backend lines, and the polling wait the watcher tests measure with.
#include "monitor_lines.h"

#include <regex>
#include <stdexcept>
#include <thread>

#include "router_process.h"

namespace pgrouter::test {

std::map<std::string, MonitorLine> parse_monitor(const std::string& dump) {
    std::map<std::string, MonitorLine> out;
    static const std::regex re(R"((\S+:\d+) (master|slave) (OK|FAILED|STARTING)(?: (\d+))?\n)");
    for (auto it = std::sregex_iterator(dump.begin(), dump.end(), re); it != std::sregex_iterator();
         ++it) {
        MonitorLine l{(*it)[2], (*it)[3], (*it)[4].matched ? std::stoll((*it)[4]) : -1};
        out[(*it)[1]] = l;
    }
    return out;
}

std::optional<MonitorLine> monitor_line(const RouterProcess& r, int port,
                                        const std::string& backend) {
    try {
        auto lines = parse_monitor(r.monitor(port));
        auto it = lines.find(backend);
        if (it != lines.end()) return it->second;
    } catch (const std::exception&) {
    }
    return std::nullopt;
}

double wait_monitor_line(const RouterProcess& r, int port, const std::string& backend,
                         const std::function<bool(const MonitorLine&)>& pred,
                         std::chrono::steady_clock::time_point since,
                         std::chrono::milliseconds deadline) {
    using Clock = std::chrono::steady_clock;
    auto end = Clock::now() + deadline;
    do {
        auto l = monitor_line(r, port, backend);
        if (l && pred(*l)) {
            return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    } while (Clock::now() < end);
    return -1;
}

}  // namespace pgrouter::test
