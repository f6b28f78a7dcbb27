// Unit tests of first-packet parsing: the special requests, v3 parameters and their
// defaults, protocol negotiation, and malformed packets with PostgreSQL's errors.
#include "pgrouter/proto/startup.h"

#include <catch2/catch.hpp>
#include <string>
#include <variant>

#include "pgrouter/proto/encoder.h"

using namespace pgrouter;
using namespace std::string_literals;

namespace {

std::string be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
            static_cast<char>(v)};
}

// A packet with the given body after the length word.
std::string packet(const std::string& body) {
    return be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

StartupPacket parse_ok(const std::string& pkt) {
    auto r = parse_startup(pkt);
    if (auto* e = std::get_if<StartupError>(&r)) FAIL("unexpected error: " << e->message);
    return std::get<StartupPacket>(r);
}

StartupError parse_err(const std::string& pkt) {
    auto r = parse_startup(pkt);
    REQUIRE(std::holds_alternative<StartupError>(r));
    return std::get<StartupError>(r);
}

}  // namespace

TEST_CASE("special requests", "[startup]") {
    std::string ssl;
    proto::encode_ssl_request(ssl);
    CHECK(parse_ok(ssl).kind == StartupKind::SslRequest);
    CHECK(parse_ok(packet(be32(80877104))).kind == StartupKind::GssEncRequest);

    std::string cancel;
    proto::encode_cancel_request(cancel, 4242, -7);
    auto p = parse_ok(cancel);
    CHECK(p.kind == StartupKind::CancelRequest);
    CHECK(p.cancel_pid == 4242);
    CHECK(p.cancel_key == -7);
    // A CancelRequest must be exactly 16 bytes.
    CHECK(parse_err(packet(be32(80877102) + be32(1))).message ==
          "invalid length of startup packet");
    CHECK(parse_err(packet(be32(80877102) + be32(1) + be32(2) + be32(3))).message ==
          "invalid length of startup packet");
}

TEST_CASE("a v3 StartupMessage", "[startup]") {
    std::string pkt;
    proto::encode_startup_message(pkt, {{"user", "alice"},
                                        {"database", "app"},
                                        {"application_name", "psql"},
                                        {"client_encoding", "UTF8"},
                                        {"options", "-c geqo=off"}});
    auto p = parse_ok(pkt);
    CHECK(p.kind == StartupKind::Startup);
    const StartupParams& s = p.startup;
    CHECK(s.version == 196608);
    CHECK(s.user == "alice");
    CHECK(s.database == "app");
    CHECK(s.application_name == "psql");
    CHECK(s.options == "-c geqo=off");
    CHECK(s.replication == ReplicationMode::None);
    CHECK(s.protocol_options.empty());
    CHECK_FALSE(s.needs_negotiation());
    using Pairs = std::vector<std::pair<std::string, std::string>>;
    CHECK(s.params == Pairs{{"application_name", "psql"},
                            {"client_encoding", "UTF8"},
                            {"options", "-c geqo=off"}});
}

TEST_CASE("the database defaults to the user; long names are truncated", "[startup]") {
    std::string pkt;
    proto::encode_startup_message(pkt, {{"user", "bob"}});
    CHECK(parse_ok(pkt).startup.database == "bob");
    pkt.clear();
    proto::encode_startup_message(pkt, {{"user", "bob"}, {"database", ""}});
    CHECK(parse_ok(pkt).startup.database == "bob");
    pkt.clear();
    std::string long_name(100, 'n');
    proto::encode_startup_message(pkt, {{"user", long_name}, {"database", long_name}});
    auto s = parse_ok(pkt).startup;
    CHECK(s.user == std::string(63, 'n'));
    CHECK(s.database == std::string(63, 'n'));
}

TEST_CASE("protocol 3.2 and _pq_ options ask for NegotiateProtocolVersion", "[startup]") {
    std::string pkt;
    proto::encode_startup_message(pkt, {{"user", "alice"}}, proto::protocol_version(3, 2));
    auto s = parse_ok(pkt).startup;
    CHECK(s.needs_negotiation());
    CHECK(StartupParams::negotiate_version() == 196608);
    CHECK(s.protocol_options.empty());

    pkt.clear();
    proto::encode_startup_message(
        pkt, {{"user", "alice"}, {"_pq_.compression", "on"}, {"_pq_.other", "x"}});
    s = parse_ok(pkt).startup;
    CHECK(s.needs_negotiation());
    CHECK(s.protocol_options == std::vector<std::string>{"_pq_.compression", "_pq_.other"});
    CHECK(s.params.empty());
}

TEST_CASE("replication values follow PostgreSQL's parse_bool", "[startup]") {
    auto mode = [](const char* v) {
        std::string pkt;
        proto::encode_startup_message(pkt, {{"user", "u"}, {"replication", v}});
        return parse_ok(pkt).startup.replication;
    };
    CHECK(mode("database") == ReplicationMode::Logical);
    CHECK(mode("true") == ReplicationMode::Physical);
    CHECK(mode("on") == ReplicationMode::Physical);
    CHECK(mode("1") == ReplicationMode::Physical);
    CHECK(mode("Yes") == ReplicationMode::Physical);
    CHECK(mode("f") == ReplicationMode::None);
    CHECK(mode("off") == ReplicationMode::None);
    CHECK(mode("0") == ReplicationMode::None);

    std::string pkt;
    proto::encode_startup_message(pkt, {{"user", "u"}, {"replication", "o"}});
    auto e = parse_err(pkt);
    CHECK(e.sqlstate == "22023");
    CHECK(e.message == "invalid value for parameter \"replication\": \"o\"");
    CHECK(e.hint == "Valid values are: \"false\", 0, \"true\", 1, \"database\".");
}

TEST_CASE("malformed startup packets get PostgreSQL's errors", "[startup]") {
    SECTION("protocol 2 and garbage versions") {
        auto e = parse_err(packet(be32(proto::protocol_version(2, 0)) + "user\0u\0\0"s));
        CHECK(e.sqlstate == "0A000");
        CHECK(e.message == "unsupported frontend protocol 2.0: server supports 3.0 to 3.0");
        CHECK(e.send_to_client);
        e = parse_err(packet("GET / HTTP/1.1\r\n\r\n"));
        CHECK(e.sqlstate == "0A000");
        CHECK(e.message.starts_with("unsupported frontend protocol 18245.21536:"));
        e = parse_err(packet(be32(proto::protocol_version(4, 0)) + "\0"s));
        CHECK(e.message == "unsupported frontend protocol 4.0: server supports 3.0 to 3.0");
    }
    SECTION("bad lengths") {
        for (std::uint32_t len : {0u, 3u, 4u, 7u, 10005u, 0x80000000u, 0xffffffffu}) {
            auto e = parse_err(be32(len) + be32(196608) + "user\0u\0\0"s);
            CHECK(e.sqlstate == "08P01");
            CHECK(e.message == "invalid length of startup packet");
            CHECK_FALSE(e.send_to_client);
        }
        // Declared length not matching the bytes given.
        CHECK(parse_err(be32(20) + be32(196608)).message == "invalid length of startup packet");
        CHECK(parse_err("\0\0"s).message == "invalid length of startup packet");
    }
    SECTION("layout") {
        const std::string layout =
            "invalid startup packet layout: expected terminator as last byte";
        CHECK(parse_err(packet(be32(196608))).message == layout);                 // no terminator
        CHECK(parse_err(packet(be32(196608) + "user\0u\0"s)).message == layout);  // no final NUL
        CHECK(parse_err(packet(be32(196608) + "user\0u"s)).message == layout);    // open value
        CHECK(parse_err(packet(be32(196608) + "user"s)).message == layout);       // open name
        CHECK(parse_err(packet(be32(196608) + "user\0"s)).message == layout);     // no value
        CHECK(parse_err(packet(be32(196608) + "user\0u\0\0x"s)).message == layout);
        CHECK(parse_err(packet(be32(196608) + "user\0u\0\0\0"s)).message == layout);
        CHECK(std::holds_alternative<StartupPacket>(
            parse_startup(packet(be32(196608) + "user\0u\0\0"s))));
    }
    SECTION("missing user") {
        auto e = parse_err(packet(be32(196608) + "database\0d\0\0"s));
        CHECK(e.sqlstate == "28000");
        CHECK(e.message == "no PostgreSQL user name specified in startup packet");
        e = parse_err(packet(be32(196608) + "user\0\0\0"s));
        CHECK(e.message == "no PostgreSQL user name specified in startup packet");
        e = parse_err(packet(be32(196608) + "\0"s));
        CHECK(e.message == "no PostgreSQL user name specified in startup packet");
    }
}

TEST_CASE("frame_startup reads the length word first", "[startup]") {
    CHECK(std::holds_alternative<pgrouter::proto::NeedMore>(frame_startup("")));
    CHECK(std::holds_alternative<pgrouter::proto::NeedMore>(frame_startup("\0\0\0"s)));
    auto f = frame_startup(be32(8));
    REQUIRE(std::holds_alternative<StartupFrame>(f));
    CHECK(std::get<StartupFrame>(f).size == 8);
    f = frame_startup(be32(10004));
    REQUIRE(std::holds_alternative<StartupFrame>(f));
    CHECK(std::holds_alternative<StartupError>(frame_startup(be32(10005))));
    CHECK(std::holds_alternative<StartupError>(frame_startup(be32(7))));
    CHECK(std::holds_alternative<StartupError>(frame_startup(be32(0xfffffff0u))));
}
