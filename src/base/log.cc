// Log sinks and the run-time level. One write(2) per line on stderr so lines from several
// processes sharing the descriptor do not interleave.
#include "pgrouter/base/log.h"

#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <string>

#include "pgrouter/base/ascii.h"

namespace pgrouter {

namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
LogSink g_sink = LogSink::Stderr;
char g_role[32] = "main";

int syslog_priority(LogLevel level) {
    switch (level) {
        case LogLevel::Emergency:
            return LOG_EMERG;
        case LogLevel::Alert:
            return LOG_ALERT;
        case LogLevel::Critical:
            return LOG_CRIT;
        case LogLevel::Error:
            return LOG_ERR;
        case LogLevel::Warning:
            return LOG_WARNING;
        case LogLevel::Notice:
            return LOG_NOTICE;
        case LogLevel::Info:
            return LOG_INFO;
        case LogLevel::Debug:
            return LOG_DEBUG;
    }
    return LOG_INFO;
}

void emit(LogLevel level, const char* fmt, va_list ap, int err) {
    char text[2048];
    int n = vsnprintf(text, sizeof text, fmt, ap);
    if (n < 0) return;
    std::size_t len = std::min<std::size_t>(static_cast<std::size_t>(n), sizeof text - 1);
    if (err != 0) {
        char errbuf[128];
        const char* e = strerror_r(err, errbuf, sizeof errbuf);
        len += static_cast<std::size_t>(snprintf(text + len, sizeof text - len, ": %s", e));
        len = std::min(len, sizeof text - 1);
    }
    if (g_sink == LogSink::Syslog) {
        syslog(syslog_priority(level), "[%s] %s: %.*s", g_role, log_level_name(level).data(),
               static_cast<int>(len), text);
        return;
    }
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm local{};
    localtime_r(&ts.tv_sec, &local);
    char line[2300];
    int head = static_cast<int>(strftime(line, sizeof line, "%Y-%m-%d %H:%M:%S", &local));
    int total = head + snprintf(line + head, sizeof line - static_cast<std::size_t>(head),
                                ".%03ld [%s pid %d] %s: %.*s\n", ts.tv_nsec / 1000000, g_role,
                                static_cast<int>(getpid()), log_level_name(level).data(),
                                static_cast<int>(len), text);
    total = std::min<int>(total, static_cast<int>(sizeof line) - 1);
    line[total - 1] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, static_cast<std::size_t>(total));
    (void)ignored;
}

}  // namespace

void log_open(LogSink sink) {
    g_sink = sink;
    if (sink == LogSink::Syslog) openlog("pgrouter", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_role(std::string_view role) {
    std::size_t n = std::min(role.size(), sizeof g_role - 1);
    std::memcpy(g_role, role.data(), n);
    g_role[n] = '\0';
}

void log_set_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool log_enabled(LogLevel level) {
    return static_cast<int>(level) <= g_level.load(std::memory_order_relaxed);
}

LogLevel log_level_raised(LogLevel level, int steps) {
    int v = static_cast<int>(level) + steps;
    return static_cast<LogLevel>(std::min(v, static_cast<int>(LogLevel::Debug)));
}

void log_msg(LogLevel level, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    emit(level, fmt, ap, 0);
    va_end(ap);
}

void log_sys(LogLevel level, int err, const char* fmt, ...) {
    if (!log_enabled(level)) return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, fmt, ap, err);
    va_end(ap);
}

namespace {
constexpr std::array<std::string_view, 8> kLevelNames = {
    "EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"};
}  // namespace

std::string_view log_level_name(LogLevel level) {
    auto i = static_cast<std::size_t>(level);
    return i < kLevelNames.size() ? kLevelNames[i] : "UNKNOWN";
}

std::optional<LogLevel> parse_log_level(std::string_view name) {
    for (std::size_t i = 0; i < kLevelNames.size(); ++i) {
        if (ascii_iequals(kLevelNames[i], name)) return static_cast<LogLevel>(i);
    }
    return std::nullopt;
}

}  // namespace pgrouter
