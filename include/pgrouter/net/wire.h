// One PostgreSQL connection endpoint on the event loop: a socket, its read buffer and its
// pending output. Reads return whole framed messages (limits checked before allocating; the
// buffer grows with the bytes that arrive, never with a length word), or the head of a
// message too long to hold whole; writes send the accumulated output. The only place
// sessions touch socket reads/writes. With TLS (after handshake_server/handshake_client)
// every read and write goes through it.
#pragma once

#include <boost/asio/ssl/stream.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>

#include "pgrouter/base/asio.h"  // before any other Asio header
#include "pgrouter/proto/buffer.h"
#include "pgrouter/proto/decoder.h"
#include "pgrouter/proto/message.h"

namespace pgrouter {

// A message, or the connection is unusable: closed/failed (io error) or a framing error
// that must be reported to the peer.
struct WireClosed {
    boost::system::error_code error;
};
// The start of a message longer than the reader's `long_above`: its header is valid, at
// least `long_above` of its bytes are buffered (input()), `size` is its whole length.
struct WireLongMessage {
    char type = 0;
    std::size_t size = 0;
};
using WireRead = std::variant<proto::Message, proto::ProtoError, WireClosed, WireLongMessage>;

class Wire {
  public:
    explicit Wire(tcp::socket socket) : socket_(std::move(socket)) {}
    ~Wire();
    Wire(const Wire&) = delete;  // the TLS layer holds a reference to socket_
    Wire& operator=(const Wire&) = delete;

    // The raw socket: for addresses, options and deadlines. Never read or write it directly
    // (with TLS its bytes are ciphertext).
    tcp::socket& socket() { return socket_; }
    bool tls() const { return tls_ != nullptr; }
    SSL* ssl() const { return tls_ ? tls_->native_handle() : nullptr; }

    // TLS as the server. `already_read` is what the caller has taken from the socket of the
    // ClientHello (direct TLS negotiation). The input buffer must be empty. On failure the
    // wire is unusable; close it.
    asio::awaitable<boost::system::error_code> handshake_server(asio::ssl::context& ctx,
                                                                std::string_view already_read);
    // TLS as the client, with SNI for a host name; `verify`: the chain (per ctx) and that the
    // certificate names `host` (a DNS name or an IP address).
    asio::awaitable<boost::system::error_code> handshake_client(asio::ssl::context& ctx,
                                                                bool verify,
                                                                const std::string& host);

    // For watching an idle connection: calls `handler` once bytes can be read: at once when
    // decrypted or undecrypted TLS data is already buffered, else when the socket is
    // readable. Known imprecision: Asio may hold received TLS bytes that neither OpenSSL nor
    // the socket reports, so a watch can fire late (at the peer's next bytes); idle watches
    // only, reads in fill() never wait on readability with TLS.
    void async_wait_readable(std::function<void(boost::system::error_code)> handler);
    // fill() keeps its buffer while it waits, and leaves the wait to Asio's read (which
    // tries at once only when the socket was readable since its last short read, and costs
    // no epoll_ctl()): for a backend, whose reads wait only for an answer that is due. A
    // client's reads wait with no buffer bound to the wait (an idle session gives it back),
    // for an epoll_ctl().
    void read_eagerly() { eager_ = true; }
    // A wait for readability other than fill()'s saw the socket readable: the next fill()
    // reads at once (that edge is not reported twice).
    void mark_readable() { maybe_readable_ = true; }
    // Appends to input() what can be read now without blocking: would_block when nothing.
    boost::system::error_code read_now();
    proto::ReadBuffer& input() { return in_; }
    std::string& output() { return out_; }

    // The next client message (frontend limits) / server message (at most `max_length`
    // bytes). The message's views stay valid until consume() or the next read. A client
    // message longer than `long_above` comes back as a WireLongMessage once `long_above` of
    // its bytes are buffered.
    asio::awaitable<WireRead> read_frontend(const proto::DecodeLimits& limits = {},
                                            std::size_t long_above = SIZE_MAX);
    // read_frontend() without a coroutine when it need not wait: the message if it is
    // buffered or the socket has it now; nullopt when the caller must wait (readable())
    // and ask again, and always for TLS and eager wires (read_frontend() reads those).
    std::optional<WireRead> poll_frontend(const proto::DecodeLimits& limits,
                                          std::size_t long_above = SIZE_MAX);
    // Waits until the socket is readable (no buffer bound to the wait).
    asio::awaitable<void> readable(boost::system::error_code& ec);
    asio::awaitable<WireRead> read_backend(
        std::uint32_t max_length = proto::kDefaultDataMessageLimit);
    // Drops the message last returned (and any bytes before it).
    void consume(const proto::Message& m) { in_.consume(m.size); }
    // Reads more bytes into the input buffer: at least one, at most what fits. Unless the
    // wire is eager or TLS, the wait for the peer holds no buffer (release_idle_memory()
    // may give it back meanwhile).
    asio::awaitable<boost::system::error_code> fill(std::size_t min_free = 4096);
    // Sends output() and clears it. When another flush of this wire is in progress, returns
    // at once: that flush sends what was added meanwhile.
    asio::awaitable<boost::system::error_code> flush();
    // flush()'s common case without a coroutine: sends output() at once when the socket
    // takes it whole (no TLS). True when nothing is left to send (`ec` set if the
    // connection failed); false with the rest still in output(), for flush().
    bool flush_now(boost::system::error_code& ec);
    // Sends `bytes` (and anything pending in output() first).
    asio::awaitable<boost::system::error_code> send(std::string_view bytes);
    void close();
    // Gives back buffer memory while the connection is idle (never the input buffer a
    // pending read holds). holds_idle_memory(): there is some to give back.
    void release_idle_memory();
    bool holds_idle_memory() const;
    // Bytes received and sent on the socket so far (ciphertext with TLS), for the logs.
    std::uint64_t bytes_in() const { return bytes_in_; }
    std::uint64_t bytes_out() const { return bytes_out_; }

  private:
    // What read_with() returns when it is in the buffer already; else nullopt and the
    // bytes it still misses.
    template <class Decode>
    std::optional<WireRead> buffered(Decode decode, std::size_t long_above,
                                     std::size_t& missing) const;
    template <class Decode>
    asio::awaitable<WireRead> read_with(Decode decode, std::size_t long_above);

    bool tls_buffered() const;
    void set_nonblocking();
    // Reads what the socket (or TLS) has now into `space`, committed to input().
    std::size_t read_some_now(std::span<char> space, boost::system::error_code& ec);
    asio::awaitable<void> write_all(asio::const_buffer bytes, boost::system::error_code& ec);

    tcp::socket socket_;
    std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
    proto::ReadBuffer in_{0};  // no memory until something arrives
    std::string out_;
    std::string sending_;   // what the flush in progress writes; out_ takes new output meanwhile
    bool writing_ = false;  // a flush is in progress (two coroutines may flush one wire)
    bool reading_ = false;  // an eager or TLS read into in_ is pending
    bool nonblocking_ = false;    // the socket's own mode (for the reads and writes now)
    bool eager_ = false;          // read_eagerly()
    bool maybe_readable_ = true;  // no read has found the socket empty since it was readable
    std::uint64_t bytes_in_ = 0;
    std::uint64_t bytes_out_ = 0;
};

}  // namespace pgrouter
