// Pure formatting of the monitor dump, exactly the spec's format: every line ends in "\n",
// fields separated by one space, lag in bytes only on OK lines.
#include <signal.h>

#include "pgrouter/monitor/monitor.h"

namespace pgrouter {

std::string format_monitor(const Snapshot& snap, const MonitorTotals& totals) {
    std::size_t ok = 0;
    for (const BackendView& b : snap.backends) ok += b.health.status == BackendStatus::Ok;
    std::string out;
    out += "backends " + std::to_string(ok) + "/" + std::to_string(snap.backends.size()) + "\n";
    out += "workers " + std::to_string(totals.workers) + "\n";
    out += "clients " + std::to_string(totals.clients) + "\n";
    out += "connections " + std::to_string(totals.connections) + "\n";
    for (const BackendView& b : snap.backends) {
        out += Endpoint{b.spec.host, b.spec.port}.to_string();
        out += b.health.role == BackendRole::Master ? " master " : " slave ";
        out += status_name(b.health.status);
        if (b.health.status == BackendStatus::Ok) out += " " + std::to_string(b.health.lag);
        out += "\n";
    }
    return out;
}

MonitorTotals sum_workers(const Segment& seg) {
    MonitorTotals t;
    for (const WorkerSlot& w : seg.workers) {
        pid_t pid = w.pid.load(std::memory_order_relaxed);
        if (pid <= 0) continue;
        if (kill(pid, 0) != 0 && errno == ESRCH) continue;  // died; the supervisor will reset it
        t.workers += 1;
        t.clients += std::max<std::int64_t>(0, w.clients.load(std::memory_order_relaxed));
        t.connections += std::max<std::int64_t>(0, w.connections.load(std::memory_order_relaxed));
        t.pinned += std::max<std::int64_t>(0, w.pinned.load(std::memory_order_relaxed));
    }
    return t;
}

}  // namespace pgrouter
