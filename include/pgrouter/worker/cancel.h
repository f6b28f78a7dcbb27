// The shared cancel table: each session's (pid, secret key) as handed to its client in
// BackendKeyData, and the backend its current statement runs on. Slots are claimed with a
// compare-and-swap by the owning worker; any worker can look a key up. No locks.
#pragma once

#include <cstdint>
#include <optional>

#include "pgrouter/os/shm_layout.h"

namespace pgrouter {

// pgrouter's pids are kCancelPidBase + slot index, so a lookup needs no search.
inline constexpr std::int32_t kCancelPidBase = 0x40000000;

struct CancelHandle {
    int index = -1;
    std::int32_t pid = 0;
    std::int32_t key = 0;
};

struct CancelTarget {
    int backend_slot = -1;
    std::int32_t pid = 0;
    std::int32_t key = 0;
};

// Claims a free slot for a session of `worker`; nullopt when the table is full.
[[nodiscard]] std::optional<CancelHandle> cancel_register(Segment& seg, int worker);
// Where the session's statements run now (-1: nowhere).
void cancel_set_backend(Segment& seg, const CancelHandle& h, int backend_slot, std::int32_t pid,
                        std::int32_t key);
void cancel_release(Segment& seg, const CancelHandle& h);
// The backend to cancel for a client's CancelRequest; nullopt for unknown keys.
[[nodiscard]] std::optional<CancelTarget> cancel_lookup(const Segment& seg, std::int32_t pid,
                                                        std::int32_t key);

}  // namespace pgrouter
