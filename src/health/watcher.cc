// The watcher process: the only writer of backend health in shared memory. One loop keeps
// every backend's health connection (and bgw_replstatus probe) in flight at once with ppoll(),
// plus an eventfd that a tiny thread signals whenever a worker posts the recheck semaphore.
// Verdicts come from HealthModel; this file schedules checks, moves bytes and publishes. It
// never holds a lock: each record is published under its own sequence counter. A watcher
// that starts over (after a crash) carries on from the records it finds in the segment, so
// clients never see a healthy backend go STARTING because the watcher was replaced.
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <map>
#include <memory>

#include "pgrouter/base/clock.h"
#include "pgrouter/base/log.h"
#include "pgrouter/health/health.h"
#include "pgrouter/health/health_probe.h"
#include "pgrouter/health/replstatus.h"
#include "pgrouter/os/child.h"
#include "pgrouter/os/seqlock.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/os/signals.h"
#include "pgrouter/os/watcher_wake.h"

namespace pgrouter {

namespace {

constexpr std::int64_t kMs = 1'000'000;
// A storm of worker posts (every client of a dead backend) costs at most this many samples.
constexpr std::int64_t kRecheckSpacingNs = 50 * kMs;
// bgw_replstatus answers without a login: cheap enough to ask this often.
constexpr std::int64_t kReplstatusIntervalNs = 100 * kMs;

bool same_health(const BackendHealth& a, const BackendHealth& b) {
    return a.epoch == b.epoch && a.status == b.status && a.role == b.role && a.fenced == b.fenced &&
           a.fence == b.fence && a.lag == b.lag && a.lag_ns == b.lag_ns && a.lsn == b.lsn &&
           a.receive_lsn == b.receive_lsn && a.timeline == b.timeline &&
           a.system_identifier == b.system_identifier && a.sampled_at_ns == b.sampled_at_ns &&
           a.checked_at_ns == b.checked_at_ns;
}

void write_health(BackendSlot& slot, const BackendHealth& h) {
    seq_write_begin(slot.health_seq);
    slot.health = h;
    seq_write_end(slot.health_seq);
}

ProbeTarget target_for(const BackendSpec& spec, const SharedSettings& settings) {
    ProbeTarget t;
    t.host = spec.host;
    t.port = spec.port;
    t.tls = spec.tls;
    t.ca = spec.ca;
    t.database = settings.health_database;
    t.username = settings.health_username;
    t.password = settings.health_password;
    return t;
}

// One configured backend as the watcher follows it.
struct Watched {
    int slot = -1;
    std::uint32_t epoch = 0;
    std::string name;
    std::unique_ptr<HealthProbe> probe;
    bool connect_now = true;  // open a connection without waiting for the next check
    bool sample_now = false;  // sample without waiting for the next tick
    bool full_due = true;     // the next query on this connection is a full check
    std::int64_t last_quick_reconnect_ns = 0;  // throttles reconnects after a lost connection
    BackendHealth published;
    std::uint16_t replstatus_port = 0;
    ReplstatusProbe replstatus;
    std::int64_t next_replstatus_ns = 0;
    BackendRole replstatus_role = BackendRole::Unknown;
    bool replstatus_warned = false;
};

class Watcher {
  public:
    explicit Watcher(Segment& seg) : seg_(seg), waker_(seg.recheck) {}
    [[noreturn]] void run();

  private:
    void refresh(std::int64_t now);
    void schedule(std::int64_t now);
    void check_deadlines(std::int64_t now);
    void wait_for_events(const sigset_t& wait_mask);
    void handle(Watched& w, std::optional<ProbeResult> result, std::int64_t now);
    void handle_replstatus(Watched& w, std::optional<ReplstatusResult> result);
    void evaluate(std::int64_t now);
    void publish(Watched& w, const BackendHealth& h);
    void start_watching(Watched& w);

    std::int64_t check_ns() const {
        return std::max<std::int64_t>(settings_.health_check_ms, 1) * kMs;
    }
    std::int64_t timeout_ns() const {
        return std::max<std::int64_t>(settings_.health_timeout_ms, 1) * kMs;
    }
    std::int64_t lag_ns() const {
        return (settings_.lag_interval_ms > 0 ? settings_.lag_interval_ms : 250) * kMs;
    }

    Segment& seg_;
    RecheckWaker waker_;
    HealthModel model_;
    SharedSettings settings_;
    std::uint64_t settings_seq_ = 1;  // odd: never a published value, so the first read loads
    std::map<int, Watched> watched_;  // by slot
    std::int64_t next_check_ns_ = 0;
    std::int64_t next_sample_ns_ = 0;
    bool recheck_pending_ = false;
    std::int64_t last_recheck_ns_ = 0;
    std::uint64_t master_changes_ = 0;  // the model's count, as last acted upon
};

// The record a previous watcher left for this occupant of the slot becomes the starting
// point; without one (a new backend, or a record torn by a crash mid-write) the backend is
// STARTING until its first check.
void Watcher::start_watching(Watched& w) {
    const BackendSlot& slot = seg_.backends[w.slot];
    BackendHealth found;
    if (seq_read(slot.health_seq, slot.health, found) && found.epoch == w.epoch &&
        found.status != BackendStatus::Starting) {
        model_.adopt(w.slot, found);
        w.published = found;
        return;
    }
    BackendHealth starting;
    starting.epoch = w.epoch;
    publish(w, starting);
}

// Follows the supervisor's configuration: a slot with a new occupant starts over as
// STARTING (its old record is overwritten at once, so nothing stale stays OK), a slot no
// longer configured is cleared (nothing to adopt should the address come back); changed
// credentials or TLS settings drop the connection and open a new one.
void Watcher::refresh(std::int64_t now) {
    std::uint64_t seq = seg_.settings_seq.seq.load(std::memory_order_acquire);
    if (seq == settings_seq_) return;
    Snapshot snap;
    if (!take_snapshot(seg_, snap)) return;
    settings_seq_ = seq;
    std::int64_t old_check = check_ns();
    settings_ = snap.settings;
    log_set_level(settings_.log_level);
    if (check_ns() < old_check) next_check_ns_ = std::min(next_check_ns_, now + check_ns());

    std::erase_if(watched_, [&](const auto& entry) {
        const Watched& w = entry.second;
        for (const BackendView& v : snap.backends) {
            if (v.slot == w.slot && v.spec.epoch == w.epoch) return false;
        }
        model_.untrack(w.slot);
        write_health(seg_.backends[w.slot], BackendHealth{});
        return true;
    });
    for (std::size_t i = 0; i < snap.backends.size(); ++i) {
        const BackendView& v = snap.backends[i];
        ProbeTarget target = target_for(v.spec, settings_);
        auto it = watched_.find(v.slot);
        if (it == watched_.end()) {
            Watched& w = watched_[v.slot];
            w.slot = v.slot;
            w.epoch = v.spec.epoch;
            w.name = Endpoint{v.spec.host, v.spec.port}.to_string();
            w.probe = std::make_unique<HealthProbe>(std::move(target));
            model_.track(w.slot, w.name, w.epoch, static_cast<int>(i));
            start_watching(w);
            it = watched_.find(v.slot);
        } else {
            model_.set_order(v.slot, static_cast<int>(i));
            if (!(target == it->second.probe->target())) {
                PGR_INFO("health settings of backend %s changed; reconnecting",
                         it->second.name.c_str());
                it->second.probe = std::make_unique<HealthProbe>(std::move(target));
                it->second.connect_now = true;
            }
        }
        Watched& w = it->second;
        if (w.replstatus_port != v.spec.replstatus_port) {
            w.replstatus.close();
            w.replstatus_port = v.spec.replstatus_port;
            w.replstatus_role = BackendRole::Unknown;
            w.replstatus_warned = false;
            w.next_replstatus_ns = now;
        }
    }
}

// Starts what is due: a full check of every backend each `check`, a lag sample of every
// connected one each lag interval or on a worker's recheck (a reconnect of every failed one,
// so a server that is back takes work within a lag interval), and the bgw_replstatus probes
// in between.
void Watcher::schedule(std::int64_t now) {
    bool full = now >= next_check_ns_;
    bool recheck = recheck_pending_ && now - last_recheck_ns_ >= kRecheckSpacingNs;
    bool sample = full || recheck || now >= next_sample_ns_;
    if (full) next_check_ns_ = now + check_ns();
    if (sample) next_sample_ns_ = now + lag_ns();
    if (recheck) {
        recheck_pending_ = false;
        last_recheck_ns_ = now;
    }
    for (auto& [slot, w] : watched_) {
        if (full) w.full_due = true;
        HealthProbe& p = *w.probe;
        if (!p.busy()) {
            bool go = p.closed() ? (sample || w.connect_now) : (sample || w.sample_now);
            if (go) {
                bool want_full = w.full_due || p.closed();
                w.connect_now = false;
                w.sample_now = false;
                w.full_due = false;
                handle(w, p.start(want_full, now, timeout_ns()), now);
            }
        }
        if (w.replstatus_port != 0 && !w.replstatus.busy() && now >= w.next_replstatus_ns) {
            w.next_replstatus_ns = now + std::min(lag_ns(), kReplstatusIntervalNs);
            handle_replstatus(w, w.replstatus.start(w.probe->target().host, w.replstatus_port, now,
                                                    timeout_ns()));
        }
    }
}

void Watcher::check_deadlines(std::int64_t now) {
    for (auto& [slot, w] : watched_) {
        handle(w, w.probe->on_deadline(now), now);
        handle_replstatus(w, w.replstatus.on_deadline(now));
    }
}

void Watcher::handle(Watched& w, std::optional<ProbeResult> result, std::int64_t now) {
    if (!result) return;
    if (result->ok) {
        // Stamped with when the query left, not when the answer came: a master position
        // sampled "after T" must have been read after T (read-your-writes).
        model_.record_sample(w.slot, result->sample,
                             result->sent_at_ns != 0 ? result->sent_at_ns : now, result->full, now);
        return;
    }
    // A connection that worked and then broke (a server restart, pg_terminate_backend, an
    // idle timeout) gets one immediate reconnect before the backend is called FAILED; a
    // stopped server refuses that at once, so detection is not delayed.
    if (result->lost && w.probe->had_success() && now - w.last_quick_reconnect_ns >= lag_ns()) {
        w.last_quick_reconnect_ns = now;
        PGR_DEBUG("health connection to %s lost (%s); reconnecting", w.name.c_str(),
                  result->error.c_str());
        w.connect_now = true;
        return;
    }
    model_.record_failure(w.slot, std::move(result->error), now);
}

// The replstatus answer only triggers an SQL check when it disagrees with the role the
// watcher holds; a failing probe is logged once and otherwise ignored.
void Watcher::handle_replstatus(Watched& w, std::optional<ReplstatusResult> result) {
    if (!result) return;
    if (!result->ok) {
        if (!w.replstatus_warned) {
            PGR_WARNING("replstatus probe of backend %s on port %u failed: %s", w.name.c_str(),
                        static_cast<unsigned>(w.replstatus_port), result->error.c_str());
            w.replstatus_warned = true;
        }
        w.replstatus_role = BackendRole::Unknown;
        return;
    }
    if (w.replstatus_warned) {
        PGR_INFO("replstatus probe of backend %s answers again", w.name.c_str());
        w.replstatus_warned = false;
    }
    const BackendHealth* h = model_.health(w.slot);
    if (h != nullptr && h->status == BackendStatus::Ok && h->role != result->role) {
        if (w.replstatus_role != result->role) {
            PGR_INFO("replstatus: backend %s reports %s; checking it now", w.name.c_str(),
                     result->role == BackendRole::Master ? "MASTER" : "STANDBY");
        }
        w.sample_now = true;
    }
    w.replstatus_role = result->role;
}

void Watcher::publish(Watched& w, const BackendHealth& h) {
    write_health(seg_.backends[w.slot], h);
    w.published = h;
}

void Watcher::evaluate(std::int64_t now) {
    for (const HealthLogLine& line : model_.evaluate(now, check_ns())) {
        PGR_LOG(line.level, "%s", line.text.c_str());
    }
    if (model_.master_changes() != master_changes_) {
        // The standbys are fenced until they show they follow the new master: ask them now.
        master_changes_ = model_.master_changes();
        for (auto& [slot, w] : watched_) w.sample_now = true;
    }
    for (auto& [slot, w] : watched_) {
        const BackendHealth* h = model_.health(slot);
        if (h != nullptr && !same_health(*h, w.published)) publish(w, *h);
    }
}

void Watcher::wait_for_events(const sigset_t& wait_mask) {
    std::vector<pollfd> fds;
    std::vector<std::pair<Watched*, bool>> owners;  // (backend, is the replstatus probe)
    fds.push_back(pollfd{waker_.fd(), POLLIN, 0});
    owners.emplace_back(nullptr, false);
    std::int64_t now = now_ns();
    std::int64_t wake = std::min(next_check_ns_, next_sample_ns_);
    if (recheck_pending_) wake = std::min(wake, last_recheck_ns_ + kRecheckSpacingNs);
    for (auto& [slot, w] : watched_) {
        if (w.probe->fd() >= 0 && w.probe->events() != 0) {
            fds.push_back(pollfd{w.probe->fd(), w.probe->events(), 0});
            owners.emplace_back(&w, false);
        }
        if (w.probe->busy()) wake = std::min(wake, w.probe->deadline_ns());
        if ((w.connect_now && !w.probe->busy()) || (w.sample_now && w.probe->idle())) wake = now;
        if (w.replstatus.busy()) {
            fds.push_back(pollfd{w.replstatus.fd(), w.replstatus.events(), 0});
            owners.emplace_back(&w, true);
            wake = std::min(wake, w.replstatus.deadline_ns());
        } else if (w.replstatus_port != 0) {
            wake = std::min(wake, w.next_replstatus_ns);
        }
    }
    std::int64_t wait = std::max<std::int64_t>(0, wake - now);
    timespec ts{static_cast<time_t>(wait / 1'000'000'000), static_cast<long>(wait % 1'000'000'000)};
    int n = ppoll(fds.data(), fds.size(), &ts, &wait_mask);
    if (n < 0) {
        if (errno == EINTR) return;
        log_sys(LogLevel::Alert, errno, "watcher: poll failed");
        _exit(1);
    }
    now = now_ns();
    for (std::size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        auto [w, replstatus] = owners[i];
        if (w == nullptr) {
            waker_.drain();
            recheck_pending_ = true;
        } else if (replstatus) {
            handle_replstatus(*w, w->replstatus.on_io(fds[i].revents));
        } else {
            handle(*w, w->probe->on_io(fds[i].revents), now);
        }
    }
}

void Watcher::run() {
    // The stop signals are blocked except inside ppoll(), so one arriving between the loop's
    // test and the wait still ends the wait.
    sigset_t stop_signals;
    sigset_t wait_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, &wait_mask);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);
    if (!waker_.start()) {
        log_sys(LogLevel::Alert, errno, "watcher: cannot start the recheck thread");
        _exit(1);
    }
    PGR_DEBUG("watcher started");
    // Nothing is scheduled before the settings are known (a publish may be under way).
    while (settings_seq_ == 1 && !stop_requested()) {
        refresh(now_ns());
        if (settings_seq_ == 1) usleep(10'000);
    }
    while (!stop_requested()) {
        std::int64_t now = now_ns();
        refresh(now);
        check_deadlines(now);
        schedule(now);
        evaluate(now);
        wait_for_events(wait_mask);
        evaluate(now_ns());
    }
    _exit(0);
}

}  // namespace

void run_watcher(const ChildContext& ctx) {
    if (ctx.listen_fd >= 0) close(ctx.listen_fd);
    if (ctx.monitor_fd >= 0) close(ctx.monitor_fd);
    if (ctx.metrics_fd >= 0) close(ctx.metrics_fd);
    install_stop_handler();
    Watcher watcher(*ctx.segment);
    watcher.run();
}

}  // namespace pgrouter
