// FakeBackend: blocking sockets, one thread per connection, poll() with deadlines so that
// the destructor (which shuts every socket down) never waits for a peer.
#include "fake_backend.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "pgrouter/proto/encoder.h"

namespace pgrouter::test {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kMaxMessage = 64u << 20;  // more is a broken stream, not a test
constexpr std::int32_t kWatcherPid = 4242;
constexpr const char* kSystemIdentifier = "7000000000000000042";

std::uint32_t be32(const char* p) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    return ntohl(v);
}

std::string lower(std::string_view s) {
    std::string out;
    for (char ch : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
}

// The text of a Query payload (up to its NUL).
std::string query_text(const RawMessage& m) { return m.payload.substr(0, m.payload.find('\0')); }

}  // namespace

// One accepted connection: its socket, what was read and not yet framed, its thread.
struct FakeBackend::Conn {
    int fd = -1;
    std::string buf;
    bool eof = false;
    std::thread thread;

    // Waits for readable bytes up to `until`; false at the deadline or at end of stream.
    bool fill(Clock::time_point until, const std::atomic<bool>& stopping) {
        char chunk[65536];
        while (!stopping) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
            if (left.count() <= 0) return false;
            pollfd p{fd, POLLIN, 0};
            int ready = poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100)));
            if (ready <= 0) continue;
            ssize_t n = recv(fd, chunk, sizeof chunk, 0);
            if (n <= 0) {
                eof = true;
                return false;
            }
            buf.append(chunk, static_cast<std::size_t>(n));
            return true;
        }
        return false;
    }

    // The startup packet's payload (after the length), or nullopt.
    std::optional<std::string> read_startup(Clock::time_point until,
                                            const std::atomic<bool>& stopping) {
        for (;;) {
            if (buf.size() >= 4) {
                std::uint32_t len = be32(buf.data());
                if (len < 8 || len > 10000) return std::nullopt;
                if (buf.size() >= len) {
                    std::string payload = buf.substr(4, len - 4);
                    buf.erase(0, len);
                    return payload;
                }
            }
            if (!fill(until, stopping)) return std::nullopt;
        }
    }

    // The next message, or nullopt at end of stream, deadline or a broken frame.
    std::optional<RawMessage> read(Clock::time_point until, const std::atomic<bool>& stopping) {
        for (;;) {
            if (buf.size() >= 5) {
                std::uint32_t len = be32(buf.data() + 1);
                if (len < 4 || len > kMaxMessage) return std::nullopt;
                if (buf.size() >= 1 + std::size_t{len}) {
                    RawMessage m{buf[0], buf.substr(5, len - 4)};
                    buf.erase(0, 1 + len);
                    return m;
                }
            }
            if (!fill(until, stopping)) return std::nullopt;
        }
    }

    bool write(std::string_view bytes) {
        while (!bytes.empty()) {
            ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
};

FakeBackend::FakeBackend(FakeOptions opts) : opts_(std::move(opts)), fallback_{fake::serve()} {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;  // the kernel picks a free port: no race with other tests
    socklen_t alen = sizeof a;
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(listen_fd_, 64) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &alen) != 0) {
        if (listen_fd_ >= 0) ::close(listen_fd_);
        throw std::runtime_error("FakeBackend: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
}

FakeBackend::~FakeBackend() {
    stopping_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    ::close(listen_fd_);
    std::vector<std::unique_ptr<Conn>> conns;
    {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& c : conns_) shutdown(c->fd, SHUT_RDWR);
        conns.swap(conns_);
    }
    for (auto& c : conns) {
        if (c->thread.joinable()) c->thread.join();
        ::close(c->fd);
    }
}

void FakeBackend::add_script(fake::Script script) {
    std::lock_guard<std::mutex> lock(mu_);
    scripts_.push_back(std::move(script));
}

void FakeBackend::set_fallback(fake::Script script) {
    std::lock_guard<std::mutex> lock(mu_);
    fallback_ = std::move(script);
}

int FakeBackend::sessions() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sessions_;
}

int FakeBackend::sessions_done() const {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
}

bool FakeBackend::wait_sessions_done(int n, std::chrono::milliseconds deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return done_cv_.wait_for(lock, deadline, [&] { return done_ >= n; });
}

std::vector<RawMessage> FakeBackend::received(int i) const {
    std::lock_guard<std::mutex> lock(mu_);
    if (i < 0 || i >= static_cast<int>(received_.size())) return {};
    return received_[static_cast<std::size_t>(i)];
}

std::vector<std::string> FakeBackend::failures() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
}

std::pair<std::int32_t, std::int32_t> FakeBackend::last_cancel() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cancel_;
}

void FakeBackend::open_gate(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    gates_.insert(name);
    done_cv_.notify_all();
}

bool FakeBackend::wait_gate(const std::string& name) {
    auto until = Clock::now() + opts_.read_deadline;
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_ && gates_.count(name) == 0) {
        if (Clock::now() >= until) return false;
        done_cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
    return !stopping_;
}

void FakeBackend::fail(int index, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.push_back("fake backend session " + std::to_string(index) + ": " + what);
}

void FakeBackend::accept_loop() {
    while (!stopping_) {
        pollfd p{listen_fd_, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(listen_fd_, nullptr, nullptr);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::lock_guard<std::mutex> lock(mu_);
        auto c = std::make_unique<Conn>();
        c->fd = fd;
        Conn* raw = c.get();
        conns_.push_back(std::move(c));
        raw->thread = std::thread([this, raw] { run_conn(*raw); });
    }
}

void FakeBackend::run_conn(Conn& c) {
    auto until = Clock::now() + opts_.read_deadline;
    std::optional<std::string> startup = c.read_startup(until, stopping_);
    if (startup && startup->size() >= 4 && be32(startup->data()) == proto::kSslRequestCode) {
        if (!c.write("N")) return;
        startup = c.read_startup(until, stopping_);
    }
    if (!startup || startup->size() < 4) return;
    std::uint32_t code = be32(startup->data());
    if (code == proto::kCancelRequestCode) {
        if (startup->size() >= 12) {
            std::lock_guard<std::mutex> lock(mu_);
            cancel_ = {static_cast<std::int32_t>(be32(startup->data() + 4)),
                       static_cast<std::int32_t>(be32(startup->data() + 8))};
        }
        cancels_ += 1;
        shutdown(c.fd, SHUT_RDWR);
        return;
    }
    // "name\0value\0" pairs after the version.
    bool watcher =
        startup->find(std::string("application_name\0pgrouter watcher\0", 34)) != std::string::npos;
    int index = -1;
    fake::Script script;
    if (!watcher) {
        std::lock_guard<std::mutex> lock(mu_);
        index = sessions_++;
        received_.emplace_back();
        if (!scripts_.empty()) {
            script = std::move(scripts_.front());
            scripts_.pop_front();
        } else {
            script = fallback_;
        }
    }
    std::string hello;
    proto::encode_auth_ok(hello);
    for (auto [name, value] : {std::pair{"server_version", "16.0 (fake)"},
                               {"server_encoding", "UTF8"},
                               {"client_encoding", "UTF8"},
                               {"DateStyle", "ISO, MDY"},
                               {"integer_datetimes", "on"},
                               {"standard_conforming_strings", "on"},
                               {"TimeZone", "UTC"}}) {
        proto::encode_parameter_status(hello, name, value);
    }
    proto::encode_backend_key_data(hello, watcher ? kWatcherPid : 1000 + index, 77 + index);
    proto::encode_ready_for_query(hello, proto::TransactionStatus::Idle);
    if (!watcher && !opts_.session_hello.empty()) hello = opts_.session_hello;
    if (c.write(hello)) {
        if (watcher) {
            run_watcher(c);
        } else {
            run_session(c, index, script);
        }
    }
    shutdown(c.fd, SHUT_RDWR);
    if (!watcher) {
        std::lock_guard<std::mutex> lock(mu_);
        done_ += 1;
        done_cv_.notify_all();
    }
}

// pgrouter's health probe sends one simple query per check (health_probe.cc): the full
// check also asks for the system identifier, as a sixth column after "streaming" (a fake
// standby's WAL receiver always streams).
void FakeBackend::run_watcher(Conn& c) {
    for (;;) {
        auto until = Clock::now() + std::chrono::hours(24);
        std::optional<RawMessage> m = c.read(until, stopping_);
        if (!m || m->type == 'X') return;
        if (m->type != 'Q') continue;
        bool full = query_text(*m).find("system_identifier") != std::string::npos;
        std::vector<std::string> names{"r", "lsn", "receive_lsn", "timeline", "streaming"};
        if (full) names.emplace_back("system_identifier");
        std::string out = fake::row_description(names);
        {
            proto::MessageBuilder row(out, proto::BackendMsg::DataRow);
            row.i16(static_cast<std::int16_t>(names.size()));
            auto text = [&row](const std::string& v) {
                row.i32(static_cast<std::int32_t>(v.size())).bytes(v);
            };
            text(opts_.standby ? "t" : "f");
            text(opts_.lsn);
            if (opts_.standby) {
                text(opts_.lsn);
            } else {
                row.i32(-1);  // NULL: a primary receives no WAL
            }
            text("1");
            text(opts_.standby ? "t" : "f");
            if (full) text(kSystemIdentifier);
        }
        out += fake::command_complete("SELECT 1") + fake::ready();
        if (!c.write(out)) return;
        watcher_queries_ += 1;
    }
}

void FakeBackend::run_session(Conn& c, int index, const fake::Script& script) {
    auto record = [&](const RawMessage& m) {
        std::lock_guard<std::mutex> lock(mu_);
        received_[static_cast<std::size_t>(index)].push_back(m);
    };
    using Kind = fake::Step::Kind;
    for (std::size_t n = 0; n <= script.size(); ++n) {
        const fake::Step& step = n < script.size() ? script[n] : fake::serve();
        std::string where = "step " + std::to_string(n) + ": ";
        switch (step.kind) {
            case Kind::Expect:
                for (std::size_t k = 0; k < step.types.size(); ++k) {
                    std::optional<RawMessage> m =
                        c.read(Clock::now() + opts_.read_deadline, stopping_);
                    if (!m) {
                        if (!stopping_) {
                            fail(index, where + "expected '" + step.types[k] + "', got " +
                                            (c.eof ? "end of stream" : "nothing or a bad frame"));
                        }
                        return;
                    }
                    record(*m);
                    if (m->type != step.types[k]) {
                        fail(index, where + "expected '" + step.types[k] + "', got '" + m->type +
                                        "' (" + m->payload.substr(0, 80) + ")");
                        return;
                    }
                    bool last = k + 1 == step.types.size();
                    if (last && m->payload.find(step.contains) == std::string::npos) {
                        fail(index, where + "'" + m->type + "' lacks \"" + step.contains +
                                        "\": " + m->payload.substr(0, 200));
                        return;
                    }
                }
                break;
            case Kind::Send: {
                std::size_t chunk = step.chunk == 0 ? step.bytes.size() : step.chunk;
                for (std::size_t at = 0; at < step.bytes.size() && !stopping_; at += chunk) {
                    if (!c.write(std::string_view(step.bytes).substr(at, chunk))) {
                        fail(index, where + "the peer closed while we were sending");
                        return;
                    }
                    if (step.delay.count() > 0) std::this_thread::sleep_for(step.delay);
                }
                break;
            }
            case Kind::Pause:
                for (auto until = Clock::now() + step.delay; Clock::now() < until && !stopping_;) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                }
                break;
            case Kind::Close:
                return;
            case Kind::Gate:
                if (!wait_gate(step.types)) {
                    if (!stopping_) fail(index, where + "gate " + step.types + " never opened");
                    return;
                }
                break;
            case Kind::Serve: {
                char status = 'I';
                for (;;) {
                    std::optional<RawMessage> m =
                        c.read(Clock::now() + std::chrono::hours(24), stopping_);
                    if (!m || m->type == 'X') return;
                    record(*m);
                    std::string out;
                    switch (m->type) {
                        case 'Q': {
                            std::string sql = query_text(*m);
                            std::string l = lower(sql);
                            if (l.rfind("begin", 0) == 0 || l.rfind("start", 0) == 0) status = 'T';
                            if ((l.rfind("commit", 0) == 0 || l.rfind("rollback", 0) == 0 ||
                                 l.rfind("end", 0) == 0) &&
                                l.find(" to ") == std::string::npos) {
                                status = 'I';
                            }
                            out = fake::echo_answer(sql, status);
                            break;
                        }
                        case 'P':
                            out = fake::parse_complete();
                            break;
                        case 'B':
                            out = fake::bind_complete();
                            break;
                        case 'C':
                            out = fake::message('3', "");
                            break;
                        case 'D':
                            out = fake::no_data();
                            break;
                        case 'E':
                            out = fake::command_complete("SELECT 0");
                            break;
                        case 'S':
                            out = fake::ready(status);
                            break;
                        default:
                            break;
                    }
                    if (!out.empty() && !c.write(out)) return;
                }
            }
        }
    }
}

}  // namespace pgrouter::test
