// What a forked child receives from the supervisor, and the entry points of the three kinds
// of children. Each entry point runs the child's loop and leaves with _exit(); none returns.
#pragma once

#include "pgrouter/os/shm_layout.h"

namespace pgrouter {

// Exit code that tells the supervisor not to respawn a child (it can never work).
inline constexpr int kExitFatal = 3;

struct ChildContext {
    Segment* segment = nullptr;
    int listen_fd = -1;
    int monitor_fd = -1;
    int metrics_fd = -1;  // the metrics endpoint's socket; -1 without `metrics`
    int index = 0;        // worker slot
};

[[noreturn]] void run_worker(const ChildContext& ctx);
[[noreturn]] void run_monitor(const ChildContext& ctx);
[[noreturn]] void run_watcher(const ChildContext& ctx);

}  // namespace pgrouter
