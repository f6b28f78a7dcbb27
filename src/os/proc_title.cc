// Rewrites the argv area (and the environment strings after it, once copied elsewhere) so
// that ps shows a role per process. Linux only, like PostgreSQL's PS_USE_CLOBBER_ARGV.
#include "pgrouter/os/proc_title.h"

#include <sys/prctl.h>

#include <cstdlib>
#include <cstring>
#include <string>

extern char** environ;

namespace pgrouter {

namespace {
char* g_area = nullptr;  // the original argv strings, contiguous up to g_area + g_size
std::size_t g_size = 0;
}  // namespace

void proc_title_init(int argc, char** argv) {
    if (argc <= 0 || argv == nullptr || argv[0] == nullptr) return;
    char* start = argv[0];
    char* end = argv[0] + strlen(argv[0]) + 1;
    for (int i = 1; i < argc; ++i) {
        if (argv[i] == end) end = argv[i] + strlen(argv[i]) + 1;
    }
    int envc = 0;
    while (environ[envc] != nullptr) ++envc;
    for (int i = 0; i < envc; ++i) {
        if (environ[i] == end) end = environ[i] + strlen(environ[i]) + 1;
    }
    // Copy the environment and the arguments away before their strings are overwritten.
    auto** env = static_cast<char**>(calloc(static_cast<std::size_t>(envc) + 1, sizeof(char*)));
    if (env == nullptr) return;
    for (int i = 0; i < envc; ++i) env[i] = strdup(environ[i]);
    environ = env;
    for (int i = 0; i < argc; ++i) argv[i] = strdup(argv[i]);
    g_area = start;
    g_size = static_cast<std::size_t>(end - start);
}

void proc_title_set(std::string_view title) {
    std::string comm(title.substr(0, 15));
    prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0);
    if (g_area == nullptr || g_size < 2) return;
    std::size_t n = std::min(title.size(), g_size - 1);
    std::memcpy(g_area, title.data(), n);
    std::memset(g_area + n, 0, g_size - n);
}

}  // namespace pgrouter
