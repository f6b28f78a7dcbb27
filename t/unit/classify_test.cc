// Unit tests of the statement classifier and its cache. The classifier is table-driven:
// t/data/classify/statements.txt lists statements with their expected classification (its
// header explains the notation). Also: huge and deep statements, the private JSON reader,
// CLOCK eviction, and a hidden [.bench] test that prints parse and hit costs.
#include "pgrouter/route/classify.h"

#include <malloc.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../../src/route/builtins.h"
#include "../../src/route/classify_json.h"
#include "pgrouter/route/classify_cache.h"
#include "test_data.h"

using namespace pgrouter;

namespace {

std::string read_data(const std::string& name) {
    return pgrouter::test::read_test_data("classify", name);
}

struct Case {
    int line = 0;
    std::string expect;
    std::string sql;
};

std::vector<Case> load_cases() {
    std::vector<Case> cases;
    std::istringstream in(read_data("statements.txt"));
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.empty() || line[0] == '#') continue;
        if (line[0] == ' ' || line[0] == '\t') {
            REQUIRE(!cases.empty());
            cases.back().sql += "\n" + line;
            continue;
        }
        std::size_t sep = line.find(" ::");
        INFO("statements.txt:" << n);
        REQUIRE(sep != std::string::npos);
        std::string sql = line.substr(sep + 3);
        if (!sql.empty() && sql[0] == ' ') sql.erase(0, 1);
        cases.push_back(Case{n, line.substr(0, sep), sql});
    }
    return cases;
}

std::vector<std::string> words(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

// server=NAME in statements.txt: the family of the server-local table.
constexpr std::pair<std::string_view, const char*> kServerLocalNames[] = {
    {kServerLocalRecovery, "recovery"}, {kServerLocalBackend, "backend"},
    {kServerLocalStatistics, "stats"},  {kServerLocalXid, "xid"},
    {kServerLocalServer, "files"},
};

constexpr std::pair<std::uint16_t, const char*> kPinNames[] = {
    {kPinTempTable, "temp"},    {kPinPgTemp, "pg_temp"},  {kPinListen, "listen"},
    {kPinPrepare, "prepare"},   {kPinHoldCursor, "hold"}, {kPinAdvisoryLock, "advisory"},
    {kPinSequence, "sequence"},
};

// The canonical text of a classification, in the notation of statements.txt with flags in
// a fixed order. n= is included only when asked for (the table gives it for empty units).
std::string describe(const Classification& c, bool with_count) {
    std::string s(kind_name(c.kind));
    if (s == "set-transaction-read-only") s = "set-tx-ro";
    if (c.read_only) s += " ro";
    if (c.read_write) s += " rw";
    if (c.set) s += " set";
    if (c.set_local) s += " local";
    if (c.multi) s += " multi";
    if (c.parse_error) s += " error";
    if (!c.server_local.empty()) {
        std::string family = "?";
        for (auto [reason, name] : kServerLocalNames) {
            if (c.server_local == reason) family = name;
        }
        s += " server=" + family;
    }
    if (c.pins != 0) {
        s += " pin=";
        bool first = true;
        for (auto [bit, name] : kPinNames) {
            if ((c.pins & bit) == 0) continue;
            if (!first) s += ",";
            s += name;
            first = false;
        }
    }
    if (c.unpins == kPinAll) {
        s += " unpin=all";
    } else if (c.unpins != 0) {
        s += " unpin=";
        bool first = true;
        for (auto [bit, name] : kPinNames) {
            if ((c.unpins & bit) == 0) continue;
            if (!first) s += ",";
            s += name;
            first = false;
        }
    }
    if (c.may_release != 0) {
        s += " release=";
        bool first = true;
        for (auto [bit, name] : kPinNames) {
            if ((c.may_release & bit) == 0) continue;
            if (!first) s += ",";
            s += name;
            first = false;
        }
    }
    static const char* const kDiscard[] = {"", "plans", "sequences", "temp", "all"};
    if (c.discard != Discard::None) s += std::string(" discard=") + kDiscard[int(c.discard)];
    if (c.read_only_default == ReadOnlyDefault::On) s += " rodefault=on";
    if (c.read_only_default == ReadOnlyDefault::Off) s += " rodefault=off";
    if (with_count) s += " n=" + std::to_string(c.statements);
    return s;
}

// The expectation's words parsed into a Classification and described the same way, so
// that the order of flags in the table does not matter.
std::string canonical(const std::string& expect, bool& with_count) {
    Classification c;
    std::vector<std::string> w = words(expect);
    REQUIRE(!w.empty());
    const std::pair<const char*, StatementKind> kinds[] = {
        {"read", StatementKind::Read},
        {"write", StatementKind::Write},
        {"begin", StatementKind::TransactionBegin},
        {"end", StatementKind::TransactionEnd},
        {"set-tx-ro", StatementKind::SetTransactionReadOnly},
        {"session", StatementKind::Session}};
    bool known = false;
    for (auto [name, kind] : kinds) {
        if (w[0] == name) {
            c.kind = kind;
            known = true;
        }
    }
    INFO("kind " << w[0]);
    REQUIRE(known);
    with_count = false;
    for (std::size_t i = 1; i < w.size(); ++i) {
        const std::string& f = w[i];
        INFO("flag " << f);
        if (f == "ro") {
            c.read_only = true;
        } else if (f == "rw") {
            c.read_write = true;
        } else if (f == "set") {
            c.set = true;
        } else if (f == "local") {
            c.set_local = true;
        } else if (f == "multi") {
            c.multi = true;
        } else if (f == "error") {
            c.parse_error = true;
        } else if (f.rfind("server=", 0) == 0) {
            for (auto [reason, name] : kServerLocalNames) {
                if (f.substr(7) == name) c.server_local = reason;
            }
            REQUIRE(!c.server_local.empty());
        } else if (f.rfind("pin=", 0) == 0) {
            std::stringstream list(f.substr(4));
            for (std::string p; std::getline(list, p, ',');) {
                bool found = false;
                for (auto [bit, name] : kPinNames) {
                    if (p == name) {
                        c.pins |= bit;
                        found = true;
                    }
                }
                REQUIRE(found);
            }
        } else if (f == "unpin=all") {
            c.unpins = kPinAll;
        } else if (f.rfind("unpin=", 0) == 0) {
            std::stringstream list(f.substr(6));
            for (std::string p; std::getline(list, p, ',');) {
                bool found = false;
                for (auto [bit, name] : kPinNames) {
                    if (p == name) {
                        c.unpins |= bit;
                        found = true;
                    }
                }
                REQUIRE(found);
            }
        } else if (f.rfind("release=", 0) == 0) {
            std::stringstream list(f.substr(8));
            for (std::string p; std::getline(list, p, ',');) {
                bool found = false;
                for (auto [bit, name] : kPinNames) {
                    if (p == name) {
                        c.may_release |= bit;
                        found = true;
                    }
                }
                REQUIRE(found);
            }
        } else if (f.rfind("discard=", 0) == 0) {
            std::string d = f.substr(8);
            c.discard = d == "all"         ? Discard::All
                        : d == "temp"      ? Discard::Temp
                        : d == "sequences" ? Discard::Sequences
                                           : Discard::Plans;
            REQUIRE((d == "all" || d == "temp" || d == "sequences" || d == "plans"));
        } else if (f == "rodefault=on") {
            c.read_only_default = ReadOnlyDefault::On;
        } else if (f == "rodefault=off") {
            c.read_only_default = ReadOnlyDefault::Off;
        } else if (f.rfind("n=", 0) == 0) {
            c.statements = static_cast<std::uint16_t>(std::stoi(f.substr(2)));
            with_count = true;
        } else {
            FAIL("unknown flag");
        }
    }
    return describe(c, with_count);
}

Classifier test_classifier() { return Classifier({"audit.log_it", "MyWriter", ""}); }

}  // namespace

TEST_CASE("classifier: the statement table", "[classify]") {
    std::vector<Case> cases = load_cases();
    REQUIRE(cases.size() >= 120);
    Classifier cl = test_classifier();
    for (const Case& k : cases) {
        bool with_count = false;
        std::string want = canonical(k.expect, with_count);
        Classification c = cl.classify(k.sql);
        INFO("statements.txt:" << k.line << ": " << k.sql);
        CHECK(describe(c, with_count) == want);
        CHECK(!c.reason.empty());
        CHECK(c.pin_reason.empty() == (c.pins == 0));
    }
}

TEST_CASE("classifier: statement counts and reasons", "[classify]") {
    Classifier cl;
    CHECK(cl.classify("SELECT 1; SELECT 2; SELECT 3").statements == 3);
    CHECK(cl.classify("SELECT 1;;;SELECT 2").statements == 2);
    CHECK(cl.classify("SELECT 1").statements == 1);
    CHECK(cl.classify("SELECT * FROM t FOR UPDATE").reason == "FOR UPDATE/SHARE");
    CHECK(cl.classify("SELECT nextval('s')").reason == "nextval()");
    CHECK(cl.classify("LISTEN x").pin_reason == "LISTEN");
    CHECK(cl.classify("garbage").reason == "the parser refused it");
    // Without the operator's list, its functions are ordinary reads.
    CHECK(cl.classify("SELECT audit.log_it(1)").kind == StatementKind::Read);
    CHECK(kind_name(StatementKind::Session) == "session");
}

TEST_CASE("classify cache: server-local settings are not folded with others", "[classify]") {
    Classifier cl;
    ClassifyCache cache;
    CHECK(cache.classify("SELECT current_setting('work_mem')", cl).server_local.empty());
    CHECK(cache.classify("SELECT current_setting('transaction_read_only')", cl).server_local ==
          kServerLocalRecovery);
    CHECK(cache.classify("SELECT current_setting('work_mem')", cl).server_local.empty());
    // Constants elsewhere still fold: one entry for both.
    CHECK(cache.classify("SELECT pg_blocking_pids(1)", cl).server_local == kServerLocalBackend);
    CHECK(cache.classify("SELECT pg_blocking_pids(2)", cl).server_local == kServerLocalBackend);
    CHECK(cache.size() == 3);
}

TEST_CASE("classifier: a NUL byte makes the text a write", "[classify]") {
    Classifier cl;
    Classification c = cl.classify(std::string_view("SELECT 1\0; DELETE FROM t", 24));
    CHECK(c.kind == StatementKind::Write);
    CHECK(c.parse_error);
}

TEST_CASE("classifier: very long IN lists and deep expressions", "[classify]") {
    Classifier cl;
    std::string in_list = "SELECT * FROM t WHERE id IN (";
    for (int i = 0; i < 20000; ++i) in_list += (i ? ", " : "") + std::to_string(i);
    CHECK(cl.classify(in_list + ")").kind == StatementKind::Read);
    CHECK(cl.classify(in_list + ", nextval('s'))").kind == StatementKind::Write);
    CHECK(cl.classify(in_list + ") FOR UPDATE").kind == StatementKind::Write);

    // A left-deep expression: the parse tree is thousands of levels deep.
    std::string deep = "SELECT 1";
    for (int i = 0; i < 5000; ++i) deep += " + 1";
    CHECK(cl.classify(deep).kind == StatementKind::Read);
    CHECK(cl.classify(deep + " + nextval('s')").kind == StatementKind::Write);

    // Subqueries nested past the parser's own stack depth check: refused, so a write.
    std::string nested = "SELECT ";
    for (int i = 0; i < 10000; ++i) nested += "(SELECT ";
    nested += "1" + std::string(10000, ')');
    Classification c = cl.classify(nested);
    CHECK(c.kind == StatementKind::Write);
    CHECK(c.parse_error);
}

TEST_CASE("classifier: the JSON reader", "[classify]") {
    using namespace pgrouter::json;
    Json j;
    REQUIRE(j.parse(R"( {"a": [1, -2.5e3, true, false, null, "x\"y"], "b": {}, "c": []} )"));
    std::uint32_t a = j.get(0, "a");
    REQUIRE(a != kNone);
    CHECK(j.at(a).type == JType::Array);
    std::uint32_t e = j.first(a);
    CHECK(j.at(e).text == "1");
    e = j.next(e);
    CHECK(j.at(e).text == "-2.5e3");
    e = j.next(e);
    CHECK(j.at(e).type == JType::True);
    e = j.next(j.next(j.next(e)));
    CHECK(j.string(e) == "x\"y");
    CHECK(j.next(e) == kNone);
    CHECK(j.at(j.get(0, "b")).type == JType::Object);
    CHECK(j.first(j.get(0, "b")) == kNone);
    CHECK(j.get(0, "missing") == kNone);
    CHECK(j.get(kNone, "a") == kNone);

    REQUIRE(j.parse(R"(["\u00e9\ud83d\ude00\n\\\/"])"));
    CHECK(j.string(j.first(0)) == "\xc3\xa9\xf0\x9f\x98\x80\n\\/");

    for (const char* bad :
         {"", "{", "[1,]x", "{\"a\" 1}", "[1 2]", "\"open", "{\"a\":}", "[]]", "nul", "{1:2}"}) {
        INFO(bad);
        CHECK(!j.parse(bad));
    }
    std::string deep = std::string(100000, '[') + std::string(100000, ']');
    CHECK(j.parse(deep));
}

TEST_CASE("classify cache: hits, misses and replacement", "[classify]") {
    Classifier cl;
    ClassifyCache cache(4);
    CHECK(cache.find("SELECT ?") == nullptr);
    Classification c = cache.classify("SELECT 1", cl);
    CHECK(c.kind == StatementKind::Read);
    CHECK(cache.size() == 1);
    CHECK(cache.misses() == 2);  // the bare find() and classify()'s own lookup
    // Entries are keyed by sql_cache_key(): constants folded.
    const Classification* hit = cache.find("SELECT ?");
    REQUIRE(hit != nullptr);
    CHECK(hit->kind == StatementKind::Read);
    CHECK(cache.hits() == 1);
    CHECK(cache.classify("SELECT 2", cl).kind == StatementKind::Read);  // same key
    CHECK(cache.hits() == 2);
    // Beyond constants, keys are exact texts.
    CHECK(cache.find("select ?") == nullptr);
    CHECK(cache.find("SELECT ? ") == nullptr);

    Classification w;
    w.kind = StatementKind::Write;
    cache.insert("SELECT ?", w);
    CHECK(cache.size() == 1);
    CHECK(cache.find("SELECT ?")->kind == StatementKind::Write);
    CHECK(cache.bytes() == 8);

    cache.clear();
    CHECK(cache.size() == 0);
    CHECK(cache.bytes() == 0);
    CHECK(cache.find("SELECT ?") == nullptr);
}

TEST_CASE("classify cache: CLOCK eviction keeps what is used", "[classify]") {
    ClassifyCache cache(4);
    Classification c;
    for (int i = 0; i < 4; ++i) cache.insert("q" + std::to_string(i), c);
    CHECK(cache.size() == 4);
    // q0 and q2 are used; the next two inserts must evict q1 and q3.
    REQUIRE(cache.find("q0") != nullptr);
    REQUIRE(cache.find("q2") != nullptr);
    cache.insert("q4", c);
    cache.insert("q5", c);
    CHECK(cache.size() == 4);
    CHECK(cache.find("q1") == nullptr);
    CHECK(cache.find("q3") == nullptr);
    CHECK(cache.find("q0") != nullptr);
    CHECK(cache.find("q2") != nullptr);
    CHECK(cache.find("q4") != nullptr);
    CHECK(cache.find("q5") != nullptr);

    // A long run of distinct statements never grows it past its bound.
    for (int i = 0; i < 1000; ++i) cache.insert("x" + std::to_string(i), c);
    CHECK(cache.size() == 4);
    CHECK(cache.find("x999") != nullptr);
}

TEST_CASE("classify cache: the byte budget", "[classify]") {
    Classification c;
    ClassifyCache cache(100, 1600);  // texts up to 100 bytes are cached
    cache.insert(std::string(101, 'a'), c);
    CHECK(cache.size() == 0);
    for (int i = 0; i < 20; ++i) cache.insert(std::string(100, char('a' + i)), c);
    CHECK(cache.bytes() <= 1600);
    CHECK(cache.size() == 16);
    CHECK(cache.find(std::string(100, char('a' + 19))) != nullptr);
}

TEST_CASE("classify cache: a hit allocates nothing", "[classify]") {
    Classifier cl;
    ClassifyCache cache;
    std::string sql = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
    (void)cache.classify(sql, cl);
    std::string_view view = sql;
    std::size_t before = mallinfo2().uordblks;
    int found = 0;
    for (int i = 0; i < 1000; ++i) found += cache.classify(view, cl).kind == StatementKind::Read;
    std::size_t after = mallinfo2().uordblks;
    CHECK(found == 1000);
    CHECK(after == before);
}

TEST_CASE("classifier: cost per parse and per cache hit", "[.bench]") {
    Classifier cl;
    const char* statements[] = {
        "SELECT abalance FROM pgbench_accounts WHERE aid = $1",
        "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
        ("SELECT a.id, b.name FROM users a JOIN orders b ON a.id = b.uid WHERE a.x IN (1, 2, 3) "
         "AND b.y > now() - interval '1 day' ORDER BY 1 LIMIT 10"),
        "BEGIN",
    };
    using Clock = std::chrono::steady_clock;
    for (const char* sql : statements) {
        constexpr int kParses = 20000;
        auto t0 = Clock::now();
        int writes = 0;
        for (int i = 0; i < kParses; ++i) writes += cl.classify(sql).kind == StatementKind::Write;
        double parse_us =
            std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / kParses;

        ClassifyCache cache;
        (void)cache.classify(sql, cl);
        constexpr int kHits = 2000000;
        t0 = Clock::now();
        for (int i = 0; i < kHits; ++i) writes += cache.find(sql) != nullptr;
        double hit_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / kHits;
        std::printf("%-60.60s parse %6.2f us  hit %5.1f ns  (%d)\n", sql, parse_us, hit_ns, writes);
    }
}
