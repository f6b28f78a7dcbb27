// The recheck wake-up: a post of the shared semaphore makes the eventfd readable at once,
// many posts collapse into one wake-up, and the thread stops cleanly.
#include "pgrouter/os/watcher_wake.h"

#include <poll.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "pgrouter/os/shm.h"

using namespace pgrouter;

namespace {

bool readable_within(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN) != 0;
}

}  // namespace

TEST_CASE("recheck waker: a post wakes the eventfd, quiet otherwise") {
    auto shm = SharedMemory::create();
    REQUIRE(shm);
    Segment& seg = shm->segment();
    {
        RecheckWaker waker(seg.recheck);
        REQUIRE(waker.start());
        CHECK_FALSE(readable_within(waker.fd(), 20));
        CHECK_FALSE(waker.drain());

        auto t0 = std::chrono::steady_clock::now();
        seg.recheck.post();
        REQUIRE(readable_within(waker.fd(), 1000));
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
        CHECK(us < 100'000);
        CHECK(waker.drain());
        CHECK_FALSE(readable_within(waker.fd(), 20));

        for (int i = 0; i < 100; ++i) seg.recheck.post();
        REQUIRE(readable_within(waker.fd(), 1000));
        CHECK(waker.drain());
        // The burst left nothing behind in the semaphore beyond what one more wake-up takes.
        readable_within(waker.fd(), 50);
        waker.drain();
        CHECK_FALSE(readable_within(waker.fd(), 20));
    }
    // The destructor stopped and joined the thread; the semaphore is free to be destroyed.
    CHECK_FALSE(seg.recheck.try_wait());
}
