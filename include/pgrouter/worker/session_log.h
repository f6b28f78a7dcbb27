// Log lines about one client session: every one starts with "session N: ", through this one
// helper, so that a session's story can be followed in the log by its id.
#pragma once

#include <cstdint>

#include "pgrouter/base/log.h"

#define PGR_SESSION_LOG(level, id, fmt, ...) \
    PGR_LOG(level, "session %llu: " fmt,     \
            static_cast<unsigned long long>(id) __VA_OPT__(, ) __VA_ARGS__)
#define PGR_SESSION_DEBUG(id, ...) PGR_SESSION_LOG(::pgrouter::LogLevel::Debug, id, __VA_ARGS__)
#define PGR_SESSION_INFO(id, ...) PGR_SESSION_LOG(::pgrouter::LogLevel::Info, id, __VA_ARGS__)
#define PGR_SESSION_NOTICE(id, ...) PGR_SESSION_LOG(::pgrouter::LogLevel::Notice, id, __VA_ARGS__)
#define PGR_SESSION_WARNING(id, ...) PGR_SESSION_LOG(::pgrouter::LogLevel::Warning, id, __VA_ARGS__)
