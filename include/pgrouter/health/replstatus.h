// The bgw_replstatus role probe: a TCP connect to the extension's port, which answers
// "MASTER" or "STANDBY" and closes, so role changes are seen between SQL checks without a
// login. Non-blocking like HealthProbe: the watcher polls fd() and calls on_io/on_deadline.
// It only reports; the SQL check stays the judge of health.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pgrouter/os/shm_layout.h"

namespace pgrouter {

// "MASTER\n" → Master, "STANDBY" → Slave; nullopt for anything else.
[[nodiscard]] std::optional<BackendRole> parse_replstatus(std::string_view answer);

struct ReplstatusResult {
    bool ok = false;
    BackendRole role = BackendRole::Unknown;
    std::string error;
};

class ReplstatusProbe {
  public:
    ReplstatusProbe() = default;
    ~ReplstatusProbe();
    ReplstatusProbe(const ReplstatusProbe&) = delete;
    ReplstatusProbe& operator=(const ReplstatusProbe&) = delete;

    bool busy() const { return fd_ >= 0; }
    // Starts a probe of host:port; a result at once when it fails before any I/O.
    [[nodiscard]] std::optional<ReplstatusResult> start(const std::string& host, std::uint16_t port,
                                                        std::int64_t now_ns,
                                                        std::int64_t timeout_ns);
    int fd() const { return fd_; }
    short events() const;
    std::int64_t deadline_ns() const { return busy() ? deadline_ns_ : 0; }
    [[nodiscard]] std::optional<ReplstatusResult> on_io(short revents);
    [[nodiscard]] std::optional<ReplstatusResult> on_deadline(std::int64_t now_ns);
    void close();

  private:
    ReplstatusResult fail(std::string why);

    int fd_ = -1;
    bool connecting_ = false;
    std::int64_t deadline_ns_ = 0;
    std::string answer_;
};

}  // namespace pgrouter
