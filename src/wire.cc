// Framed reads and buffered writes over an Asio socket (see wire.h). Errors are returned,
// never thrown, so that a session can close with a reason.
#include "pgrouter/wire.h"

namespace pgrouter {

namespace {
constexpr std::size_t kIdleBuffer = 2048;
}

asio::awaitable<boost::system::error_code> Wire::fill(std::size_t min_free) {
    boost::system::error_code ec;
    if (in_.empty()) {
        std::size_t ready = socket_.available(ec);
        if (!ec && ready == 0) {
            in_.shrink(0);
            co_await socket_.async_wait(tcp::socket::wait_read,
                                        asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return ec;
        }
    }
    std::span<char> space = in_.prepare(min_free);
    std::size_t n = co_await socket_.async_read_some(
        asio::buffer(space.data(), space.size()), asio::redirect_error(asio::use_awaitable, ec));
    in_.commit(n);
    co_return ec;
}

template <class Decode>
asio::awaitable<WireRead> Wire::read_with(Decode decode) {
    for (;;) {
        proto::DecodeResult r = decode(in_.data());
        if (auto* m = std::get_if<proto::Message>(&r)) co_return *m;
        if (auto* e = std::get_if<proto::ProtoError>(&r)) co_return *e;
        std::size_t want = std::get<proto::NeedMore>(r).size;
        std::size_t missing = want > in_.size() ? want - in_.size() : 1;
        boost::system::error_code ec = co_await fill(std::max<std::size_t>(missing, 4096));
        if (ec) co_return WireClosed{ec};
    }
}

asio::awaitable<WireRead> Wire::read_frontend(const proto::DecodeLimits& limits) {
    co_return co_await read_with(
        [&limits](std::string_view b) { return proto::decode_frontend(b, limits); });
}

asio::awaitable<WireRead> Wire::read_backend() {
    co_return co_await read_with([](std::string_view b) { return proto::decode_backend(b); });
}

asio::awaitable<boost::system::error_code> Wire::flush() {
    boost::system::error_code ec;
    if (writing_) co_return ec;
    writing_ = true;
    while (!out_.empty() && !ec) {
        sending_.swap(out_);
        co_await asio::async_write(socket_, asio::buffer(sending_),
                                   asio::redirect_error(asio::use_awaitable, ec));
        sending_.clear();
        if (sending_.capacity() > kIdleBuffer * 8) std::string().swap(sending_);
    }
    if (ec) out_.clear();
    writing_ = false;
    co_return ec;
}

asio::awaitable<boost::system::error_code> Wire::send(std::string_view bytes) {
    boost::system::error_code ec = co_await flush();
    if (ec || bytes.empty()) co_return ec;
    co_await asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                               asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
}

void Wire::close() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
}

void Wire::release_idle_memory() {
    if (in_.empty()) in_.shrink(0);
    if (out_.capacity() > kIdleBuffer) std::string().swap(out_);
    if (!writing_ && sending_.capacity() > kIdleBuffer) std::string().swap(sending_);
}

}  // namespace pgrouter
