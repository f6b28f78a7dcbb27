// The Prometheus text exposition (format 0.0.4) of pgrouter's state: the backend table, the
// live workers' gauges and the summed counters. Formatting is pure (unit-tested); the monitor
// process serves it on `metrics HOST:PORT` (monitor.cc) beside the spec's dump, which it
// never changes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "pgrouter/monitor/monitor.h"
#include "pgrouter/os/counters.h"
#include "pgrouter/os/pool_table.h"

namespace pgrouter {

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Every series, each with HELP and TYPE, labels escaped as the format requires.
std::string format_metrics(const Snapshot& snap, const MonitorTotals& live,
                           const CounterTotals& counters);

// The pgrouter_pool_* series: per (backend, database, user) pool in use, server connections
// active and idle, clients waiting and the longest wait so far (`now_ns`: CLOCK_MONOTONIC
// when `pools` was read). Appended to format_metrics()'s text.
std::string format_pool_metrics(const Snapshot& snap, const std::vector<PoolFigures>& pools,
                                std::int64_t now_ns);

// A label value with \, " and newline escaped.
std::string metrics_label_value(std::string_view value);

}  // namespace pgrouter
