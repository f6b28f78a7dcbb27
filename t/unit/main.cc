// The Catch2 runner for the unit tests: one binary, milliseconds per test.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
