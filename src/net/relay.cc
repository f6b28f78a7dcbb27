// The relay of a long message's bytes (see relay.h).
#include "pgrouter/net/relay.h"

#include <algorithm>

namespace pgrouter {

asio::awaitable<RelayResult> relay(Wire& from, Wire* to, std::size_t n) {
    RelayResult result;
    result.to_lost = to == nullptr;
    while (n > 0) {
        if (from.input().empty()) {
            if (co_await from.fill(proto::read_chunk(n))) {
                result.from_lost = true;
                co_return result;
            }
            continue;
        }
        std::string_view piece = from.input().data();
        piece = piece.substr(0, std::min(piece.size(), n));
        // Sent before it is consumed: the piece stays valid while the send waits.
        if (!result.to_lost && co_await to->send(piece)) result.to_lost = true;
        from.input().consume(piece.size());
        n -= piece.size();
    }
    co_return result;
}

}  // namespace pgrouter
