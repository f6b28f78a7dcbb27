// RawClient: blocking socket I/O with poll() deadlines, pgrouter's codec for the bytes.
#include "raw_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include "pgrouter/auth/md5auth.h"
#include "pgrouter/auth/scram.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/proto/payload.h"

namespace pgrouter::test {

RawClient::RawClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        throw std::runtime_error("RawClient: cannot connect to port " + std::to_string(port));
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawClient::~RawClient() { close(); }

void RawClient::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    closed_ = true;
}

bool RawClient::send(const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
    }
    return true;
}

std::optional<RawMessage> RawClient::read(std::chrono::milliseconds deadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
        if (buf_.size() >= 5) {
            std::uint32_t len = ntohl(*reinterpret_cast<const std::uint32_t*>(buf_.data() + 1));
            if (buf_.size() >= 1 + std::size_t{len}) {
                RawMessage m{buf_[0], buf_.substr(5, len - 4)};
                buf_.erase(0, 1 + len);
                return m;
            }
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0 || closed_) return std::nullopt;
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        char chunk[65536];
        ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) {
            closed_ = true;
            continue;
        }
        buf_.append(chunk, static_cast<std::size_t>(n));
    }
}

bool RawClient::wait_closed(std::chrono::milliseconds deadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (!closed_ && std::chrono::steady_clock::now() < until) {
        (void)read(std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now()));
    }
    return closed_;
}

std::vector<RawMessage> RawClient::login(
    const std::string& user, const std::string& database, const std::string& password,
    const std::vector<std::pair<std::string, std::string>>& extra, std::uint32_t version) {
    std::vector<proto::Param> params{{"user", user}, {"database", database}};
    for (const auto& [k, v] : extra) params.emplace_back(k, v);
    std::string out;
    proto::encode_startup_message(out, params, version);
    send(out);
    std::vector<RawMessage> got;
    std::optional<ScramClient> scram;
    while (auto m = read()) {
        got.push_back(*m);
        if (m->type == 'E' || m->type == 'Z') break;
        if (m->type != 'R') continue;
        auto req = proto::parse_authentication(m->payload);
        if (!req) break;
        out.clear();
        switch (req->code) {
            case proto::AuthCode::CleartextPassword:
                proto::encode_password_message(out, password);
                break;
            case proto::AuthCode::MD5Password: {
                Md5Salt salt;
                std::memcpy(salt.data(), req->data.data(), 4);
                proto::encode_password_message(out,
                                               md5_response_from_password(password, user, salt));
                break;
            }
            case proto::AuthCode::SASL:
                scram.emplace(ScramClient::with_password(password));
                proto::encode_sasl_initial_response(out, scram->mechanism(),
                                                    scram->client_first().value_or(""));
                break;
            case proto::AuthCode::SASLContinue:
                proto::encode_sasl_response(out, scram->handle_server_first(req->data).message);
                break;
            default:
                break;
        }
        if (!out.empty()) send(out);
    }
    return got;
}

std::string error_code(const RawMessage& m) {
    auto f = proto::parse_error_fields(m.payload);
    return f ? f->sqlstate : "";
}

std::string error_message(const RawMessage& m) {
    auto f = proto::parse_error_fields(m.payload);
    return f ? f->message : "";
}

const RawMessage* find_message(const std::vector<RawMessage>& msgs, char type) {
    for (const RawMessage& m : msgs) {
        if (m.type == type) return &m;
    }
    return nullptr;
}

}  // namespace pgrouter::test
