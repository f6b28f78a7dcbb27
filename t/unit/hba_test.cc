// Unit tests of HBA parsing and matching. Matching is table-driven: each t/data/hba/X.rules
// has an X.eval listing connections (address, ssl, database, user) and the rule they must
// hit as method@line, or `none`. Parse errors are checked against errors.rules.
#include "pgrouter/auth/hba.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_data.h"

using namespace pgrouter;

namespace {

std::string read_data(const std::string& name) {
    return pgrouter::test::read_test_data("hba", name);
}

// Whitespace-separated words; "..." quotes a word with blanks, "" inside is a quote.
std::vector<std::string> split_eval_line(const std::string& line) {
    std::vector<std::string> words;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        if (i >= line.size() || line[i] == '#') break;
        std::string w;
        if (line[i] == '"') {
            ++i;
            while (i < line.size()) {
                if (line[i] == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') {
                        w.push_back('"');
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                w.push_back(line[i++]);
            }
        } else {
            while (i < line.size() && line[i] != ' ' && line[i] != '\t') w.push_back(line[i++]);
        }
        words.push_back(w);
    }
    return words;
}

void run_eval(const std::string& name) {
    auto parsed = parse_hba(read_data(name + ".rules"), name + ".rules");
    INFO("errors: " << parsed.errors.size());
    for (const auto& e : parsed.errors) UNSCOPED_INFO(e);
    REQUIRE(parsed.errors.empty());

    std::istringstream eval(read_data(name + ".eval"));
    std::string line;
    int lineno = 0;
    int cases = 0;
    while (std::getline(eval, line)) {
        ++lineno;
        auto w = split_eval_line(line);
        if (w.empty()) continue;
        INFO(name << ".eval:" << lineno << ": " << line);
        REQUIRE(w.size() == 5);
        auto addr = IpAddress::parse(w[1]);
        REQUIRE(addr);
        REQUIRE((w[2] == "ssl" || w[2] == "nossl"));
        const HbaRule* rule = match_hba(parsed.rules, *addr, w[2] == "ssl", w[3], w[4]);
        std::string got =
            rule ? std::string(hba_method_name(rule->method)) + "@" + std::to_string(rule->line)
                 : "none";
        CHECK(got == w[0]);
        ++cases;
    }
    CHECK(cases > 0);
}

}  // namespace

TEST_CASE("HBA eval table: basic", "[hba]") { run_eval("basic"); }

TEST_CASE("HBA eval table: order", "[hba]") { run_eval("order"); }

TEST_CASE("HBA rules keep what they parsed", "[hba]") {
    auto parsed = parse_hba(read_data("basic.rules"), "basic.rules");
    REQUIRE(parsed.errors.empty());
    REQUIRE(parsed.rules.size() == 12);
    const HbaRule& first = parsed.rules[0];
    CHECK(first.line == 3);
    CHECK(first.conn_type == HbaConnType::HostSsl);
    CHECK(first.method == HbaMethod::ScramSha256);
    CHECK(first.option("clientcert") == "verify-full");
    CHECK_FALSE(first.option("map"));
    CHECK(first.address.to_string() == "10.0.0.0");
    CHECK(first.mask.to_string() == "255.0.0.0");

    const HbaRule& lists = parsed.rules[4];
    REQUIRE(lists.databases.size() == 2);
    CHECK(lists.databases[1].name == "reports");
    REQUIRE(lists.users.size() == 2);  // "alice, bob": a list may continue after a blank
    CHECK(lists.users[1].name == "bob");
    CHECK(lists.mask.to_string() == "255.255.0.0");

    const HbaRule& quoted = parsed.rules[3];
    CHECK(quoted.databases[0].quoted);
    CHECK_FALSE(quoted.databases[0].is_keyword("all"));
    CHECK(quoted.users[0].name == "+quoted");

    const HbaRule& v6 = parsed.rules[8];
    CHECK(v6.databases[0].name == "My DB");
    CHECK(v6.users[0].name == "Mixed \"Q\"");
    CHECK(v6.mask.to_string() == "ffff:ffff::");
}

TEST_CASE("HBA parse errors name file and line", "[hba]") {
    auto parsed = parse_hba(read_data("errors.rules"), "hba.conf");
    const std::vector<std::string> expected = {
        "hba.conf:3: connection type \"local\" is not supported by pgrouter",
        "hba.conf:4: connection type \"hostgssenc\" is not supported by pgrouter",
        "hba.conf:5: invalid connection type \"hosts\"",
        "hba.conf:6: multiple values specified for connection type",
        "hba.conf:7: end-of-line before database specification",
        "hba.conf:8: end-of-line before role specification",
        "hba.conf:9: end-of-line before IP address specification",
        "hba.conf:10: end-of-line before authentication method",
        "hba.conf:11: group membership (\"+admins\") is not supported by pgrouter",
        "hba.conf:12: file inclusion (\"@dbs.txt\") is not supported by pgrouter",
        "hba.conf:13: \"samerole\" is not supported by pgrouter",
        "hba.conf:14: regular expressions (\"/^db.*$\") are not supported by pgrouter",
        "hba.conf:15: invalid IP address \"db.example.com\": host names are not supported by "
        "pgrouter",
        "hba.conf:16: invalid CIDR mask in address \"127.0.0.1/33\"",
        "hba.conf:17: invalid CIDR mask in address \"127.0.0.1/x\"",
        "hba.conf:18: end-of-line before netmask specification",
        "hba.conf:19: invalid IP mask \"255.255.255.256\"",
        "hba.conf:20: IP address and mask do not match",
        "hba.conf:21: multiple values specified for host address",
        "hba.conf:22: \"samenet\" is not supported by pgrouter",
        "hba.conf:23: authentication method \"ident\" is not supported by pgrouter",
        "hba.conf:24: invalid authentication method \"kerberos\"",
        "hba.conf:25: multiple values specified for authentication type",
        "hba.conf:26: authentication option not in name=value format: clientcert",
        "hba.conf:27: clientcert can only be configured for \"hostssl\" rows",
        "hba.conf:28: invalid value for clientcert: \"1\"",
        "hba.conf:29: unrecognized authentication option name: \"map\"",
    };
    CHECK(parsed.errors == expected);
    CHECK(parsed.rules.empty());
}

TEST_CASE("HBA tokenizer corner cases", "[hba]") {
    auto one = [](std::string_view text) {
        auto p = parse_hba(text, "f");
        INFO(text);
        REQUIRE(p.errors.empty());
        REQUIRE(p.rules.size() == 1);
        return p.rules[0];
    };
    // A quoted keyword is a name; a quoted comma and # are data.
    auto r = one("host \"a,b\",\"#c\" all all trust");
    REQUIRE(r.databases.size() == 2);
    CHECK(r.databases[0].name == "a,b");
    CHECK(r.databases[1].name == "#c");
    // Comment right after the method, CRLF line end, tabs.
    r = one("host\tall\tall\t::/0\tmd5# comment\r\n");
    CHECK(r.method == HbaMethod::Md5);
    CHECK(r.any_address == false);
    // Empty and comment-only files have no rules and no errors.
    auto empty = parse_hba("\n# only\n   \n", "f");
    CHECK(empty.errors.empty());
    CHECK(empty.rules.empty());
    // An unterminated quote runs to the end of the line.
    auto open = parse_hba("host \"all all 127.0.0.1/32 trust", "f");
    CHECK(open.errors == std::vector<std::string>{"f:1: end-of-line before role specification"});
}

TEST_CASE("IP addresses", "[hba]") {
    auto a = IpAddress::parse("192.0.2.1");
    REQUIRE(a);
    CHECK(a->family == IpAddress::Family::V4);
    CHECK(a->to_string() == "192.0.2.1");
    CHECK_FALSE(a->unmapped_v4());
    auto m = IpAddress::parse("::ffff:192.0.2.1");
    REQUIRE(m);
    CHECK(m->family == IpAddress::Family::V6);
    REQUIRE(m->unmapped_v4());
    CHECK(*m->unmapped_v4() == *a);
    CHECK(IpAddress::v4({192, 0, 2, 1}) == *a);
    CHECK_FALSE(IpAddress::parse(""));
    CHECK_FALSE(IpAddress::parse("localhost"));
    CHECK_FALSE(IpAddress::parse("1.2.3"));
    CHECK_FALSE(IpAddress::parse(std::string(100, '1')));
    CHECK(IpAddress::parse("2001:db8::1")->to_string() == "2001:db8::1");
}

TEST_CASE("rejection messages are PostgreSQL's", "[hba]") {
    CHECK(hba_no_entry_message("10.0.0.1", "alice", "app", false) ==
          "no pg_hba.conf entry for host \"10.0.0.1\", user \"alice\", database \"app\", no "
          "encryption");
    CHECK(hba_no_entry_message("::1", "alice", "app", true) ==
          "no pg_hba.conf entry for host \"::1\", user \"alice\", database \"app\", SSL "
          "encryption");
    CHECK(hba_reject_message("10.0.0.1", "alice", "app", false) ==
          "pg_hba.conf rejects connection for host \"10.0.0.1\", user \"alice\", database "
          "\"app\", no encryption");
}
