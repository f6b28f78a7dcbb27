// The supervisor: owns the shared segment, the listening sockets, the pidfile and the
// children. It reacts to signals in its loop (reap → terminate → reload) and is the only
// process that parses the configuration or forks.
#pragma once

#include <string>
#include <vector>

#include "pgrouter/config/config.h"
#include "pgrouter/os/upgrade.h"

namespace pgrouter {

struct SupervisorOptions {
    std::string config_file;
    bool foreground = false;
    int verbosity = 0;              // number of -v
    std::vector<std::string> argv;  // as started: what SIGUSR2 execs again
    std::string executable;         // self_executable(argv[0])
    Inheritance inherited;          // set when an old supervisor's SIGUSR2 started this one
};

// load_config() and the checks that need the TLS layer: what `pgrouter -t`, start-up and
// every reload use, so that all three agree on what is a usable configuration.
[[nodiscard]] ConfigResult load_service_config(const std::string& file);

// Runs until SIGTERM/SIGINT; returns the process exit code.
int run_supervisor(Config config, const SupervisorOptions& options);

}  // namespace pgrouter
