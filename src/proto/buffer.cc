// ReadBuffer (see buffer.h): a vector with a read and a write offset; no I/O here.
#include "pgrouter/proto/buffer.h"

#include <algorithm>
#include <cstring>

namespace pgrouter::proto {

void ReadBuffer::consume(std::size_t n) {
    begin_ += std::min(n, size());
    if (begin_ == end_) begin_ = end_ = 0;
}

void ReadBuffer::reallocate(std::size_t capacity) {
    std::unique_ptr<char[]> moved(capacity > 0 ? new char[capacity] : nullptr);
    std::size_t unread = size();
    if (unread > 0) std::memcpy(moved.get(), buf_.get() + begin_, unread);
    buf_ = std::move(moved);
    cap_ = capacity;
    begin_ = 0;
    end_ = unread;
}

std::span<char> ReadBuffer::prepare(std::size_t min_free) {
    if (cap_ - end_ < min_free) {
        if (begin_ > 0) {
            std::size_t unread = size();
            std::memmove(buf_.get(), buf_.get() + begin_, unread);
            begin_ = 0;
            end_ = unread;
        }
        if (cap_ - end_ < min_free) {
            std::size_t want = std::max<std::size_t>(cap_ * 2, 1);
            while (want - end_ < min_free) want *= 2;
            reallocate(want);
        }
    }
    return {buf_.get() + end_, cap_ - end_};
}

void ReadBuffer::commit(std::size_t n) { end_ += std::min(n, cap_ - end_); }

void ReadBuffer::shrink(std::size_t keep) {
    if (cap_ <= keep || size() > keep) return;
    reallocate(keep);
}

}  // namespace pgrouter::proto
