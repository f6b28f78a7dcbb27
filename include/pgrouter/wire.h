// One PostgreSQL connection endpoint on the event loop: a socket, its read buffer and its
// pending output. Reads return whole framed messages (limits checked before allocating);
// writes send the accumulated output. The only place sessions touch socket reads/writes.
#pragma once

#include <string>
#include <variant>

#include "pgrouter/asio.h"
#include "pgrouter/proto/buffer.h"
#include "pgrouter/proto/decoder.h"
#include "pgrouter/proto/message.h"

namespace pgrouter {

// A message, or the connection is unusable: closed/failed (io error) or a framing error
// that must be reported to the peer.
struct WireClosed {
    boost::system::error_code error;
};
using WireRead = std::variant<proto::Message, proto::ProtoError, WireClosed>;

class Wire {
public:
    explicit Wire(tcp::socket socket) : socket_(std::move(socket)) {}

    tcp::socket& socket() { return socket_; }
    proto::ReadBuffer& input() { return in_; }
    std::string& output() { return out_; }

    // The next client message (frontend limits) / server message. The message's views stay
    // valid until consume() or the next read.
    asio::awaitable<WireRead> read_frontend(const proto::DecodeLimits& limits = {});
    asio::awaitable<WireRead> read_backend();
    // Drops the message last returned (and any bytes before it).
    void consume(const proto::Message& m) { in_.consume(m.size); }
    // Reads more bytes into the input buffer: at least one, at most what fits. With nothing
    // buffered, the buffer's memory is given back while waiting for the peer (an idle
    // session costs no buffer).
    asio::awaitable<boost::system::error_code> fill(std::size_t min_free = 4096);
    // Sends output() and clears it. When another flush of this wire is in progress, returns
    // at once: that flush sends what was added meanwhile.
    asio::awaitable<boost::system::error_code> flush();
    // Sends `bytes` (and anything pending in output() first).
    asio::awaitable<boost::system::error_code> send(std::string_view bytes);
    void close();
    // Gives back buffer memory while the connection is idle.
    void release_idle_memory();

private:
    template <class Decode>
    asio::awaitable<WireRead> read_with(Decode decode);

    tcp::socket socket_;
    proto::ReadBuffer in_{0};  // no memory until something arrives
    std::string out_;
    std::string sending_;   // what the flush in progress writes; out_ takes new output meanwhile
    bool writing_ = false;  // a flush is in progress (two coroutines may flush one wire)
};

}  // namespace pgrouter
