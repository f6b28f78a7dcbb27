// The Catch2 runner for the integration tests. Cleanup handlers go in first, so an
// interrupted or crashing run still stops every server and router it started.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "../harness/cleanup.h"

int main(int argc, char** argv) {
    pgrouter::test::install_cleanup_handlers();
    return Catch::Session().run(argc, argv);
}
