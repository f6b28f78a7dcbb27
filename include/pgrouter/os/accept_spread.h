// Accepting on the listening socket every worker shares, spread evenly over the workers and
// without a thundering herd. It owns one helper thread per worker that only sleeps, accepts
// and hands descriptors to the worker's event loop; it never touches a session.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "pgrouter/base/asio.h"

namespace pgrouter {

// Why a thread: EPOLLEXCLUSIVE wakes one waiter only when a thread sleeps in epoll_wait() on
// the very epoll instance that holds the socket. Nested in Asio's reactor (an epoll fd
// watched by another epoll) every worker is woken again, as without the flag (measured:
// one voluntary switch per connection in every worker either way). So each worker's thread
// sleeps in its own epoll_wait(); after a wake-up it accepts at most kBurst clients, waits
// until the loop has taken them (a saturated worker so stays out of the queue) and
// re-registers at the tail of the socket's wait queue (the kernel wakes the first sleeping
// exclusive waiter: without the move, worker 1 would get every client).
class AcceptSpread {
  public:
    static constexpr int kBurst = 4;

    // Runs `deliver(fd, out_of_fds)` on `io`'s thread for each accepted client (a
    // non-blocking, close-on-exec socket the callee owns); `out_of_fds`: the process ran out
    // of descriptors and a spare one was given up to accept this client, which should be
    // told so and closed (nginx's trick: otherwise it waits in the queue, unanswered).
    // `report(message)` runs there for accept errors.
    AcceptSpread(asio::io_context& io, int listen_fd, std::function<void(int, bool)> deliver,
                 std::function<void(const std::string&)> report);
    ~AcceptSpread();
    AcceptSpread(const AcceptSpread&) = delete;
    AcceptSpread& operator=(const AcceptSpread&) = delete;

    // Starts the thread; false with `error` set when the epoll set or the thread cannot be
    // made.
    [[nodiscard]] bool start(std::string& error);
    // No new clients from now on; joins the thread and closes this process's copy of the
    // listening socket. Clients accepted before still reach `deliver`. Idempotent.
    void stop();

  private:
    void run();
    [[nodiscard]] bool arm();  // (re-)registers the listening socket, exclusive
    bool wait_taken();         // until the loop took the batch; false once stopped
    void back_off();           // after an error such as EMFILE: 100 ms or until stop()

    asio::io_context& io_;
    int listen_fd_;
    std::function<void(int, bool)> deliver_;
    int spare_fd_ = -1;  // /dev/null, closed to make room for one client when out of fds
    std::function<void(const std::string&)> report_;
    int epoll_fd_ = -1;
    int stop_fd_ = -1;  // eventfd: wakes the thread for stop()
    // kTaken: the loop has every accepted client; kPending: a batch is on its way;
    // kStopped: stop() was called.
    static constexpr int kTaken = 0, kPending = 1, kStopped = 2;
    std::atomic<int> gate_{kTaken};
    std::thread thread_;
};

}  // namespace pgrouter
