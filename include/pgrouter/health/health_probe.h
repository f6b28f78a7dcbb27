// One persistent libpq connection to one backend, driven without ever blocking: the watcher
// polls fd() for events(), calls on_io() when they arrive and on_deadline() once deadline_ns()
// passed. Each check ends in a HealthSample or a failure reason. The credentials live only in
// this object and in libpq: nothing here logs them, and they never reach a command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pgrouter/config/config.h"
#include "pgrouter/health/health.h"

typedef struct pg_conn PGconn;

namespace pgrouter {

// Where and as whom the watcher logs in.
struct ProbeTarget {
    std::string host;
    std::uint16_t port = 0;
    TlsMode tls = TlsMode::Off;
    std::string ca;
    std::string database;
    std::string username;
    std::string password;
    bool operator==(const ProbeTarget&) const = default;
};

// The libpq connection keywords and values for `t` (tls off → sslmode=disable, skipverify →
// require, verify → verify-full with sslrootcert = ca).
std::vector<std::pair<std::string, std::string>> probe_conninfo(const ProbeTarget& t);

// The query of a lag sample, and of a full check (the same plus the system identifier).
// Columns: in recovery, position, receive position, timeline, streaming[, system id].
const char* probe_query(bool full);

// A result row of probe_query() (null columns as nullopt) to a sample; nullopt if malformed.
[[nodiscard]] std::optional<HealthSample> parse_probe_row(
    const std::vector<std::optional<std::string>>& row, bool full);

// libpq's message (several lines, "connection to server at ... failed: FATAL:  ...") as one
// short line: the first line, without the address prefix or the severity.
std::string short_error(std::string_view libpq_message);

struct ProbeResult {
    bool ok = false;
    bool full = false;
    bool lost = false;  // the connection broke while idle: no check was running
    HealthSample sample;
    std::string error;
    // CLOCK_MONOTONIC when the query left: the sample shows the server at or after this
    // moment. Read-your-writes relies on it (a commit seen before it is covered).
    std::int64_t sent_at_ns = 0;
};

class HealthProbe {
  public:
    explicit HealthProbe(ProbeTarget target) : target_(std::move(target)) {}
    ~HealthProbe();
    HealthProbe(const HealthProbe&) = delete;
    HealthProbe& operator=(const HealthProbe&) = delete;

    const ProbeTarget& target() const { return target_; }
    bool connected() const { return phase_ == Phase::Idle || phase_ == Phase::Querying; }
    bool busy() const { return phase_ == Phase::Connecting || phase_ == Phase::Querying; }
    bool idle() const { return phase_ == Phase::Idle; }
    bool closed() const { return phase_ == Phase::Closed; }

    // Starts a check: the query on the open connection, or a new connection then a full
    // query. Returns a result at once when it fails before any I/O. Not while busy().
    [[nodiscard]] std::optional<ProbeResult> start(bool full, std::int64_t now_ns,
                                                   std::int64_t timeout_ns);
    int fd() const;        // -1: nothing to wait for
    short events() const;  // for poll()
    std::int64_t deadline_ns() const { return busy() ? deadline_ns_ : 0; }
    // After poll() reported `revents` on fd(). A result when a check ended or the idle
    // connection broke.
    [[nodiscard]] std::optional<ProbeResult> on_io(short revents);
    // A failure result (and the connection closed) if a check is still running at now_ns.
    [[nodiscard]] std::optional<ProbeResult> on_deadline(std::int64_t now_ns);
    void close();
    bool had_success() const { return had_success_; }

  private:
    enum class Phase { Closed, Connecting, Idle, Querying };

    std::optional<ProbeResult> connect();
    std::optional<ProbeResult> send_query();
    std::int64_t sent_at_ns_ = 0;
    std::optional<ProbeResult> read_results();
    ProbeResult fail(std::string_view why);
    static void on_notice(void* arg, const char* message);

    ProbeTarget target_;
    PGconn* conn_ = nullptr;
    Phase phase_ = Phase::Closed;
    bool connect_wants_write_ = true;
    bool flushing_ = false;
    bool full_ = false;
    bool had_success_ = false;
    std::int64_t deadline_ns_ = 0;
    std::int64_t timeout_ns_ = 0;
    std::string last_notice_;  // e.g. the FATAL a server sends before closing an idle session
    std::optional<HealthSample> pending_;
    std::string pending_error_;
};

}  // namespace pgrouter
