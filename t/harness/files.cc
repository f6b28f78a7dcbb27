// File-system helpers for tests. Nothing here knows about PostgreSQL or the router.
#include "files.h"

#include <linux/magic.h>
#include <stdlib.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pgrouter::test {

std::string make_temp_dir(const std::string& prefix, const std::string& base) {
    std::string dir = base;
    if (dir.empty()) {
        const char* tmp = getenv("TMPDIR");
        dir = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
    }
    std::string tmpl = dir + "/" + prefix + "XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr)
        throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
    return tmpl;
}

std::string fast_temp_base() {
    if (const char* d = getenv("PGROUTER_TEST_TMPDIR"); d != nullptr && *d != '\0') return d;
    struct statfs fs_info {};
    struct statvfs vfs_info {};
    constexpr unsigned long long kMinFree = 1ULL << 30;
    if (statfs("/dev/shm", &fs_info) == 0 && fs_info.f_type == TMPFS_MAGIC &&
        statvfs("/dev/shm", &vfs_info) == 0 &&
        static_cast<unsigned long long>(vfs_info.f_bavail) * vfs_info.f_frsize >= kMinFree &&
        access("/dev/shm", W_OK | X_OK) == 0)
        return "/dev/shm";
    return "";
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "";
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& text, bool append) {
    std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
    if (!out) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    out << text;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path);
}

void remove_tree(const std::string& path) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

}  // namespace pgrouter::test
