// Unit tests of md5 authentication: the stored secret, the challenge answer from the secret
// or the password, and the server-side check, against values PostgreSQL produced.
#include <catch2/catch.hpp>

#include "pgrouter/auth/md5auth.h"

using namespace pgrouter;

TEST_CASE("md5 secret as pg_authid stores it", "[md5]") {
    CHECK(md5_hex("") == "d41d8cd98f00b204e9800998ecf8427e");
    // From PostgreSQL 15: CREATE ROLE md5user PASSWORD 'md5-secret' (password_encryption md5).
    CHECK(md5_secret("md5-secret", "md5user") == "md5f523c908ca9950a9f4c527d0a05aceac");
    CHECK(md5_hex("md5-secretmd5user") == "f523c908ca9950a9f4c527d0a05aceac");
}

TEST_CASE("is_md5_secret follows PostgreSQL's test", "[md5]") {
    CHECK(is_md5_secret("md5f523c908ca9950a9f4c527d0a05aceac"));
    CHECK_FALSE(is_md5_secret("md5F523C908CA9950A9F4C527D0A05ACEAC"));
    CHECK_FALSE(is_md5_secret("md5f523c908ca9950a9f4c527d0a05acea"));
    CHECK_FALSE(is_md5_secret("md5f523c908ca9950a9f4c527d0a05aceacc"));
    CHECK_FALSE(is_md5_secret("md5g523c908ca9950a9f4c527d0a05aceac"));
    CHECK_FALSE(is_md5_secret("xyzf523c908ca9950a9f4c527d0a05aceac"));
    CHECK_FALSE(is_md5_secret("md5-secret"));
}

TEST_CASE("the challenge answer, from the secret or from the password", "[md5]") {
    const Md5Salt salt{0x01, 0x02, 0x03, 0x04};
    const std::string secret = "md5f523c908ca9950a9f4c527d0a05aceac";
    std::string expected = "md5" + md5_hex(std::string("f523c908ca9950a9f4c527d0a05aceac") +
                                           std::string("\x01\x02\x03\x04"));
    CHECK(md5_response_from_secret(secret, salt) == expected);
    CHECK(md5_response_from_password("md5-secret", "md5user", salt) == expected);
    CHECK(expected.size() == 35);

    // The server accepts it against either kind of stored secret.
    CHECK(md5_check_response(expected, secret, "md5user", salt));
    CHECK(md5_check_response(expected, "md5-secret", "md5user", salt));
    // Anything else fails.
    CHECK_FALSE(md5_check_response(expected, secret, "md5user", Md5Salt{1, 2, 3, 5}));
    CHECK_FALSE(md5_check_response(expected, "md5-secreT", "md5user", salt));
    CHECK_FALSE(md5_check_response(expected, "md5-secret", "other", salt));
    CHECK_FALSE(md5_check_response("", secret, "md5user", salt));
    CHECK_FALSE(md5_check_response("md5", secret, "md5user", salt));
    CHECK_FALSE(md5_check_response(expected + "0", secret, "md5user", salt));
    // A client that sends the stored secret itself does not get in.
    CHECK_FALSE(md5_check_response(secret, secret, "md5user", salt));
}

TEST_CASE("random salts differ", "[md5]") {
    auto a = md5_random_salt();
    auto b = md5_random_salt();
    REQUIRE(a);
    REQUIRE(b);
    auto c = md5_random_salt();
    REQUIRE(c);
    CHECK((*a != *b || *b != *c));
}
