// Counts something in a worker's shared counter for exactly as long as it lives.
#pragma once

#include <atomic>
#include <cstdint>

namespace pgrouter {

class Counted {
  public:
    explicit Counted(std::atomic<std::int64_t>& counter) : counter_(counter) {
        counter_.fetch_add(1, std::memory_order_relaxed);
    }
    ~Counted() { counter_.fetch_sub(1, std::memory_order_relaxed); }
    Counted(const Counted&) = delete;
    Counted& operator=(const Counted&) = delete;

  private:
    std::atomic<std::int64_t>& counter_;
};

}  // namespace pgrouter
