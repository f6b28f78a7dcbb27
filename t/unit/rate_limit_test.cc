// The log rate limit (base/rate_limit.h): bursts, suppression counts, their one report.
#include "pgrouter/base/rate_limit.h"

#include <catch2/catch.hpp>

using namespace pgrouter;

TEST_CASE("rate limit: a burst per window, the rest counted and reported once", "[rate_limit]") {
    constexpr std::int64_t kSecond = 1'000'000'000;
    RateLimit limit(3, kSecond);
    std::int64_t t = 5 * kSecond;
    int logged = 0;
    for (int i = 0; i < 50; ++i) {
        RateLimit::Verdict v = limit.admit(t + i);
        CHECK(v.suppressed == 0);
        logged += v.log ? 1 : 0;
    }
    CHECK(logged == 3);
    CHECK(limit.flush(t + kSecond / 2) == 0);  // the window is not over
    CHECK(limit.flush(t + kSecond) == 47);
    CHECK(limit.flush(t + 2 * kSecond) == 0);  // reported once
    // A message in a new window logs again.
    RateLimit::Verdict v = limit.admit(t + 3 * kSecond);
    CHECK(v.log);
    CHECK(v.suppressed == 0);

    // Without a flush, the next window's first message carries the count.
    RateLimit other(1, kSecond);
    CHECK(other.admit(t).log);
    CHECK(!other.admit(t + 1).log);
    CHECK(!other.admit(t + 2).log);
    v = other.admit(t + kSecond);
    CHECK(v.log);
    CHECK(v.suppressed == 2);
}
