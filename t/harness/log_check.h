// The check every integration test ends with: pgrouter's log shows no crash, assertion
// failure or sanitizer report. Uses Catch2, so it links only into test binaries.
#pragma once

#include <string>

namespace pgrouter::test {

class RouterProcess;

// A non-fatal Catch2 check that log_problems(log) is empty; prints the offending lines.
void check_log_clean(const std::string& log);
void check_log_clean(const RouterProcess& router);

}  // namespace pgrouter::test
