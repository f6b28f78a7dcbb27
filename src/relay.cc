// One relayed client: pick the master from a snapshot, connect within the health timeout,
// then pump bytes both ways until either side closes. A failed connect posts the watcher's
// recheck semaphore and answers the client with a PostgreSQL ErrorResponse.
#include "pgrouter/relay.h"

#include <array>
#include <memory>

#include "pgrouter/log.h"
#include "pgrouter/shm.h"

namespace pgrouter {

namespace {

constexpr std::size_t kRelayBuffer = 16384;

// Counts an open thing in a worker's shared counter for as long as it lives.
class Counted {
public:
    explicit Counted(std::atomic<std::int64_t>& counter) : counter_(counter) { ++counter_; }
    ~Counted() { --counter_; }
    Counted(const Counted&) = delete;
    Counted& operator=(const Counted&) = delete;

private:
    std::atomic<std::int64_t>& counter_;
};

struct Link {
    Link(tcp::socket c, tcp::socket b, WorkerSlot& slot)
        : client(std::move(c)), backend(std::move(b)), counted(slot.connections) {}
    void close() {
        boost::system::error_code ignored;
        client.close(ignored);
        backend.close(ignored);
    }
    tcp::socket client;
    tcp::socket backend;
    Counted counted;
};

asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to, std::shared_ptr<Link> link) {
    std::array<char, kRelayBuffer> buf;
    boost::system::error_code ec;
    for (;;) {
        std::size_t n = co_await from.async_read_some(
            asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        co_await asio::async_write(to, asio::buffer(buf.data(), n),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
    }
    link->close();
}

// An ErrorResponse a client reads in place of the reply to its startup packet.
std::string error_response(std::string_view sqlstate, std::string_view message) {
    std::string body;
    auto field = [&body](char code, std::string_view value) {
        body += code;
        body.append(value);
        body += '\0';
    };
    field('S', "FATAL");
    field('V', "FATAL");
    field('C', sqlstate);
    field('M', message);
    body += '\0';
    std::string msg(1, 'E');
    auto len = static_cast<std::uint32_t>(body.size() + 4);
    for (int shift = 24; shift >= 0; shift -= 8) msg += static_cast<char>((len >> shift) & 0xff);
    return msg + body;
}

// Reads the client's first packet and declines SSL/GSS encryption, so that the error that
// follows reaches the client as an answer to its StartupMessage (libpq shows it verbatim).
asio::awaitable<void> read_startup(tcp::socket& client) {
    constexpr std::uint32_t kSslRequest = 80877103;
    constexpr std::uint32_t kGssEncRequest = 80877104;
    constexpr std::uint32_t kMaxStartup = 10000;
    boost::system::error_code ec;
    for (int packet = 0; packet < 3; ++packet) {
        unsigned char head[8];
        co_await asio::async_read(client, asio::buffer(head),
                                  asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        auto be32 = [](const unsigned char* p) {
            return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 |
                   std::uint32_t{p[2]} << 8 | p[3];
        };
        std::uint32_t len = be32(head);
        std::uint32_t code = be32(head + 4);
        if (len == 8 && (code == kSslRequest || code == kGssEncRequest)) {
            co_await asio::async_write(client, asio::buffer("N", 1),
                                       asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
            continue;
        }
        if (len < 8 || len > kMaxStartup) co_return;
        std::string rest(len - 8, '\0');
        co_await asio::async_read(client, asio::buffer(rest),
                                  asio::redirect_error(asio::use_awaitable, ec));
        co_return;
    }
}

// Answers a client that cannot be served with a FATAL ErrorResponse, within a deadline.
asio::awaitable<void> refuse(tcp::socket& client, std::string_view message) {
    asio::steady_timer deadline(client.get_executor(), std::chrono::seconds(5));
    deadline.async_wait([&client](const boost::system::error_code& e) {
        boost::system::error_code ignored;
        if (!e) client.close(ignored);
    });
    co_await read_startup(client);
    std::string reply = error_response("08006", message);
    boost::system::error_code ec;
    co_await asio::async_write(client, asio::buffer(reply),
                               asio::redirect_error(asio::use_awaitable, ec));
    deadline.cancel();
}

// Connects to host:port, giving up after `timeout`.
asio::awaitable<boost::system::error_code> connect_with_timeout(tcp::socket& sock,
                                                                const BackendSpec& spec,
                                                                std::chrono::milliseconds timeout) {
    auto executor = co_await asio::this_coro::executor;
    boost::system::error_code ec;
    tcp::resolver resolver(executor);
    auto endpoints = co_await resolver.async_resolve(
        spec.host, std::to_string(spec.port), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return ec;
    asio::steady_timer timer(executor, timeout);
    bool expired = false;
    timer.async_wait([&](const boost::system::error_code& e) {
        if (!e) {
            expired = true;
            boost::system::error_code ignored;
            sock.close(ignored);
        }
    });
    co_await asio::async_connect(sock, endpoints, asio::redirect_error(asio::use_awaitable, ec));
    timer.cancel();
    if (expired) ec = asio::error::timed_out;
    if (!ec) sock.set_option(tcp::no_delay(true), ec);
    co_return ec;
}

}  // namespace

asio::awaitable<void> relay_session(tcp::socket client, Segment& seg, WorkerSlot& slot) {
    Counted session(slot.clients);
    boost::system::error_code ec;
    client.set_option(tcp::no_delay(true), ec);
    Snapshot snap;
    const BackendView* master = take_snapshot(seg, snap) ? pick_master(snap) : nullptr;
    if (master == nullptr) {
        PGR_WARNING("client refused: no master backend is available");
        co_await refuse(client, "no master backend is available right now");
        co_return;
    }
    tcp::socket backend(client.get_executor());
    std::chrono::milliseconds timeout(std::max<std::int64_t>(snap.settings.health_timeout_ms, 1));
    ec = co_await connect_with_timeout(backend, master->spec, timeout);
    std::string address = Endpoint{master->spec.host, master->spec.port}.to_string();
    if (ec) {
        PGR_WARNING("cannot connect to backend %s: %s", address.c_str(), ec.message().c_str());
        seg.recheck.post();
        co_await refuse(client, "could not connect to the master backend " + address);
        co_return;
    }
    PGR_DEBUG("relaying client to %s", address.c_str());
    auto link = std::make_shared<Link>(std::move(client), std::move(backend), slot);
    asio::co_spawn(link->client.get_executor(), pump(link->backend, link->client, link),
                   asio::detached);
    co_await pump(link->client, link->backend, link);
}

}  // namespace pgrouter
