// The classification cache (see classify_cache.h). The map owns the texts; the slots
// hold values, CLOCK bits and a pointer to their key (map elements never move, even on
// rehash). The map is sized up front so that it never rehashes within its bound.
#include "pgrouter/route/classify_cache.h"

#include <algorithm>

#include "pgrouter/route/sql_key.h"

namespace pgrouter {

ClassifyCache::ClassifyCache(std::size_t max_entries, std::size_t max_bytes)
    : slots_(std::max<std::size_t>(max_entries, 1)), max_bytes_(max_bytes) {
    index_.reserve(slots_.size());
    free_.reserve(slots_.size());
    for (std::size_t i = slots_.size(); i-- > 0;) free_.push_back(static_cast<std::uint32_t>(i));
}

ClassifyCache::Slot* ClassifyCache::lookup(std::string_view key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    Slot& slot = slots_[it->second];
    slot.referenced = true;
    return &slot;
}

const Classification* ClassifyCache::find(std::string_view key) {
    Slot* slot = lookup(key);
    ++(slot != nullptr ? hits_ : misses_);
    return slot != nullptr ? &slot->value : nullptr;
}

void ClassifyCache::evict_one() {
    // Every pass clears the bits it passes, so the second lap at most finds a victim.
    for (;;) {
        Slot& slot = slots_[hand_];
        std::size_t at = hand_;
        hand_ = (hand_ + 1) % slots_.size();
        if (slot.key == nullptr) continue;
        if (slot.referenced) {
            slot.referenced = false;
            continue;
        }
        bytes_ -= slot.key->size();
        index_.erase(*slot.key);
        slot = Slot{};
        free_.push_back(static_cast<std::uint32_t>(at));
        return;
    }
}

void ClassifyCache::insert(std::string_view sql, const Classification& c) {
    if (sql.size() > max_bytes_ / 16) return;
    if (auto it = index_.find(sql); it != index_.end()) {
        slots_[it->second].value = c;
        return;
    }
    while (!index_.empty() && (free_.empty() || bytes_ + sql.size() > max_bytes_)) evict_one();
    std::uint32_t at = free_.back();
    free_.pop_back();
    auto [it, inserted] = index_.emplace(std::string(sql), at);
    (void)inserted;
    slots_[at] = Slot{&it->first, c, false};
    bytes_ += sql.size();
}

Classification ClassifyCache::classify(std::string_view sql, const Classifier& classifier) {
    sql_cache_key(sql, key_);  // statements that differ only in constants share an entry
    Slot* slot = lookup(key_);
    if (slot == nullptr && key_ != sql) slot = lookup(sql);
    ++(slot != nullptr ? hits_ : misses_);
    if (slot != nullptr) return slot->value;
    Classification c = classifier.classify(sql);
    // Named facts point into their own text and may depend on its literals (the parameter
    // set_config names, an isolation level): such an entry is the exact text's only.
    insert(c.fact_count != 0 || c.facts_truncated ? sql : std::string_view(key_), c);
    return c;
}

void ClassifyCache::clear() {
    index_.clear();
    free_.clear();
    for (std::size_t i = slots_.size(); i-- > 0;) {
        slots_[i] = Slot{};
        free_.push_back(static_cast<std::uint32_t>(i));
    }
    hand_ = 0;
    bytes_ = 0;
}

}  // namespace pgrouter
