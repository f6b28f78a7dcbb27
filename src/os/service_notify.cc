// sd_notify() calls for the supervisor. RELOADING=1 carries MONOTONIC_USEC (systemd 253
// wants it for Type=notify-reload; older ones ignore it). A failed notification is only
// logged at debug: the service runs the same without a manager listening.
#include "pgrouter/os/service_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstring>

#include "pgrouter/base/log.h"

namespace pgrouter {

namespace {

void send(const std::string& text) {
    int rc = sd_notify(0, text.c_str());
    if (rc < 0) PGR_DEBUG("sd_notify failed: %s", strerror(-rc));
}

}  // namespace

std::string service_status(int backends_ok, int backends, long long clients,
                           std::string_view phase) {
    std::string out = "backends " + std::to_string(backends_ok) + "/" + std::to_string(backends) +
                      " OK, " + std::to_string(clients) + (clients == 1 ? " client" : " clients");
    if (!phase.empty()) out += "; " + std::string(phase);
    return out;
}

void notify_ready(std::string_view status) { send("READY=1\nSTATUS=" + std::string(status)); }

void notify_reloading() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long usec = static_cast<long long>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void notify_new_main(pid_t pid, std::string_view status) {
    send("MAINPID=" + std::to_string(pid) + "\nREADY=1\nSTATUS=" + std::string(status));
}

void notify_status(std::string_view status) { send("STATUS=" + std::string(status)); }

}  // namespace pgrouter
