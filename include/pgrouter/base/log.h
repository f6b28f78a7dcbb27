// Logging for every process: to stderr with timestamps (foreground) or to syslog facility
// daemon. Each line carries the process role and pid. The level can change at run time
// (reload, -v); callers never format a message that would be dropped (PGR_LOG checks first).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pgrouter {

// syslog's order; a larger value logs more.
enum class LogLevel : std::uint8_t {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Info,
    Debug
};

std::string_view log_level_name(LogLevel level);
std::optional<LogLevel> parse_log_level(std::string_view name);

enum class LogSink { Stderr, Syslog };

void log_open(LogSink sink);
void log_set_role(std::string_view role);  // "supervisor", "worker 3", ...
void log_set_level(LogLevel level);
bool log_enabled(LogLevel level);

void log_msg(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Appends ": strerror(err)" to the message.
void log_sys(LogLevel level, int err, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

// Raises `level` by `steps` towards Debug, clamped.
LogLevel log_level_raised(LogLevel level, int steps);

}  // namespace pgrouter

#define PGR_LOG(level, ...)                                                          \
    do {                                                                             \
        if (::pgrouter::log_enabled(level)) ::pgrouter::log_msg(level, __VA_ARGS__); \
    } while (0)
#define PGR_DEBUG(...) PGR_LOG(::pgrouter::LogLevel::Debug, __VA_ARGS__)
#define PGR_INFO(...) PGR_LOG(::pgrouter::LogLevel::Info, __VA_ARGS__)
#define PGR_NOTICE(...) PGR_LOG(::pgrouter::LogLevel::Notice, __VA_ARGS__)
#define PGR_WARNING(...) PGR_LOG(::pgrouter::LogLevel::Warning, __VA_ARGS__)
#define PGR_ERROR(...) PGR_LOG(::pgrouter::LogLevel::Error, __VA_ARGS__)
