// Catch2 glue for log_problems(); the only harness file that includes Catch2, so the
// cluster tool (which links the harness library) does not need it.
#include "log_check.h"

#include <catch2/catch.hpp>

#include "router_process.h"

namespace pgrouter::test {

void check_log_clean(const std::string& log) {
    std::vector<std::string> problems = log_problems(log);
    std::string shown;
    for (const auto& line : problems) shown += "  " + line + "\n";
    INFO("the router log shows a crash, failed assertion or sanitizer report:\n" << shown);
    CHECK(problems.empty());
}

void check_log_clean(const RouterProcess& router) {
    INFO("router log: " << router.log_path());
    check_log_clean(router.log());
}

}  // namespace pgrouter::test
