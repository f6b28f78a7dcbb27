// The bgw_replstatus probe: non-blocking connect, read the one-word answer until the server
// closes, parse it. Host names are resolved with getaddrinfo(), which may block; numeric
// addresses (the usual case for backends) never do.
#include "pgrouter/health/replstatus.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pgrouter {

std::optional<BackendRole> parse_replstatus(std::string_view answer) {
    while (!answer.empty() && (answer.back() == '\n' || answer.back() == '\r' ||
                               answer.back() == ' ' || answer.back() == '\0')) {
        answer.remove_suffix(1);
    }
    if (answer == "MASTER") return BackendRole::Master;
    if (answer == "STANDBY") return BackendRole::Slave;
    return std::nullopt;
}

ReplstatusProbe::~ReplstatusProbe() { close(); }

void ReplstatusProbe::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    answer_.clear();
}

ReplstatusResult ReplstatusProbe::fail(std::string why) {
    close();
    ReplstatusResult r;
    r.error = std::move(why);
    return r;
}

std::optional<ReplstatusResult> ReplstatusProbe::start(const std::string& host, std::uint16_t port,
                                                       std::int64_t now_ns,
                                                       std::int64_t timeout_ns) {
    close();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    if (rc != 0) return fail(std::string("cannot resolve ") + host + ": " + gai_strerror(rc));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return fail(std::string("socket: ") + std::strerror(errno));
    }
    rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
    int err = errno;
    freeaddrinfo(res);
    fd_ = fd;
    deadline_ns_ = now_ns + timeout_ns;
    connecting_ = true;
    if (rc == 0) {
        connecting_ = false;
    } else if (err != EINPROGRESS) {
        return fail(std::strerror(err));
    }
    return std::nullopt;
}

short ReplstatusProbe::events() const {
    if (fd_ < 0) return 0;
    return connecting_ ? POLLOUT : POLLIN;
}

std::optional<ReplstatusResult> ReplstatusProbe::on_io(short revents) {
    if (fd_ < 0) return std::nullopt;
    if (connecting_) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) return fail(std::strerror(err));
        if ((revents & (POLLOUT | POLLERR | POLLHUP)) == 0) return std::nullopt;
        connecting_ = false;
        return std::nullopt;
    }
    char buf[64];
    for (;;) {
        ssize_t n = read(fd_, buf, sizeof buf);
        if (n > 0) {
            answer_.append(buf, static_cast<std::size_t>(n));
            if (answer_.size() > 256) return fail("answer too long");
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return std::nullopt;
        if (n < 0) return fail(std::strerror(errno));
        break;  // EOF: the whole answer is in
    }
    std::optional<BackendRole> role = parse_replstatus(answer_);
    std::string answer = answer_;
    close();
    if (!role) return fail("unexpected answer \"" + answer.substr(0, 32) + "\"");
    ReplstatusResult r;
    r.ok = true;
    r.role = *role;
    return r;
}

std::optional<ReplstatusResult> ReplstatusProbe::on_deadline(std::int64_t now_ns) {
    if (fd_ < 0 || now_ns < deadline_ns_) return std::nullopt;
    return fail("timeout: no answer");
}

}  // namespace pgrouter
