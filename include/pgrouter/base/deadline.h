// A deadline on a socket: when it passes, the socket is closed, which ends whatever read,
// write or connect is pending on it. Disarmed by destruction.
#pragma once

#include <chrono>
#include <memory>

#include "pgrouter/base/asio.h"

namespace pgrouter {

class Deadline {
  public:
    Deadline(tcp::socket& socket, std::chrono::milliseconds timeout)
        : timer_(socket.get_executor(), timeout) {
        timer_.async_wait([&socket, expired = expired_](const boost::system::error_code& e) {
            if (e) return;
            *expired = true;
            boost::system::error_code ignored;
            socket.close(ignored);
        });
    }
    ~Deadline() { timer_.cancel(); }
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;
    bool expired() const { return *expired_; }

  private:
    std::shared_ptr<bool> expired_ = std::make_shared<bool>(false);
    asio::steady_timer timer_;
};

}  // namespace pgrouter
