// Read-your-writes shared by every session of one (user, database) (`read-your-writes
// user`): the latest moment any session of the pair saw a commit acknowledged, in a fixed
// table of the shared segment indexed by a hash of the pair. Two pairs that share an entry
// only make each other's reads wait for each other's commits, never less careful. Lock-free:
// a raise is one compare-and-swap, consistent whenever a process dies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pgrouter/os/shm_layout.h"

namespace pgrouter {

// The entry of (user, database); the same in every process.
[[nodiscard]] std::size_t commit_floor_index(std::string_view user, std::string_view database);

// The pair committed at `at_ns` (now_ns()): the floor becomes at least that.
void raise_commit_floor(CommitFloors& floors, std::size_t index, std::int64_t at_ns);

// The latest commit of the pair (0: none since start).
[[nodiscard]] std::int64_t commit_floor(const CommitFloors& floors, std::size_t index);

}  // namespace pgrouter
