// The Prometheus text exposition (format 0.0.4) of pgrouter's state: the backend table, the
// live workers' gauges and the summed counters. Formatting is pure (unit-tested); the monitor
// process serves it on `metrics HOST:PORT` (monitor.cc) beside the spec's dump, which it
// never changes.
#pragma once

#include <string>
#include <string_view>

#include "pgrouter/monitor/monitor.h"
#include "pgrouter/os/counters.h"

namespace pgrouter {

inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Every series, each with HELP and TYPE, labels escaped as the format requires.
std::string format_metrics(const Snapshot& snap, const MonitorTotals& live,
                           const CounterTotals& counters);

// A label value with \, " and newline escaped.
std::string metrics_label_value(std::string_view value);

}  // namespace pgrouter
