// The monitor process: accept on the monitor socket, write one dump, close. Single-threaded
// and non-blocking; a client that does not read gets at most kWriteDeadline of attention.
#include "pgrouter/monitor/monitor.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "pgrouter/base/clock.h"
#include "pgrouter/base/log.h"
#include "pgrouter/os/child.h"
#include "pgrouter/os/signals.h"

namespace pgrouter {

namespace {

constexpr int kWriteDeadlineMs = 1000;

void serve_one(int fd, const Segment& seg) {
    Snapshot snap;
    std::string text;
    if (take_snapshot(seg, snap)) text = format_monitor(snap, sum_workers(seg));
    std::size_t sent = 0;
    std::int64_t deadline = now_ms() + kWriteDeadlineMs;
    while (sent < text.size()) {
        ssize_t n = send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) break;
        int left = static_cast<int>(deadline - now_ms());
        if (left <= 0) break;
        pollfd p{fd, POLLOUT, 0};
        poll(&p, 1, left);
    }
    shutdown(fd, SHUT_WR);
    close(fd);
}

}  // namespace

void run_monitor(const ChildContext& ctx) {
    if (ctx.listen_fd >= 0) close(ctx.listen_fd);
    install_stop_handler();
    while (!stop_requested()) {
        pollfd p{ctx.monitor_fd, POLLIN, 0};
        if (poll(&p, 1, 500) <= 0) continue;
        int fd = accept4(ctx.monitor_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) continue;
        serve_one(fd, *ctx.segment);
    }
    _exit(0);
}

}  // namespace pgrouter
