// A log rate limit: at most `burst` messages of one kind per window, and the count of the
// ones held back, to be reported once ("suppressed K similar messages") when their window
// is over. Pure: the caller passes the time and does the logging.
#pragma once

#include <cstdint>

namespace pgrouter {

class RateLimit {
  public:
    RateLimit(int burst, std::int64_t window_ns) : burst_(burst), window_ns_(window_ns) {}

    struct Verdict {
        bool log = false;              // log this message
        std::uint64_t suppressed = 0;  // held back in an earlier window: report them first
    };

    // A message at `now_ns`.
    Verdict admit(std::int64_t now_ns) {
        Verdict v;
        if (now_ns - window_start_ns_ >= window_ns_) {
            v.suppressed = suppressed_;
            suppressed_ = 0;
            window_start_ns_ = now_ns;
            count_ = 0;
        }
        if (count_ < burst_) {
            count_ += 1;
            v.log = true;
        } else {
            suppressed_ += 1;
        }
        return v;
    }

    // The messages held back, once their window is over (0 before, or when there were
    // none); they are reported only once.
    std::uint64_t flush(std::int64_t now_ns) {
        if (suppressed_ == 0 || now_ns - window_start_ns_ < window_ns_) return 0;
        std::uint64_t n = suppressed_;
        suppressed_ = 0;
        count_ = 0;
        return n;
    }

  private:
    int burst_;
    std::int64_t window_ns_;
    std::int64_t window_start_ns_ = 0;
    int count_ = 0;
    std::uint64_t suppressed_ = 0;
};

}  // namespace pgrouter
