// Encoders of the v3 messages pgrouter writes (see encoder.h). Appends to the caller's
// buffer; the only allocations are that buffer growing.
#include "pgrouter/proto/encoder.h"

namespace pgrouter::proto {
namespace {

void put_be32(std::string& out, std::size_t at, std::uint32_t v) {
    out[at] = static_cast<char>(v >> 24);
    out[at + 1] = static_cast<char>(v >> 16);
    out[at + 2] = static_cast<char>(v >> 8);
    out[at + 3] = static_cast<char>(v);
}

void encode_error_like(std::string& out, BackendMsg type, std::string_view severity,
                       std::string_view sqlstate, std::string_view message, std::string_view detail,
                       std::string_view hint) {
    MessageBuilder m(out, type);
    m.u8(static_cast<std::uint8_t>(ErrorField::Severity)).cstr(severity);
    m.u8(static_cast<std::uint8_t>(ErrorField::SeverityNonLocalized)).cstr(severity);
    m.u8(static_cast<std::uint8_t>(ErrorField::Code)).cstr(sqlstate);
    m.u8(static_cast<std::uint8_t>(ErrorField::Message)).cstr(message);
    if (!detail.empty()) m.u8(static_cast<std::uint8_t>(ErrorField::Detail)).cstr(detail);
    if (!hint.empty()) m.u8(static_cast<std::uint8_t>(ErrorField::Hint)).cstr(hint);
    m.u8(0);
}

void encode_error_like(std::string& out, BackendMsg type, const ErrorFields& f) {
    MessageBuilder m(out, type);
    auto field = [&m](ErrorField t, std::string_view v) {
        if (!v.empty()) m.u8(static_cast<std::uint8_t>(t)).cstr(v);
    };
    field(ErrorField::Severity, f.severity);
    field(ErrorField::SeverityNonLocalized, f.severity_nonlocalized);
    field(ErrorField::Code, f.sqlstate);
    field(ErrorField::Message, f.message);
    field(ErrorField::Detail, f.detail);
    field(ErrorField::Hint, f.hint);
    for (const auto& [type_byte, value] : f.other) {
        if (type_byte != 0) m.u8(static_cast<std::uint8_t>(type_byte)).cstr(value);
    }
    m.u8(0);
}

void encode_auth(std::string& out, AuthCode code, std::string_view data = {}) {
    MessageBuilder(out, BackendMsg::Authentication)
        .i32(static_cast<std::int32_t>(code))
        .bytes(data);
}

}  // namespace

MessageBuilder::MessageBuilder(std::string& out, char type) : out_(out) {
    out_.push_back(type);
    length_at_ = out_.size();
    out_.append(4, '\0');
}

MessageBuilder::MessageBuilder(std::string& out) : out_(out), length_at_(out.size()) {
    out_.append(4, '\0');
}

MessageBuilder& MessageBuilder::u8(std::uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
}

MessageBuilder& MessageBuilder::i16(std::int16_t v) {
    auto u = static_cast<std::uint16_t>(v);
    out_.push_back(static_cast<char>(u >> 8));
    out_.push_back(static_cast<char>(u));
    return *this;
}

MessageBuilder& MessageBuilder::i32(std::int32_t v) {
    std::size_t at = out_.size();
    out_.append(4, '\0');
    put_be32(out_, at, static_cast<std::uint32_t>(v));
    return *this;
}

MessageBuilder& MessageBuilder::cstr(std::string_view s) {
    out_.append(s.substr(0, s.find('\0')));
    out_.push_back('\0');
    return *this;
}

MessageBuilder& MessageBuilder::bytes(std::string_view s) {
    out_.append(s);
    return *this;
}

void MessageBuilder::finish() {
    if (finished_) return;
    finished_ = true;
    put_be32(out_, length_at_, static_cast<std::uint32_t>(out_.size() - length_at_));
}

void encode_error_response(std::string& out, std::string_view severity, std::string_view sqlstate,
                           std::string_view message, std::string_view detail,
                           std::string_view hint) {
    encode_error_like(out, BackendMsg::ErrorResponse, severity, sqlstate, message, detail, hint);
}

void encode_notice_response(std::string& out, std::string_view severity, std::string_view sqlstate,
                            std::string_view message, std::string_view detail,
                            std::string_view hint) {
    encode_error_like(out, BackendMsg::NoticeResponse, severity, sqlstate, message, detail, hint);
}

void encode_error_response(std::string& out, const ErrorFields& fields) {
    encode_error_like(out, BackendMsg::ErrorResponse, fields);
}

void encode_notice_response(std::string& out, const ErrorFields& fields) {
    encode_error_like(out, BackendMsg::NoticeResponse, fields);
}

void encode_parameter_status(std::string& out, std::string_view name, std::string_view value) {
    MessageBuilder(out, BackendMsg::ParameterStatus).cstr(name).cstr(value);
}

void encode_backend_key_data(std::string& out, std::int32_t pid, std::int32_t key) {
    MessageBuilder(out, BackendMsg::BackendKeyData).i32(pid).i32(key);
}

void encode_ready_for_query(std::string& out, TransactionStatus status) {
    MessageBuilder(out, BackendMsg::ReadyForQuery).u8(static_cast<std::uint8_t>(status));
}

void encode_auth_ok(std::string& out) { encode_auth(out, AuthCode::Ok); }

void encode_auth_cleartext_password(std::string& out) {
    encode_auth(out, AuthCode::CleartextPassword);
}

void encode_auth_md5_password(std::string& out, std::span<const std::uint8_t, 4> salt) {
    encode_auth(out, AuthCode::MD5Password,
                std::string_view(reinterpret_cast<const char*>(salt.data()), salt.size()));
}

void encode_auth_sasl(std::string& out, std::initializer_list<std::string_view> mechanisms) {
    encode_auth_sasl(out, std::span<const std::string_view>(mechanisms.begin(), mechanisms.size()));
}

void encode_auth_sasl(std::string& out, std::span<const std::string_view> mechanisms) {
    MessageBuilder m(out, BackendMsg::Authentication);
    m.i32(static_cast<std::int32_t>(AuthCode::SASL));
    for (std::string_view mech : mechanisms) m.cstr(mech);
    m.u8(0);
}

void encode_auth_sasl_continue(std::string& out, std::string_view data) {
    encode_auth(out, AuthCode::SASLContinue, data);
}

void encode_auth_sasl_final(std::string& out, std::string_view data) {
    encode_auth(out, AuthCode::SASLFinal, data);
}

void encode_negotiate_protocol_version(std::string& out, std::uint32_t version,
                                       std::span<const std::string> unsupported_options) {
    MessageBuilder m(out, BackendMsg::NegotiateProtocolVersion);
    m.i32(static_cast<std::int32_t>(version));
    m.i32(static_cast<std::int32_t>(unsupported_options.size()));
    for (const std::string& name : unsupported_options) m.cstr(name);
}

void encode_startup_message(std::string& out, std::span<const Param> params,
                            std::uint32_t version) {
    MessageBuilder m(out);
    m.i32(static_cast<std::int32_t>(version));
    for (const auto& [name, value] : params) m.cstr(name).cstr(value);
    m.u8(0);
}

void encode_startup_message(std::string& out, std::initializer_list<Param> params,
                            std::uint32_t version) {
    encode_startup_message(out, std::span<const Param>(params.begin(), params.size()), version);
}

void encode_ssl_request(std::string& out) {
    MessageBuilder(out).i32(static_cast<std::int32_t>(kSslRequestCode));
}

void encode_cancel_request(std::string& out, std::int32_t pid, std::int32_t key) {
    MessageBuilder(out).i32(static_cast<std::int32_t>(kCancelRequestCode)).i32(pid).i32(key);
}

void encode_password_message(std::string& out, std::string_view password) {
    MessageBuilder(out, FrontendMsg::PasswordMessage).cstr(password);
}

void encode_sasl_initial_response(std::string& out, std::string_view mechanism,
                                  std::string_view data) {
    MessageBuilder(out, FrontendMsg::SASLInitialResponse)
        .cstr(mechanism)
        .i32(static_cast<std::int32_t>(data.size()))
        .bytes(data);
}

void encode_sasl_response(std::string& out, std::string_view data) {
    MessageBuilder(out, FrontendMsg::SASLResponse).bytes(data);
}

void encode_query(std::string& out, std::string_view sql) {
    MessageBuilder(out, FrontendMsg::Query).cstr(sql);
}

void encode_sync(std::string& out) { MessageBuilder(out, FrontendMsg::Sync); }

void encode_terminate(std::string& out) { MessageBuilder(out, FrontendMsg::Terminate); }

}  // namespace pgrouter::proto
