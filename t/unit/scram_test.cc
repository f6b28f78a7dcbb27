// Unit tests of SCRAM-SHA-256: RFC 7677's exchange on both sides, a verifier made by
// PostgreSQL 15, ClientKey recovery and reuse against a second server (a backend), channel
// binding, and malformed messages with PostgreSQL's errors.
#include "pgrouter/auth/scram.h"

#include <openssl/evp.h>

#include <catch2/catch.hpp>
#include <string>

using namespace pgrouter;
using Status = ScramResult::Status;

namespace {

// RFC 7677 section 3.
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgs"
    "qmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// From PostgreSQL 15: CREATE ROLE scramuser PASSWORD 'pgrouter-secret' with
// password_encryption = 'scram-sha-256', then SELECT rolpassword FROM pg_authid.
constexpr std::string_view kPgVerifier =
    "SCRAM-SHA-256$4096:ga1MZP/LLFSNBTJHksY90w==$m0YS8MZ4jiCk2NWDC0A00hsY1XdzkwoPRMt89riN1sM=:"
    "a15XwWHaXNBZjCfenJ2qRyNWdqt1GO8E5TVGBPR5pew=";
constexpr std::string_view kPgPassword = "pgrouter-secret";

ScramVerifier rfc_verifier() {
    auto salt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    REQUIRE(salt);
    auto v = make_scram_verifier("pencil", 4096, *salt);
    REQUIRE(v);
    return *v;
}

ScramKey sha256(const ScramKey& k) {
    ScramKey out{};
    unsigned int len = 0;
    REQUIRE(EVP_Digest(k.data(), k.size(), out.data(), &len, EVP_sha256(), nullptr) == 1);
    return out;
}

// A full exchange between a client and a server with random nonces.
void run_exchange(ScramClient& client, ScramServer& server, Status expected_server,
                  Status expected_client = Status::Success) {
    auto first = client.client_first();
    REQUIRE(first);
    auto s1 = server.handle_client_first(*first);
    REQUIRE(s1.status == Status::Continue);
    auto c1 = client.handle_server_first(s1.message);
    REQUIRE(c1.status == Status::Continue);
    auto s2 = server.handle_client_final(c1.message);
    REQUIRE(s2.status == expected_server);
    if (s2.status != Status::Success) return;
    auto c2 = client.handle_server_final(s2.message);
    REQUIRE(c2.status == expected_client);
}

}  // namespace

TEST_CASE("base64 helpers", "[scram]") {
    CHECK(base64_encode("") == "");
    CHECK(base64_encode("f") == "Zg==");
    CHECK(base64_encode("fo") == "Zm8=");
    CHECK(base64_encode("foo") == "Zm9v");
    CHECK(base64_encode("foob") == "Zm9vYg==");
    CHECK(base64_encode("n,,") == "biws");
    CHECK(base64_decode("Zm9vYg==") == "foob");
    CHECK(base64_decode("Zm8=") == "fo");
    CHECK(base64_decode("") == "");
    CHECK_FALSE(base64_decode("Zm9"));
    CHECK_FALSE(base64_decode("Zm9v!A=="));
    CHECK_FALSE(base64_decode("Z==="));
    CHECK_FALSE(base64_decode("Zm=v"));
    CHECK_FALSE(base64_decode("Zg==Zg=="));
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    CHECK(base64_decode(base64_encode(all)) == all);
}

TEST_CASE("RFC 7677 exchange, server side", "[scram]") {
    ScramVerifier v = rfc_verifier();
    ScramServerOptions opts;
    opts.server_nonce = kRfcServerNonce;
    ScramServer server(v, opts);
    auto s1 = server.handle_client_first(kRfcClientFirst);
    REQUIRE(s1.status == Status::Continue);
    CHECK(s1.message == kRfcServerFirst);
    auto s2 = server.handle_client_final(kRfcClientFinal);
    REQUIRE(s2.status == Status::Success);
    CHECK(s2.message == kRfcServerFinal);

    // The recovered ClientKey hashes to StoredKey and is the one the password gives.
    REQUIRE(server.client_key());
    CHECK(sha256(*server.client_key()) == v.stored_key);

    // Further messages are refused.
    CHECK(server.handle_client_final(kRfcClientFinal).status == Status::Error);
}

TEST_CASE("RFC 7677 exchange, client side with the password and with the ClientKey", "[scram]") {
    ScramClientOptions opts;
    opts.user = "user";
    opts.client_nonce = "rOprNGfwEbeRWgbNEkqO";

    auto client = ScramClient::with_password("pencil", opts);
    CHECK(client.mechanism() == "SCRAM-SHA-256");
    CHECK(client.client_first() == std::string(kRfcClientFirst));
    auto c1 = client.handle_server_first(kRfcServerFirst);
    REQUIRE(c1.status == Status::Continue);
    CHECK(c1.message == kRfcClientFinal);
    CHECK(client.handle_server_final(kRfcServerFinal).status == Status::Success);

    // Recover the ClientKey on the server side, then answer the same challenge with it.
    ScramServerOptions sopts;
    sopts.server_nonce = kRfcServerNonce;
    ScramServer server(rfc_verifier(), sopts);
    REQUIRE(server.handle_client_first(kRfcClientFirst).status == Status::Continue);
    REQUIRE(server.handle_client_final(kRfcClientFinal).status == Status::Success);
    auto by_key = ScramClient::with_client_key(*server.client_key(), rfc_verifier(), opts);
    CHECK(by_key.client_first() == std::string(kRfcClientFirst));
    auto k1 = by_key.handle_server_first(kRfcServerFirst);
    REQUIRE(k1.status == Status::Continue);
    CHECK(k1.message == kRfcClientFinal);
    CHECK(by_key.handle_server_final(kRfcServerFinal).status == Status::Success);
}

TEST_CASE("verifiers: PostgreSQL's format, parsing and building", "[scram]") {
    auto v = parse_scram_verifier(kPgVerifier);
    REQUIRE(v);
    CHECK(v->iterations == 4096);
    CHECK(v->salt.size() == 16);
    CHECK(v->to_string() == kPgVerifier);
    // The same password and salt give PostgreSQL's verifier exactly.
    auto mine = make_scram_verifier(kPgPassword, v->iterations, v->salt);
    REQUIRE(mine);
    CHECK(mine->to_string() == kPgVerifier);
    // RFC 7677's parameters round-trip through text.
    ScramVerifier rfc = rfc_verifier();
    auto again = parse_scram_verifier(rfc.to_string());
    REQUIRE(again);
    CHECK(again->stored_key == rfc.stored_key);
    CHECK(again->server_key == rfc.server_key);
    // Fresh verifiers get a random 16-byte salt and PostgreSQL's 4096 iterations.
    auto a = make_scram_verifier("pw");
    auto b = make_scram_verifier("pw");
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->iterations == 4096);
    CHECK(a->salt.size() == 16);
    CHECK(a->salt != b->salt);

    for (
        std::string_view bad : {
            "",
            "SCRAM-SHA-256",
            "SCRAM-SHA-256$4096:c2FsdA==$AAAA:AAAA",
            "SCRAM-SHA-1$4096:ga1MZP/"
            "LLFSNBTJHksY90w==$m0YS8MZ4jiCk2NWDC0A00hsY1XdzkwoPRMt89riN1sM=:"
            "a15XwWHaXNBZjCfenJ2qRyNWdqt1GO8E5TVGBPR5pew=",
            "SCRAM-SHA-256$x:ga1MZP/LLFSNBTJHksY90w==$m0YS8MZ4jiCk2NWDC0A00hsY1XdzkwoPRMt89riN1sM=:"
            "a15XwWHaXNBZjCfenJ2qRyNWdqt1GO8E5TVGBPR5pew=",
            "SCRAM-SHA-256$0:ga1MZP/LLFSNBTJHksY90w==$m0YS8MZ4jiCk2NWDC0A00hsY1XdzkwoPRMt89riN1sM=:"
            "a15XwWHaXNBZjCfenJ2qRyNWdqt1GO8E5TVGBPR5pew=",
            "SCRAM-SHA-256$4096:!!$m0YS8MZ4jiCk2NWDC0A00hsY1XdzkwoPRMt89riN1sM=:"
            "a15XwWHaXNBZjCfenJ2qRyNWdqt1GO8E5TVGBPR5pew=",
            "SCRAM-SHA-256$4096:ga1MZP/"
            "LLFSNBTJHksY90w==$m0YS8MZ4jiCk2NWDC0A00hsY1XdzkwoPRMt89riN1sM=",
        }) {
        CHECK_FALSE(parse_scram_verifier(bad));
    }
}

TEST_CASE("PostgreSQL's verifier: log in, recover the ClientKey, log in to a backend", "[scram]") {
    auto v = parse_scram_verifier(kPgVerifier);
    REQUIRE(v);

    // The client (psql) proves the password to pgrouter.
    ScramServer front(*v);
    auto psql = ScramClient::with_password(kPgPassword);
    run_exchange(psql, front, Status::Success);
    REQUIRE(front.client_key());
    CHECK(sha256(*front.client_key()) == v->stored_key);

    // pgrouter logs in to a backend (same pg_authid row, its own nonce) with the ClientKey.
    ScramServer backend(*v);
    auto router = ScramClient::with_client_key(*front.client_key(), *v);
    run_exchange(router, backend, Status::Success);

    // A wrong password fails, and no ClientKey is kept.
    ScramServer front2(*v);
    auto wrong = ScramClient::with_password("not-the-secret");
    run_exchange(wrong, front2, Status::Failure);
    CHECK_FALSE(front2.client_key());
}

TEST_CASE("the ClientKey path refuses a backend with another salt", "[scram]") {
    auto v = parse_scram_verifier(kPgVerifier);
    REQUIRE(v);
    ScramServer front(*v);
    auto psql = ScramClient::with_password(kPgPassword);
    run_exchange(psql, front, Status::Success);

    auto other = make_scram_verifier(kPgPassword);  // same password, new salt
    REQUIRE(other);
    ScramServer backend(*other);
    auto router = ScramClient::with_client_key(*front.client_key(), *v);
    auto first = router.client_first();
    REQUIRE(first);
    auto s1 = backend.handle_client_first(*first);
    REQUIRE(s1.status == Status::Continue);
    auto c1 = router.handle_server_first(s1.message);
    CHECK(c1.status == Status::Failure);
    CHECK(c1.detail.find("salt") != std::string::npos);
}

TEST_CASE("a client rejects a wrong server signature", "[scram]") {
    auto good = make_scram_verifier("pw");
    REQUIRE(good);
    ScramVerifier forged = *good;
    forged.server_key[0] ^= 1;  // a server that knows StoredKey but not ServerKey
    ScramServer server(forged);
    auto client = ScramClient::with_password("pw");
    run_exchange(client, server, Status::Success, Status::Failure);

    // Messages out of order are refused.
    auto client2 = ScramClient::with_password("pw");
    REQUIRE(client2.client_first());
    CHECK_FALSE(client2.client_first());
    CHECK(client2.handle_server_final("v=AAAA").status == Status::Error);
}

TEST_CASE("server errors from the client's view", "[scram]") {
    auto v = make_scram_verifier("pw");
    REQUIRE(v);
    auto client = ScramClient::with_password("pw");
    REQUIRE(client.client_first());
    // Nonce not extending ours.
    CHECK(client.handle_server_first("r=zzzz,s=c2FsdA==,i=4096").status == Status::Error);
    auto c2 = ScramClient::with_password("pw");
    auto first = c2.client_first();
    REQUIRE(first);
    std::string nonce = first->substr(first->find("r=") + 2);
    CHECK(c2.handle_server_first("r=" + nonce + "abc,s=c2FsdA==,i=0").status == Status::Error);
    auto c3 = ScramClient::with_password("pw");
    first = c3.client_first();
    REQUIRE(first);
    nonce = first->substr(first->find("r=") + 2);
    auto r = c3.handle_server_first("r=" + nonce + "abc,s=c2FsdA==,i=4096");
    REQUIRE(r.status == Status::Continue);
    auto f = c3.handle_server_final("e=invalid-proof");
    CHECK(f.status == Status::Failure);
    CHECK(f.detail == "error received from server in SCRAM exchange: invalid-proof");
}

TEST_CASE("channel binding with tls-server-end-point", "[scram]") {
    auto v = make_scram_verifier("pw");
    REQUIRE(v);
    const std::string cert_hash(32, '\x5a');

    ScramServerOptions sopts;
    sopts.plus_selected = true;
    sopts.plus_offered = true;
    sopts.tls_server_end_point = cert_hash;
    ScramClientOptions copts;
    copts.tls_server_end_point = cert_hash;

    {
        ScramServer server(*v, sopts);
        auto client = ScramClient::with_password("pw", copts);
        CHECK(client.mechanism() == "SCRAM-SHA-256-PLUS");
        run_exchange(client, server, Status::Success);
    }
    {
        // A man in the middle presents another certificate to the client.
        ScramServer server(*v, sopts);
        ScramClientOptions mitm = copts;
        mitm.tls_server_end_point = std::string(32, '\x11');
        auto client = ScramClient::with_password("pw", mitm);
        auto s1 = server.handle_client_first(*client.client_first());
        REQUIRE(s1.status == Status::Continue);
        auto c1 = client.handle_server_first(s1.message);
        auto s2 = server.handle_client_final(c1.message);
        CHECK(s2.status == Status::Error);
        CHECK(s2.sqlstate == "28000");
        CHECK(s2.error == "SCRAM channel binding check failed");
    }
    {
        // "y": the client could bind but thinks we cannot, while we offered -PLUS.
        ScramServerOptions offered;
        offered.plus_offered = true;
        ScramServer server(*v, offered);
        auto r = server.handle_client_first("y,,n=,r=abc");
        CHECK(r.status == Status::Error);
        CHECK(r.sqlstate == "28000");
        CHECK(r.error == "SCRAM channel binding negotiation error");
        ScramServer plain(*v);
        CHECK(plain.handle_client_first("y,,n=,r=abc").status == Status::Continue);
    }
    {
        ScramServer server(*v, sopts);
        auto r = server.handle_client_first("n,,n=,r=abc");
        CHECK(r.detail ==
              "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include "
              "channel binding data.");
        ScramServer server2(*v);
        r = server2.handle_client_first("p=tls-server-end-point,,n=,r=abc");
        CHECK(r.detail ==
              "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message "
              "includes channel binding data.");
        ScramServer server3(*v, sopts);
        r = server3.handle_client_first("p=tls-unique,,n=,r=abc");
        CHECK(r.error == "unsupported SCRAM channel-binding type \"tls-unique\"");
    }
}

TEST_CASE("malformed client-first messages", "[scram]") {
    auto v = make_scram_verifier("pw");
    REQUIRE(v);
    auto first = [&](std::string_view msg) {
        ScramServer server(*v);
        return server.handle_client_first(msg);
    };
    struct Case {
        std::string_view msg;
        std::string_view sqlstate;
        std::string_view error;
        std::string_view detail;
    };
    const Case cases[] = {
        {"", "08P01", "malformed SCRAM message", "The message is empty."},
        {std::string_view("n,,n=,r=a\0b", 11), "08P01", "malformed SCRAM message",
         "The message length does not match input length."},
        {"x,,n=,r=abc", "08P01", "malformed SCRAM message",
         "Unexpected channel-binding flag \"'x'\"."},
        {"n", "08P01", "malformed SCRAM message", "Comma expected, but found character \"0x00\"."},
        {"n;,n=,r=abc", "08P01", "malformed SCRAM message",
         "Comma expected, but found character \"';'\"."},
        {"n,a=admin,n=,r=abc", "0A000",
         "client uses authorization identity, but it is not supported", ""},
        {"n,x,n=,r=abc", "08P01", "malformed SCRAM message",
         "Unexpected attribute \"'x'\" in client-first-message."},
        {"n,,m=ext,n=,r=abc", "0A000", "client requires an unsupported SCRAM extension", ""},
        {"n,,r=abc", "08P01", "malformed SCRAM message",
         "Expected attribute \"n\" but found \"'r'\"."},
        {"n,,n=", "08P01", "malformed SCRAM message",
         "Expected attribute \"r\" but found \"0x00\"."},
        {"n,,n=,r", "08P01", "malformed SCRAM message",
         "Expected character \"=\" for attribute \"r\"."},
        {"n,,n=,r=a b", "08P01", "non-printable characters in SCRAM nonce", ""},
        {"n,,n=,r=abc,1=x", "08P01", "malformed SCRAM message",
         "Attribute expected, but found invalid character \"'1'\"."},
    };
    for (const Case& c : cases) {
        INFO(std::string(c.msg));
        auto r = first(c.msg);
        CHECK(r.status == Status::Error);
        CHECK(r.sqlstate == c.sqlstate);
        CHECK(r.error == c.error);
        CHECK(r.detail == c.detail);
    }
    // Extensions after the nonce are ignored, the user name too.
    CHECK(first("n,,n=whoever,r=abc,x=ext").status == Status::Continue);
}

TEST_CASE("malformed client-final messages", "[scram]") {
    auto v = make_scram_verifier("pw");
    REQUIRE(v);
    ScramServerOptions opts;
    opts.server_nonce = "SERVER";
    auto final_msg = [&](std::string_view msg) {
        ScramServer server(*v, opts);
        REQUIRE(server.handle_client_first("n,,n=,r=CLIENT").status == Status::Continue);
        return server.handle_client_final(msg);
    };
    const std::string proof = "p=" + base64_encode(std::string(32, 'x'));
    struct Case {
        std::string msg;
        std::string_view error;
        std::string_view detail;
    };
    const Case cases[] = {
        {"", "malformed SCRAM message", "The message is empty."},
        {"r=CLIENTSERVER," + proof, "malformed SCRAM message",
         "Expected attribute \"c\" but found \"'r'\"."},
        {"c=eSws,r=CLIENTSERVER," + proof,
         "unexpected SCRAM channel-binding attribute in client-final-message", ""},
        {"c=biws,r=CLIENTOTHER," + proof, "invalid SCRAM response", "Nonce does not match."},
        {"c=biws,r=CLIENTSERVER", "malformed SCRAM message",
         "Attribute expected, but found end of string."},
        {"c=biws,r=CLIENTSERVER,p=AAAA", "malformed SCRAM message",
         "Malformed proof in client-final-message."},
        {"c=biws,r=CLIENTSERVER," + proof + ",x=1", "malformed SCRAM message",
         "Garbage found at the end of client-final-message."},
    };
    for (const Case& c : cases) {
        INFO(c.msg);
        auto r = final_msg(c.msg);
        CHECK(r.status == Status::Error);
        CHECK(r.error == c.error);
        CHECK(r.detail == c.detail);
    }
    // Well-formed with a wrong proof: a plain authentication failure.
    auto r = final_msg("c=biws,r=CLIENTSERVER,x=ext," + proof);
    CHECK(r.status == Status::Failure);
    CHECK(r.sqlstate == "28P01");
}

TEST_CASE("a doomed exchange fails at the end, even with the right proof", "[scram]") {
    auto v = make_scram_verifier("pw");
    REQUIRE(v);
    ScramServerOptions opts;
    opts.doomed = true;
    ScramServer server(*v, opts);
    auto client = ScramClient::with_password("pw");
    run_exchange(client, server, Status::Failure);
    CHECK_FALSE(server.client_key());

    // Mock verifiers are stable per user and secret, and differ between users.
    auto m1 = scram_mock_verifier("ghost", "cluster-secret");
    auto m2 = scram_mock_verifier("ghost", "cluster-secret");
    auto m3 = scram_mock_verifier("other", "cluster-secret");
    CHECK(m1.salt == m2.salt);
    CHECK(m1.salt != m3.salt);
    CHECK(m1.salt.size() == 16);
    CHECK(m1.iterations == 4096);
}
