// libFuzzer target: the HBA and authdb parsers. Any text must give rules or file:line
// errors; parsed rules are then matched against a few fixed connections.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pgrouter/auth/authdb.h"
#include "pgrouter/auth/hba.h"

using namespace pgrouter;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);

    auto hba = parse_hba(text, "fuzz.conf");
    if (!hba.errors.empty() && !hba.rules.empty()) std::abort();
    for (const auto& e : hba.errors) {
        if (!e.starts_with("fuzz.conf:")) std::abort();
    }
    static const char* const kClients[] = {"127.0.0.1", "10.1.2.3", "::1", "::ffff:192.168.1.5",
                                           "2001:db8::1"};
    for (const char* c : kClients) {
        auto addr = IpAddress::parse(c);
        if (!addr) std::abort();
        for (bool ssl : {false, true}) {
            const HbaRule* r = match_hba(hba.rules, *addr, ssl, "app", "alice");
            if (r != nullptr &&
                (r < hba.rules.data() || r >= hba.rules.data() + hba.rules.size())) {
                std::abort();
            }
            (void)match_hba(hba.rules, *addr, ssl, "alice", "alice");
        }
    }

    auto users = parse_authdb(text, "fuzz.txt");
    if (!users.errors.empty() && !users.db.users.empty()) std::abort();
    for (const auto& [name, secret] : users.db.users) {
        if (name.empty() || secret.value.empty()) std::abort();
        if ((secret.kind == SecretKind::ScramSha256) != secret.scram.has_value()) std::abort();
    }
    return 0;
}
