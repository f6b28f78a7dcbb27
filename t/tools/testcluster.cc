// build/testcluster: the cluster builder of the integration tests as a command, for
// `make demo` and `make bench`. `up DIR` leaves a primary and standbys running in DIR and
// describes them in DIR/cluster.env; `down DIR` stops them and removes DIR.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "../harness/cluster.h"
#include "../harness/files.h"

namespace {

using pgrouter::test::Cluster;
using pgrouter::test::ClusterOptions;

int usage() {
    std::fprintf(stderr,
                 "usage: testcluster up DIR [--standbys N] [--foreign] [--replstatus]\n"
                 "       testcluster down DIR\n"
                 "       testcluster env DIR\n");
    return 2;
}

int up(const std::string& dir, int argc, char** argv) {
    ClusterOptions opts;
    opts.dir = dir;
    opts.keep = true;
    for (int i = 0; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--standbys" && i + 1 < argc) {
            opts.standbys = std::atoi(argv[++i]);
        } else if (a.rfind("--standbys=", 0) == 0) {
            opts.standbys = std::atoi(a.c_str() + std::strlen("--standbys="));
        } else if (a == "--foreign") {
            opts.foreign = true;
        } else if (a == "--replstatus") {
            opts.replstatus = true;
        } else {
            return usage();
        }
    }
    Cluster cluster(opts);
    std::fputs(cluster.env_text().c_str(), stdout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return usage();
    std::string cmd = argv[1];
    std::string dir = argv[2];
    try {
        if (cmd == "up") return up(dir, argc - 3, argv + 3);
        if (cmd == "down") {
            auto cluster = Cluster::attach(dir);
            cluster->destroy();
            return 0;
        }
        if (cmd == "env") {
            std::string env = pgrouter::test::read_file(dir + "/cluster.env");
            if (env.empty()) throw std::runtime_error(dir + " has no cluster.env");
            std::fputs(env.c_str(), stdout);
            return 0;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "testcluster: %s\n", e.what());
        return 1;
    }
    return usage();
}
