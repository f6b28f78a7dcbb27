// Parsing of the first packet of a connection (see startup.h), following PostgreSQL's
// ProcessStartupPacket step by step so that clients see the same errors. No I/O here.
#include "pgrouter/proto/startup.h"

#include <strings.h>

#include <cstdio>

namespace pgrouter {
namespace {

constexpr std::size_t kLengthWord = 4;

StartupError invalid_length() {
    return StartupError{
        proto::kSqlstateProtocolViolation, "invalid length of startup packet", {}, false};
}

// PostgreSQL's parse_bool: case-insensitive unique prefixes of true/false/yes/no, on/off
// (at least two letters), 1/0.
bool parse_pg_bool(std::string_view v, bool& out) {
    auto prefix_of = [&v](std::string_view word, std::size_t min_len) {
        return v.size() >= min_len && v.size() <= word.size() &&
               strncasecmp(v.data(), word.data(), v.size()) == 0;
    };
    if (prefix_of("true", 1) || prefix_of("yes", 1) || prefix_of("on", 2) || v == "1") {
        out = true;
        return true;
    }
    if (prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || v == "0") {
        out = false;
        return true;
    }
    return false;
}

void truncate_identifier(std::string& s) {
    if (s.size() > kMaxIdentifierLength) s.resize(kMaxIdentifierLength);
}

StartupResult parse_params(std::string_view body, std::uint32_t version) {
    StartupPacket packet;
    StartupParams& sp = packet.startup;
    sp.version = version;
    bool have_user = false;
    bool have_database = false;

    std::size_t offset = kLengthWord;  // past the protocol version
    bool terminated = false;
    while (offset < body.size()) {
        if (body[offset] == '\0') {
            terminated = offset == body.size() - 1;
            break;
        }
        std::size_t name_end = body.find('\0', offset);
        if (name_end == std::string_view::npos || name_end + 1 >= body.size()) break;
        std::size_t value_end = body.find('\0', name_end + 1);
        if (value_end == std::string_view::npos) break;
        std::string_view name = body.substr(offset, name_end - offset);
        std::string_view value = body.substr(name_end + 1, value_end - name_end - 1);
        offset = value_end + 1;

        if (name == "database") {
            sp.database = value;
            have_database = true;
        } else if (name == "user") {
            sp.user = value;
            have_user = true;
        } else if (name == "replication") {
            bool on = false;
            if (value == "database") {
                sp.replication = ReplicationMode::Logical;
            } else if (parse_pg_bool(value, on)) {
                sp.replication = on ? ReplicationMode::Physical : ReplicationMode::None;
            } else {
                return StartupError{
                    proto::kSqlstateInvalidParameterValue,
                    "invalid value for parameter \"replication\": \"" + std::string(value) + "\"",
                    "Valid values are: \"false\", 0, \"true\", 1, \"database\".", true};
            }
        } else if (name.starts_with("_pq_.")) {
            sp.protocol_options.emplace_back(name);
        } else {
            if (name == "options") sp.options = value;
            if (name == "application_name") sp.application_name = value;
            sp.params.emplace_back(std::string(name), std::string(value));
        }
    }
    if (!terminated) {
        return StartupError{proto::kSqlstateProtocolViolation,
                            "invalid startup packet layout: expected terminator as last byte",
                            {},
                            true};
    }
    if (!have_user || sp.user.empty()) {
        return StartupError{proto::kSqlstateInvalidAuthorization,
                            "no PostgreSQL user name specified in startup packet",
                            {},
                            true};
    }
    if (!have_database || sp.database.empty()) sp.database = sp.user;
    truncate_identifier(sp.user);
    truncate_identifier(sp.database);
    return packet;
}

}  // namespace

StartupFrameResult frame_startup(std::string_view buf) {
    if (buf.size() < kLengthWord) return proto::NeedMore{kLengthWord};
    std::uint32_t len = proto::read_be32(buf.data());
    // PostgreSQL compares the body length (without the length word) to [4, 10000].
    if (len < 2 * kLengthWord || len - kLengthWord > proto::kStartupPacketLimit) {
        return invalid_length();
    }
    return StartupFrame{len};
}

StartupResult parse_startup(std::string_view packet) {
    auto framed = frame_startup(packet);
    if (auto* err = std::get_if<StartupError>(&framed)) return *err;
    if (std::holds_alternative<proto::NeedMore>(framed) ||
        std::get<StartupFrame>(framed).size != packet.size()) {
        return invalid_length();
    }
    std::string_view body = packet.substr(kLengthWord);
    std::uint32_t code = proto::read_be32(body.data());

    StartupPacket special;
    switch (code) {
        case proto::kCancelRequestCode:
            if (body.size() != 3 * kLengthWord) return invalid_length();
            special.kind = StartupKind::CancelRequest;
            special.cancel_pid = static_cast<std::int32_t>(proto::read_be32(body.data() + 4));
            special.cancel_key = static_cast<std::int32_t>(proto::read_be32(body.data() + 8));
            return special;
        case proto::kSslRequestCode:
            special.kind = StartupKind::SslRequest;
            return special;
        case proto::kGssEncRequestCode:
            special.kind = StartupKind::GssEncRequest;
            return special;
        default:
            break;
    }

    if (proto::protocol_major(code) != 3) {
        char text[128];
        std::snprintf(text, sizeof text,
                      "unsupported frontend protocol %u.%u: server supports 3.0 to 3.%u",
                      unsigned{proto::protocol_major(code)}, unsigned{proto::protocol_minor(code)},
                      unsigned{kNewestProtocolMinor});
        return StartupError{proto::kSqlstateFeatureNotSupported, text, {}, true};
    }
    return parse_params(body, code);
}

}  // namespace pgrouter
