// The monitor's text: the spec's human-readable dump of backends and counters. Formatting
// is pure (unit-tested); run_monitor() in child.h serves it on the monitor socket.
#pragma once

#include <cstdint>
#include <string>

#include "pgrouter/os/shm.h"

namespace pgrouter {

struct MonitorTotals {
    std::int64_t workers = 0;      // live worker processes
    std::int64_t clients = 0;      // client sessions open
    std::int64_t connections = 0;  // backend connections open
    std::int64_t pinned = 0;       // sessions pinned to the master (not in the dump)
};

// backends OK/TOTAL, workers, clients, connections, then one line per backend:
// "host:port master|slave STATUS [lag]" (lag only on OK lines). Exactly the spec's format and
// nothing else: strict parsers read it; new figures go to new interfaces, never here.
std::string format_monitor(const Snapshot& snap, const MonitorTotals& totals);

// Sums the live workers' counters.
MonitorTotals sum_workers(const Segment& seg);

}  // namespace pgrouter
