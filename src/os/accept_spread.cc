// The accept thread of a worker: sleeps in its own epoll_wait() on the shared listening
// socket (EPOLLEXCLUSIVE), accepts a few clients, hands them to the event loop and moves to
// the tail of the wait queue. It never reads or writes a client socket and never logs
// itself (messages go to the loop's thread).
#include "pgrouter/os/accept_spread.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace pgrouter {

namespace {

// accept(2): errors of the connection being accepted, not of the socket; take the next one.
bool connection_error(int err) {
    switch (err) {
        case ECONNABORTED:
        case EINTR:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            return true;
        default:
            return false;
    }
}

}  // namespace

AcceptSpread::AcceptSpread(asio::io_context& io, int listen_fd,
                           std::function<void(int, bool)> deliver,
                           std::function<void(const std::string&)> report)
    : io_(io), listen_fd_(listen_fd), deliver_(std::move(deliver)), report_(std::move(report)) {}

AcceptSpread::~AcceptSpread() { stop(); }

bool AcceptSpread::start(std::string& error) {
    spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (epoll_fd_ < 0 || stop_fd_ < 0) {
        error = std::string("cannot make the accept wait set: ") + strerror(errno);
        return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = stop_fd_;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev) != 0 || !arm()) {
        error = std::string("cannot watch the listening socket: ") + strerror(errno);
        return false;
    }
    // Signals stay with the loop's thread (Asio's signal_set).
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    try {
        thread_ = std::thread([this] { run(); });
    } catch (const std::system_error& e) {
        error = std::string("cannot start the accept thread: ") + e.what();
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return thread_.joinable();
}

void AcceptSpread::stop() {
    if (thread_.joinable()) {
        gate_.store(kStopped);
        gate_.notify_all();
        std::uint64_t one = 1;
        [[maybe_unused]] ssize_t n = write(stop_fd_, &one, sizeof one);
        thread_.join();
    }
    for (int* fd : {&epoll_fd_, &stop_fd_, &listen_fd_, &spare_fd_}) {
        if (*fd >= 0) close(*fd);
        *fd = -1;
    }
}

bool AcceptSpread::arm() {
    // EPOLL_CTL_MOD is not allowed with EPOLLEXCLUSIVE; DEL + ADD also moves the entry to the
    // tail. In between the other workers are still registered, and ADD reports a client that
    // arrived meanwhile (level-triggered), so none is missed.
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.fd = listen_fd_;
    return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) == 0;
}

bool AcceptSpread::wait_taken() {
    for (int g = gate_.load(); g != kTaken; g = gate_.load()) {
        if (g == kStopped) return false;
        gate_.wait(g);
    }
    return true;
}

void AcceptSpread::back_off() {
    pollfd p{stop_fd_, POLLIN, 0};
    poll(&p, 1, 100);
}

void AcceptSpread::run() {
    std::array<epoll_event, 2> events{};
    for (;;) {
        int n = epoll_wait(epoll_fd_, events.data(), events.size(), -1);
        if (gate_.load() == kStopped) return;
        if (n < 0 && errno != EINTR) {
            std::string why = std::string("epoll_wait on the listening socket: ") + strerror(errno);
            asio::post(io_, [this, why] { report_(why); });
            back_off();
            continue;
        }
        std::array<int, kBurst> batch{};
        int count = 0, err = 0;
        bool out_of_fds = false;
        while (count < kBurst) {
            int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0 && (errno == EMFILE || errno == ENFILE) && spare_fd_ >= 0 && count == 0) {
                // The spare descriptor makes room to accept this client and refuse it.
                close(spare_fd_);
                spare_fd_ = -1;
                fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0) {
                    batch[static_cast<std::size_t>(count++)] = fd;
                    out_of_fds = true;
                    break;
                }
            }
            if (fd >= 0) {
                batch[static_cast<std::size_t>(count++)] = fd;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            } else if (!connection_error(errno)) {
                err = errno;  // EMFILE, ENFILE, ENOBUFS, ENOMEM: the client stays queued
                break;
            }
        }
        if (count > 0) {
            int expect = kTaken;
            if (!gate_.compare_exchange_strong(expect, kPending)) {
                for (int i = 0; i < count; ++i) close(batch[static_cast<std::size_t>(i)]);
                return;  // stopped meanwhile
            }
            asio::post(io_, [this, batch, count, out_of_fds] {
                for (int i = 0; i < count; ++i) {
                    deliver_(batch[static_cast<std::size_t>(i)], out_of_fds);
                }
                int pending = kPending;
                gate_.compare_exchange_strong(pending, kTaken);
                gate_.notify_all();
            });
            if (!wait_taken()) return;
        }
        // A refused client is closed by now (wait_taken()): its descriptor is the spare again.
        if (spare_fd_ < 0) spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (err != 0) {
            std::string why = std::string("accept failed: ") + strerror(err);
            asio::post(io_, [this, why] { report_(why); });
            back_off();
        }
        if (count > 0 && !arm()) {
            std::string why = std::string("cannot watch the listening socket: ") + strerror(errno);
            asio::post(io_, [this, why] { report_(why); });
            back_off();
            (void)arm();  // reported above; the next wake-up tries again
        }
    }
}

}  // namespace pgrouter
