// The commit floors of `read-your-writes user`: one entry per (user, database), the same in
// every process, raised only forward.
#include "pgrouter/os/commit_floors.h"

#include <catch2/catch.hpp>
#include <memory>

using namespace pgrouter;

TEST_CASE("commit floors: one stable entry per (user, database), raised only forward",
          "[commit_floors]") {
    auto floors = std::make_unique<CommitFloors>();
    std::size_t alice = commit_floor_index("alice", "shop");
    CHECK(alice == commit_floor_index("alice", "shop"));
    CHECK(alice < kCommitFloors);
    // The pair, not the concatenation: ("ab", "c") and ("a", "bc") are different pairs.
    CHECK(commit_floor_index("ab", "c") != commit_floor_index("a", "bc"));
    CHECK(commit_floor_index("alice", "shop") != commit_floor_index("shop", "alice"));

    CHECK(commit_floor(*floors, alice) == 0);
    raise_commit_floor(*floors, alice, 500);
    CHECK(commit_floor(*floors, alice) == 500);
    raise_commit_floor(*floors, alice, 300);  // an older commit never lowers it
    CHECK(commit_floor(*floors, alice) == 500);
    raise_commit_floor(*floors, alice, 900);
    CHECK(commit_floor(*floors, alice) == 900);
    std::size_t bob = commit_floor_index("bob", "shop");
    if (bob != alice) CHECK(commit_floor(*floors, bob) == 0);
}
