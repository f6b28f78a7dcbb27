// Framing of the v3 message stream (see decoder.h). Pure functions over a byte view: the
// only allocation is the text of an error, which ends the connection anyway.
#include "pgrouter/proto/decoder.h"

#include <cstdio>
#include <string>

namespace pgrouter::proto {
namespace {

constexpr std::size_t kHeaderSize = 5;  // type byte + Int32 length

DecodeResult frame(std::string_view buf, std::uint32_t limit) {
    if (buf.size() < kHeaderSize) return NeedMore{kHeaderSize};
    std::uint32_t len = read_be32(buf.data() + 1);
    // A length above 2^31 is negative on the wire: the same error as any other bad length.
    if (len < 4 || len > limit) {
        return ProtoError{kSqlstateProtocolViolation, "invalid message length"};
    }
    std::size_t total = std::size_t{len} + 1;
    if (buf.size() < total) return NeedMore{total};
    return Message{buf[0], buf.substr(kHeaderSize, len - 4), total};
}

}  // namespace

std::uint32_t frontend_length_limit(char type, const DecodeLimits& limits) {
    switch (static_cast<FrontendMsg>(type)) {
        case FrontendMsg::Query:
        case FrontendMsg::FunctionCall:
        case FrontendMsg::Bind:
        case FrontendMsg::Parse:
        case FrontendMsg::CopyData:
            return limits.data;
        case FrontendMsg::Terminate:
        case FrontendMsg::Close:
        case FrontendMsg::Describe:
        case FrontendMsg::Execute:
        case FrontendMsg::Flush:
        case FrontendMsg::Sync:
        case FrontendMsg::CopyDone:
        case FrontendMsg::CopyFail:
            return limits.control;
        case FrontendMsg::PasswordMessage:
            return limits.auth;
    }
    return 0;
}

DecodeResult decode_frontend(std::string_view buf, const DecodeLimits& limits) {
    if (buf.empty()) return NeedMore{kHeaderSize};
    std::uint32_t limit = frontend_length_limit(buf[0], limits);
    if (limit == 0) {
        char text[64];
        std::snprintf(text, sizeof text, "invalid frontend message type %d",
                      static_cast<int>(static_cast<unsigned char>(buf[0])));
        return ProtoError{kSqlstateProtocolViolation, text};
    }
    return frame(buf, limit);
}

std::size_t copy_messages_run(std::string_view buf, std::size_t cap) {
    std::size_t run = 0;
    while (buf.size() - run >= kHeaderSize) {
        char type = buf[run];
        bool copy = type == static_cast<char>(FrontendMsg::CopyData) ||
                    type == static_cast<char>(FrontendMsg::CopyDone) ||
                    type == static_cast<char>(FrontendMsg::CopyFail);
        std::uint32_t len = read_be32(buf.data() + run + 1);
        if (!copy || len < 4 || buf.size() - run - 1 < len) break;
        if (run != 0 && run + len + 1 > cap) break;
        run += std::size_t{len} + 1;
        if (type != static_cast<char>(FrontendMsg::CopyData)) break;  // the COPY ends there
    }
    return run;
}

bool known_backend_type(char type) {
    switch (static_cast<BackendMsg>(type)) {
        case BackendMsg::Authentication:
        case BackendMsg::BackendKeyData:
        case BackendMsg::BindComplete:
        case BackendMsg::CloseComplete:
        case BackendMsg::CommandComplete:
        case BackendMsg::CopyData:
        case BackendMsg::CopyDone:
        case BackendMsg::CopyInResponse:
        case BackendMsg::CopyOutResponse:
        case BackendMsg::CopyBothResponse:
        case BackendMsg::DataRow:
        case BackendMsg::EmptyQueryResponse:
        case BackendMsg::ErrorResponse:
        case BackendMsg::FunctionCallResponse:
        case BackendMsg::NegotiateProtocolVersion:
        case BackendMsg::NoData:
        case BackendMsg::NoticeResponse:
        case BackendMsg::NotificationResponse:
        case BackendMsg::ParameterDescription:
        case BackendMsg::ParameterStatus:
        case BackendMsg::ParseComplete:
        case BackendMsg::PortalSuspended:
        case BackendMsg::ReadyForQuery:
        case BackendMsg::RowDescription:
            return true;
    }
    return false;
}

DecodeResult decode_backend(std::string_view buf, std::uint32_t max_length) {
    if (!buf.empty() && !known_backend_type(buf[0])) {
        char text[64];
        std::snprintf(text, sizeof text, "invalid backend message type %d",
                      static_cast<int>(static_cast<unsigned char>(buf[0])));
        return ProtoError{kSqlstateProtocolViolation, text};
    }
    return frame(buf, max_length);
}

}  // namespace pgrouter::proto
