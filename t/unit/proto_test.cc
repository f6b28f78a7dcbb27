// Unit tests of the v3 codec: framing (whole, split, limits, bad lengths and types),
// encoders checked byte for byte, and payload parsers on good and malformed bodies.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <variant>

#include "pgrouter/proto/buffer.h"
#include "pgrouter/proto/decoder.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/proto/payload.h"

using namespace pgrouter::proto;
using namespace std::string_literals;

namespace {

std::string be32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
            static_cast<char>(v)};
}

std::string raw_message(char type, std::string_view payload) {
    return std::string(1, type) + be32(static_cast<std::uint32_t>(payload.size() + 4)) +
           std::string(payload);
}

}  // namespace

TEST_CASE("decode_frontend frames a whole message", "[proto]") {
    std::string buf;
    encode_query(buf, "SELECT 1");
    REQUIRE(buf == raw_message('Q', "SELECT 1\0"s));
    buf += "trailing";
    auto r = decode_frontend(buf);
    REQUIRE(std::holds_alternative<Message>(r));
    const auto& m = std::get<Message>(r);
    CHECK(m.is(FrontendMsg::Query));
    CHECK_FALSE(m.is(FrontendMsg::Parse));
    CHECK(m.payload == "SELECT 1\0"s);
    CHECK(m.size == 14);
    CHECK(m.bytes() == buf.substr(0, 14));
}

TEST_CASE("decode_frontend asks for more on every split point", "[proto]") {
    std::string buf;
    encode_query(buf, "SELECT 42");
    for (std::size_t cut = 0; cut < buf.size(); ++cut) {
        auto r = decode_frontend(std::string_view(buf).substr(0, cut));
        REQUIRE(std::holds_alternative<NeedMore>(r));
        CHECK(std::get<NeedMore>(r).size == (cut < 5 ? 5 : buf.size()));
    }
    CHECK(std::holds_alternative<Message>(decode_frontend(buf)));
}

TEST_CASE("decode_frontend rejects bad lengths before reading the body", "[proto]") {
    auto expect_error = [](const std::string& buf, std::string_view text) {
        auto r = decode_frontend(buf);
        REQUIRE(std::holds_alternative<ProtoError>(r));
        CHECK(std::get<ProtoError>(r).sqlstate == "08P01");
        CHECK(std::get<ProtoError>(r).message == text);
    };
    expect_error("Q"s + be32(3), "invalid message length");
    expect_error("Q"s + be32(0), "invalid message length");
    expect_error("Q"s + be32(0x80000000u), "invalid message length");  // negative
    expect_error("Q"s + be32(0xffffffffu), "invalid message length");  // -1
    // Above the limit: only the header is present, nothing is allocated or read.
    expect_error("Q"s + be32(kDefaultDataMessageLimit + 1), "invalid message length");
    expect_error("S"s + be32(kSmallMessageLimit + 1), "invalid message length");
    expect_error("p"s + be32(kAuthMessageLimit + 1), "invalid message length");
    // Unknown type bytes, PostgreSQL's wording.
    expect_error("Z"s + be32(4), "invalid frontend message type 90");
    expect_error("\xff"s + be32(4), "invalid frontend message type 255");
    expect_error("\0"s + be32(4), "invalid frontend message type 0");
}

TEST_CASE("decode limits are per message class and configurable", "[proto]") {
    DecodeLimits limits;
    limits.data = 100;
    std::string big = raw_message('Q', std::string(200, 'x'));
    CHECK(std::holds_alternative<ProtoError>(decode_frontend(big, limits)));
    CHECK(std::holds_alternative<Message>(decode_frontend(big)));
    CHECK(std::holds_alternative<NeedMore>(decode_frontend("Q"s + be32(kDefaultDataMessageLimit))));
    CHECK(frontend_length_limit('S', limits) == kSmallMessageLimit);
    CHECK(frontend_length_limit('d', limits) == 100);
    CHECK(frontend_length_limit('p', limits) == kAuthMessageLimit);
    CHECK(frontend_length_limit('Z', limits) == 0);
    for (char t : "BCdcfDEHFPpQSX"s) CHECK(frontend_length_limit(t, {}) != 0);
}

TEST_CASE("decode_backend accepts any type and checks lengths", "[proto]") {
    std::string buf;
    encode_ready_for_query(buf, TransactionStatus::Idle);
    encode_parameter_status(buf, "server_version", "15.4");
    auto r = decode_backend(buf);
    REQUIRE(std::holds_alternative<Message>(r));
    auto m = std::get<Message>(r);
    CHECK(m.is(BackendMsg::ReadyForQuery));
    CHECK(parse_ready_for_query(m.payload) == TransactionStatus::Idle);
    auto r2 = decode_backend(std::string_view(buf).substr(m.size));
    REQUIRE(std::holds_alternative<Message>(r2));
    auto ps = parse_parameter_status(std::get<Message>(r2).payload);
    REQUIRE(ps);
    CHECK(ps->name == "server_version");
    CHECK(ps->value == "15.4");
    CHECK(std::holds_alternative<ProtoError>(decode_backend("Z"s + be32(2))));
    CHECK(std::holds_alternative<ProtoError>(decode_backend("D"s + be32(1000), 999)));
    CHECK(std::holds_alternative<NeedMore>(decode_backend("D"s + be32(1000), 1000)));
}

TEST_CASE("a stream of messages decodes in order", "[proto]") {
    std::string buf;
    MessageBuilder(buf, FrontendMsg::Parse).cstr("").cstr("SELECT $1").i16(0);
    MessageBuilder(buf, FrontendMsg::Bind).cstr("").cstr("").i16(0).i16(0).i16(0);
    MessageBuilder(buf, FrontendMsg::Execute).cstr("").i32(0);
    encode_sync(buf);
    encode_terminate(buf);
    std::vector<char> types;
    std::string_view rest = buf;
    while (!rest.empty()) {
        auto r = decode_frontend(rest);
        REQUIRE(std::holds_alternative<Message>(r));
        types.push_back(std::get<Message>(r).type);
        rest.remove_prefix(std::get<Message>(r).size);
    }
    CHECK(types == std::vector<char>{'P', 'B', 'E', 'S', 'X'});
}

TEST_CASE("server-side encoders produce the documented bytes", "[proto]") {
    std::string out;
    encode_auth_ok(out);
    CHECK(out == "R"s + be32(8) + be32(0));
    out.clear();
    encode_auth_cleartext_password(out);
    CHECK(out == "R"s + be32(8) + be32(3));
    out.clear();
    const std::uint8_t salt[4] = {1, 2, 3, 0xff};
    encode_auth_md5_password(out, salt);
    CHECK(out == "R"s + be32(12) + be32(5) + "\x01\x02\x03\xff"s);
    out.clear();
    encode_auth_sasl(out, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
    CHECK(out == "R"s + be32(42) + be32(10) + "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"s);
    auto auth = parse_authentication(std::string_view(out).substr(5));
    REQUIRE(auth);
    CHECK(auth->code == AuthCode::SASL);
    auto mechs = parse_sasl_mechanisms(auth->data);
    REQUIRE(mechs);
    CHECK(*mechs == std::vector<std::string_view>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
    out.clear();
    encode_auth_sasl_continue(out, "r=abc");
    CHECK(out == "R"s + be32(13) + be32(11) + "r=abc");
    out.clear();
    encode_auth_sasl_final(out, "v=xyz");
    CHECK(out == "R"s + be32(13) + be32(12) + "v=xyz");
    out.clear();
    encode_backend_key_data(out, 1234, -5);
    CHECK(out == "K"s + be32(12) + be32(1234) + be32(0xfffffffbu));
    auto key = parse_backend_key_data(std::string_view(out).substr(5));
    REQUIRE(key);
    CHECK(key->pid == 1234);
    CHECK(key->key == -5);
    out.clear();
    encode_ready_for_query(out, TransactionStatus::InTransaction);
    CHECK(out == "Z"s + be32(5) + "T");
    out.clear();
    std::vector<std::string> unsupported{"_pq_.a", "_pq_.b"};
    encode_negotiate_protocol_version(out, protocol_version(3, 0), unsupported);
    CHECK(out == raw_message('v', be32(196608) + be32(2) + "_pq_.a\0_pq_.b\0"s));
    auto npv = parse_negotiate_protocol_version(std::string_view(out).substr(5));
    REQUIRE(npv);
    CHECK(npv->version == 196608);
    CHECK(npv->unsupported_options == std::vector<std::string_view>{"_pq_.a", "_pq_.b"});
}

TEST_CASE("ErrorResponse round-trips through the encoder and the field parser", "[proto]") {
    std::string out;
    encode_error_response(out, "FATAL", "28P01", "password authentication failed for user \"x\"",
                          "some detail", "a hint");
    CHECK(out[0] == static_cast<char>(BackendMsg::ErrorResponse));
    auto f = parse_error_fields(std::string_view(out).substr(5));
    REQUIRE(f);
    CHECK(f->severity == "FATAL");
    CHECK(f->severity_nonlocalized == "FATAL");
    CHECK(f->sqlstate == "28P01");
    CHECK(f->message == "password authentication failed for user \"x\"");
    CHECK(f->detail == "some detail");
    CHECK(f->hint == "a hint");
    CHECK(f->get(ErrorField::Hint) == "a hint");

    // Without detail and hint: exactly S V C M and the terminator.
    out.clear();
    encode_notice_response(out, "WARNING", "01000", "careful");
    CHECK(out == raw_message('N', "SWARNING\0VWARNING\0C01000\0Mcareful\0\0"s));

    // A backend's error with more fields re-encodes with all of them.
    std::string payload =
        "SERROR\0VERROR\0C42P01\0Mrelation \"t\" does not exist\0P15\0"
        "Fparse_relation.c\0L1392\0RparserOpenTable\0\0"s;
    auto g = parse_error_fields(payload);
    REQUIRE(g);
    CHECK(g->sqlstate == "42P01");
    CHECK(g->get(ErrorField::Position) == "15");
    CHECK(g->get(ErrorField::Routine) == "parserOpenTable");
    CHECK(g->get(ErrorField::Where).empty());
    out.clear();
    encode_error_response(out, *g);
    CHECK(out == raw_message('E', payload));
}

TEST_CASE("payload parsers reject malformed bodies", "[proto]") {
    CHECK_FALSE(parse_error_fields(""));
    CHECK_FALSE(parse_error_fields("SERROR"));           // unterminated value
    CHECK_FALSE(parse_error_fields("SERROR\0"s));        // no terminator
    CHECK_FALSE(parse_error_fields("SERROR\0\0junk"s));  // bytes after the terminator
    CHECK(parse_error_fields("\0"s));
    CHECK_FALSE(parse_authentication("\0\0\0"s));
    CHECK_FALSE(parse_authentication(be32(5) + "abc"));      // md5 salt too short
    CHECK_FALSE(parse_authentication(be32(0) + "x"));        // Ok with data
    CHECK_FALSE(parse_sasl_mechanisms("SCRAM-SHA-256\0"s));  // list not terminated
    CHECK_FALSE(parse_sasl_mechanisms("SCRAM\0\0x"s));
    CHECK_FALSE(parse_password_message("secret"));
    CHECK_FALSE(parse_password_message("a\0b\0"s));
    CHECK(parse_password_message("secret\0"s) == "secret");
    CHECK_FALSE(parse_parameter_status("a\0"s));
    CHECK_FALSE(parse_backend_key_data("1234567"));
    CHECK_FALSE(parse_ready_for_query("X"));
    CHECK_FALSE(parse_ready_for_query("II"));
    CHECK(parse_data_row_first("\0\1"s + be32(9) + "0/3000148") == "0/3000148");
    CHECK(parse_data_row_first("\0\2"s + be32(1) + "a" + be32(1) + "b") == "a");
    CHECK_FALSE(parse_data_row_first("\0\1"s + be32(0xffffffffu)));       // NULL
    CHECK_FALSE(parse_data_row_first("\0\1"s + be32(10) + "0/3000148"));  // short
    CHECK_FALSE(parse_data_row_first("\0\0"s));
    CHECK_FALSE(parse_negotiate_protocol_version(be32(196608) + be32(0x7fffffff) + "a\0"s));
    CHECK_FALSE(parse_negotiate_protocol_version(be32(196608) + be32(0xffffffffu)));
}

TEST_CASE("SASL and password messages from a client", "[proto]") {
    std::string out;
    encode_sasl_initial_response(out, "SCRAM-SHA-256", "n,,n=,r=abc");
    auto r = decode_frontend(out);
    REQUIRE(std::holds_alternative<Message>(r));
    auto m = std::get<Message>(r);
    CHECK(m.is(FrontendMsg::SASLInitialResponse));
    auto sir = parse_sasl_initial_response(m.payload);
    REQUIRE(sir);
    CHECK(sir->mechanism == "SCRAM-SHA-256");
    REQUIRE(sir->data);
    CHECK(*sir->data == "n,,n=,r=abc");
    // Length -1: no data.
    auto none = parse_sasl_initial_response("SCRAM-SHA-256\0"s + be32(0xffffffffu));
    REQUIRE(none);
    CHECK_FALSE(none->data);
    CHECK_FALSE(parse_sasl_initial_response("SCRAM-SHA-256\0"s + be32(5) + "abc"));
    CHECK_FALSE(parse_sasl_initial_response("SCRAM-SHA-256\0"s + be32(0xfffffffeu)));
    CHECK_FALSE(parse_sasl_initial_response("SCRAM-SHA-256"));

    out.clear();
    encode_sasl_response(out, "c=biws");
    CHECK(out == "p"s + be32(10) + "c=biws");
    out.clear();
    encode_password_message(out, "md5abc");
    CHECK(out == "p"s + be32(11) + "md5abc\0"s);
}

TEST_CASE("client-side startup-phase packets", "[proto]") {
    std::string out;
    encode_startup_message(out, {{"user", "alice"}, {"database", "app"}});
    CHECK(out == be32(33) + be32(196608) + "user\0alice\0database\0app\0\0"s);
    out.clear();
    encode_ssl_request(out);
    CHECK(out == be32(8) + be32(80877103));
    out.clear();
    encode_cancel_request(out, 42, -1);
    CHECK(out == be32(16) + be32(80877102) + be32(42) + be32(0xffffffffu));
}

TEST_CASE("C strings stop at an embedded NUL", "[proto]") {
    std::string out;
    encode_parameter_status(out, "a\0b"s, "c");
    CHECK(out == "S"s + be32(8) + "a\0c\0"s);
}

TEST_CASE("PayloadReader stops at the end and stays failed", "[proto]") {
    const std::string body = "\x01\x02\x03";
    PayloadReader r(body);
    std::int16_t v16 = 0;
    std::int32_t v32 = 0;
    REQUIRE(r.read_i16(v16));
    CHECK(v16 == 0x0102);
    CHECK_FALSE(r.read_i32(v32));
    CHECK_FALSE(r.ok());
    CHECK(r.at_end());
    std::uint8_t b = 0;
    CHECK_FALSE(r.read_u8(b));
}

TEST_CASE("ReadBuffer reuses its space", "[proto]") {
    ReadBuffer rb(16);
    auto span = rb.prepare(10);
    REQUIRE(span.size() >= 10);
    std::memcpy(span.data(), "0123456789", 10);
    rb.commit(10);
    CHECK(rb.data() == "0123456789");
    rb.consume(8);
    CHECK(rb.data() == "89");
    // Needs compaction, not growth.
    span = rb.prepare(12);
    CHECK(rb.capacity() == 16);
    std::memcpy(span.data(), "abcdefghijkl", 12);
    rb.commit(12);
    CHECK(rb.data() == "89abcdefghijkl");
    // Needs growth.
    span = rb.prepare(100);
    CHECK(rb.capacity() >= 114);
    CHECK(rb.data() == "89abcdefghijkl");
    rb.consume(1000);
    CHECK(rb.empty());
    rb.shrink(16);
    CHECK(rb.capacity() == 16);
}

TEST_CASE("a read toward a long message asks for a chunk, not for the length word", "[proto]") {
    CHECK(read_chunk(1) == kReadMin);
    CHECK(read_chunk(10000) == 10000);
    CHECK(read_chunk(std::size_t{1} << 30) == kReadChunk);
    // A buffer fed a chunk at a time grows with what arrives (at most doubling it).
    ReadBuffer rb(0);
    std::size_t arrived = 0;
    for (int i = 0; i < 40; ++i) {
        auto span = rb.prepare(read_chunk(std::size_t{1} << 30));
        std::size_t n = std::min(span.size(), kReadChunk);
        rb.commit(n);
        arrived += n;
        CHECK(rb.capacity() <= std::max(2 * arrived, kReadChunk));
    }
    CHECK(rb.size() == arrived);
}

TEST_CASE("decode_backend refuses a type no server sends", "[proto]") {
    using namespace std::string_literals;
    for (char t : "R K 2 3 C d c G H W D I E V v n N A t S 1 s Z T"s) {
        if (t != ' ') CHECK(known_backend_type(t));
    }
    for (char t : "!QPBXa0"s) CHECK_FALSE(known_backend_type(t));
    auto r = decode_backend("!\0\0\0\4"s);
    REQUIRE(std::holds_alternative<ProtoError>(r));
    CHECK(std::get<ProtoError>(r).sqlstate == "08P01");
    CHECK(std::holds_alternative<Message>(decode_backend("Z\0\0\0\5I"s)));
}

TEST_CASE("copy_messages_run: the whole Copy messages that can go in one write", "[proto]") {
    using namespace std::string_literals;
    auto msg = [](char type, const std::string& payload) {
        return std::string(1, type) + be32(static_cast<std::uint32_t>(payload.size() + 4)) +
               payload;
    };
    std::string rows = msg('d', "1\tone\n") + msg('d', "2\ttwo\n");
    CHECK(copy_messages_run(rows, 1 << 20) == rows.size());
    CHECK(copy_messages_run(rows + msg('c', ""), 1 << 20) == rows.size() + 5);
    // A CopyDone ends the run: what follows is a new unit.
    CHECK(copy_messages_run(msg('c', "") + msg('d', "x"), 1 << 20) == 5);
    // A partial message, another type, the cap: the run stops before them.
    CHECK(copy_messages_run(rows + msg('d', "3\tthree\n").substr(0, 7), 1 << 20) == rows.size());
    CHECK(copy_messages_run(rows + msg('Q', "SELECT 1"s + '\0'), 1 << 20) == rows.size());
    CHECK(copy_messages_run(rows, 12) == msg('d', "1\tone\n").size());  // at least the first
    CHECK(copy_messages_run(msg('Q', "x"), 1 << 20) == 0);
    CHECK(copy_messages_run("d\0\0", 1 << 20) == 0);
}
