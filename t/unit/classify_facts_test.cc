// Unit tests of the facts the classifier reads from the parse tree for the session: the
// parameter each SET / RESET / set_config touches (and whether LOCAL), savepoint names and
// kinds, isolation levels, DISCARD ALL; and merge(), the one rule for merging units.
#include <catch2/catch.hpp>
#include <string>

#include "pgrouter/route/classify.h"
#include "pgrouter/route/classify_cache.h"

using namespace pgrouter;

namespace {

std::string_view action_name(NamedAction a) {
    switch (a) {
        case NamedAction::Set:
            return "set";
        case NamedAction::SetLocal:
            return "local";
        case NamedAction::Reset:
            return "reset";
        case NamedAction::ResetAll:
            return "reset-all";
        case NamedAction::Savepoint:
            return "savepoint";
        case NamedAction::Release:
            return "release";
        case NamedAction::RollbackTo:
            return "rollback-to";
        case NamedAction::Deallocate:
            return "deallocate";
    }
    return "?";
}

std::string_view isolation_name(Isolation i) {
    switch (i) {
        case Isolation::Unchanged:
            return "";
        case Isolation::Default:
            return "=default";
        case Isolation::ReadUncommitted:
            return "=ru";
        case Isolation::ReadCommitted:
            return "=rc";
        case Isolation::RepeatableRead:
            return "=rr";
        case Isolation::Serializable:
            return "=s";
    }
    return "?";
}

// "action:name[=isolation] [statement text]" per fact, space-separated; then
// " iso=<level>" for the transaction's isolation and " truncated" when facts were dropped.
std::string describe_facts(std::string_view sql, const Classification& c) {
    std::string s;
    for (const NamedFact& f : c.facts()) {
        if (!s.empty()) s += " ";
        s += action_name(f.action);
        s += ":";
        s += c.name_of(f);
        s += isolation_name(f.isolation);
        s += " [";
        s += sql.substr(f.stmt_at, f.stmt_size);
        s += "]";
    }
    if (c.isolation != Isolation::Unchanged) s += " iso" + std::string(isolation_name(c.isolation));
    if (c.facts_truncated) s += " truncated";
    return s;
}

struct FactCase {
    const char* sql;
    const char* facts;
};

constexpr FactCase kFactCases[] = {
    {"SELECT 1", ""},
    {"DEALLOCATE s1", "deallocate:s1 [DEALLOCATE s1]"},
    {"DEALLOCATE PREPARE ALL", "deallocate: [DEALLOCATE PREPARE ALL]"},
    {"SET search_path = s, public", "set:search_path [SET search_path = s, public]"},
    {"set Search_Path to s;", "set:search_path [set Search_Path to s]"},
    {"SET \"DateStyle\" = 'ISO'", "set:datestyle [SET \"DateStyle\" = 'ISO']"},
    {"SET LOCAL statement_timeout = 5",
     "local:statement_timeout [SET LOCAL statement_timeout = 5]"},
    {"RESET work_mem", "reset:work_mem [RESET work_mem]"},
    {"SET work_mem TO DEFAULT", "reset:work_mem [SET work_mem TO DEFAULT]"},
    {"RESET ALL", "reset-all: [RESET ALL]"},
    {"DISCARD ALL", "reset-all: [DISCARD ALL]"},
    {"DISCARD TEMP", ""},
    {"SET ROLE r", "set:role [SET ROLE r]"},
    {"RESET ROLE", "reset:role [RESET ROLE]"},
    {"SET SESSION AUTHORIZATION u", "set:session_authorization [SET SESSION AUTHORIZATION u]"},
    {"SET TIME ZONE 'UTC'", "set:timezone [SET TIME ZONE 'UTC']"},
    {"SET NAMES 'UTF8'", "set:client_encoding [SET NAMES 'UTF8']"},
    {"SET a.b = 1;  SET x = 2", "set:a.b [SET a.b = 1] set:x [SET x = 2]"},
    {"SET x = 1; SELECT 2", "set:x [SET x = 1]"},
    {"SELECT set_config('Search_Path', 's', false)",
     "set:search_path [SELECT set_config('Search_Path', 's', false)]"},
    {"SELECT set_config('x.y', 'v', true)", "local:x.y [SELECT set_config('x.y', 'v', true)]"},
    {"SELECT set_config($1, $2, false)", "set: [SELECT set_config($1, $2, false)]"},
    {"SET default_transaction_isolation = 'serializable'",
     "set:default_transaction_isolation=s [SET default_transaction_isolation = 'serializable']"},
    {"SET default_transaction_isolation TO 'REPEATABLE READ'",
     "set:default_transaction_isolation=rr [SET default_transaction_isolation TO 'REPEATABLE "
     "READ']"},
    {"RESET default_transaction_isolation",
     "reset:default_transaction_isolation=default [RESET default_transaction_isolation]"},
    {"SELECT set_config('default_transaction_isolation', 'serializable', false)",
     "set:default_transaction_isolation=s [SELECT set_config('default_transaction_isolation', "
     "'serializable', false)]"},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY",
     "set:default_transaction_isolation=s [SET SESSION CHARACTERISTICS AS TRANSACTION "
     "ISOLATION LEVEL SERIALIZABLE, READ ONLY] set:default_transaction_read_only [SET SESSION "
     "CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY]"},
    {"SAVEPOINT a", "savepoint:a [SAVEPOINT a]"},
    {"SAVEPOINT \"Mixed\"", "savepoint:Mixed [SAVEPOINT \"Mixed\"]"},
    {"RELEASE SAVEPOINT a", "release:a [RELEASE SAVEPOINT a]"},
    {"RELEASE b", "release:b [RELEASE b]"},
    {"ROLLBACK TO a", "rollback-to:a [ROLLBACK TO a]"},
    {"rollback to savepoint B", "rollback-to:b [rollback to savepoint B]"},
    {"ROLLBACK", ""},
    {"BEGIN ISOLATION LEVEL SERIALIZABLE", " iso=s"},
    {"START TRANSACTION READ ONLY, ISOLATION LEVEL REPEATABLE READ", " iso=rr"},
    {"BEGIN; SET TRANSACTION ISOLATION LEVEL READ COMMITTED", " iso=rc"},
    {"SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED", " iso=ru"},
    {"SAVEPOINT a; SAVEPOINT b; SAVEPOINT c; SAVEPOINT d; SAVEPOINT e; SAVEPOINT f; "
     "SAVEPOINT g; SAVEPOINT h; SAVEPOINT i",
     "savepoint:a [SAVEPOINT a] savepoint:b [SAVEPOINT b] savepoint:c [SAVEPOINT c] "
     "savepoint:d [SAVEPOINT d] savepoint:e [SAVEPOINT e] savepoint:f [SAVEPOINT f] "
     "savepoint:g [SAVEPOINT g] savepoint:h [SAVEPOINT h] truncated"},
};

}  // namespace

TEST_CASE("classifier: named facts from the parse tree", "[classify][facts]") {
    Classifier classifier;
    for (const FactCase& t : kFactCases) {
        INFO(t.sql);
        CHECK(describe_facts(t.sql, classifier.classify(t.sql)) == t.facts);
    }
}

TEST_CASE("classifier: SETs that name catalog objects", "[classify][facts]") {
    Classifier c;
    for (const char* sql :
         {"SET ROLE r", "SET SESSION AUTHORIZATION r", "SET search_path = s, public",
          "set Search_Path to s", "SELECT set_config('role', 'r', false)",
          "SELECT set_config('search_path', 's', false)", "SET default_tablespace = ts",
          "SET temp_tablespaces = ts", "SET default_text_search_config = 'english'",
          "SELECT set_config($1, 'x', false)", "SET application_name = 'a'; SET ROLE r"}) {
        INFO(sql);
        CHECK(c.classify(sql).names_objects);
    }
    for (const char* sql :
         {"SET application_name = 'a'", "SET extra_float_digits = 3", "RESET ROLE", "RESET ALL",
          "SET LOCAL search_path = s", "SELECT set_config('role', 'r', true)",
          "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SELECT 1", "DISCARD ALL"}) {
        INFO(sql);
        CHECK_FALSE(c.classify(sql).names_objects);
    }
}

TEST_CASE("classifier: units that only set the transaction's modes", "[classify][facts]") {
    Classifier c;
    for (const char* sql :
         {"BEGIN", "BEGIN READ ONLY", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
          "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET TRANSACTION READ ONLY",
          "BEGIN; SET TRANSACTION READ ONLY", "SET transaction_read_only = on"}) {
        INFO(sql);
        CHECK(c.classify(sql).transaction_modes);
    }
    for (const char* sql : {"BEGIN; SELECT 1", "SELECT 1", "COMMIT", "SET search_path = s", "",
                            "SET LOCAL work_mem = '1MB'", "SAVEPOINT a"}) {
        INFO(sql);
        CHECK_FALSE(c.classify(sql).transaction_modes);
    }
}

TEST_CASE("classifier: names that do not fit are dropped, never cut", "[classify][facts]") {
    Classifier classifier;
    std::string sql;
    for (int i = 0; i < 4; ++i) {
        sql += "SET " + std::string(60, static_cast<char>('a' + i)) + ".x = 1; ";
    }
    Classification c = classifier.classify(sql);
    REQUIRE(c.fact_count == 3);  // 3 × 62 bytes fit in 192
    CHECK(c.facts_truncated);
    for (const NamedFact& f : c.facts()) CHECK(c.name_of(f).size() == 62);
}

struct MergeCase {
    const char* a;
    const char* b;
    StatementKind kind;
    bool read_only;
};

TEST_CASE("classifier: merge() keeps the strongest kind and a read-only BEGIN",
          "[classify][merge]") {
    Classifier classifier;
    const MergeCase cases[] = {
        {"SELECT 1", "INSERT INTO t VALUES (1)", StatementKind::Write, false},
        {"INSERT INTO t VALUES (1)", "SELECT 1", StatementKind::Write, false},
        {"SELECT 1", "BEGIN READ ONLY", StatementKind::TransactionBegin, true},
        {"BEGIN READ ONLY", "SELECT 1", StatementKind::TransactionBegin, true},
        {"BEGIN READ ONLY", "BEGIN", StatementKind::TransactionBegin, false},
        {"BEGIN", "UPDATE t SET a = 1", StatementKind::Write, false},
        {"SET x = 1", "SELECT 1", StatementKind::Read, false},
        {"COMMIT", "SHOW x", StatementKind::Read, false},
        {"SET x = 1", "COMMIT", StatementKind::Session, false},
    };
    for (const MergeCase& t : cases) {
        INFO(t.a << " + " << t.b);
        Classification a = classifier.classify(t.a);
        Classification b = classifier.classify(t.b);
        Classification m = merge(a, b);
        CHECK(m.kind == t.kind);
        CHECK(m.read_only == t.read_only);
        CHECK(m.multi);
        CHECK(m.statements == 2);
        CHECK(m.fact_count == 0);
        CHECK(m.set == (a.set || b.set));
        // The same rule classify() applies to one text of both statements.
        Classification joined = classifier.classify(std::string(t.a) + "; " + t.b);
        CHECK(joined.kind == m.kind);
        CHECK(joined.read_only == m.read_only);
    }
    Classification pin = merge(classifier.classify("SELECT 1"), classifier.classify("LISTEN c"));
    CHECK(pin.pins == kPinListen);
    CHECK(pin.pin_reason == "LISTEN");
    CHECK(merge(classifier.classify("SET x = 1"), classifier.classify("SELECT 1")).facts_truncated);
    // A server-local statement anywhere in a batch sends the batch to the master, in either order,
    // as classify() does for one text of both.
    for (auto [a, b] : {std::pair{"SELECT 1", "SELECT pg_is_in_recovery()"},
                        std::pair{"SELECT pg_is_in_recovery()", "SELECT 1"}}) {
        INFO(a << " + " << b);
        CHECK(merge(classifier.classify(a), classifier.classify(b)).server_local ==
              classifier.classify(std::string(a) + "; " + b).server_local);
        CHECK_FALSE(merge(classifier.classify(a), classifier.classify(b)).server_local.empty());
    }
}

TEST_CASE("classify cache: texts with facts are never shared by their folded key",
          "[classify][facts]") {
    Classifier classifier;
    ClassifyCache cache;
    const char* a = "SELECT set_config('search_path', 'a', false)";
    const char* b = "SELECT set_config('work_mem', '64MB', true)";
    Classification ca = cache.classify(a, classifier);
    Classification cb = cache.classify(b, classifier);
    REQUIRE(ca.fact_count == 1);
    REQUIRE(cb.fact_count == 1);
    CHECK(ca.name_of(ca.facts()[0]) == "search_path");
    CHECK(cb.name_of(cb.facts()[0]) == "work_mem");
    CHECK(cb.facts()[0].action == NamedAction::SetLocal);
    CHECK(ca.set);
    CHECK(!ca.set_local);
    // A second look finds each under its own text.
    Classification again = cache.classify(a, classifier);
    CHECK(again.name_of(again.facts()[0]) == "search_path");
    CHECK(cache.hits() == 1);
    // Statements without facts still share one entry across constants.
    (void)cache.classify("SELECT 1; SET x = 'long value'", classifier);
    Classification shorter = cache.classify("SELECT 2; SET x = 'v'", classifier);
    REQUIRE(shorter.fact_count == 1);
    CHECK(std::string_view("SELECT 2; SET x = 'v'")
              .substr(shorter.facts()[0].stmt_at, shorter.facts()[0].stmt_size) == "SET x = 'v'");
    (void)cache.classify("SELECT 10 FROM t", classifier);
    std::uint64_t hits = cache.hits();
    (void)cache.classify("SELECT 20 FROM t", classifier);
    CHECK(cache.hits() == hits + 1);
}
