// A blocking, byte-level PostgreSQL client for protocol edge cases that libpq will not
// produce: odd startup packets, garbage, oversized or truncated messages, stalls. Uses
// pgrouter's own codec to build and read messages.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pgrouter::test {

struct RawMessage {
    char type = 0;
    std::string payload;
};

class RawClient {
  public:
    explicit RawClient(int port);
    ~RawClient();
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    bool send(const std::string& bytes);
    // The next server message; nullopt when the server closed the connection or nothing
    // came within the deadline (see closed()).
    std::optional<RawMessage> read(std::chrono::milliseconds deadline = std::chrono::seconds(5));
    bool closed() const { return closed_; }
    // Hangs up.
    void close();
    // Reads until the server closes (true) or the deadline passes (false).
    bool wait_closed(std::chrono::milliseconds deadline = std::chrono::seconds(5));

    // StartupMessage + SCRAM/md5/cleartext login with `password`; returns every message up
    // to ReadyForQuery or the ErrorResponse that ended it.
    std::vector<RawMessage> login(
        const std::string& user, const std::string& database, const std::string& password,
        const std::vector<std::pair<std::string, std::string>>& extra = {},
        std::uint32_t version = 3u << 16);

  private:
    int fd_ = -1;
    bool closed_ = false;
    std::string buf_;
};

// The SQLSTATE (C field) and message (M field) of an ErrorResponse payload.
std::string error_code(const RawMessage& m);
std::string error_message(const RawMessage& m);
// The first message of type `type`, if any.
const RawMessage* find_message(const std::vector<RawMessage>& msgs, char type);

}  // namespace pgrouter::test
