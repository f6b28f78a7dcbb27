// A worker: one single-threaded Asio event loop, one coroutine per client; clients come from
// the listening socket shared by all workers through AcceptSpread's thread. SIGTERM stops
// accepting and ends each session at its next transaction boundary (idle ones at once); at
// shutdown-timeout the rest are cut.
// SIGUSR1 (the supervisor retires the worker: a reload lowered `workers`) stops accepting
// and leaves the sessions alone until they leave or shutdown-timeout cuts them. SIGINT
// leaves at once. Never blocks the loop.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pgrouter/base/asio.h"
#include "pgrouter/base/clock.h"
#include "pgrouter/base/log.h"
#include "pgrouter/net/tls.h"
#include "pgrouter/os/accept_spread.h"
#include "pgrouter/os/child.h"
#include "pgrouter/os/seqlock.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/proto/sqlstate.h"
#include "pgrouter/worker/session.h"

namespace pgrouter {

namespace {

constexpr auto kDrainTimeout = std::chrono::seconds(10);  // without a published setting
constexpr auto kSettingsPoll = std::chrono::milliseconds(500);
// How long a session is idle, at most, before its backend sockets are watched: under load
// a session is never idle that long, so its units cost no watch.
constexpr auto kIdleWatchDelay = std::chrono::milliseconds(100);

tcp acceptor_protocol(int fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4();
}

// admin-users as published: NAME[,NAME...].
std::vector<std::string> split_names(std::string_view list) {
    std::vector<std::string> names;
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        if (comma != 0) names.emplace_back(list.substr(0, comma));
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return names;
}

// Client sessions open in all workers (each worker counts its own; a reaped worker's count
// is zeroed by the supervisor). Two workers accepting at the same instant may both pass.
std::int64_t clients_everywhere(const Segment& seg) {
    std::int64_t n = 0;
    for (const WorkerSlot& w : seg.workers) n += std::max<std::int64_t>(0, w.clients.load());
    return n;
}

// Refuses a client at the door as PostgreSQL does when it is full: FATAL 53300. What the
// client sent so far is read first (closing with unread bytes would reset the connection,
// and the client could lose the message). Never blocks; best effort.
void refuse_client(int fd) {
    char sink[1024];
    for (int n = 0; n < 16 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++n) {
    }
    std::string out;
    proto::encode_error_response(out, "FATAL", proto::kSqlstateTooManyConnections,
                                 "sorry, too many clients already");
    ::send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
    ::close(fd);
}

class Worker {
  public:
    explicit Worker(const ChildContext& ctx)
        : seg_(*ctx.segment),
          slot_(seg_.workers[ctx.index]),
          env_(seg_, slot_, ctx.index),
          protocol_(acceptor_protocol(ctx.listen_fd)),
          spread_(
              io_, ctx.listen_fd,
              [this](int fd, bool out_of_fds) { start_session(fd, out_of_fds); },
              [](const std::string& why) { PGR_WARNING("%s", why.c_str()); }),
          signals_(io_, SIGTERM, SIGINT, SIGUSR1),
          settings_timer_(io_),
          drain_timer_(io_),
          idle_timer_(io_) {}

    void run() {
        poll_settings();
        sweep_idle();
        env_.pool.start(io_);
        std::string error;
        if (!spread_.start(error)) {
            // Without its accept thread the worker serves no new client: let it be replaced.
            PGR_LOG(LogLevel::Alert, "%s", error.c_str());
            _exit(kExitFatal);
        }
        slot_.accepting.store(true);
        watch_signals();
        io_.run();
    }

  private:
    // A client the accept thread took (AcceptSpread): refused when descriptors ran out
    // (`out_of_fds`, its spare one made room to tell it so) or beyond max-clients.
    void start_session(int fd, bool out_of_fds) {
        if (out_of_fds) {
            PGR_WARNING("out of file descriptors: refused a client");
            return refuse_client(fd);
        }
        (void)refresh_routing_view(seg_, env_.routing);
        std::uint32_t max_clients = env_.routing.settings.pool.max_clients;
        if (max_clients > 0 && clients_everywhere(seg_) >= max_clients) return refuse_client(fd);
        tcp::socket client(io_);
        boost::system::error_code ec;
        client.assign(protocol_, fd, ec);
        if (ec) {
            PGR_WARNING("cannot take an accepted client: %s", ec.message().c_str());
            close(fd);
            return;
        }
        slot_.accepted.fetch_add(1, std::memory_order_relaxed);
        // run_session() logs what escapes a session itself, with the session's id.
        asio::co_spawn(io_, run_session(std::move(client), env_), asio::detached);
    }

    void watch_signals() {
        signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
            if (ec) return;
            if (sig == SIGINT) _exit(0);
            if (!retiring_) {
                // SIGUSR1 (a reload needs fewer workers) or SIGTERM: no new clients; the
                // worker exits when its sessions are done, or at the shutdown timeout.
                retiring_ = true;
                slot_.accepting.store(false);
                PGR_DEBUG("%s: no new clients, %lld sessions open",
                          sig == SIGTERM ? "shutting down" : "retiring",
                          static_cast<long long>(slot_.clients.load()));
                spread_.stop();
                SharedSettings settings;
                std::chrono::milliseconds timeout = kDrainTimeout;
                if (seq_read(seg_.settings_seq, seg_.settings, settings) &&
                    settings.shutdown_timeout_ms > 0) {
                    timeout = std::chrono::milliseconds(settings.shutdown_timeout_ms);
                }
                draining_until_ = std::chrono::steady_clock::now() + timeout;
                // The first look after one round of the loop: clients the accept thread
                // handed over just before stop() start their sessions first.
                asio::post(io_, [this] { asio::post(io_, [this] { check_drained(); }); });
            }
            if (sig == SIGTERM && !env_.draining) {
                // A shutdown: each session ends at its next transaction boundary; idle ones
                // wake to see it. A retired worker's sessions go on until the timeout.
                env_.draining = true;
                for (asio::steady_timer* wakeup : env_.wakeups) wakeup->cancel();
            }
            watch_signals();
        });
    }

    void check_drained() {
        if (slot_.clients.load() <= 0 || std::chrono::steady_clock::now() >= draining_until_) {
            if (slot_.clients.load() > 0) {
                PGR_NOTICE("shutdown timeout: cutting %lld sessions still inside a transaction",
                           static_cast<long long>(slot_.clients.load()));
            }
            io_.stop();
            return;
        }
        drain_timer_.expires_after(std::chrono::milliseconds(50));
        drain_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) check_drained();
        });
    }

    // The client-facing TLS context from the published files, read again on every
    // generation so that a rotated certificate needs only SIGHUP. When it cannot be built
    // the previous one stays (at start: no previous one, the worker exits).
    void load_tls(const SharedSettings& settings) {
        if (!settings.tls_enabled) {
            env_.tls.reset();
            return;
        }
        ServerTlsResult r = make_server_tls(
            {settings.tls_cert, settings.tls_key, settings.tls_ca, settings.tls_ciphers});
        if (auto* ctx = std::get_if<std::shared_ptr<ssl::context>>(&r)) {
            env_.tls = std::move(*ctx);
            return;
        }
        PGR_ERROR("%s", std::get<TlsProblem>(r).message.c_str());
        if (env_.tls == nullptr && generation_ == 0) {
            PGR_ERROR("cannot set up TLS; exiting");
            _exit(kExitFatal);
        }
        PGR_ERROR("keeping the previous TLS certificate and key");
    }

    // Picks up a reloaded configuration: log level, hba, authdb and TLS files. Also reports
    // the log lines about dropped connections held back in a window that is over.
    void poll_settings() {
        if (std::uint64_t n = env_.dropped_log.flush(now_ns())) {
            PGR_INFO("connections dropped before login: suppressed %llu similar messages",
                     static_cast<unsigned long long>(n));
        }
        SharedSettings settings;
        if (seq_read(seg_.settings_seq, seg_.settings, settings) &&
            settings.generation != generation_) {
            log_set_level(settings.log_level);
            load_tls(settings);
            env_.log_connections = settings.log_connections;
            env_.admin_users = split_names(settings.admin_users);
            AccessResult access = load_access(settings.hba_path, settings.authdb_path);
            if (access.rules) {
                env_.access = std::move(access.rules);
                generation_ = settings.generation;
            } else if (env_.access == nullptr) {
                for (const std::string& e : access.errors) PGR_ERROR("%s", e.c_str());
                PGR_ERROR("cannot load hba/authdb; exiting");
                _exit(kExitFatal);
            } else {
                for (const std::string& e : access.errors) PGR_ERROR("%s", e.c_str());
                PGR_ERROR("keeping the previous hba and authdb");
                generation_ = settings.generation;
            }
        }
        settings_timer_.expires_after(kSettingsPoll);
        settings_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) poll_settings();
        });
    }

    void sweep_idle() {
        idle_due_.swap(env_.idle_unwatched);
        for (asio::steady_timer* wakeup : idle_due_) wakeup->cancel();
        idle_due_.clear();
        idle_timer_.expires_after(kIdleWatchDelay);
        idle_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) sweep_idle();
        });
    }

    // One thread runs the loop and does all its sockets' I/O; other threads (accept, SQL
    // parsing) only post to it: the scheduler keeps its lock, the reactor's per-socket
    // locking goes (two mutex round trips per socket operation).
    asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    Segment& seg_;
    WorkerSlot& slot_;
    WorkerEnv env_;
    std::uint64_t generation_ = 0;
    tcp protocol_;
    AcceptSpread spread_;
    asio::signal_set signals_;
    asio::steady_timer settings_timer_;
    asio::steady_timer drain_timer_;
    asio::steady_timer idle_timer_;
    std::unordered_set<asio::steady_timer*> idle_due_;  // sweep_idle()'s, kept for its capacity
    std::chrono::steady_clock::time_point draining_until_;
    bool retiring_ = false;  // no longer accepting (SIGTERM or SIGUSR1)
};

}  // namespace

void run_worker(const ChildContext& ctx) {
    if (ctx.monitor_fd >= 0) close(ctx.monitor_fd);
    if (ctx.metrics_fd >= 0) close(ctx.metrics_fd);
    // Never destroyed: the sessions' coroutine frames, owned by the loop, would outlive the
    // WorkerEnv (and the pools) they borrow. _exit() closes every socket.
    auto* worker = new Worker(ctx);
    worker->run();
    _exit(0);
}

}  // namespace pgrouter
