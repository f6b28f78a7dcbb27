// The first packet a client sends (length-prefixed, no type byte): SSLRequest,
// GSSENCRequest, CancelRequest or a v3 StartupMessage. Parsing only, PostgreSQL's checks and
// wording (ProcessStartupPacket); the caller owns the socket, the deadline and the replies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "pgrouter/proto/message.h"

namespace pgrouter {

// Newest minor version of protocol 3 that pgrouter speaks.
inline constexpr std::uint16_t kNewestProtocolMinor = 0;
// PostgreSQL truncates user and database names to NAMEDATALEN - 1 bytes.
inline constexpr std::size_t kMaxIdentifierLength = 63;

enum class StartupKind : std::uint8_t { SslRequest, GssEncRequest, CancelRequest, Startup };

enum class ReplicationMode : std::uint8_t { None, Physical, Logical };

struct StartupParams {
    std::uint32_t version = proto::kProtocolVersion30;  // as requested by the client
    std::string user;                                   // never empty
    std::string database;                               // defaults to the user
    std::string options;  // the "options" command-line switches, verbatim
    std::string application_name;
    ReplicationMode replication = ReplicationMode::None;
    // Every name/value pair except user, database, replication and _pq_.*, in order
    // (options and application_name included): what a backend login must pass on.
    std::vector<std::pair<std::string, std::string>> params;
    // Names of the _pq_.* protocol options the client asked for (none is supported).
    std::vector<std::string> protocol_options;

    // When true, the caller must send NegotiateProtocolVersion(negotiate_version(),
    // protocol_options) before going on, as PostgreSQL does for 3.x with x > 0 or _pq_.*.
    bool needs_negotiation() const {
        return proto::protocol_minor(version) > kNewestProtocolMinor || !protocol_options.empty();
    }
    static constexpr std::uint32_t negotiate_version() {
        return proto::protocol_version(3, kNewestProtocolMinor);
    }
};

struct StartupPacket {
    StartupKind kind = StartupKind::Startup;
    std::int32_t cancel_pid = 0;  // CancelRequest only
    std::int32_t cancel_key = 0;  // CancelRequest only
    StartupParams startup;        // Startup only
};

// `send_to_client` is false for errors PostgreSQL only logs before closing (a broken length
// word: the peer is probably not a PostgreSQL client at all).
struct StartupError {
    std::string_view sqlstate;
    std::string message;
    std::string hint;
    bool send_to_client = true;
};

// Framing of the first packet: the whole packet's size once the length word is known and
// valid, proto::NeedMore before that, or an error for a length outside [8, 10004].
struct StartupFrame {
    std::size_t size = 0;
};
using StartupFrameResult = std::variant<proto::NeedMore, StartupFrame, StartupError>;
[[nodiscard]] StartupFrameResult frame_startup(std::string_view buf);

// Parses one whole packet (length word included; exactly frame_startup's size). Rejects what
// PostgreSQL rejects: protocol major != 3 (0A000 "unsupported frontend protocol"), a layout
// without the final terminator (08P01), no user (28000), a bad replication value (22023), a
// CancelRequest of the wrong length. Replication connections are parsed, not refused: that
// is policy, left to the caller.
using StartupResult = std::variant<StartupPacket, StartupError>;
[[nodiscard]] StartupResult parse_startup(std::string_view packet);

}  // namespace pgrouter
