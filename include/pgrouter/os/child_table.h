// The supervisor's private list of children (never in shared memory): what each is, its
// pid, how often it crashed and when it may be started again.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "pgrouter/base/clock.h"

namespace pgrouter {

enum class ChildKind { Watcher, Monitor, Worker };

struct Child {
    ChildKind kind = ChildKind::Worker;
    int index = 0;       // worker slot; 0 for the others
    pid_t pid = 0;       // 0: not running
    bool wanted = true;  // respawn when it dies
    int crashes = 0;     // consecutive quick deaths
    std::int64_t started_ns = 0;
    std::int64_t restart_at_ns = 0;  // earliest respawn time
    std::string name() const;        // "worker 3", "watcher", "monitor"
};

// Delay before respawning a child that died `crashes` times in a row: none for the first,
// then 100 ms doubling up to 5 s.
std::chrono::milliseconds restart_delay(int crashes);

}  // namespace pgrouter
