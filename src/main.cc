// Command line: pgrouter [-F] [-v...] [-c FILE] [-t] [-V] [-h]. Parses options and the
// configuration, then hands over to the supervisor. Exit codes: 0 ok, 1 configuration or
// start-up error, 2 usage. Started by an old supervisor's SIGUSR2, it also reports a broken
// configuration on the upgrade pipe, so that the old one can log why it serves on.
#include <getopt.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>

#include "pgrouter/base/log.h"
#include "pgrouter/base/version.h"
#include "pgrouter/config/config.h"
#include "pgrouter/os/proc_title.h"
#include "pgrouter/os/upgrade.h"
#include "pgrouter/supervisor.h"

namespace {

constexpr const char* kUsage =
    "usage: pgrouter [-F] [-v...] [-c FILE] [-t] [-V] [-h]\n"
    "  -F        stay in the foreground and log to stderr\n"
    "  -v        log more (repeat, up to -vvvvv for debug)\n"
    "  -c FILE   configuration file (default /etc/pgrouter/pgrouter.conf)\n"
    "  -t        check the configuration and exit\n"
    "  -V        print the version and exit\n"
    "  -h        print this help and exit\n";

}  // namespace

int main(int argc, char** argv) {
    using namespace pgrouter;
    proc_title_init(argc, argv);
    SupervisorOptions options;
    options.argv.assign(argv, argv + argc);
    options.executable = self_executable(argc > 0 ? argv[0] : nullptr);
    options.config_file = std::string(kDefaultConfigFile);
    bool test_only = false;
    opterr = 0;
    int opt;
    while ((opt = getopt(argc, argv, "Fvc:tVh")) != -1) {
        switch (opt) {
            case 'F':
                options.foreground = true;
                break;
            case 'v':
                options.verbosity += 1;
                break;
            case 'c':
                options.config_file = optarg;
                break;
            case 't':
                test_only = true;
                break;
            case 'V':
                std::printf("pgrouter %.*s\n", static_cast<int>(kVersion.size()), kVersion.data());
                return 0;
            case 'h':
                std::fputs(kUsage, stdout);
                return 0;
            default:
                if (optopt == 'c') {
                    std::fprintf(stderr, "pgrouter: option -c needs a file name\n");
                } else {
                    std::fprintf(stderr, "pgrouter: unknown option -%c\n", optopt);
                }
                std::fputs(kUsage, stderr);
                return 2;
        }
    }
    if (optind < argc) {
        std::fprintf(stderr, "pgrouter: unexpected argument \"%s\"\n", argv[optind]);
        std::fputs(kUsage, stderr);
        return 2;
    }

    std::string inherit_error;
    std::optional<Inheritance> inherited;
    if (!test_only) {
        inherited = take_inheritance(inherit_error);
        if (!inherited) {
            std::fprintf(stderr, "pgrouter: %s\n", inherit_error.c_str());
            return 1;
        }
        options.inherited = std::move(*inherited);
    }
    ConfigResult result = load_service_config(options.config_file);
    if (!result.config) {
        for (const ConfigError& e : result.errors) {
            std::fprintf(stderr, "%s\n", e.to_string().c_str());
        }
        if (!result.errors.empty()) {
            report_failure(options.inherited.ready_fd,
                           "configuration error: " + result.errors.front().to_string());
        }
        return 1;
    }
    if (test_only) {
        std::printf("configuration OK\n");
        return 0;
    }
    log_open(LogSink::Stderr);
    log_set_level(log_level_raised(result.config->log, options.verbosity));
    return run_supervisor(std::move(*result.config), options);
}
