// A session's counting and its SHOW CLIENTS row (see session_stats.h). Every write goes to
// this worker's own block of the segment: relaxed load+store per counter (one writer), the
// row's identity under its sequence counter once at login, its activity as single stores.
// Never allocates on the unit path; the disconnection line is built only when it is logged.
#include "pgrouter/worker/session_stats.h"

#include <time.h>

#include <cstdio>
#include <cstring>

#include "pgrouter/base/clock.h"
#include "pgrouter/os/counters.h"
#include "pgrouter/os/seqlock.h"
#include "pgrouter/worker/frontdoor.h"
#include "pgrouter/worker/session_log.h"

namespace pgrouter {

namespace {

template <std::size_t N>
void copy_text(char (&dst)[N], std::string_view src) {
    std::size_t n = std::min(src.size(), N - 1);
    std::memcpy(dst, src.data(), n);
    std::memset(dst + n, 0, N - n);
}

std::int64_t realtime_ms() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool valid_slot(int slot) { return slot >= 0 && slot < kMaxBackends; }

SessionActivity activity_of(proto::TransactionStatus status) {
    switch (status) {
        case proto::TransactionStatus::InTransaction:
            return SessionActivity::IdleInTransaction;
        case proto::TransactionStatus::Failed:
            return SessionActivity::FailedTransaction;
        case proto::TransactionStatus::Idle:
            break;
    }
    return SessionActivity::Idle;
}

// For a backend slot out of range (never expected): counted nowhere.
std::atomic<std::int64_t> unplaced_connections{0};

}  // namespace

std::string session_time_text(std::int64_t ns) {
    std::int64_t ms = std::max<std::int64_t>(0, ns / 1000000);
    char text[48];
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld.%03lld",
                  static_cast<long long>(ms / 3600000), static_cast<long long>(ms / 60000 % 60),
                  static_cast<long long>(ms / 1000 % 60), static_cast<long long>(ms % 1000));
    return text;
}

SessionStats::SessionStats(WorkerEnv& env)
    : env_(env), counters_(env.counters), started_ns_(now_ns()) {}

SessionStats::~SessionStats() {
    if (row_ != nullptr) row_->activity.store(SessionActivity::Idle, std::memory_order_relaxed);
}

void SessionStats::opened(int index, std::uint64_t id, const ClientLogin& login, bool tls) {
    if (index < 0 || index >= kCancelSlots) return;
    row_ = &env_.seg.sessions[index];
    seq_write_begin(row_->seq);
    SessionIdentity& who = row_->identity;
    who.id = id;
    who.connected_at_ms = realtime_ms() - (now_ns() - started_ns_) / 1000000;
    who.tls = tls;
    copy_text(who.user, login.params.user);
    copy_text(who.database, login.params.database);
    copy_text(who.address, login.host);
    seq_write_end(row_->seq);
    row_->activity.store(SessionActivity::Idle, std::memory_order_relaxed);
    row_->pins.store(0, std::memory_order_relaxed);
}

std::atomic<std::int64_t>& SessionStats::logged_in(int slot) {
    if (!valid_slot(slot)) return unplaced_connections;
    bump(counters_.backends[slot].logins);
    return counters_.backends[slot].connections;
}

std::int64_t SessionStats::unit_sent(int slot, std::string_view reason) {
    std::int64_t now = now_ns();
    units_ += 1;
    if (valid_slot(slot)) bump(counters_.backends[slot].units[reason_label(reason)]);
    if (row_ != nullptr) row_->activity.store(SessionActivity::Active, std::memory_order_relaxed);
    return now;
}

void SessionStats::unit_done(int slot, std::int64_t sent_ns, proto::TransactionStatus status) {
    if (row_ != nullptr) row_->activity.store(activity_of(status), std::memory_order_relaxed);
    if (!valid_slot(slot) || sent_ns == 0) return;
    std::int64_t took = std::max<std::int64_t>(0, now_ns() - sent_ns);
    BackendCounters& b = counters_.backends[slot];
    bump(b.duration[duration_bucket(took)]);
    bump(b.duration_ns, static_cast<std::uint64_t>(took));
}

void SessionStats::replayed(std::string_view sqlstate) {
    bump(counters_.replays[replay_label(sqlstate)]);
}

void SessionStats::pins(std::uint16_t pins) {
    if (row_ != nullptr) row_->pins.store(pins, std::memory_order_relaxed);
}

void SessionStats::ended(std::uint64_t id, const ClientLogin& login, std::string_view reason,
                         const Wire& client) {
    if (ended_) return;
    ended_ = true;
    if (!env_.log_connections || login.params.user.empty()) return;
    PGR_SESSION_INFO(id,
                     "disconnection: session time: %s user=%s database=%s host=%s units=%llu "
                     "bytes in=%llu out=%llu: %.*s",
                     session_time_text(now_ns() - started_ns_).c_str(), login.params.user.c_str(),
                     login.params.database.c_str(), login.host.c_str(),
                     static_cast<unsigned long long>(units_),
                     static_cast<unsigned long long>(client.bytes_in()),
                     static_cast<unsigned long long>(client.bytes_out()),
                     static_cast<int>(reason.size()), reason.data());
}

}  // namespace pgrouter
