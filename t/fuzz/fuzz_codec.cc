// libFuzzer target: message framing and payload parsing. The first byte picks the
// direction (even: client stream, odd: server stream) and a small length limit; the rest is
// a byte stream decoded message by message, each payload fed to every parser. Decoding
// must never read past the input nor return a message larger than the limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "pgrouter/proto/decoder.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/proto/payload.h"

using namespace pgrouter::proto;

namespace {

void parse_everything(const Message& m) {
    std::string_view p = m.payload;
    if (auto f = parse_error_fields(p)) {
        // Re-encoding the parsed fields gives a message that parses the same.
        std::string out;
        encode_error_response(out, *f);
        auto r = decode_backend(out);
        auto* again = std::get_if<Message>(&r);
        if (again == nullptr) std::abort();
        auto g = parse_error_fields(again->payload);
        if (!g || g->sqlstate != f->sqlstate || g->message != f->message ||
            g->other.size() != f->other.size()) {
            std::abort();
        }
    }
    if (auto a = parse_authentication(p)) {
        if (a->code == AuthCode::SASL) (void)parse_sasl_mechanisms(a->data);
    }
    (void)parse_sasl_initial_response(p);
    (void)parse_password_message(p);
    (void)parse_parameter_status(p);
    (void)parse_backend_key_data(p);
    (void)parse_ready_for_query(p);
    (void)parse_negotiate_protocol_version(p);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const bool backend = (data[0] & 1) != 0;
    DecodeLimits limits;
    limits.data = 16 + (data[0] >> 1) * 64;  // small enough for the fuzzer to cross
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

    while (!rest.empty()) {
        DecodeResult r =
            backend ? decode_backend(rest, limits.data) : decode_frontend(rest, limits);
        if (auto* need = std::get_if<NeedMore>(&r)) {
            if (need->size <= rest.size()) std::abort();
            break;
        }
        if (auto* err = std::get_if<ProtoError>(&r)) {
            if (err->sqlstate != kSqlstateProtocolViolation) std::abort();
            break;
        }
        const Message& m = std::get<Message>(r);
        std::uint32_t limit = backend ? limits.data : frontend_length_limit(m.type, limits);
        if (m.size < 5 || m.size > rest.size() || m.size - 1 > limit ||
            m.payload.size() != m.size - 5 || m.bytes().data() != rest.data()) {
            std::abort();
        }
        parse_everything(m);
        rest.remove_prefix(m.size);
    }
    return 0;
}
