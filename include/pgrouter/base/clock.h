// The monotonic clock every process uses for deadlines and sample times.
#pragma once

#include <time.h>

#include <cstdint>

namespace pgrouter {

inline std::int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline std::int64_t now_ms() { return now_ns() / 1000000; }

}  // namespace pgrouter
