// The watcher's verdicts: status, role, lag, split brain, foreign servers and standbys that
// do not follow the master, computed from the latest check results alone. Pure: no I/O, no clock,
// no logging (it returns the lines to log), so every rule here is unit-tested.
#include "pgrouter/health/health.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <utility>

namespace pgrouter {

namespace {

const char* role_name(BackendRole role) { return role == BackendRole::Master ? "master" : "slave"; }

template <class... Args>
std::string format(const char* fmt, Args... args) {
    int n = std::snprintf(nullptr, 0, fmt, args...);
    std::string out(static_cast<std::size_t>(std::max(n, 0)), '\0');
    std::snprintf(out.data(), out.size() + 1, fmt, args...);
    return out;
}

}  // namespace

std::uint64_t standby_lag(std::uint64_t master_lsn, std::uint64_t replay_lsn) {
    return master_lsn > replay_lsn ? master_lsn - replay_lsn : 0;
}

HealthModel::Tracked* HealthModel::find(int key) {
    for (Tracked& t : backends_) {
        if (t.key == key) return &t;
    }
    return nullptr;
}

const HealthModel::Tracked* HealthModel::find(int key) const {
    for (const Tracked& t : backends_) {
        if (t.key == key) return &t;
    }
    return nullptr;
}

void HealthModel::track(int key, std::string name, std::uint32_t epoch, int order) {
    untrack(key);
    Tracked t;
    t.key = key;
    t.name = std::move(name);
    t.epoch = epoch;
    t.order = order;
    t.published.epoch = epoch;
    backends_.push_back(std::move(t));
}

void HealthModel::untrack(int key) {
    std::erase_if(backends_, [key](const Tracked& t) { return t.key == key; });
    if (master_ == key) master_ = -1;
    if (previous_master_ == key) previous_master_ = -1;
}

void HealthModel::set_order(int key, int order) {
    if (Tracked* t = find(key)) t->order = order;
}

void HealthModel::record_sample(int key, const HealthSample& sample, std::int64_t now_ns, bool full,
                                std::int64_t answered_ns) {
    Tracked* t = find(key);
    if (t == nullptr) return;
    t->advancing = t->has_sample && sample.in_recovery && sample.lsn > t->sample.lsn;
    t->measured = BackendStatus::Ok;
    t->has_sample = true;
    if (sample.system_identifier != 0) t->system_identifier = sample.system_identifier;
    t->sample = sample;
    t->sample.system_identifier = t->system_identifier;
    t->failure.clear();
    t->sampled_at_ns = now_ns;
    t->answered_at_ns = std::max(answered_ns, now_ns);
    if (full) t->checked_at_ns = now_ns;
}

void HealthModel::record_failure(int key, std::string reason, std::int64_t now_ns) {
    Tracked* t = find(key);
    if (t == nullptr) return;
    t->measured = BackendStatus::Failed;
    t->failure = std::move(reason);
    t->checked_at_ns = now_ns;
}

void HealthModel::adopt(int key, const BackendHealth& h) {
    Tracked* t = find(key);
    if (t == nullptr || h.epoch != t->epoch) return;
    // A fenced backend answered its checks: it is the verdict, not the measurement, that
    // says FAILED. The fence itself is derived again from the figures.
    t->measured = h.fenced ? BackendStatus::Ok : h.status;
    t->has_sample = h.role != BackendRole::Unknown;
    t->sample.in_recovery = h.role == BackendRole::Slave;
    t->sample.lsn = h.lsn;
    t->sample.receive_lsn = h.receive_lsn;
    t->sample.timeline = h.timeline;
    // Only a standby seen following its master was published unfenced.
    t->sample.streaming = t->sample.in_recovery && h.fence != Fence::NotFollowing;
    t->sample.system_identifier = h.system_identifier;
    t->system_identifier = h.system_identifier;
    t->sampled_at_ns = h.sampled_at_ns;
    t->answered_at_ns = h.sampled_at_ns;
    t->checked_at_ns = h.checked_at_ns;
    t->advancing = false;
    t->fence = h.fence;
    t->published = h;
    t->logged_status = h.status;
    if (h.status == BackendStatus::Ok) t->logged_role = h.role;
    t->logged_fence = h.fence;
    if (h.status == BackendStatus::Ok && h.role == BackendRole::Master && !h.fenced) {
        master_ = key;
        previous_master_ = key;
        last_master_lsn_ = h.lsn;
    }
}

// The cluster's system identifier: the one most backends report (a failed backend votes
// with the last one it reported; ties go to the backend configured first). Undecided (0)
// while the vote could still change with backends that never answered yet, so a foreign
// server answering first cannot be taken for the cluster.
std::uint64_t HealthModel::decide_system_identifier() const {
    struct Vote {
        std::uint64_t id;
        int count;
        int first_order;
    };
    std::vector<Vote> votes;
    bool all_reported = true;
    for (const Tracked& t : backends_) {
        if (t.measured == BackendStatus::Starting) all_reported = false;
        if (t.system_identifier == 0) continue;
        auto it = std::find_if(votes.begin(), votes.end(),
                               [&](const Vote& v) { return v.id == t.system_identifier; });
        if (it == votes.end()) {
            votes.push_back(Vote{t.system_identifier, 1, t.order});
        } else {
            it->count += 1;
            it->first_order = std::min(it->first_order, t.order);
        }
    }
    if (votes.empty()) return 0;
    const Vote* best = &votes.front();
    for (const Vote& v : votes) {
        if (v.count > best->count || (v.count == best->count && v.first_order < best->first_order))
            best = &v;
    }
    bool majority = best->count * 2 > static_cast<int>(backends_.size());
    return (majority || all_reported) ? best->id : 0;
}

// Among healthy backends of the cluster that are not in recovery: the highest timeline wins;
// on equal timelines the previous master keeps its place, then the most advanced, then the
// one configured first.
int HealthModel::choose_master(std::uint64_t cluster_id) const {
    const Tracked* best = nullptr;
    for (const Tracked& t : backends_) {
        if (t.measured != BackendStatus::Ok || !t.has_sample || t.sample.in_recovery ||
            t.system_identifier != cluster_id) {
            continue;
        }
        if (best == nullptr) {
            best = &t;
            continue;
        }
        if (t.sample.timeline != best->sample.timeline) {
            if (t.sample.timeline > best->sample.timeline) best = &t;
            continue;
        }
        if ((t.key == previous_master_) != (best->key == previous_master_)) {
            if (t.key == previous_master_) best = &t;
            continue;
        }
        if (t.sample.lsn != best->sample.lsn) {
            if (t.sample.lsn > best->sample.lsn) best = &t;
            continue;
        }
        if (t.order < best->order) best = &t;
    }
    return best == nullptr ? -1 : best->key;
}

// Why `standby` is not provably following `master`: nullopt when it is, "" while it has not
// been sampled since the master changed. Positions of two servers are compared only when
// the master's was read after the standby's answer: a standby sampled later may be ahead
// of an older master sample without being ahead of the master.
std::optional<std::string> HealthModel::why_not_following(const Tracked& standby,
                                                          const Tracked& master) const {
    const HealthSample& s = standby.sample;
    if (standby.sampled_at_ns < master_since_ns_) return std::string();
    if (s.timeline != master.sample.timeline) {
        return format("it is on timeline %u, the master %s on timeline %u", s.timeline,
                      master.name.c_str(), master.sample.timeline);
    }
    if (s.lsn > master.sample.lsn && master.sampled_at_ns > standby.answered_at_ns) {
        return format("it has replayed up to %s, past the master's %s", format_lsn(s.lsn).c_str(),
                      format_lsn(master.sample.lsn).c_str());
    }
    if (!s.streaming && !standby.advancing) {
        return std::string("its WAL receiver is not streaming and its replay does not advance");
    }
    return std::nullopt;
}

std::vector<HealthLogLine> HealthModel::evaluate(std::int64_t now_ns, std::int64_t repeat_ns) {
    std::vector<HealthLogLine> out;
    std::uint64_t cluster_id = decide_system_identifier();
    int master_key = cluster_id != 0 ? choose_master(cluster_id) : -1;
    const Tracked* master = find(master_key);
    if (master != nullptr && previous_master_ >= 0 && master_key != previous_master_) {
        // Promoted before its first sample as master was sent: standbys sampled since then
        // show whether they follow it.
        master_since_ns_ = master->sampled_at_ns;
        master_changes_ += 1;
        history_.clear();
    }
    if (master != nullptr && master->has_sample) {
        history_.record(master->sample.lsn, master->sampled_at_ns);
    }

    // Lag is measured against the master's position. Without a master, against the furthest
    // position known: a paused standby still shows how far it trails the others.
    std::uint64_t reference = last_master_lsn_;
    if (master != nullptr) {
        reference = master->sample.lsn;
        last_master_lsn_ = reference;
    } else {
        for (const Tracked& t : backends_) {
            if (t.measured == BackendStatus::Ok && t.has_sample && t.sample.in_recovery &&
                t.system_identifier == cluster_id) {
                reference = std::max({reference, t.sample.lsn, t.sample.receive_lsn});
            }
        }
    }

    for (Tracked& t : backends_) {
        bool same_cluster = t.system_identifier == cluster_id;
        if (cluster_id != 0 && t.system_identifier != 0 && !same_cluster) {
            t.fence = Fence::Foreign;
        } else if (master != nullptr && t.key != master_key && t.measured == BackendStatus::Ok &&
                   t.has_sample && !t.sample.in_recovery) {
            t.fence = Fence::SplitBrain;
        } else if (master != nullptr && t.measured == BackendStatus::Ok && t.has_sample &&
                   t.sample.in_recovery) {
            std::optional<std::string> why = why_not_following(t, *master);
            t.fence = why ? Fence::NotFollowing : Fence::None;
            t.not_following = why.value_or(std::string());
        } else {
            t.fence = Fence::None;
        }

        BackendHealth h;
        h.epoch = t.epoch;
        if (t.measured == BackendStatus::Failed || t.fence != Fence::None) {
            h.status = BackendStatus::Failed;
        } else if (t.measured == BackendStatus::Ok && cluster_id != 0 && same_cluster) {
            h.status = BackendStatus::Ok;
        } else {
            h.status = BackendStatus::Starting;  // not checked, or its cluster not known yet
        }
        if (t.has_sample) {
            h.role = t.sample.in_recovery ? BackendRole::Slave : BackendRole::Master;
            h.lag = t.sample.in_recovery ? standby_lag(reference, t.sample.lsn) : 0;
            h.lag_ns = t.sample.in_recovery ? history_.lag_ns(t.sample.lsn, t.sampled_at_ns) : 0;
            h.lsn = t.sample.lsn;
            h.receive_lsn = t.sample.receive_lsn;
            h.timeline = t.sample.timeline;
        }
        h.fenced = t.fence != Fence::None;
        h.fence = t.fence;
        h.system_identifier = t.system_identifier;
        h.sampled_at_ns = t.sampled_at_ns;
        h.checked_at_ns = t.checked_at_ns;
        t.published = h;
        log_changes(t, master, cluster_id, now_ns, repeat_ns, out);
    }

    master_ = master_key;
    if (master_key >= 0) previous_master_ = master_key;
    if (cluster_id != 0) {
        if (master_key < 0 && !no_master_logged_) {
            out.push_back({LogLevel::Warning,
                           "no master backend: writes will fail until a backend is promoted"});
        }
        no_master_logged_ = master_key < 0;
    }
    return out;
}

void HealthModel::log_changes(Tracked& t, const Tracked* master, std::uint64_t cluster_id,
                              std::int64_t now_ns, std::int64_t repeat_ns,
                              std::vector<HealthLogLine>& out) {
    const BackendHealth& h = t.published;
    bool repeat = t.fence == Fence::SplitBrain && now_ns - t.fence_logged_ns >= repeat_ns;
    // A standby merely not sampled since the master changed is fenced without a word: what
    // was logged stays the reference, so a standby that passes its check logs nothing.
    if (t.fence == Fence::NotFollowing && t.not_following.empty()) return;
    if (t.fence != t.logged_fence || repeat) {
        const char* name = t.name.c_str();
        if (t.fence == Fence::NotFollowing) {
            out.push_back({LogLevel::Warning,
                           format("backend %s is fenced: it does not follow the master (%s); not "
                                  "routing to it",
                                  name, t.not_following.c_str())});
        } else if (t.fence == Fence::Foreign) {
            out.push_back(
                {LogLevel::Error, format("backend %s is fenced: its system identifier %" PRIu64
                                         " differs from the cluster's %" PRIu64
                                         " (a server of another cluster?); not routing to it",
                                         name, t.system_identifier, cluster_id)});
        } else if (t.fence == Fence::SplitBrain && master != nullptr) {
            out.push_back(
                {LogLevel::Error,
                 format("split brain: backend %s is not in recovery (timeline %u) while %s is "
                        "the master (timeline %u); not routing to %s",
                        name, t.sample.timeline, master->name.c_str(), master->sample.timeline,
                        name)});
        } else if (t.fence == Fence::None) {
            out.push_back({LogLevel::Notice, format("backend %s is no longer fenced", name)});
        }
        t.logged_fence = t.fence;
        t.fence_logged_ns = now_ns;
    }

    bool role_changed = h.status == BackendStatus::Ok && h.role != t.logged_role;
    if (h.status != t.logged_status || role_changed) {
        const char* name = t.name.c_str();
        if (h.status == BackendStatus::Ok) {
            if (t.logged_status == BackendStatus::Ok && h.role == BackendRole::Master) {
                out.push_back(
                    {LogLevel::Notice, format("backend %s was promoted: now master on timeline %u",
                                              name, h.timeline)});
            } else if (t.logged_status == BackendStatus::Ok) {
                out.push_back(
                    {LogLevel::Notice, format("backend %s is now a slave (was master)", name)});
            } else {
                out.push_back({LogLevel::Notice,
                               format("backend %s is now OK (%s)", name, role_name(h.role))});
            }
        } else if (h.status == BackendStatus::Failed && !h.fenced) {
            out.push_back({LogLevel::Warning,
                           format("backend %s is now FAILED: %s", name, t.failure.c_str())});
            t.logged_failure = t.failure;
        }
        t.logged_status = h.status;
        if (h.status == BackendStatus::Ok) t.logged_role = h.role;
    } else if (h.status == BackendStatus::Failed && !h.fenced && t.failure != t.logged_failure) {
        out.push_back({LogLevel::Info, format("backend %s is still FAILED: %s", t.name.c_str(),
                                              t.failure.c_str())});
        t.logged_failure = t.failure;
    }
}

const BackendHealth* HealthModel::health(int key) const {
    const Tracked* t = find(key);
    return t == nullptr ? nullptr : &t->published;
}

}  // namespace pgrouter
