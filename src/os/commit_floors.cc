// The commit floors of `read-your-writes user` (see commit_floors.h).
#include "pgrouter/os/commit_floors.h"

namespace pgrouter {

std::size_t commit_floor_index(std::string_view user, std::string_view database) {
    // FNV-1a over "user\0database": stable across processes and builds.
    std::uint64_t h = 1469598103934665603ULL;
    auto mix = [&h](std::string_view s) {
        for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    };
    mix(user);
    mix(std::string_view("\0", 1));
    mix(database);
    return static_cast<std::size_t>(h % kCommitFloors);
}

void raise_commit_floor(CommitFloors& floors, std::size_t index, std::int64_t at_ns) {
    std::atomic<std::int64_t>& floor = floors.at_ns[index % kCommitFloors];
    std::int64_t seen = floor.load(std::memory_order_relaxed);
    while (seen < at_ns && !floor.compare_exchange_weak(seen, at_ns, std::memory_order_release,
                                                        std::memory_order_relaxed)) {
    }
}

std::int64_t commit_floor(const CommitFloors& floors, std::size_t index) {
    return floors.at_ns[index % kCommitFloors].load(std::memory_order_acquire);
}

}  // namespace pgrouter
