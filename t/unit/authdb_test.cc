// Unit tests of the authdb (pgbouncer userlist.txt) parser: quoting, comments, the three
// kinds of secret, and errors with file:line that never show a secret.
#include "pgrouter/auth/authdb.h"

#include <catch2/catch.hpp>

using namespace pgrouter;

namespace {

constexpr std::string_view kVerifier =
    "SCRAM-SHA-256$4096:ga1MZP/LLFSNBTJHksY90w==$m0YS8MZ4jiCk2NWDC0A00hsY1XdzkwoPRMt89riN1sM=:"
    "a15XwWHaXNBZjCfenJ2qRyNWdqt1GO8E5TVGBPR5pew=";

}  // namespace

TEST_CASE("userlist with every kind of secret", "[authdb]") {
    std::string text = std::string(
                           "; pgbouncer-style comment\n"
                           "# shell-style comment\n"
                           "\n"
                           "\"alice\" \"plain password\"\n"
                           "  \"bob\"\t\"md5f523c908ca9950a9f4c527d0a05aceac\"   ; trailing\n"
                           "\"scram\" \"") +
                       std::string(kVerifier) +
                       "\"\r\n"
                       "\"we\"\"ird\" \"pa\"\"ss\"\n"
                       "\"md5short\" \"md5abc\"";
    auto r = parse_authdb(text, "users.txt");
    REQUIRE(r.errors.empty());
    REQUIRE(r.db.users.size() == 5);

    const Secret* alice = r.db.find("alice");
    REQUIRE(alice);
    CHECK(alice->kind == SecretKind::Plaintext);
    CHECK(alice->value == "plain password");
    CHECK(alice->line == 4);

    const Secret* bob = r.db.find("bob");
    REQUIRE(bob);
    CHECK(bob->kind == SecretKind::Md5);

    const Secret* scram = r.db.find("scram");
    REQUIRE(scram);
    CHECK(scram->kind == SecretKind::ScramSha256);
    REQUIRE(scram->scram);
    CHECK(scram->scram->iterations == 4096);
    CHECK(scram->value == kVerifier);

    const Secret* weird = r.db.find("we\"ird");
    REQUIRE(weird);
    CHECK(weird->value == "pa\"ss");

    // "md5" with the wrong length is a plaintext password, as in PostgreSQL.
    const Secret* md5short = r.db.find("md5short");
    REQUIRE(md5short);
    CHECK(md5short->kind == SecretKind::Plaintext);

    CHECK_FALSE(r.db.find("nobody"));
}

TEST_CASE("classify_secret", "[authdb]") {
    CHECK(classify_secret("md5f523c908ca9950a9f4c527d0a05aceac") == SecretKind::Md5);
    CHECK(classify_secret(kVerifier) == SecretKind::ScramSha256);
    CHECK(classify_secret("SCRAM-SHA-256$junk") == SecretKind::Plaintext);
    CHECK(classify_secret("hunter2") == SecretKind::Plaintext);
}

TEST_CASE("authdb errors carry file:line and never the secret", "[authdb]") {
    auto r = parse_authdb(
        "\"ok\" \"fine\"\n"
        "alice \"topsecret1\"\n"
        "\"bob\" topsecret2\n"
        "\"carol \"topsecret3\"\n"
        "\"dave\" \"topsecret4\n"
        "\"erin\" \"topsecret5\" extra\n"
        "\"\" \"topsecret6\"\n"
        "\"frank\" \"\"\n"
        "\"ok\" \"topsecret7\"\n"
        "\"grace\" \"SCRAM-SHA-256$4096:topsecret8\"\n",
        "/etc/pgrouter/users.txt");
    const std::vector<std::string> expected = {
        "/etc/pgrouter/users.txt:2: expected a quoted user name",
        "/etc/pgrouter/users.txt:3: expected a quoted secret after the user name",
        "/etc/pgrouter/users.txt:4: expected a quoted secret after the user name",
        "/etc/pgrouter/users.txt:5: unterminated quoted secret",
        "/etc/pgrouter/users.txt:6: unexpected text after the secret",
        "/etc/pgrouter/users.txt:7: empty user name",
        "/etc/pgrouter/users.txt:8: empty secret for user \"frank\"",
        "/etc/pgrouter/users.txt:9: duplicate user \"ok\" (first at line 1)",
        "/etc/pgrouter/users.txt:10: invalid SCRAM-SHA-256 verifier for user \"grace\"",
    };
    CHECK(r.errors == expected);
    CHECK(r.db.users.empty());
    for (const std::string& e : r.errors) CHECK(e.find("topsecret") == std::string::npos);

    auto open_user = parse_authdb("\"unterminated", "f");
    CHECK(open_user.errors == std::vector<std::string>{"f:1: unterminated quoted user name"});
}

TEST_CASE("an empty authdb is valid", "[authdb]") {
    auto r = parse_authdb("", "f");
    CHECK(r.errors.empty());
    CHECK(r.db.users.empty());
    r = parse_authdb("; nothing\n\n   \n", "f");
    CHECK(r.errors.empty());
}
