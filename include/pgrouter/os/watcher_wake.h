// The watcher's wake-up on the shared "recheck" semaphore, which workers post when they fail
// to reach a backend. A semaphore cannot be poll()ed, so a tiny thread blocks on it and turns
// posts into a readable eventfd that the watcher's loop polls with its sockets. The thread
// touches nothing but the semaphore and the eventfd (no libpq, no logging).
#pragma once

#include <atomic>
#include <boost/interprocess/sync/interprocess_semaphore.hpp>
#include <thread>

namespace pgrouter {

class RecheckWaker {
  public:
    explicit RecheckWaker(boost::interprocess::interprocess_semaphore& semaphore)
        : semaphore_(semaphore) {}
    // Stops the thread (posting the semaphore once to wake it) and joins it.
    ~RecheckWaker();
    RecheckWaker(const RecheckWaker&) = delete;
    RecheckWaker& operator=(const RecheckWaker&) = delete;

    // Creates the eventfd and starts the thread, which inherits the caller's signal mask:
    // block the signals meant for the loop first. False (errno set) on failure.
    [[nodiscard]] bool start();
    int fd() const { return fd_; }
    // Empties the eventfd; true when at least one post arrived since the last call.
    bool drain() const;

  private:
    void wait_loop();

    boost::interprocess::interprocess_semaphore& semaphore_;
    int fd_ = -1;
    std::thread thread_;
    std::atomic<bool> stop_{false};
};

}  // namespace pgrouter
