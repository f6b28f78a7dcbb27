// libFuzzer target: the first packet of a connection (frame_startup, parse_startup). Any
// input must give a packet or an error, never a crash; a parsed StartupMessage re-encodes
// to a packet that parses to the same parameters.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "pgrouter/proto/encoder.h"
#include "pgrouter/proto/startup.h"

using namespace pgrouter;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);

    // As a session reads: frame first, then parse exactly the framed bytes.
    auto framed = frame_startup(in);
    if (auto* f = std::get_if<StartupFrame>(&framed)) {
        if (f->size < 8 || f->size > 10004) std::abort();
        if (f->size <= in.size()) (void)parse_startup(in.substr(0, f->size));
    }

    auto parsed = parse_startup(in);
    auto* pkt = std::get_if<StartupPacket>(&parsed);
    if (pkt == nullptr) {
        if (std::get<StartupError>(parsed).message.empty()) std::abort();
        return 0;
    }
    if (pkt->kind != StartupKind::Startup) return 0;
    const StartupParams& s = pkt->startup;
    if (s.user.empty() || s.user.size() > kMaxIdentifierLength || s.database.empty() ||
        s.database.size() > kMaxIdentifierLength) {
        std::abort();
    }

    // Round trip: the re-encoded packet parses to the same parameters.
    std::vector<proto::Param> params;
    params.emplace_back("user", s.user);
    params.emplace_back("database", s.database);
    for (const auto& [name, value] : s.params) params.emplace_back(name, value);
    std::string again;
    proto::encode_startup_message(again, params, s.version);
    if (again.size() > 10004) return 0;
    auto reparsed = parse_startup(again);
    auto* pkt2 = std::get_if<StartupPacket>(&reparsed);
    if (pkt2 == nullptr || pkt2->startup.user != s.user || pkt2->startup.database != s.database ||
        pkt2->startup.params != s.params) {
        std::abort();
    }
    return 0;
}
