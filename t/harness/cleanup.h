// Making sure tests never leave servers behind: a registry of processes to signal when the
// test process exits abnormally (atexit and signal handlers), and Reaper, a guardian shell
// that runs a cleanup script once this process is gone however it died (even SIGKILL).
#pragma once

#include <sys/types.h>

#include <string>

namespace pgrouter::test {

// Installs, once, an atexit hook and handlers for SIGINT, SIGTERM, SIGHUP, SIGQUIT and the
// fatal signals that send every registered process its signal and then die by the original
// signal. Safe to call many times.
void install_cleanup_handlers();

// Registers target (a pid, or -pgid for a process group) to receive sig on abnormal exit.
// Returns a slot for update/unregister, or -1 when the table is full (then only the
// Reaper covers it).
int register_kill(pid_t target, int sig);
void update_kill(int slot, pid_t target);
void unregister_kill(int slot);
// What the handlers do; async-signal-safe.
void kill_registered();

// A child `sh` that waits for this process to end; unless disarmed first, it then runs
// script (with sh -c) in its own session, its signals ignored, stdio on /dev/null.
class Reaper {
  public:
    Reaper() = default;
    explicit Reaper(const std::string& script);
    ~Reaper();
    Reaper(const Reaper&) = delete;
    Reaper& operator=(const Reaper&) = delete;
    Reaper(Reaper&& other) noexcept;
    Reaper& operator=(Reaper&& other) noexcept;

    // Tells the guardian to exit without running the script; reaps it.
    void disarm();
    bool armed() const { return fd_ >= 0; }

  private:
    int fd_ = -1;
    pid_t pid_ = -1;
};

// A script for Reaper (and `testcluster down`): stops every postmaster whose
// postmaster.pid lies in DIR/*/data (SIGQUIT, SIGKILL after 10 s) and removes DIR.
std::string stop_postmasters_script(const std::string& dir);

}  // namespace pgrouter::test
