// Passing the rest of a message that is too long to hold from one wire to another as its
// bytes arrive (a long Query streamed to the master), in pieces no larger than the reader's
// buffer: memory stays bounded whatever the message's length.
#pragma once

#include <cstddef>

#include "pgrouter/net/wire.h"

namespace pgrouter {

struct RelayResult {
    bool from_lost = false;  // `from` closed or failed before the `n` bytes were read
    bool to_lost = false;    // sending to `to` failed: the bytes after that were dropped
};

// Takes the next `n` bytes of `from` (those buffered first) and sends them to `to`; with
// `to` null, or once sending to it failed, reads and drops them.
asio::awaitable<RelayResult> relay(Wire& from, Wire* to, std::size_t n);

}  // namespace pgrouter
