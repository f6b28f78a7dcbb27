// Loopback sockets for tests; blocking with poll() deadlines, nothing left open on return.
#include "net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>

namespace pgrouter::test {

namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in loopback(int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, kLoopback, &a.sin_addr);
    return a;
}

struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) close(fd);
    }
};

}  // namespace

int free_port() {
    static std::mutex mu;
    static std::set<int> handed_out;
    std::lock_guard lock(mu);
    for (int attempt = 0; attempt < 100; ++attempt) {
        Fd s{socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
        if (s.fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
        sockaddr_in a = loopback(0);
        if (bind(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error(std::string("bind: ") + std::strerror(errno));
        socklen_t len = sizeof a;
        getsockname(s.fd, reinterpret_cast<sockaddr*>(&a), &len);
        int port = ntohs(a.sin_port);
        if (handed_out.insert(port).second) return port;
    }
    throw std::runtime_error("free_port: no new free port found");
}

bool port_open(int port) {
    Fd s{socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (s.fd < 0) return false;
    sockaddr_in a = loopback(port);
    return connect(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

std::string read_tcp(int port, const std::string& request, std::chrono::milliseconds deadline) {
    auto end = Clock::now() + deadline;
    auto left_ms = [&] {
        auto l = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
        return static_cast<int>(std::max<long>(0, l.count()));
    };
    Fd s{socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (s.fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in a = loopback(port);
    if (connect(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        throw std::runtime_error("connect 127.0.0.1:" + std::to_string(port) + ": " +
                                 std::strerror(errno));
    size_t off = 0;
    while (off < request.size()) {
        ssize_t n = send(s.fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
        off += static_cast<size_t>(n);
    }
    std::string out;
    char buf[16384];
    for (;;) {
        pollfd p{s.fd, POLLIN, 0};
        int ms = left_ms();
        if (ms == 0) throw std::runtime_error("read_tcp: no EOF before the deadline");
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        ssize_t n = recv(s.fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
        if (n == 0) return out;
        out.append(buf, static_cast<size_t>(n));
    }
}

}  // namespace pgrouter::test
