// A worker's bounded cache of classifications, keyed by the exact query text, so a repeated
// statement is parsed once. CLOCK eviction (one "referenced" bit per entry, no list
// splicing on a hit) under two bounds: a number of entries and a number of key bytes.
// A hit hashes and compares the text and allocates nothing. Per process, not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pgrouter/route/classify.h"

namespace pgrouter {

class ClassifyCache {
  public:
    static constexpr std::size_t kDefaultEntries = 4096;
    static constexpr std::size_t kDefaultBytes = 4 << 20;

    // A text longer than max_bytes / 16 is never cached: one huge generated statement must
    // not flush the whole cache.
    explicit ClassifyCache(std::size_t max_entries = kDefaultEntries,
                           std::size_t max_bytes = kDefaultBytes);
    ClassifyCache(const ClassifyCache&) = delete;
    ClassifyCache& operator=(const ClassifyCache&) = delete;

    // The cached classification under `key` (a sql_cache_key()), marked as recently used;
    // null on a miss. The
    // pointer is valid until the next insert() or clear().
    [[nodiscard]] const Classification* find(std::string_view key);
    // Remembers `c` under `key` (replacing an older entry), evicting as needed.
    void insert(std::string_view key, const Classification& c);
    // find(), else classify with `classifier` and insert: the one call sessions make. The
    // key is sql_cache_key(sql), so statements differing only in constants share an entry,
    // unless the classification names facts (Classification::facts()): those are cached
    // under the exact text, which is looked up second.
    [[nodiscard]] Classification classify(std::string_view sql, const Classifier& classifier);
    // Forgets everything (after a reload changed the write-function list).
    void clear();

    std::size_t size() const { return index_.size(); }
    std::size_t bytes() const { return bytes_; }
    std::size_t max_entries() const { return slots_.size(); }
    std::uint64_t hits() const { return hits_; }
    std::uint64_t misses() const { return misses_; }

  private:
    std::string key_;  // sql_cache_key() of the statement being looked up, reused
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const {
            return std::hash<std::string_view>{}(s);
        }
    };
    struct Slot {
        const std::string* key = nullptr;  // the map's key; null when the slot is free
        Classification value;
        bool referenced = false;
    };

    Slot* lookup(std::string_view key);  // marks the entry used; no hit/miss counted
    void evict_one();

    std::unordered_map<std::string, std::uint32_t, Hash, std::equal_to<>> index_;
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_;  // free slot numbers
    std::size_t hand_ = 0;             // CLOCK hand
    std::size_t bytes_ = 0;            // sum of the cached texts' sizes
    std::size_t max_bytes_;
    std::uint64_t hits_ = 0;
    std::uint64_t misses_ = 0;
};

}  // namespace pgrouter
