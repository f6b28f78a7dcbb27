// Framed reads and buffered writes over an Asio socket (see wire.h). Errors are returned,
// never thrown, so that a session can close with a reason. TLS goes through Asio's
// ssl::stream over the socket: handshakes and reads/writes are asynchronous on the loop.
#include "pgrouter/net/wire.h"

#include <arpa/inet.h>
#include <openssl/x509v3.h>

namespace pgrouter {

namespace {
constexpr std::size_t kIdleBuffer = 2048;

bool is_ip_address(const std::string& host) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 ||
           inet_pton(AF_INET6, host.c_str(), buf) == 1;
}
}  // namespace

Wire::~Wire() = default;

asio::awaitable<boost::system::error_code> Wire::handshake_server(asio::ssl::context& ctx,
                                                                  std::string_view already_read) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, ctx);
    boost::system::error_code ec;
    co_await tls_->async_handshake(asio::ssl::stream_base::server,
                                   asio::buffer(already_read.data(), already_read.size()),
                                   asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
}

asio::awaitable<boost::system::error_code> Wire::handshake_client(asio::ssl::context& ctx,
                                                                  bool verify,
                                                                  const std::string& host) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, ctx);
    SSL* s = tls_->native_handle();
    bool ip = is_ip_address(host);
    if (!ip) SSL_set_tlsext_host_name(s, host.c_str());
    if (verify) {
        X509_VERIFY_PARAM* param = SSL_get0_param(s);
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                    : X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
        if (ok != 1) co_return asio::error::invalid_argument;
    }
    boost::system::error_code ec;
    co_await tls_->async_handshake(asio::ssl::stream_base::client,
                                   asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
}

bool Wire::tls_buffered() const {
    SSL* s = ssl();
    return s != nullptr && (SSL_pending(s) > 0 || BIO_ctrl_pending(SSL_get_rbio(s)) > 0);
}

void Wire::async_wait_readable(std::function<void(boost::system::error_code)> handler) {
    if (tls_buffered()) {
        asio::post(socket_.get_executor(),
                   [h = std::move(handler)]() { h(boost::system::error_code()); });
        return;
    }
    socket_.async_wait(tcp::socket::wait_read,
                       [h = std::move(handler)](const boost::system::error_code& ec) { h(ec); });
}

void Wire::set_nonblocking() {
    if (nonblocking_) return;
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);  // once: a toggle per read costs two ioctl()s
    nonblocking_ = true;
}

std::size_t Wire::read_some_now(std::span<char> space, boost::system::error_code& ec) {
    set_nonblocking();
    auto buf = asio::buffer(space.data(), space.size());
    std::size_t n = tls_ ? tls_->read_some(buf, ec) : socket_.read_some(buf, ec);
    in_.commit(n);
    bytes_in_ += n;
    if (n > 0) ec = {};
    // A short read emptied the socket: the next read waits for readability first instead
    // of trying a recv() that would fail (Asio's own rule for edge-triggered epoll).
    maybe_readable_ = n == space.size();
    return n;
}

boost::system::error_code Wire::read_now() {
    boost::system::error_code ec;
    read_some_now(in_.prepare(4096), ec);
    return ec;
}

asio::awaitable<boost::system::error_code> Wire::fill(std::size_t min_free) {
    boost::system::error_code ec;
    for (;;) {
        // With TLS, received bytes may be held inside the TLS layer where the socket does
        // not show them: TLS is always read through Asio's read; so is an eager wire.
        if (tls_ || eager_) {
            std::span<char> space = in_.prepare(min_free);
            auto buf = asio::buffer(space.data(), space.size());
            auto token = asio::redirect_error(asio::use_awaitable, ec);
            reading_ = true;  // the read holds the buffer: release_idle_memory() keeps it
            std::size_t n = tls_ ? co_await tls_->async_read_some(buf, token)
                                 : co_await socket_.async_read_some(buf, token);
            reading_ = false;
            in_.commit(n);
            bytes_in_ += n;
            co_return ec;
        }
        if (maybe_readable_) {
            if (read_some_now(in_.prepare(min_free), ec) > 0) co_return ec;
            if (ec != asio::error::would_block && ec != asio::error::try_again) co_return ec;
        }
        // Nothing to read: wait without a buffer bound to the wait, so that the owner may
        // give its memory back (release_idle_memory()) once the connection stays idle.
        co_await socket_.async_wait(tcp::socket::wait_read,
                                    asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return ec;
        maybe_readable_ = true;
    }
}

template <class Decode>
std::optional<WireRead> Wire::buffered(Decode decode, std::size_t long_above,
                                       std::size_t& missing) const {
    proto::DecodeResult r = decode(in_.data());
    if (auto* m = std::get_if<proto::Message>(&r)) return *m;
    if (auto* e = std::get_if<proto::ProtoError>(&r)) return *e;
    std::size_t want = std::get<proto::NeedMore>(r).size;
    // Past the header (a NeedMore longer than one means its length word was accepted).
    if (want > long_above && in_.size() >= long_above) {
        return WireLongMessage{in_.data()[0], want};
    }
    missing = want > in_.size() ? want - in_.size() : 1;
    if (want > long_above) missing = long_above - in_.size();
    return std::nullopt;
}

template <class Decode>
asio::awaitable<WireRead> Wire::read_with(Decode decode, std::size_t long_above) {
    for (;;) {
        std::size_t missing = 0;
        if (auto r = buffered(decode, long_above, missing)) co_return std::move(*r);
        boost::system::error_code ec = co_await fill(proto::read_chunk(missing));
        if (ec) co_return WireClosed{ec};
    }
}

std::optional<WireRead> Wire::poll_frontend(const proto::DecodeLimits& limits,
                                            std::size_t long_above) {
    auto decode = [&limits](std::string_view b) { return proto::decode_frontend(b, limits); };
    for (;;) {
        std::size_t missing = 0;
        if (auto r = buffered(decode, long_above, missing)) return r;
        if (tls_ || eager_ || !maybe_readable_) return std::nullopt;
        boost::system::error_code ec;
        std::size_t n = read_some_now(in_.prepare(proto::read_chunk(missing)), ec);
        if (n > 0) continue;
        if (ec == asio::error::would_block || ec == asio::error::try_again) return std::nullopt;
        return WireClosed{ec};
    }
}

asio::awaitable<void> Wire::readable(boost::system::error_code& ec) {
    co_await socket_.async_wait(tcp::socket::wait_read,
                                asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) maybe_readable_ = true;
}

asio::awaitable<WireRead> Wire::read_frontend(const proto::DecodeLimits& limits,
                                              std::size_t long_above) {
    co_return co_await read_with(
        [&limits](std::string_view b) { return proto::decode_frontend(b, limits); }, long_above);
}

asio::awaitable<WireRead> Wire::read_backend(std::uint32_t max_length) {
    co_return co_await read_with(
        [max_length](std::string_view b) { return proto::decode_backend(b, max_length); },
        SIZE_MAX);
}

asio::awaitable<boost::system::error_code> Wire::flush() {
    boost::system::error_code ec;
    if (writing_) co_return ec;
    writing_ = true;
    while (!out_.empty() && !ec) {
        sending_.swap(out_);
        co_await write_all(asio::buffer(sending_), ec);
        sending_.clear();
        if (sending_.capacity() > kIdleBuffer * 8) std::string().swap(sending_);
    }
    if (ec) out_.clear();
    writing_ = false;
    co_return ec;
}

bool Wire::flush_now(boost::system::error_code& ec) {
    ec = {};
    if (writing_ || out_.empty()) return true;  // a flush in progress sends it, as flush()
    if (tls_) return false;
    set_nonblocking();
    std::size_t n = socket_.write_some(asio::buffer(out_), ec);
    bytes_out_ += n;
    if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
    if (ec || n == out_.size()) {
        out_.clear();
        if (out_.capacity() > kIdleBuffer * 8) std::string().swap(out_);
        return true;
    }
    out_.erase(0, n);
    return false;
}

asio::awaitable<boost::system::error_code> Wire::send(std::string_view bytes) {
    boost::system::error_code ec = co_await flush();
    if (ec || bytes.empty()) co_return ec;
    co_await write_all(asio::buffer(bytes.data(), bytes.size()), ec);
    co_return ec;
}

asio::awaitable<void> Wire::write_all(asio::const_buffer bytes, boost::system::error_code& ec) {
    if (tls_) {
        bytes_out_ +=
            co_await asio::async_write(*tls_, bytes, asio::redirect_error(asio::use_awaitable, ec));
        co_return;
    }
    // A send() now, which the peer's socket buffer almost always takes whole; Asio's write
    // (which waits for writability) only for what it left.
    set_nonblocking();
    std::size_t n = socket_.write_some(bytes, ec);
    bytes_out_ += n;
    if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
    if (ec || n == bytes.size()) co_return;
    bytes_out_ += co_await asio::async_write(socket_, bytes + n,
                                             asio::redirect_error(asio::use_awaitable, ec));
}

// With TLS no close_notify is sent: sending it would need a write that may block, and
// PostgreSQL's clients take the end of the TCP stream after the last message as the end.
void Wire::close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
}

bool Wire::holds_idle_memory() const {
    static const std::size_t kInline = std::string().capacity();  // no heap below this
    return (in_.empty() && in_.capacity() > 0 && !reading_) ||
           (out_.empty() && out_.capacity() > kInline) ||
           (!writing_ && sending_.capacity() > kInline);
}

void Wire::release_idle_memory() {
    if (in_.empty() && !reading_) in_.shrink(0);
    if (out_.empty()) std::string().swap(out_);
    if (!writing_) std::string().swap(sending_);
}

}  // namespace pgrouter
