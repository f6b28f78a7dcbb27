// Signal masks, the supervisor's signalfd, and the stop flag of the simple children.
// Handlers here only store a flag: all work happens in the processes' loops.
#include "pgrouter/os/signals.h"

#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <initializer_list>

namespace pgrouter {

namespace {

volatile sig_atomic_t g_stop = 0;

void on_stop_signal(int) { g_stop = 1; }

sigset_t supervisor_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR2);
    return set;
}

}  // namespace

int signals_open_fd() {
    sigset_t set = supervisor_signals();
    sigprocmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

void signals_reset_in_child(int death_signal) {
    sigset_t set = supervisor_signals();
    for (int sig : {SIGCHLD, SIGHUP, SIGTERM, SIGINT}) signal(sig, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    // SIGUSR2 is the supervisor's (a binary upgrade); one sent to the whole group, as
    // `systemctl kill` does by default, must not end the children.
    signal(SIGUSR2, SIG_IGN);
    sigprocmask(SIG_UNBLOCK, &set, nullptr);
    prctl(PR_SET_PDEATHSIG, death_signal);
}

void install_stop_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGHUP, SIG_IGN);
}

bool stop_requested() { return g_stop != 0; }

}  // namespace pgrouter
