// The monitor process, the read-only observer: on the monitor socket it writes the spec's dump
// and closes; on the metrics socket (when configured) it answers HTTP/1.1 GET /metrics with
// the Prometheus exposition, through Boost.Beast. One event loop, one coroutine per
// connection: every connection has a deadline of kDeadline for its request and its answer, so
// slow or silent clients (any number of them) hold nothing but their own socket; past
// kMaxHttpClients the oldest is dropped to make room.
#include "pgrouter/monitor/monitor.h"

#include <sys/resource.h>
#include <unistd.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <list>

#include "pgrouter/base/asio.h"  // before any other Asio header
#include "pgrouter/base/clock.h"
#include "pgrouter/base/log.h"
#include "pgrouter/monitor/metrics.h"
#include "pgrouter/os/child.h"

namespace pgrouter {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;

constexpr auto kDeadline = std::chrono::seconds(1);
constexpr std::size_t kMaxHttpClients = 4096;
constexpr std::size_t kMaxRequestHeader = 8 * 1024;

tcp acceptor_protocol(int fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4();
}

// As many descriptors as the hard limit allows: every HTTP client holds one.
void raise_fd_limit() {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

std::string metrics_text(const Segment& seg) {
    Snapshot snap;
    CounterTotals counters;
    if (!take_snapshot(seg, snap) || !sum_counters(seg, counters)) return {};
    return format_metrics(snap, sum_workers(seg), counters) +
           format_pool_metrics(snap, pool_list(seg.pools), now_ns());
}

class Monitor {
  public:
    explicit Monitor(const ChildContext& ctx)
        : seg_(*ctx.segment), dump_(io_), metrics_(io_), signals_(io_, SIGTERM, SIGINT) {
        dump_.assign(acceptor_protocol(ctx.monitor_fd), ctx.monitor_fd);
        if (ctx.metrics_fd >= 0) metrics_.assign(acceptor_protocol(ctx.metrics_fd), ctx.metrics_fd);
    }

    void run() {
        signals_.async_wait([this](const boost::system::error_code&, int) { io_.stop(); });
        asio::co_spawn(io_, accept_dumps(), asio::detached);
        if (metrics_.is_open()) asio::co_spawn(io_, accept_http(), asio::detached);
        io_.run();
    }

  private:
    asio::awaitable<void> accept_dumps() {
        for (;;) {
            boost::system::error_code ec;
            tcp::socket s =
                co_await dump_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec == asio::error::operation_aborted) co_return;
            if (ec) {
                co_await pause();
                continue;
            }
            asio::co_spawn(io_, serve_dump(beast::tcp_stream(std::move(s))), asio::detached);
        }
    }

    asio::awaitable<void> serve_dump(beast::tcp_stream stream) {
        Snapshot snap;
        std::string text;
        if (take_snapshot(seg_, snap)) text = format_monitor(snap, sum_workers(seg_));
        stream.expires_after(kDeadline);
        boost::system::error_code ec;
        co_await asio::async_write(stream, asio::buffer(text),
                                   asio::redirect_error(asio::use_awaitable, ec));
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream.close();
    }

    asio::awaitable<void> accept_http() {
        for (;;) {
            boost::system::error_code ec;
            tcp::socket s =
                co_await metrics_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec == asio::error::operation_aborted) co_return;
            if (ec) {
                // EMFILE: make room by dropping the oldest client, then carry on.
                if (!http_clients_.empty()) http_clients_.front()->close();
                co_await pause();
                continue;
            }
            if (http_clients_.size() >= kMaxHttpClients) http_clients_.front()->close();
            asio::co_spawn(io_, serve_http(std::move(s)), asio::detached);
        }
    }

    asio::awaitable<void> serve_http(tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        http_clients_.push_back(&stream);
        auto me = std::prev(http_clients_.end());
        beast::flat_buffer buffer(kMaxRequestHeader + 1024);
        for (;;) {
            boost::system::error_code ec;
            http::request_parser<http::empty_body> parser;
            parser.header_limit(kMaxRequestHeader);
            parser.body_limit(0);
            stream.expires_after(kDeadline);  // the whole request, then the whole answer
            co_await http::async_read(stream, buffer, parser,
                                      asio::redirect_error(asio::use_awaitable, ec));
            if (ec) break;
            http::request<http::empty_body>& req = parser.get();
            http::response<http::string_body> res = answer(req);
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
            if (ec || !res.keep_alive()) break;
        }
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.close();
        http_clients_.erase(me);
    }

    http::response<http::string_body> answer(const http::request<http::empty_body>& req) {
        http::response<http::string_body> res;
        res.version(req.version());
        res.set(http::field::server, "pgrouter");
        std::string_view target(req.target().data(), req.target().size());
        std::string_view path = target.substr(0, target.find('?'));
        if (path != "/metrics") {
            res.result(http::status::not_found);
            res.set(http::field::content_type, "text/plain; charset=utf-8");
            res.body() = "not found; the metrics are at /metrics\n";
        } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
            res.result(http::status::method_not_allowed);
            res.set(http::field::allow, "GET, HEAD");
            res.set(http::field::content_type, "text/plain; charset=utf-8");
            res.body() = "method not allowed\n";
        } else {
            res.result(http::status::ok);
            res.set(http::field::content_type,
                    beast::string_view(kMetricsContentType.data(), kMetricsContentType.size()));
            res.body() = metrics_text(seg_);
            if (req.method() == http::verb::head) {
                res.content_length(res.body().size());
                res.body().clear();
            }
        }
        return res;
    }

    asio::awaitable<void> pause() {
        asio::steady_timer t(io_, std::chrono::milliseconds(50));
        co_await t.async_wait(asio::use_awaitable);
    }

    asio::io_context io_{1};
    const Segment& seg_;
    tcp::acceptor dump_;
    tcp::acceptor metrics_;
    asio::signal_set signals_;
    std::list<beast::tcp_stream*> http_clients_;  // oldest first
};

}  // namespace

void run_monitor(const ChildContext& ctx) {
    if (ctx.listen_fd >= 0) close(ctx.listen_fd);
    raise_fd_limit();
    {
        Monitor monitor(ctx);
        monitor.run();
    }
    _exit(0);
}

}  // namespace pgrouter
