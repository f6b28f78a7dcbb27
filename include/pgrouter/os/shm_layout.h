// The fixed layout of the shared segment: plain structs, no pointers, no allocator.
// Every field group has exactly one writer:
//   routing + settings + backends[].spec — the supervisor (start, SIGHUP), under settings_seq
//   backends[].health           — the watcher, under that backend's health seq
//   workers[i]                  — worker i only (the supervisor zeroes it before a respawn)
//   cancel[], sessions[]        — a slot belongs to the worker whose index it carries
//   counters[i]                 — worker i only; folded into `retired` by the supervisor
//   retired                     — the supervisor only, under retired_seq
//   pools                       — see pool_table.h (per-worker counts, one robust lock)
// Readers never lock: they copy under a sequence counter and retry (see seqlock.h), so a
// child killed at any instant cannot strand a lock that a reader waits for. The counters are
// also the generations readers compare to copy only what changed (RoutingView in shm.h).
// No lock orders the supervisor against the watcher either: a slot that changes hands gets a
// new spec epoch, and a health record carrying an older epoch reads as unchecked.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/interprocess/sync/interprocess_semaphore.hpp>
#include <cstdint>

#include "pgrouter/config/config.h"
#include "pgrouter/os/pool_table.h"

namespace pgrouter {

inline constexpr std::uint64_t kShmMagic = 0x7067726f75746572ULL;  // "pgrouter"
inline constexpr std::uint32_t kShmLayoutVersion = 9;
inline constexpr int kMaxBackends = 64;
inline constexpr int kMaxWorkers = 256;
inline constexpr int kCancelSlots = 1 << 16;
inline constexpr int kHostLen = 256;
inline constexpr int kNameLen = 64;
inline constexpr int kSecretLen = 256;
inline constexpr int kPathLen = 1024;

// A sequence counter: odd while its writer is updating. See seqlock.h.
struct alignas(64) SeqCount {
    std::atomic<std::uint64_t> seq{0};
};

enum class BackendStatus : std::uint8_t { Starting, Ok, Failed };
// The spec's word for a status, as the monitor dump and the console show it.
constexpr const char* status_name(BackendStatus status) {
    return status == BackendStatus::Ok       ? "OK"
           : status == BackendStatus::Failed ? "FAILED"
                                             : "STARTING";
}
enum class BackendRole : std::uint8_t { Unknown, Master, Slave };
// Why a reachable backend takes no work: the loser of a split brain, a server of another
// cluster, or a standby not provably following the current master (another timeline, ahead
// of it, or no WAL arriving).
enum class FenceReason : std::uint8_t { None, SplitBrain, Foreign, NotFollowing };

// What the supervisor publishes about a configured backend.
struct BackendSpec {
    bool active = false;
    // Bumped by the supervisor each time the slot is given to a different host:port, so a
    // health record written for the previous occupant is recognised as stale.
    std::uint32_t epoch = 0;
    char host[kHostLen] = {};
    std::uint16_t port = 0;
    TlsMode tls = TlsMode::Off;
    std::uint64_t lag_threshold = 0;
    std::int64_t staleness_ns = INT64_MAX;  // `staleness`: time lag a reader accepts; unset: none
    std::uint32_t weight = 0;
    std::uint16_t replstatus_port = 0;
    char ca[kPathLen] = {};
};

// What the watcher measured. Valid only while epoch equals the spec's epoch.
struct BackendHealth {
    std::uint32_t epoch = 0;
    BackendStatus status = BackendStatus::Starting;
    BackendRole role = BackendRole::Unknown;
    bool fenced = false;  // fence != None: never routed to, shown FAILED
    FenceReason fence = FenceReason::None;
    std::uint64_t lag = 0;  // bytes behind the master; 0 on the master
    // How long ago the master was where this standby's replay is (time_lag.h); 0 on the
    // master and on a standby that has replayed everything the master has written.
    std::int64_t lag_ns = 0;
    std::uint64_t lsn = 0;          // master: current WAL position; standby: replay position
    std::uint64_t receive_lsn = 0;  // standby only
    std::uint32_t timeline = 0;
    std::uint64_t system_identifier = 0;
    std::int64_t sampled_at_ns = 0;  // CLOCK_MONOTONIC of the sample
    std::int64_t checked_at_ns = 0;  // CLOCK_MONOTONIC of the last full check
};

struct BackendSlot {
    BackendSpec spec;  // under Segment::settings_seq
    SeqCount health_seq;
    BackendHealth health;
};

// The `pool` block as published (pool.enabled false: every client logs in on its own).
struct PoolSettings {
    bool enabled = false;
    bool transaction = false;  // mode transaction: a client holds connections per transaction
    std::uint32_t size = 0;
    std::uint32_t min_idle = 0;
    std::uint32_t max_clients = 0;  // applies with or without a pool block
    std::int64_t wait_timeout_ms = 0;
    std::int64_t idle_timeout_ms = 0;
    std::int64_t lifetime_ms = 0;
};

// `read-your-writes user`: per (user, database) hash, the latest commit any session of the
// pair saw (commit_floors.h).
inline constexpr std::size_t kCommitFloors = 4096;
struct CommitFloors {
    std::atomic<std::int64_t> at_ns[kCommitFloors] = {};
};

// The hot part of the supervisor's settings: what every routing decision of a session reads.
// Kept small and apart from SharedSettings so that a session never copies file paths or the
// health password.
struct RoutingSettings {
    std::int64_t health_timeout_ms = 0;  // health.timeout, also the bound of a backend login
    std::uint32_t max_message_size = 0;  // max-message-size
    std::uint32_t classify_limit = 0;    // classify-limit
    bool ryw_user = false;               // read-your-writes user
    PoolSettings pool;
    std::int32_t backend_count = 0;         // entries of `order` in use
    std::int16_t order[kMaxBackends] = {};  // slot indexes, in configuration order
};

// The cold settings that running children pick up on reload.
struct SharedSettings {
    std::uint64_t generation = 0;  // bumped on every publish
    LogLevel log_level = LogLevel::Info;
    std::int32_t workers = 0;
    std::int64_t health_timeout_ms = 0;
    std::int64_t health_check_ms = 0;
    std::int64_t lag_interval_ms = 0;
    std::int64_t shutdown_timeout_ms = 0;  // workers' drain after SIGTERM
    char health_database[kNameLen] = {};
    char health_username[kNameLen] = {};
    char health_password[kSecretLen] = {};
    char hba_path[kPathLen] = {};  // "" : the built-in rule (scram-sha-256 for all)
    char authdb_path[kPathLen] = {};
    bool tls_enabled = false;  // a `tls` block: workers build their context from these files
    char tls_cert[kPathLen] = {};
    char tls_key[kPathLen] = {};
    char tls_ca[kPathLen] = {};
    char tls_ciphers[kPathLen] = {};
    bool log_connections = false;
    char admin_users[kPathLen] = {};  // admin-users as written: NAME[,NAME...]
};

// One per worker; each counter in its own cache line, written by its worker only.
struct WorkerSlot {
    alignas(64) std::atomic<pid_t> pid{0};
    alignas(64) std::atomic<std::int64_t> clients{0};      // client sessions open now
    alignas(64) std::atomic<std::int64_t> connections{0};  // backend connections open now
    alignas(64) std::atomic<std::uint64_t> accepted{0};    // client sessions ever accepted
    alignas(64) std::atomic<std::int64_t> pinned{0};       // sessions pinned to the master now
    // Set once the worker has loaded its settings and accepts; cleared when it stops. The
    // supervisor's readiness (systemd READY=1, an upgrade's hand-over) waits for it.
    alignas(64) std::atomic<bool> accepting{false};
};

// A session's cancel key and where its current statement runs. Written by the owning
// worker only (key before owner, release), read by any worker that receives a
// CancelRequest. A torn read can at worst send the backend a key it ignores.
struct CancelSlot {
    std::atomic<std::uint32_t> owner{0};       // worker index + 1; 0: free
    std::atomic<std::int32_t> key{0};          // pgrouter's BackendKeyData secret
    std::atomic<std::int32_t> backend{-1};     // backend slot running the current statement
    std::atomic<std::int32_t> backend_pid{0};  // that backend's own BackendKeyData
    std::atomic<std::int32_t> backend_key{0};
};

// The counters behind the metrics endpoint (os/counters.h). One block per worker, written by
// that worker only with plain relaxed load+store (no read-modify-write: one writer), summed by
// readers. Units are counted by backend slot and by the router's reason, a fixed label set.
inline constexpr int kReasonLabels = 12;
inline constexpr int kDurationBuckets = 15;  // the last one is +Inf
inline constexpr int kReplayLabels = 5;

struct BackendCounters {
    std::atomic<std::uint64_t> units[kReasonLabels] = {};
    std::atomic<std::uint64_t> duration[kDurationBuckets] = {};  // per bucket, not cumulative
    std::atomic<std::uint64_t> duration_ns{0};                   // the histogram's sum
    std::atomic<std::uint64_t> logins{0};                        // successful backend logins
    std::atomic<std::int64_t> connections{0};                    // gauge: open now
};

struct alignas(64) WorkerCounters {
    BackendCounters backends[kMaxBackends];
    std::atomic<std::uint64_t> replays[kReplayLabels] = {};
    std::atomic<std::uint64_t> auth_failures{0};
    std::atomic<std::uint64_t> accepted{0};  // retired block only: WorkerSlot::accepted folded
};

// What the supervisor adds up for the processes it replaced, and counts itself.
struct RetiredCounters {
    WorkerCounters workers;  // the sum of every reaped worker's counters
    std::atomic<std::uint64_t> worker_restarts{0};
    std::atomic<std::uint64_t> reloads_ok{0};
    std::atomic<std::uint64_t> reloads_error{0};
};

// What the admin console's SHOW CLIENTS shows of a session. Same index and owner as the
// session's cancel slot (cancel[i].owner says whose it is); the identity is written once at
// login under `seq`, the activity fields are single relaxed stores.
enum class SessionActivity : std::uint8_t { Idle, Active, IdleInTransaction, FailedTransaction };

struct SessionIdentity {
    std::uint64_t id = 0;              // the worker's session id (as in its log lines)
    std::int64_t connected_at_ms = 0;  // CLOCK_REALTIME
    bool tls = false;
    char user[kNameLen] = {};
    char database[kNameLen] = {};
    char address[48] = {};
};

struct SessionSlot {
    SeqCount seq;
    SessionIdentity identity;
    std::atomic<SessionActivity> activity{SessionActivity::Idle};
    std::atomic<std::uint16_t> pins{0};  // PinReason bits (classify.h)
};

struct Segment {
    std::uint64_t magic = kShmMagic;
    std::uint32_t layout_version = kShmLayoutVersion;
    std::uint32_t size = sizeof(Segment);
    pid_t supervisor = 0;

    // Posted by workers that failed to reach a backend; the watcher waits on it.
    boost::interprocess::interprocess_semaphore recheck{0};

    SeqCount settings_seq;
    RoutingSettings routing;
    SharedSettings settings;
    BackendSlot backends[kMaxBackends];
    WorkerSlot workers[kMaxWorkers];
    CancelSlot cancel[kCancelSlots];
    SessionSlot sessions[kCancelSlots];
    WorkerCounters counters[kMaxWorkers];
    SeqCount retired_seq;
    RetiredCounters retired;
    PoolTable pools;
    CommitFloors commit_floors;
};

static_assert(kPoolWorkers == kMaxWorkers && kPoolNameLen == kNameLen);

}  // namespace pgrouter
