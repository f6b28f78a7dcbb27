// Reading the table files under t/data/ for table-driven unit tests, whether the binary
// runs from the repository root (as make does) or from elsewhere.
#pragma once

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace pgrouter::test {

inline std::string read_test_data(const std::string& dir, const std::string& name) {
    std::filesystem::path p = std::filesystem::path("t/data") / dir / name;
    if (!std::filesystem::exists(p)) {
        p = std::filesystem::path(__FILE__).parent_path().parent_path() / "data" / dir / name;
    }
    std::ifstream in(p);
    INFO("reading " << p.string());
    REQUIRE(in.good());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace pgrouter::test
