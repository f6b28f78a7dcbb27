// The recheck thread: sem wait → eventfd write. Posts that pile up while the watcher is busy
// (or dead) collapse into one wake-up, so a storm of failing clients costs one recheck.
#include "pgrouter/os/watcher_wake.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace pgrouter {

RecheckWaker::~RecheckWaker() {
    if (thread_.joinable()) {
        stop_.store(true);
        semaphore_.post();
        thread_.join();
    }
    if (fd_ >= 0) close(fd_);
}

bool RecheckWaker::start() {
    fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd_ < 0) return false;
    try {
        thread_ = std::thread([this] { wait_loop(); });
    } catch (const std::system_error& e) {
        errno = e.code().value();
        return false;
    }
    return true;
}

bool RecheckWaker::drain() const {
    std::uint64_t n = 0;
    bool any = false;
    while (read(fd_, &n, sizeof n) == static_cast<ssize_t>(sizeof n)) any = true;
    return any;
}

void RecheckWaker::wait_loop() {
    while (!stop_.load()) {
        try {
            semaphore_.wait();
            while (semaphore_.try_wait()) {
            }
        } catch (const boost::interprocess::interprocess_exception&) {
            usleep(10'000);  // EINTR or worse: never spin
            continue;
        }
        if (stop_.load()) break;
        std::uint64_t one = 1;
        if (write(fd_, &one, sizeof one) < 0) usleep(10'000);
    }
}

}  // namespace pgrouter
