// Creating the shared segment, publishing configuration generations into it, and taking
// consistent snapshots out of it. Writers follow the one-writer-per-field-group rule of
// shm_layout.h; nothing here blocks on another process.
#include "pgrouter/os/shm.h"

#include <unistd.h>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cstring>
#include <new>
#include <string>

#include "pgrouter/base/log.h"
#include "pgrouter/os/counters.h"
#include "pgrouter/os/seqlock.h"

namespace pgrouter {

namespace bip = boost::interprocess;

namespace {

template <std::size_t N>
void copy_string(char (&dst)[N], const std::string& src) {
    std::size_t n = std::min(src.size(), N - 1);
    std::memcpy(dst, src.data(), n);
    std::memset(dst + n, 0, N - n);
}

bool same_address(const BackendSpec& spec, const BackendConfig& b) {
    return spec.active && spec.port == b.port && b.host == spec.host;
}

}  // namespace

std::unique_ptr<SharedMemory> SharedMemory::create() {
    static int serial = 0;
    std::string name = "pgrouter." + std::to_string(getpid()) + "." + std::to_string(serial++);
    std::unique_ptr<bip::mapped_region> region;
    try {
        bip::shared_memory_object::remove(name.c_str());
        bip::shared_memory_object object(bip::create_only, name.c_str(), bip::read_write);
        object.truncate(sizeof(Segment));
        region = std::make_unique<bip::mapped_region>(object, bip::read_write);
        // Unlink at once: the mapping stays, and a crash can leave nothing behind.
        bip::shared_memory_object::remove(name.c_str());
    } catch (const bip::interprocess_exception& e) {
        bip::shared_memory_object::remove(name.c_str());
        PGR_ERROR("cannot create shared memory segment: %s", e.what());
        return nullptr;
    }
    auto* seg = new (region->get_address()) Segment();
    seg->supervisor = getpid();
    return std::unique_ptr<SharedMemory>(new SharedMemory(std::move(region), seg));
}

SharedMemory::SharedMemory(std::unique_ptr<bip::mapped_region> region, Segment* segment)
    : region_(std::move(region)), segment_(segment) {}

SharedMemory::~SharedMemory() { segment_->~Segment(); }

bool publish_config(Segment& seg, const Config& config, int workers) {
    if (config.backends.size() > static_cast<std::size_t>(kMaxBackends)) {
        PGR_ERROR("%zu backends configured; at most %d fit (restart required)",
                  config.backends.size(), kMaxBackends);
        return false;
    }
    // Assign slots: keep the slot of every backend that stays, free the others.
    int slot_of[kMaxBackends];
    bool taken[kMaxBackends] = {};
    for (std::size_t i = 0; i < config.backends.size(); ++i) {
        slot_of[i] = -1;
        for (int s = 0; s < kMaxBackends; ++s) {
            if (!taken[s] && same_address(seg.backends[s].spec, config.backends[i])) {
                slot_of[i] = s;
                taken[s] = true;
                break;
            }
        }
    }
    for (std::size_t i = 0; i < config.backends.size(); ++i) {
        if (slot_of[i] >= 0) continue;
        for (int s = 0; s < kMaxBackends; ++s) {
            if (!taken[s]) {
                slot_of[i] = s;
                taken[s] = true;
                break;
            }
        }
    }

    SharedSettings& st = seg.settings;
    RoutingSettings& rt = seg.routing;
    seq_write_begin(seg.settings_seq);
    st.generation += 1;
    st.log_level = config.log;
    st.workers = workers;
    rt.health_timeout_ms = config.health.timeout.count();
    rt.max_message_size = static_cast<std::uint32_t>(config.max_message_size);
    rt.classify_limit = static_cast<std::uint32_t>(config.classify_limit);
    rt.ryw_user = config.ryw_user;
    rt.pool.enabled = config.pool.enabled;
    rt.pool.transaction = config.pool.mode == PoolMode::Transaction;
    rt.pool.size = config.pool.size;
    rt.pool.min_idle = config.pool.min_idle;
    rt.pool.max_clients = config.pool.max_clients;
    rt.pool.wait_timeout_ms = config.pool.wait_timeout.count();
    rt.pool.idle_timeout_ms = config.pool.idle_timeout.count();
    rt.pool.lifetime_ms = config.pool.lifetime.count();
    st.health_timeout_ms = rt.health_timeout_ms;
    st.health_check_ms = config.health.check.count();
    st.lag_interval_ms = config.health.lag_interval.count();
    st.shutdown_timeout_ms = config.shutdown_timeout.count();
    copy_string(st.health_database, config.health.database);
    copy_string(st.health_username, config.health.username);
    copy_string(st.health_password, config.health.password);
    copy_string(st.hba_path, config.hba);
    copy_string(st.authdb_path, config.authdb);
    st.tls_enabled = config.tls.enabled;
    copy_string(st.tls_cert, config.tls.cert);
    copy_string(st.tls_key, config.tls.key);
    copy_string(st.tls_ca, config.tls.ca);
    copy_string(st.tls_ciphers, config.tls.ciphers);
    st.log_connections = config.log_connections;
    std::string admins;
    for (const std::string& name : config.admin_users) admins += (admins.empty() ? "" : ",") + name;
    copy_string(st.admin_users, admins);
    for (int s = 0; s < kMaxBackends; ++s) {
        if (!taken[s]) seg.backends[s].spec.active = false;
    }
    for (std::size_t i = 0; i < config.backends.size(); ++i) {
        const BackendConfig& b = config.backends[i];
        BackendSpec& spec = seg.backends[slot_of[i]].spec;
        if (!same_address(spec, b)) spec.epoch += 1;  // a new occupant: old health is stale
        spec.active = true;
        copy_string(spec.host, b.host);
        spec.port = b.port;
        spec.tls = b.tls;
        spec.lag_threshold = b.lag;
        spec.staleness_ns = b.staleness.count() > 0 ? b.staleness.count() * 1000000 : INT64_MAX;
        spec.weight = b.weight;
        spec.replstatus_port = b.replstatus_port;
        copy_string(spec.ca, b.ca);
        rt.order[i] = static_cast<std::int16_t>(slot_of[i]);
    }
    rt.backend_count = static_cast<std::int32_t>(config.backends.size());
    seq_write_end(seg.settings_seq);
    return true;
}

namespace {

constexpr std::uint64_t kUnread = ~0ULL;  // a generation no counter reaches

// Under settings_seq: the hot settings and the spec of each listed backend, in order.
void copy_backends(const Segment& seg, RoutingSettings& routing, BackendSpec* specs) {
    std::memcpy(static_cast<void*>(&routing), &seg.routing, sizeof(RoutingSettings));
    int n = std::clamp<int>(routing.backend_count, 0, kMaxBackends);
    for (int i = 0; i < n; ++i) {
        int slot = std::clamp<int>(routing.order[i], 0, kMaxBackends - 1);
        std::memcpy(static_cast<void*>(&specs[i]), &seg.backends[slot].spec, sizeof(BackendSpec));
    }
}

// The entries copy_backends read, health not read yet.
void set_backends(const RoutingSettings& routing, const BackendSpec* specs,
                  std::vector<BackendView>& out) {
    int n = std::clamp<int>(routing.backend_count, 0, kMaxBackends);
    out.resize(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        BackendView& v = out[static_cast<std::size_t>(i)];
        v.slot = std::clamp<int>(routing.order[i], 0, kMaxBackends - 1);
        v.spec = specs[i];
        v.health = BackendHealth{};
    }
}

// Reads the entry's health when its counter moved since `seen` (and notes the new one). A
// record of the slot's previous occupant, or one a writer keeps busy, reads as unchecked.
void read_health(const Segment& seg, BackendView& v, std::uint64_t& seen) {
    const BackendSlot& slot = seg.backends[v.slot];
    std::uint64_t now = slot.health_seq.seq.load(std::memory_order_acquire);
    if (now == seen) return;
    if (!seq_read(slot.health_seq, slot.health, v.health)) {
        v.health = BackendHealth{};
        seen = kUnread;
        return;
    }
    // What was read is at least as new as `now`: the next refresh re-reads if not equal.
    if (v.health.epoch != v.spec.epoch) v.health = BackendHealth{};
    seen = now;
}

}  // namespace

bool take_snapshot(const Segment& seg, Snapshot& out) {
    RoutingSettings routing;
    BackendSpec specs[kMaxBackends];
    bool ok = seq_read_with(seg.settings_seq, [&] {
        std::memcpy(static_cast<void*>(&out.settings), &seg.settings, sizeof(SharedSettings));
        copy_backends(seg, routing, specs);
    });
    if (!ok) return false;
    set_backends(routing, specs, out.backends);
    for (BackendView& v : out.backends) {
        std::uint64_t seen = kUnread;
        read_health(seg, v, seen);
    }
    return true;
}

bool refresh_routing_view(const Segment& seg, RoutingView& view) {
    std::uint64_t seq = seg.settings_seq.seq.load(std::memory_order_acquire);
    if (seq != view.settings_seq) {
        RoutingSettings routing;
        BackendSpec specs[kMaxBackends];
        if (!seq_read_with(seg.settings_seq, [&] { copy_backends(seg, routing, specs); })) {
            return false;
        }
        view.settings = routing;
        set_backends(routing, specs, view.backends);
        view.health_seq.assign(view.backends.size(), kUnread);
        view.settings_seq = seq;  // what was read is at least as new as `seq`
    }
    for (std::size_t i = 0; i < view.backends.size(); ++i) {
        read_health(seg, view.backends[i], view.health_seq[i]);
    }
    return true;
}

void reset_worker_slot(Segment& seg, int worker) {
    fold_worker_counters(seg, worker);     // its counts live on in the retired totals
    pool_reset_worker(seg.pools, worker);  // its server connections died with it
    WorkerSlot& w = seg.workers[worker];
    w.pid.store(0);
    w.clients.store(0);
    w.connections.store(0);
    w.accepted.store(0);
    w.pinned.store(0);
    w.accepting.store(false);
    auto owner = static_cast<std::uint32_t>(worker + 1);
    for (CancelSlot& c : seg.cancel) {
        if (c.owner.load(std::memory_order_relaxed) == owner) {
            c.key.store(0);
            c.owner.store(0);
        }
    }
}

void repair_after_watcher_death(Segment& seg) {
    // A record caught mid-write is half old, half new: show it as not yet checked.
    for (BackendSlot& b : seg.backends) {
        if (b.health_seq.seq.load() & 1) {
            b.health.epoch = 0;
            seq_repair(b.health_seq);
        }
    }
}

}  // namespace pgrouter
