// Listening sockets: resolve, bind with SO_REUSEADDR, listen. Called by the supervisor
// before it forks, so every child inherits the same descriptor.
#include "pgrouter/os/listener.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pgrouter {

namespace {

constexpr int kBacklog = 4096;

int try_bind(const addrinfo* ai, std::string& error) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        error = std::string("socket: ") + strerror(errno);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) {
        int zero = 0;  // "*" on IPv6 also takes IPv4 clients
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, kBacklog) != 0) {
        error = strerror(errno);
        close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

int bind_listener(const Endpoint& where, std::string& error) {
    bool any = where.host == "*" || where.host.empty();
    std::string port = std::to_string(where.port);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_family = any ? AF_INET6 : AF_UNSPEC;
    addrinfo* list = nullptr;
    int rc = getaddrinfo(any ? nullptr : where.host.c_str(), port.c_str(), &hints, &list);
    if (rc != 0 && any) {
        hints.ai_family = AF_INET;
        rc = getaddrinfo(nullptr, port.c_str(), &hints, &list);
    }
    if (rc != 0) {
        error = "cannot resolve " + where.to_string() + ": " + gai_strerror(rc);
        return -1;
    }
    int fd = -1;
    for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
        fd = try_bind(ai, error);
    }
    freeaddrinfo(list);
    if (fd < 0 && any) {  // no IPv6 on this host
        Endpoint v4{"0.0.0.0", where.port};
        return bind_listener(v4, error);
    }
    if (fd < 0) error = "cannot listen on " + where.to_string() + ": " + error;
    return fd;
}

}  // namespace pgrouter
