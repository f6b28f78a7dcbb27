// Naming and back-off policy for supervised children.
#include "pgrouter/os/child_table.h"

#include <algorithm>

namespace pgrouter {

std::string Child::name() const {
    switch (kind) {
        case ChildKind::Watcher:
            return "watcher";
        case ChildKind::Monitor:
            return "monitor";
        case ChildKind::Worker:
            return "worker " + std::to_string(index);
    }
    return "child";
}

std::chrono::milliseconds restart_delay(int crashes) {
    if (crashes <= 1) return std::chrono::milliseconds(0);
    long ms = 100L << std::min(crashes - 2, 10);
    return std::chrono::milliseconds(std::min(ms, 5000L));
}

}  // namespace pgrouter
