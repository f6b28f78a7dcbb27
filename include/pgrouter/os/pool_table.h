// The segment's pool table: one entry per (backend slot, epoch, database, user) pool, with
// what each worker holds of it (server connections open, idle ones, clients waiting). It
// enforces `size` across all workers and must survive a SIGKILLed worker: every count has
// one writer (its worker; the supervisor zeroes a reaped worker's), and the one lock (a
// robust process-shared mutex, held for a few loads and stores, never across I/O) only
// makes "sum the holdings, take one more" atomic among workers. Never allocates.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgrouter {

inline constexpr int kMaxPools = 512;
inline constexpr int kPoolWorkers = 256;  // kMaxWorkers
inline constexpr int kPoolNameLen = 64;   // kNameLen

// A process-shared mutex that a dead owner cannot strand (PTHREAD_MUTEX_ROBUST).
struct RobustMutex {
    RobustMutex();
    ~RobustMutex();
    RobustMutex(const RobustMutex&) = delete;
    RobustMutex& operator=(const RobustMutex&) = delete;
    void lock();
    void unlock();
    pthread_mutex_t mutex;
};

// Worker w's share of one pool; written by worker w only (the supervisor zeroes it at reap).
struct PoolWorkerCounts {
    std::atomic<std::int32_t> held{0};           // server connections open (in use or idle)
    std::atomic<std::int32_t> idle{0};           // of which idle in the worker's pool
    std::atomic<std::int32_t> waiting{0};        // clients waiting for a connection
    std::atomic<std::int64_t> wait_since_ns{0};  // CLOCK_MONOTONIC of its oldest waiter; 0: none
};

struct PoolEntry {
    std::atomic<std::uint32_t> key_seq{0};  // odd while the key below is being written
    bool used = false;
    std::int32_t slot = -1;
    std::uint32_t epoch = 0;
    char database[kPoolNameLen] = {};
    char user[kPoolNameLen] = {};
    PoolWorkerCounts workers[kPoolWorkers];
};

struct PoolTable {
    RobustMutex lock;  // claims of entries and acquisitions; never across I/O
    PoolEntry entries[kMaxPools];
};

struct PoolKey {
    int slot = -1;
    std::uint32_t epoch = 0;
    std::string database;
    std::string user;
    bool operator==(const PoolKey&) const = default;
};

// Worker side. The entry of `key`, claimed when there is none (a free entry, else one that
// nobody holds, waits for or keeps idle); -1 when the table is full. Names longer than the
// table keeps are refused (-1) rather than confused with others.
[[nodiscard]] int pool_find(PoolTable& t, const PoolKey& key);

// Worker side. One more server connection for `worker` in entry `index` when fewer than
// `size` are open in all workers (and the entry still has `key`: it may have been reclaimed).
[[nodiscard]] bool pool_acquire(PoolTable& t, int index, const PoolKey& key, int worker,
                                std::uint32_t size);
// A server connection taken by pool_acquire closed.
void pool_release(PoolTable& t, int index, int worker);
// Sets the worker's idle / waiting figures (single stores by their one writer).
void pool_set_idle(PoolTable& t, int index, int worker, std::int32_t idle);
void pool_set_waiting(PoolTable& t, int index, int worker, std::int32_t waiting,
                      std::int64_t oldest_since_ns);

// Any process: sums over the workers.
struct PoolFigures {
    int index = -1;
    int slot = -1;
    std::uint32_t epoch = 0;
    std::string database;
    std::string user;
    std::int64_t held = 0;
    std::int64_t idle = 0;
    std::int64_t waiting = 0;
    std::int64_t oldest_wait_since_ns = 0;  // 0: nobody waits
    std::int64_t active() const { return held > idle ? held - idle : 0; }
};
PoolFigures pool_figures(const PoolTable& t, int index);
// Every entry in use with anything held, idle or waiting.
std::vector<PoolFigures> pool_list(const PoolTable& t);
// Clients waiting in workers other than `worker`.
std::int64_t pool_waiting_elsewhere(const PoolTable& t, int index, int worker);
// Since when (CLOCK_MONOTONIC ns) the longest-waiting client of another worker than
// `worker` waits; 0 when none does.
std::int64_t pool_oldest_wait_elsewhere(const PoolTable& t, int index, int worker);

// Supervisor only, after worker `worker` died: its holdings go away with it.
void pool_reset_worker(PoolTable& t, int worker);

}  // namespace pgrouter
