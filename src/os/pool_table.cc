// The segment's pool table (see pool_table.h): entries claimed and connections acquired
// under one robust mutex, everything else by single stores of each count's one writer.
// Readers copy an entry's key under its sequence count and sum the counts without locking.
#include "pgrouter/os/pool_table.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace pgrouter {

namespace {

std::int32_t load(const std::atomic<std::int32_t>& a) { return a.load(std::memory_order_relaxed); }

bool names_fit(const PoolKey& key) {
    return key.database.size() < kPoolNameLen && key.user.size() < kPoolNameLen;
}

// Under the lock (or in the entry's writer): the key as stored.
bool has_key(const PoolEntry& e, const PoolKey& key) {
    return e.used && e.slot == key.slot && e.epoch == key.epoch && key.database == e.database &&
           key.user == e.user;
}

bool unused_now(const PoolEntry& e) {
    for (const PoolWorkerCounts& w : e.workers) {
        if (load(w.held) != 0 || load(w.idle) != 0 || load(w.waiting) != 0) return false;
    }
    return true;
}

void write_key(PoolEntry& e, const PoolKey& key) {
    e.key_seq.fetch_add(1, std::memory_order_acq_rel);
    e.used = true;
    e.slot = key.slot;
    e.epoch = key.epoch;
    std::memset(e.database, 0, sizeof e.database);
    std::memset(e.user, 0, sizeof e.user);
    std::memcpy(e.database, key.database.data(), key.database.size());
    std::memcpy(e.user, key.user.data(), key.user.size());
    e.key_seq.fetch_add(1, std::memory_order_acq_rel);
}

class Locked {
  public:
    explicit Locked(RobustMutex& m) : m_(m) { m_.lock(); }
    ~Locked() { m_.unlock(); }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;

  private:
    RobustMutex& m_;
};

bool valid(int index) { return index >= 0 && index < kMaxPools; }
bool valid_worker(int worker) { return worker >= 0 && worker < kPoolWorkers; }

}  // namespace

RobustMutex::RobustMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&mutex, &attr);
    pthread_mutexattr_destroy(&attr);
}

RobustMutex::~RobustMutex() { pthread_mutex_destroy(&mutex); }

void RobustMutex::lock() {
    // EOWNERDEAD: a worker died inside its few stores. What it guarded is single counts whose
    // owner is gone (the supervisor zeroes them) and a key written under its sequence count:
    // consistent enough to go on.
    if (pthread_mutex_lock(&mutex) == EOWNERDEAD) pthread_mutex_consistent(&mutex);
}

void RobustMutex::unlock() { pthread_mutex_unlock(&mutex); }

int pool_find(PoolTable& t, const PoolKey& key) {
    if (!names_fit(key)) return -1;
    Locked locked(t.lock);
    int free = -1;
    int idle = -1;
    for (int i = 0; i < kMaxPools; ++i) {
        PoolEntry& e = t.entries[i];
        if (has_key(e, key)) return i;
        if (!e.used) {
            if (free < 0) free = i;
        } else if (idle < 0 && unused_now(e)) {
            idle = i;
        }
    }
    int chosen = free >= 0 ? free : idle;
    if (chosen >= 0) write_key(t.entries[chosen], key);
    return chosen;
}

bool pool_acquire(PoolTable& t, int index, const PoolKey& key, int worker, std::uint32_t size) {
    if (!valid(index) || !valid_worker(worker)) return false;
    Locked locked(t.lock);
    PoolEntry& e = t.entries[index];
    if (!has_key(e, key)) return false;
    std::int64_t held = 0;
    for (const PoolWorkerCounts& w : e.workers) held += load(w.held);
    if (held >= static_cast<std::int64_t>(size)) return false;
    std::atomic<std::int32_t>& mine = e.workers[worker].held;
    mine.store(load(mine) + 1, std::memory_order_relaxed);
    return true;
}

void pool_release(PoolTable& t, int index, int worker) {
    if (!valid(index) || !valid_worker(worker)) return;
    std::atomic<std::int32_t>& mine = t.entries[index].workers[worker].held;
    std::int32_t n = load(mine);
    mine.store(n > 0 ? n - 1 : 0, std::memory_order_relaxed);
}

void pool_set_idle(PoolTable& t, int index, int worker, std::int32_t idle) {
    if (!valid(index) || !valid_worker(worker)) return;
    t.entries[index].workers[worker].idle.store(idle, std::memory_order_relaxed);
}

void pool_set_waiting(PoolTable& t, int index, int worker, std::int32_t waiting,
                      std::int64_t oldest_since_ns) {
    if (!valid(index) || !valid_worker(worker)) return;
    PoolWorkerCounts& w = t.entries[index].workers[worker];
    w.wait_since_ns.store(waiting > 0 ? oldest_since_ns : 0, std::memory_order_relaxed);
    w.waiting.store(waiting, std::memory_order_relaxed);
}

PoolFigures pool_figures(const PoolTable& t, int index) {
    PoolFigures f;
    if (!valid(index)) return f;
    const PoolEntry& e = t.entries[index];
    for (int tries = 0; tries < 100; ++tries) {
        std::uint32_t before = e.key_seq.load(std::memory_order_acquire);
        if (before & 1) continue;
        f.slot = e.slot;
        f.epoch = e.epoch;
        char database[kPoolNameLen];
        char user[kPoolNameLen];
        std::memcpy(database, e.database, sizeof database);
        std::memcpy(user, e.user, sizeof user);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (e.key_seq.load(std::memory_order_relaxed) != before) continue;
        database[kPoolNameLen - 1] = user[kPoolNameLen - 1] = '\0';
        f.database = database;
        f.user = user;
        f.index = index;
        break;
    }
    for (const PoolWorkerCounts& w : e.workers) {
        f.held += std::max(0, load(w.held));
        f.idle += std::max(0, load(w.idle));
        f.waiting += std::max(0, load(w.waiting));
        std::int64_t since = w.wait_since_ns.load(std::memory_order_relaxed);
        if (since > 0 && (f.oldest_wait_since_ns == 0 || since < f.oldest_wait_since_ns)) {
            f.oldest_wait_since_ns = since;
        }
    }
    return f;
}

std::vector<PoolFigures> pool_list(const PoolTable& t) {
    std::vector<PoolFigures> out;
    for (int i = 0; i < kMaxPools; ++i) {
        if (!t.entries[i].used) continue;
        PoolFigures f = pool_figures(t, i);
        if (f.index < 0 || (f.held == 0 && f.idle == 0 && f.waiting == 0)) continue;
        out.push_back(std::move(f));
    }
    return out;
}

std::int64_t pool_waiting_elsewhere(const PoolTable& t, int index, int worker) {
    if (!valid(index)) return 0;
    std::int64_t n = 0;
    for (int w = 0; w < kPoolWorkers; ++w) {
        if (w != worker) n += std::max(0, load(t.entries[index].workers[w].waiting));
    }
    return n;
}

std::int64_t pool_oldest_wait_elsewhere(const PoolTable& t, int index, int worker) {
    if (!valid(index)) return 0;
    std::int64_t oldest = 0;
    for (int w = 0; w < kPoolWorkers; ++w) {
        const PoolWorkerCounts& c = t.entries[index].workers[w];
        if (w == worker || load(c.waiting) <= 0) continue;
        std::int64_t since = c.wait_since_ns.load(std::memory_order_relaxed);
        if (since > 0 && (oldest == 0 || since < oldest)) oldest = since;
    }
    return oldest;
}

void pool_reset_worker(PoolTable& t, int worker) {
    if (!valid_worker(worker)) return;
    for (PoolEntry& e : t.entries) {
        PoolWorkerCounts& w = e.workers[worker];
        w.held.store(0, std::memory_order_relaxed);
        w.idle.store(0, std::memory_order_relaxed);
        w.waiting.store(0, std::memory_order_relaxed);
        w.wait_since_ns.store(0, std::memory_order_relaxed);
    }
}

}  // namespace pgrouter
