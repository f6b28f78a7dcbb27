// Telling systemd (a Type=notify unit) what the supervisor is doing, through sd_notify():
// READY=1, RELOADING=1, MAINPID= for the new supervisor of an upgrade, STATUS= lines. Does
// nothing when NOTIFY_SOCKET is not set (no systemd, or a unit of another type).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

namespace pgrouter {

// Pure: the STATUS= text, "backends 2/3 OK, 5 clients" (and the phase, when one is given).
std::string service_status(int backends_ok, int backends, long long clients,
                           std::string_view phase = {});

// Each sends one datagram, the lines given together.
void notify_ready(std::string_view status);
void notify_reloading();
// The new supervisor of an upgrade: it is the main process from now on, and ready.
void notify_new_main(pid_t pid, std::string_view status);
void notify_status(std::string_view status);

}  // namespace pgrouter
