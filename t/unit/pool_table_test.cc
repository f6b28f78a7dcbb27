// Unit tests of the segment's pool table: entries found and claimed by key, `size` held
// across workers, a dead worker's holdings given back, reclaiming unused entries when the
// table is full, the figures readers sum, and the robust lock surviving an owner that died
// holding it (a forked child killed while it held the lock).
#include "pgrouter/os/pool_table.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <memory>
#include <new>

namespace pgrouter {
namespace {

PoolKey key(int slot, std::string db = "db", std::string user = "u", std::uint32_t epoch = 1) {
    return PoolKey{slot, epoch, std::move(db), std::move(user)};
}

}  // namespace

TEST_CASE("pool table: one entry per key, found again; long names refused") {
    auto t = std::make_unique<PoolTable>();
    int a = pool_find(*t, key(0));
    int b = pool_find(*t, key(1));
    int c = pool_find(*t, key(0, "db", "other"));
    int d = pool_find(*t, key(0, "db", "u", 2));  // the slot's next occupant
    REQUIRE(a >= 0);
    CHECK(b != a);
    CHECK(c != a);
    CHECK(d != a);
    CHECK(pool_find(*t, key(0)) == a);
    CHECK(pool_find(*t, key(0, std::string(64, 'x'))) == -1);
    CHECK(pool_find(*t, key(0, "db", std::string(63, 'y'))) >= 0);
    PoolFigures f = pool_figures(*t, c);
    CHECK(f.slot == 0);
    CHECK(f.database == "db");
    CHECK(f.user == "other");
}

TEST_CASE("pool table: size holds across workers; releases and a dead worker give back") {
    auto t = std::make_unique<PoolTable>();
    PoolKey k = key(3);
    int i = pool_find(*t, k);
    struct Step {
        int worker;
        bool acquire;  // else release
        bool granted;  // for acquire
        std::int64_t held_after;
    };
    const std::vector<Step> steps = {
        {0, true, true, 1},  {1, true, true, 2}, {2, true, true, 3},  {1, true, false, 3},
        {0, false, true, 2}, {1, true, true, 3}, {2, true, false, 3}, {2, false, true, 2},
        {2, false, true, 2},  // worker 2 held none: its count stays at zero
    };
    for (std::size_t n = 0; n < steps.size(); ++n) {
        const Step& s = steps[n];
        INFO("step " << n);
        if (s.acquire) {
            CHECK(pool_acquire(*t, i, k, s.worker, 3) == s.granted);
        } else {
            pool_release(*t, i, s.worker);
        }
        CHECK(pool_figures(*t, i).held == s.held_after);
    }
    // Worker 1 holds two now; it dies: the supervisor zeroes its counts.
    pool_set_idle(*t, i, 1, 1);
    pool_set_waiting(*t, i, 1, 2, 12345);
    PoolFigures before = pool_figures(*t, i);
    CHECK(before.held == 2);
    CHECK(before.idle == 1);
    CHECK(before.active() == 1);
    CHECK(before.waiting == 2);
    CHECK(before.oldest_wait_since_ns == 12345);
    CHECK(pool_waiting_elsewhere(*t, i, 1) == 0);
    CHECK(pool_waiting_elsewhere(*t, i, 0) == 2);
    CHECK(pool_oldest_wait_elsewhere(*t, i, 1) == 0);
    CHECK(pool_oldest_wait_elsewhere(*t, i, 0) == 12345);
    pool_set_waiting(*t, i, 2, 1, 999);  // a third worker's client waits longer
    CHECK(pool_oldest_wait_elsewhere(*t, i, 0) == 999);
    CHECK(pool_oldest_wait_elsewhere(*t, i, 1) == 999);
    CHECK(pool_oldest_wait_elsewhere(*t, i, 2) == 12345);
    pool_set_waiting(*t, i, 2, 0, 999);  // served: no longer counted
    CHECK(pool_oldest_wait_elsewhere(*t, i, 0) == 12345);
    pool_reset_worker(*t, 1);
    PoolFigures after = pool_figures(*t, i);
    CHECK(after.held == 0);
    CHECK(after.idle == 0);
    CHECK(after.waiting == 0);
    CHECK(after.oldest_wait_since_ns == 0);
    CHECK(pool_acquire(*t, i, k, 0, 3));
    // A lower size (a reload) refuses more until enough closed.
    CHECK(pool_acquire(*t, i, k, 0, 2));
    CHECK_FALSE(pool_acquire(*t, i, k, 0, 2));
    // The wrong key (the entry was reclaimed for another pool) is refused.
    CHECK_FALSE(pool_acquire(*t, i, key(4), 0, 100));
    CHECK_FALSE(pool_acquire(*t, -1, k, 0, 100));
    CHECK_FALSE(pool_acquire(*t, i, k, kPoolWorkers, 100));
}

TEST_CASE("pool table: a full table reuses an entry nobody uses, never a busy one") {
    auto t = std::make_unique<PoolTable>();
    for (int n = 0; n < kMaxPools; ++n) {
        PoolKey k = key(n % 64, "db" + std::to_string(n));
        int i = pool_find(*t, k);
        REQUIRE(i >= 0);
        REQUIRE(pool_acquire(*t, i, k, 0, 1));
    }
    CHECK(pool_find(*t, key(0, "new")) == -1);
    PoolKey seven = key(7, "db7");
    int i7 = pool_find(*t, seven);
    pool_release(*t, i7, 0);
    CHECK(pool_list(*t).size() == static_cast<std::size_t>(kMaxPools - 1));
    int reused = pool_find(*t, key(0, "new"));
    CHECK(reused == i7);
    CHECK(pool_figures(*t, reused).database == "new");
    CHECK_FALSE(pool_acquire(*t, i7, seven, 0, 5));  // not db7's any more
}

TEST_CASE("pool table: the lock survives a process killed while holding it") {
    void* mem =
        mmap(nullptr, sizeof(PoolTable), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED);
    auto* t = new (mem) PoolTable();
    PoolKey k = key(1);
    int i = pool_find(*t, k);
    pid_t child = fork();
    if (child == 0) {
        t->lock.lock();
        pause();  // killed holding the lock
        _exit(0);
    }
    REQUIRE(child > 0);
    // Wait until the child holds it: a trylock fails.
    for (int n = 0; n < 1000 && pthread_mutex_trylock(&t->lock.mutex) == 0; ++n) {
        pthread_mutex_unlock(&t->lock.mutex);
        usleep(1000);
    }
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(pool_acquire(*t, i, k, 0, 1));  // EOWNERDEAD recovered, not a hang
    CHECK(pool_find(*t, k) == i);
    t->~PoolTable();
    munmap(mem, sizeof(PoolTable));
}

}  // namespace pgrouter
