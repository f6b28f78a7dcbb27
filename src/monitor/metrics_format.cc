// Pure formatting of the metrics exposition (see metrics.h). Counters come summed over the
// live workers and the retired totals (os/counters.h), so they never go down when a worker
// is replaced; gauges come from the live workers and the watcher's last verdict.
#include <charconv>
#include <cmath>

#include "pgrouter/base/version.h"
#include "pgrouter/monitor/metrics.h"

namespace pgrouter {

namespace {

class Exposition {
  public:
    // Starts a metric family.
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    // One sample; `labels` is already formatted: `a="x",b="y"` or empty.
    void sample(std::string_view name, std::string_view labels, double value) {
        write(name, labels, number(value));
    }
    void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
        write(name, labels, std::to_string(value));
    }
    void sample(std::string_view name, std::string_view labels, std::int64_t value) {
        write(name, labels, std::to_string(value));
    }
    std::string take() { return std::move(out_); }

    static std::string number(double v) {
        if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
        if (std::isnan(v)) return "NaN";
        char buf[64];
        auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
        return std::string(buf, r.ptr);
    }

  private:
    void write(std::string_view name, std::string_view labels, const std::string& value) {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
        out_ += value;
        out_ += '\n';
    }
    std::string out_;
};

std::string label(std::string_view name, std::string_view value) {
    return std::string(name) + "=\"" + metrics_label_value(value) + "\"";
}

std::string backend_label(const BackendView& b) {
    return label("backend", Endpoint{b.spec.host, b.spec.port}.to_string());
}

std::int64_t flag(bool b) { return b ? 1 : 0; }

}  // namespace

std::string metrics_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string format_metrics(const Snapshot& snap, const MonitorTotals& live,
                           const CounterTotals& counters) {
    Exposition e;
    e.family("pgrouter_build_info", "gauge", "pgrouter's version; always 1.");
    e.sample("pgrouter_build_info", label("version", kVersion), std::int64_t{1});
    e.family("pgrouter_workers", "gauge", "Worker processes running.");
    e.sample("pgrouter_workers", "", live.workers);
    e.family("pgrouter_worker_restarts_total", "counter",
             "Worker processes restarted after they died.");
    e.sample("pgrouter_worker_restarts_total", "", counters.worker_restarts);
    e.family("pgrouter_reloads_total", "counter", "Configuration reloads (SIGHUP, RELOAD).");
    e.sample("pgrouter_reloads_total", label("result", "ok"), counters.reloads_ok);
    e.sample("pgrouter_reloads_total", label("result", "error"), counters.reloads_error);

    e.family("pgrouter_backend_up", "gauge", "1 when the backend's last health check was OK.");
    for (const BackendView& b : snap.backends) {
        e.sample("pgrouter_backend_up", backend_label(b),
                 flag(b.health.status == BackendStatus::Ok));
    }
    e.family("pgrouter_backend_is_master", "gauge", "1 when the backend is the OK master.");
    for (const BackendView& b : snap.backends) {
        e.sample("pgrouter_backend_is_master", backend_label(b),
                 flag(b.health.status == BackendStatus::Ok && !b.health.fenced &&
                      b.health.role == BackendRole::Master));
    }
    e.family("pgrouter_backend_lag_bytes", "gauge",
             "Bytes of WAL a standby trails the master (0 on the master); OK backends only.");
    for (const BackendView& b : snap.backends) {
        if (b.health.status != BackendStatus::Ok) continue;
        e.sample("pgrouter_backend_lag_bytes", backend_label(b), b.health.lag);
    }
    e.family("pgrouter_backend_lag_seconds", "gauge",
             "How long ago the master was where a standby has replayed to (0 on the master and "
             "on an idle cluster); OK backends only.");
    for (const BackendView& b : snap.backends) {
        if (b.health.status != BackendStatus::Ok) continue;
        e.sample("pgrouter_backend_lag_seconds", backend_label(b),
                 static_cast<double>(b.health.lag_ns) / 1e9);
    }
    e.family("pgrouter_backend_fenced", "gauge",
             "1 when a reachable backend takes no work (split brain, another cluster, not "
             "following the master).");
    for (const BackendView& b : snap.backends) {
        e.sample("pgrouter_backend_fenced", backend_label(b), flag(b.health.fenced));
    }

    e.family("pgrouter_clients", "gauge", "Client sessions open.");
    e.sample("pgrouter_clients", "", live.clients);
    e.family("pgrouter_clients_pinned", "gauge", "Client sessions pinned to the master.");
    e.sample("pgrouter_clients_pinned", "", live.pinned);
    e.family("pgrouter_client_connections_total", "counter", "Client connections accepted.");
    e.sample("pgrouter_client_connections_total", "", counters.accepted);
    e.family("pgrouter_client_auth_failures_total", "counter",
             "Clients refused by hba or failing authentication.");
    e.sample("pgrouter_client_auth_failures_total", "", counters.auth_failures);

    e.family("pgrouter_server_connections", "gauge", "Backend connections open.");
    for (const BackendView& b : snap.backends) {
        e.sample("pgrouter_server_connections", backend_label(b),
                 counters.backends[b.slot].connections);
    }
    e.family("pgrouter_server_logins_total", "counter", "Successful logins to the backend.");
    for (const BackendView& b : snap.backends) {
        e.sample("pgrouter_server_logins_total", backend_label(b),
                 counters.backends[b.slot].logins);
    }
    e.family("pgrouter_units_total", "counter",
             "Units (a Query, or extended-protocol messages up to Sync) sent to the backend, "
             "by the router's reason.");
    for (const BackendView& b : snap.backends) {
        std::string bl = backend_label(b);
        for (int r = 0; r < kReasonLabels; ++r) {
            e.sample("pgrouter_units_total", bl + "," + label("reason", reason_label_name(r)),
                     counters.backends[b.slot].units[r]);
        }
    }
    e.family("pgrouter_replays_total", "counter",
             "Reads replayed on the master after a standby-only error (its SQLSTATE; 08006: "
             "the standby was lost).");
    for (int r = 0; r < kReplayLabels; ++r) {
        e.sample("pgrouter_replays_total", label("sqlstate", replay_label_name(r)),
                 counters.replays[r]);
    }
    e.family("pgrouter_unit_duration_seconds", "histogram",
             "Time from sending a unit to the backend to its ReadyForQuery.");
    for (const BackendView& b : snap.backends) {
        const BackendTotals& t = counters.backends[b.slot];
        std::string bl = backend_label(b);
        std::uint64_t cumulative = 0;
        for (int k = 0; k < kDurationBuckets; ++k) {
            cumulative += t.duration[k];
            e.sample("pgrouter_unit_duration_seconds_bucket",
                     bl + "," + label("le", Exposition::number(duration_bucket_bound(k))),
                     cumulative);
        }
        e.sample("pgrouter_unit_duration_seconds_sum", bl,
                 static_cast<double>(t.duration_ns) / 1e9);
        e.sample("pgrouter_unit_duration_seconds_count", bl, cumulative);
    }
    return e.take();
}

std::string format_pool_metrics(const Snapshot& snap, const std::vector<PoolFigures>& pools,
                                std::int64_t now_ns) {
    Exposition e;
    std::vector<std::string> labels;
    for (const PoolFigures& p : pools) {
        std::string backend = "slot " + std::to_string(p.slot);
        for (const BackendView& b : snap.backends) {
            if (b.slot == p.slot && b.spec.epoch == p.epoch) {
                backend = Endpoint{b.spec.host, b.spec.port}.to_string();
            }
        }
        labels.push_back(label("backend", backend) + "," + label("database", p.database) + "," +
                         label("user", p.user));
    }
    e.family("pgrouter_pool_active", "gauge",
             "Server connections of the pool in use by clients (all workers).");
    for (std::size_t i = 0; i < pools.size(); ++i) {
        e.sample("pgrouter_pool_active", labels[i], pools[i].active());
    }
    e.family("pgrouter_pool_idle", "gauge", "Idle server connections kept by the pool.");
    for (std::size_t i = 0; i < pools.size(); ++i) {
        e.sample("pgrouter_pool_idle", labels[i], pools[i].idle);
    }
    e.family("pgrouter_pool_waiting", "gauge",
             "Clients waiting for a server connection of the full pool.");
    for (std::size_t i = 0; i < pools.size(); ++i) {
        e.sample("pgrouter_pool_waiting", labels[i], pools[i].waiting);
    }
    e.family("pgrouter_pool_max_wait_seconds", "gauge",
             "How long the longest-waiting client of the pool has waited (0: none waits).");
    for (std::size_t i = 0; i < pools.size(); ++i) {
        std::int64_t since = pools[i].oldest_wait_since_ns;
        double wait = since > 0 && now_ns > since ? static_cast<double>(now_ns - since) / 1e9 : 0.0;
        e.sample("pgrouter_pool_max_wait_seconds", labels[i], wait);
    }
    return e.take();
}

}  // namespace pgrouter
