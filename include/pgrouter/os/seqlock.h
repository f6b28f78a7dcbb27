// Sequence-counter reads and writes of trivially copyable records in shared memory.
// One writer per counter. Readers copy and retry; they give up after a bounded number of
// tries (a writer killed mid-update leaves the counter odd until the supervisor repairs it),
// so no reader can be wedged by a crash.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstring>
#include <type_traits>

#include "pgrouter/os/shm_layout.h"

namespace pgrouter {

inline void seq_write_begin(SeqCount& c) {
    c.seq.fetch_add(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
}

inline void seq_write_end(SeqCount& c) {
    std::atomic_thread_fence(std::memory_order_release);
    c.seq.fetch_add(1, std::memory_order_relaxed);
}

// After the writer died: make the counter even again so readers succeed.
inline void seq_repair(SeqCount& c) {
    std::uint64_t s = c.seq.load(std::memory_order_relaxed);
    if (s & 1) c.seq.store(s + 1, std::memory_order_release);
}

// Runs `copy` (which copies what the counter guards) until it ran without a concurrent
// write. False when a writer stayed busy for too long.
template <class F>
[[nodiscard]] bool seq_read_with(const SeqCount& c, F&& copy) {
    for (int attempt = 0; attempt < 10000; ++attempt) {
        std::uint64_t before = c.seq.load(std::memory_order_acquire);
        if ((before & 1) == 0) {
            copy();
            std::atomic_thread_fence(std::memory_order_acquire);
            if (c.seq.load(std::memory_order_relaxed) == before) return true;
        }
        if (attempt > 100) sched_yield();
    }
    return false;
}

// Copies `src` into `out` consistently. False when a writer stayed busy for too long.
template <class T>
[[nodiscard]] bool seq_read(const SeqCount& c, const T& src, T& out) {
    static_assert(std::is_trivially_copyable_v<T>);
    return seq_read_with(c, [&] {
        std::memcpy(static_cast<void*>(&out), static_cast<const void*>(&src), sizeof(T));
    });
}

}  // namespace pgrouter
