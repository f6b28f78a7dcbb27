// PostgreSQL v3 protocol vocabulary: message type bytes by their names in the protocol
// documentation, authentication request codes, special startup codes, SQLSTATEs the
// front door sends, the decoded-message view and the wire's integer format. Names only:
// no I/O, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "pgrouter/proto/sqlstate.h"

namespace pgrouter::proto {

// What a client sends (the type byte of every message after the startup packet).
// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share one byte;
// the authentication phase tells them apart.
enum class FrontendMsg : char {
    Bind = 'B',
    Close = 'C',
    CopyData = 'd',
    CopyDone = 'c',
    CopyFail = 'f',
    Describe = 'D',
    Execute = 'E',
    Flush = 'H',
    FunctionCall = 'F',
    GSSResponse = 'p',
    Parse = 'P',
    PasswordMessage = 'p',
    Query = 'Q',
    SASLInitialResponse = 'p',
    SASLResponse = 'p',
    Sync = 'S',
    Terminate = 'X',
};

// What a server sends.
enum class BackendMsg : char {
    Authentication = 'R',
    BackendKeyData = 'K',
    BindComplete = '2',
    CloseComplete = '3',
    CommandComplete = 'C',
    CopyData = 'd',
    CopyDone = 'c',
    CopyInResponse = 'G',
    CopyOutResponse = 'H',
    CopyBothResponse = 'W',
    DataRow = 'D',
    EmptyQueryResponse = 'I',
    ErrorResponse = 'E',
    FunctionCallResponse = 'V',
    NegotiateProtocolVersion = 'v',
    NoData = 'n',
    NoticeResponse = 'N',
    NotificationResponse = 'A',
    ParameterDescription = 't',
    ParameterStatus = 'S',
    ParseComplete = '1',
    PortalSuspended = 's',
    ReadyForQuery = 'Z',
    RowDescription = 'T',
};

// The Int32 that follows the type in an Authentication message.
enum class AuthCode : std::int32_t {
    Ok = 0,
    KerberosV5 = 2,
    CleartextPassword = 3,
    MD5Password = 5,
    GSS = 7,
    GSSContinue = 8,
    SSPI = 9,
    SASL = 10,
    SASLContinue = 11,
    SASLFinal = 12,
};

// ReadyForQuery's transaction status indicator.
enum class TransactionStatus : char {
    Idle = 'I',
    InTransaction = 'T',
    Failed = 'E',
};

// Field type bytes of ErrorResponse and NoticeResponse.
enum class ErrorField : char {
    Severity = 'S',
    SeverityNonLocalized = 'V',
    Code = 'C',
    Message = 'M',
    Detail = 'D',
    Hint = 'H',
    Position = 'P',
    InternalPosition = 'p',
    InternalQuery = 'q',
    Where = 'W',
    Schema = 's',
    Table = 't',
    Column = 'c',
    DataType = 'd',
    Constraint = 'n',
    File = 'F',
    Line = 'L',
    Routine = 'R',
};

// The first Int32 after the length in a startup-phase packet.
inline constexpr std::uint32_t kCancelRequestCode = 80877102;
inline constexpr std::uint32_t kSslRequestCode = 80877103;
inline constexpr std::uint32_t kGssEncRequestCode = 80877104;
inline constexpr std::uint32_t kProtocolVersion30 = 3u << 16;

constexpr std::uint32_t protocol_version(std::uint16_t major, std::uint16_t minor) {
    return (std::uint32_t{major} << 16) | minor;
}
constexpr std::uint16_t protocol_major(std::uint32_t v) {
    return static_cast<std::uint16_t>(v >> 16);
}
constexpr std::uint16_t protocol_minor(std::uint32_t v) {
    return static_cast<std::uint16_t>(v & 0xffff);
}

// Length limits, counting the length word itself (as PostgreSQL's pq_getmessage does).
inline constexpr std::uint32_t kDefaultDataMessageLimit = 1u << 30;  // Query, Bind, CopyData...
inline constexpr std::uint32_t kSmallMessageLimit = 10000;           // Sync, Execute, Close...
inline constexpr std::uint32_t kAuthMessageLimit = 65535;            // PG_MAX_AUTH_TOKEN_LENGTH
inline constexpr std::uint32_t kStartupPacketLimit = 10000;          // MAX_STARTUP_PACKET_LENGTH

// One complete message inside a caller's buffer. The views point into that buffer and are
// valid until the caller consumes or moves it.
struct Message {
    char type = 0;             // raw type byte: compare with is()
    std::string_view payload;  // the bytes after the length word
    std::size_t size = 0;      // bytes the whole message occupies: type + length + payload

    bool is(FrontendMsg t) const { return type == static_cast<char>(t); }
    bool is(BackendMsg t) const { return type == static_cast<char>(t); }
    std::string_view bytes() const { return {payload.data() - 5, size}; }
};

// More bytes are needed before a message can be returned. `size` is the whole message's
// size when the header is complete, otherwise the header size (5).
struct NeedMore {
    std::size_t size = 0;
};

// The stream is broken: report it to the peer (as an ErrorResponse with this SQLSTATE)
// and close the connection; nothing after this point can be framed.
struct ProtoError {
    std::string_view sqlstate;
    std::string message;
};

using DecodeResult = std::variant<NeedMore, Message, ProtoError>;

// The protocol's Int32: four bytes, most significant first. The caller has checked that
// four bytes are there.
inline std::uint32_t read_be32(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
           std::uint32_t{u[3]};
}

}  // namespace pgrouter::proto
