// A byte buffer for one direction of one connection: the socket writes at the end
// (prepare/commit), the decoder reads from the front (data/consume). Consumed space is
// reclaimed by moving the unread tail to the front, so a steady stream of messages
// allocates nothing once the buffer has grown to the largest message seen.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

namespace pgrouter::proto {

// How much free space to ask of a read toward a message still `missing` bytes short: at
// least a page, at most a chunk, whatever its length word says. With ReadBuffer's doubling
// the buffer then grows geometrically with the bytes that actually arrive.
inline constexpr std::size_t kReadMin = 4096;
inline constexpr std::size_t kReadChunk = 64 * 1024;
inline std::size_t read_chunk(std::size_t missing) {
    return std::clamp(missing, kReadMin, kReadChunk);
}

class ReadBuffer {
  public:
    explicit ReadBuffer(std::size_t initial_capacity = 8192)
        : buf_(initial_capacity > 0 ? new char[initial_capacity] : nullptr),
          cap_(initial_capacity) {}

    // The unread bytes.
    std::string_view data() const { return {buf_.get() + begin_, end_ - begin_}; }
    std::size_t size() const { return end_ - begin_; }
    bool empty() const { return begin_ == end_; }

    // Marks `n` unread bytes as read (n is clamped to size()).
    void consume(std::size_t n);

    // Writable space of at least `min_free` bytes after the unread ones; valid until the
    // next non-const call. Grows (doubling) only when compacting is not enough.
    std::span<char> prepare(std::size_t min_free);
    // Marks `n` bytes of the last prepare() as received.
    void commit(std::size_t n);

    // Gives memory back after a large message, keeping `keep` bytes of capacity when the
    // unread part fits in it.
    void shrink(std::size_t keep);

    std::size_t capacity() const { return cap_; }

  private:
    // Not a vector: growing one zero-fills the new space, a memset of kilobytes for each
    // buffer that grows again after an idle wait gave it back.
    void reallocate(std::size_t capacity);

    std::unique_ptr<char[]> buf_;
    std::size_t cap_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

}  // namespace pgrouter::proto
