// What a session tells the observers: its routed units (by backend and the router's reason),
// the time from sending a unit to its ReadyForQuery, backend logins and connections, replays
// on the master, its row in the admin console's SHOW CLIENTS, and with log-connections its
// disconnection line. One call per event from the session; each is a few relaxed stores into
// the worker's own counters (os/counters.h), no lock, no allocation.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "pgrouter/net/wire.h"
#include "pgrouter/os/shm_layout.h"
#include "pgrouter/proto/message.h"
#include "pgrouter/worker/worker_env.h"

namespace pgrouter {

struct ClientLogin;

class SessionStats {
  public:
    explicit SessionStats(WorkerEnv& env);
    ~SessionStats();
    SessionStats(const SessionStats&) = delete;
    SessionStats& operator=(const SessionStats&) = delete;

    // Logged in: the session's SHOW CLIENTS row is the session table's slot `index` (its
    // cancel slot's, owned by this worker).
    void opened(int index, std::uint64_t id, const ClientLogin& login, bool tls);
    // A login to backend `slot` succeeded: counted; the connection holds the returned gauge
    // (pgrouter_server_connections) for as long as it lives.
    std::atomic<std::int64_t>& logged_in(int slot);
    // A unit went to backend `slot` for `reason`; returns the time it was sent (now_ns()).
    std::int64_t unit_sent(int slot, std::string_view reason);
    // Its ReadyForQuery came back, with the session's transaction status.
    void unit_done(int slot, std::int64_t sent_ns, proto::TransactionStatus status);
    // A read refused by a standby (or lost with it: 08006) runs again on the master.
    void replayed(std::string_view sqlstate);
    void pins(std::uint16_t pins);
    std::int64_t started_ns() const { return started_ns_; }  // CLOCK_MONOTONIC of the accept
    // The session ends for `reason`; with log-connections, its disconnection line.
    void ended(std::uint64_t id, const ClientLogin& login, std::string_view reason,
               const Wire& client);

  private:
    WorkerEnv& env_;
    WorkerCounters& counters_;
    SessionSlot* row_ = nullptr;
    std::int64_t started_ns_;
    std::uint64_t units_ = 0;
    bool ended_ = false;
};

// The text of a session's duration as PostgreSQL's log_disconnections prints it: H:MM:SS.mmm.
std::string session_time_text(std::int64_t ns);

}  // namespace pgrouter
