// The cancel table (see cancel.h). Keys come from RAND_bytes; the key comparison runs in
// constant time, so a client cannot guess a key byte by byte.
#include "pgrouter/worker/cancel.h"

#include <openssl/crypto.h>

#include "pgrouter/auth/scram.h"

namespace pgrouter {

std::optional<CancelHandle> cancel_register(Segment& seg, int worker) {
    std::uint32_t start = 0;
    std::int32_t key = 0;
    if (!random_bytes(&start, sizeof start) || !random_bytes(&key, sizeof key)) {
        return std::nullopt;
    }
    if (key == 0) key = 1;  // 0 marks a slot whose key is not yet (or no longer) valid
    auto owner = static_cast<std::uint32_t>(worker + 1);
    for (int i = 0; i < kCancelSlots; ++i) {
        int index = static_cast<int>((start + static_cast<std::uint32_t>(i)) % kCancelSlots);
        CancelSlot& slot = seg.cancel[index];
        std::uint32_t expected = 0;
        if (slot.owner.load(std::memory_order_relaxed) != 0) continue;
        if (slot.owner.compare_exchange_strong(expected, owner, std::memory_order_acq_rel)) {
            slot.backend.store(-1, std::memory_order_relaxed);
            slot.key.store(key, std::memory_order_release);
            return CancelHandle{index, kCancelPidBase + index, key};
        }
    }
    return std::nullopt;
}

void cancel_set_backend(Segment& seg, const CancelHandle& h, int backend_slot, std::int32_t pid,
                        std::int32_t key) {
    if (h.index < 0) return;
    CancelSlot& slot = seg.cancel[h.index];
    slot.backend_pid.store(pid, std::memory_order_relaxed);
    slot.backend_key.store(key, std::memory_order_relaxed);
    slot.backend.store(backend_slot, std::memory_order_release);
}

void cancel_release(Segment& seg, const CancelHandle& h) {
    if (h.index < 0) return;
    CancelSlot& slot = seg.cancel[h.index];
    slot.key.store(0, std::memory_order_relaxed);
    slot.backend.store(-1, std::memory_order_relaxed);
    slot.owner.store(0, std::memory_order_release);
}

std::optional<CancelTarget> cancel_lookup(const Segment& seg, std::int32_t pid, std::int32_t key) {
    std::int64_t index = static_cast<std::int64_t>(pid) - kCancelPidBase;
    if (index < 0 || index >= kCancelSlots) return std::nullopt;
    const CancelSlot& slot = seg.cancel[index];
    if (slot.owner.load(std::memory_order_acquire) == 0) return std::nullopt;
    std::int32_t stored = slot.key.load(std::memory_order_acquire);
    if (stored == 0 || CRYPTO_memcmp(&stored, &key, sizeof key) != 0) return std::nullopt;
    CancelTarget t;
    t.backend_slot = slot.backend.load(std::memory_order_acquire);
    t.pid = slot.backend_pid.load(std::memory_order_relaxed);
    t.key = slot.backend_key.load(std::memory_order_relaxed);
    if (t.backend_slot < 0 || t.backend_slot >= kMaxBackends) return std::nullopt;
    return t;
}

}  // namespace pgrouter
