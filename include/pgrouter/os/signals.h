// Signal plumbing kept apart from the work it triggers. The supervisor reads signals from a
// signalfd in its loop; simple children (watcher, monitor) get a flag set by a handler.
#pragma once

#include <csignal>

namespace pgrouter {

// Supervisor: blocks SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGUSR2 and returns a signalfd for them.
[[nodiscard]] int signals_open_fd();
// In a freshly forked child: unblock everything, default dispositions, and ask for
// `death_signal` when the supervisor dies.
void signals_reset_in_child(int death_signal);
// Watcher and monitor: SIGTERM/SIGINT only set a flag, read with stop_requested().
void install_stop_handler();
bool stop_requested();

}  // namespace pgrouter
