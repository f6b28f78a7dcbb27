// ReadBuffer (see buffer.h): a vector with a read and a write offset; no I/O here.
#include "pgrouter/proto/buffer.h"

#include <algorithm>
#include <cstring>

namespace pgrouter::proto {

void ReadBuffer::consume(std::size_t n) {
    begin_ += std::min(n, size());
    if (begin_ == end_) begin_ = end_ = 0;
}

std::span<char> ReadBuffer::prepare(std::size_t min_free) {
    if (buf_.size() - end_ < min_free) {
        std::size_t unread = size();
        if (begin_ > 0) {
            std::memmove(buf_.data(), buf_.data() + begin_, unread);
            begin_ = 0;
            end_ = unread;
        }
        if (buf_.size() - end_ < min_free) {
            std::size_t want = std::max<std::size_t>(buf_.size() * 2, 1);
            while (want - end_ < min_free) want *= 2;
            buf_.resize(want);
        }
    }
    return {buf_.data() + end_, buf_.size() - end_};
}

void ReadBuffer::commit(std::size_t n) { end_ += std::min(n, buf_.size() - end_); }

void ReadBuffer::shrink(std::size_t keep) {
    if (buf_.size() <= keep || size() > keep) return;
    std::vector<char> smaller(keep);
    if (size() > 0) std::memcpy(smaller.data(), buf_.data() + begin_, size());
    end_ = size();
    begin_ = 0;
    buf_.swap(smaller);
}

}  // namespace pgrouter::proto
