// libFuzzer target: SCRAM message parsing on both sides. The first byte chooses the side
// and the channel-binding options; the rest is two messages separated by a NUL. The server
// side checks the client's messages against a fixed verifier; the client side (ClientKey
// mode, so no PBKDF2 runs on attacker-chosen iteration counts) checks a server's.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pgrouter/auth/scram.h"

using namespace pgrouter;
using Status = ScramResult::Status;

namespace {

const ScramVerifier& verifier() {
    static const ScramVerifier v = [] {
        auto made = make_scram_verifier("pencil", 2, "fuzz-salt");
        if (!made) std::abort();
        return *made;
    }();
    return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t flags = data[0];
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    std::size_t nul = rest.find('\0');
    std::string_view first = rest.substr(0, nul);
    std::string_view second =
        nul == std::string_view::npos ? std::string_view{} : rest.substr(nul + 1);

    if ((flags & 1) == 0) {
        ScramServerOptions opts;
        opts.plus_selected = (flags & 2) != 0;
        opts.plus_offered = (flags & 4) != 0;
        if (opts.plus_selected) opts.tls_server_end_point = std::string(32, 'h');
        opts.server_nonce = "SERVERNONCE";
        ScramServer server(verifier(), opts);
        ScramResult r1 = server.handle_client_first(first);
        if (r1.status == Status::Error && r1.error.empty()) std::abort();
        if (r1.status != Status::Continue) return 0;
        ScramResult r2 = server.handle_client_final(second);
        if (r2.status == Status::Success && !server.client_key()) std::abort();
        if (r2.status != Status::Success && server.client_key()) std::abort();
    } else {
        ScramClientOptions opts;
        opts.client_nonce = "CLIENTNONCE";
        if ((flags & 2) != 0) opts.tls_server_end_point = std::string(32, 'h');
        ScramKey key{};
        auto client = ScramClient::with_client_key(key, verifier(), opts);
        if (!client.client_first()) std::abort();
        ScramResult r1 = client.handle_server_first(first);
        if (r1.status != Status::Continue) return 0;
        (void)client.handle_server_final(second);
    }
    return 0;
}
