// Encoders for the v3 messages pgrouter writes: the server side it shows clients and the
// client side it shows backends. Each appends one whole message to a caller's std::string,
// so a session reuses one output buffer and allocates only when it grows.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "pgrouter/proto/message.h"
#include "pgrouter/proto/payload.h"

namespace pgrouter::proto {

// Builds one message in place: type byte, a length placeholder, the fields, then the
// length patched by finish() (or the destructor). C strings stop at an embedded NUL, which
// the protocol cannot carry.
class MessageBuilder {
  public:
    MessageBuilder(std::string& out, BackendMsg type)
        : MessageBuilder(out, static_cast<char>(type)) {}
    MessageBuilder(std::string& out, FrontendMsg type)
        : MessageBuilder(out, static_cast<char>(type)) {}
    // A startup-phase packet: no type byte.
    explicit MessageBuilder(std::string& out);
    ~MessageBuilder() { finish(); }
    MessageBuilder(const MessageBuilder&) = delete;
    MessageBuilder& operator=(const MessageBuilder&) = delete;

    MessageBuilder& u8(std::uint8_t v);
    MessageBuilder& i16(std::int16_t v);
    MessageBuilder& i32(std::int32_t v);
    MessageBuilder& cstr(std::string_view s);
    MessageBuilder& bytes(std::string_view s);
    void finish();

  private:
    MessageBuilder(std::string& out, char type);
    std::string& out_;
    std::size_t length_at_;
    bool finished_ = false;
};

using Param = std::pair<std::string_view, std::string_view>;

// ---- what a server sends -------------------------------------------------------------

// ErrorResponse / NoticeResponse with S and V = severity, C, M, and D/H when not empty.
void encode_error_response(std::string& out, std::string_view severity, std::string_view sqlstate,
                           std::string_view message, std::string_view detail = {},
                           std::string_view hint = {});
void encode_notice_response(std::string& out, std::string_view severity, std::string_view sqlstate,
                            std::string_view message, std::string_view detail = {},
                            std::string_view hint = {});
// Every field of `fields` (S, V, C, M, D, H, then the others in order).
void encode_error_response(std::string& out, const ErrorFields& fields);
void encode_notice_response(std::string& out, const ErrorFields& fields);

void encode_parameter_status(std::string& out, std::string_view name, std::string_view value);
void encode_backend_key_data(std::string& out, std::int32_t pid, std::int32_t key);
void encode_ready_for_query(std::string& out, TransactionStatus status);
void encode_auth_ok(std::string& out);
void encode_auth_cleartext_password(std::string& out);
void encode_auth_md5_password(std::string& out, std::span<const std::uint8_t, 4> salt);
void encode_auth_sasl(std::string& out, std::initializer_list<std::string_view> mechanisms);
void encode_auth_sasl(std::string& out, std::span<const std::string_view> mechanisms);
void encode_auth_sasl_continue(std::string& out, std::string_view data);
void encode_auth_sasl_final(std::string& out, std::string_view data);
// `version` is the full protocol number of the newest version supported for the client's
// major version (PostgreSQL sends PG_PROTOCOL_LATEST, i.e. 3.0 = 196608).
void encode_negotiate_protocol_version(std::string& out, std::uint32_t version,
                                       std::span<const std::string> unsupported_options);

// ---- what a client sends -------------------------------------------------------------

void encode_startup_message(std::string& out, std::span<const Param> params,
                            std::uint32_t version = kProtocolVersion30);
void encode_startup_message(std::string& out, std::initializer_list<Param> params,
                            std::uint32_t version = kProtocolVersion30);
void encode_ssl_request(std::string& out);
void encode_cancel_request(std::string& out, std::int32_t pid, std::int32_t key);
void encode_password_message(std::string& out, std::string_view password);
void encode_sasl_initial_response(std::string& out, std::string_view mechanism,
                                  std::string_view data);
void encode_sasl_response(std::string& out, std::string_view data);
void encode_query(std::string& out, std::string_view sql);
void encode_sync(std::string& out);
void encode_terminate(std::string& out);

}  // namespace pgrouter::proto
