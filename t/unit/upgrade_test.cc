// The pure parts of a binary upgrade: the inherited-socket variable both ways (and what a
// new supervisor refuses in it), the STATUS= text, and which drain timeout each path uses.
#include "pgrouter/os/upgrade.h"

#include <catch2/catch.hpp>

#include "pgrouter/config/config.h"
#include "pgrouter/os/service_notify.h"

using namespace pgrouter;

TEST_CASE("upgrade: the inherited sockets survive a round trip through the variable") {
    std::vector<InheritedSocket> in{
        {"listen", 5, "*:5432"}, {"monitor", 6, "127.0.0.1:9881"}, {"v6", 7, "[::1]:6432"}};
    std::string text = format_inherited(in);
    CHECK(text == "listen:5:*:5432;monitor:6:127.0.0.1:9881;v6:7:[::1]:6432");
    std::string error;
    auto out = parse_inherited(text, error);
    REQUIRE(out);
    REQUIRE(out->size() == 3);
    for (std::size_t i = 0; i < in.size(); ++i) {
        CHECK((*out)[i].name == in[i].name);
        CHECK((*out)[i].fd == in[i].fd);
        CHECK((*out)[i].endpoint == in[i].endpoint);
    }
    CHECK(parse_inherited("", error)->empty());
}

TEST_CASE("upgrade: a malformed variable is refused with a reason") {
    struct Case {
        const char* text;
        const char* error;
    };
    for (const Case& c : {
             Case{"listen", "malformed inherited socket \"listen\""},
             Case{"listen:5", "malformed inherited socket \"listen:5\""},
             Case{":5:*:1", "malformed inherited socket \":5:*:1\""},
             Case{"listen:x:*:1", "bad descriptor in inherited socket \"listen:x:*:1\""},
             Case{"listen:2:*:1", "bad descriptor in inherited socket \"listen:2:*:1\""},
             Case{"listen:-4:*:1", "bad descriptor in inherited socket \"listen:-4:*:1\""},
             Case{"listen:99999999999:*:1",
                  "bad descriptor in inherited socket \"listen:99999999999:*:1\""},
             Case{"listen:5:*:1;listen:6:*:2", "inherited socket \"listen\" named twice"},
         }) {
        INFO(c.text);
        std::string error;
        CHECK_FALSE(parse_inherited(c.text, error));
        CHECK(error == c.error);
    }
}

TEST_CASE("upgrade: STATUS= says backends OK/total and clients") {
    CHECK(service_status(2, 3, 5) == "backends 2/3 OK, 5 clients");
    CHECK(service_status(0, 1, 1) == "backends 0/1 OK, 1 client");
    CHECK(service_status(1, 1, 0, "upgrading") == "backends 1/1 OK, 0 clients; upgrading");
}

TEST_CASE("upgrade: shutdown-timeout given in the file counts for both paths, else 1h here") {
    ConfigResult unset = parse_config("backend h:1", "t.conf");
    REQUIRE(unset.config);
    CHECK(unset.config->shutdown_timeout == Millis(10'000));  // SIGTERM's default
    CHECK_FALSE(unset.config->shutdown_timeout_set);
    CHECK(upgrade_drain_timeout(*unset.config) == Millis(3'600'000));

    ConfigResult set = parse_config("shutdown-timeout 2m\nbackend h:1", "t.conf");
    REQUIRE(set.config);
    CHECK(set.config->shutdown_timeout_set);
    CHECK(upgrade_drain_timeout(*set.config) == Millis(120'000));
}

TEST_CASE("upgrade: the ready line names the sockets the new supervisor adopted") {
    CHECK(names_include("listen monitor", "listen"));
    CHECK(names_include("listen monitor", "monitor"));
    CHECK_FALSE(names_include("listen monitor", "list"));
    CHECK_FALSE(names_include("", "listen"));
    CHECK(names_include("monitor", "monitor"));
}
