// The cache key: literals folded in plain data statements, everything else untouched.
#include "pgrouter/route/sql_key.h"

#include <catch2/catch.hpp>

using namespace pgrouter;

namespace {
std::string key_of(std::string_view sql) {
    std::string k;
    sql_cache_key(sql, k);
    return k;
}
}  // namespace

TEST_CASE("numbers and strings fold into one key") {
    CHECK(key_of("SELECT abalance FROM pgbench_accounts WHERE aid = 4711;") ==
          "SELECT abalance FROM pgbench_accounts WHERE aid = ?;");
    CHECK(key_of("SELECT abalance FROM pgbench_accounts WHERE aid = 4711;") ==
          key_of("SELECT abalance FROM pgbench_accounts WHERE aid = 99;"));
    CHECK(key_of("select * from t where a = 'x''y' and b = 1.5e-3") ==
          "select * from t where a = '?' and b = ?");
    CHECK(key_of("SELECT E'it\\'s', 'plain'") == "SELECT E'?', '?'");
    CHECK(key_of("insert into t2 values (1, 'a')") == "insert into t2 values (?, '?')");
}

TEST_CASE("identifiers, parameters, comments and dollar quotes are kept") {
    CHECK(key_of("SELECT t1.c2, $1 FROM t1") == "SELECT t1.c2, $1 FROM t1");
    CHECK(key_of("SELECT \"col 1\" FROM \"t\"\"x\" WHERE a = 3") ==
          "SELECT \"col 1\" FROM \"t\"\"x\" WHERE a = ?");
    CHECK(key_of("SELECT 1 -- FOR UPDATE 2\n") == "SELECT ? -- FOR UPDATE 2\n");
    CHECK(key_of("SELECT /* 5 /* nested 6 */ */ 7") == "SELECT /* 5 /* nested 6 */ */ ?");
    CHECK(key_of("SELECT $f$ 42 'x' $f$, 9") == "SELECT $f$ 42 'x' $f$, ?");
}

TEST_CASE("statements whose literals can matter keep their text") {
    for (const char* sql : {"SET default_transaction_read_only = 'on'", "SET work_mem = 1024",
                            "BEGIN ISOLATION LEVEL SERIALIZABLE", "EXPLAIN ANALYZE SELECT 1",
                            "DECLARE c CURSOR WITH HOLD FOR SELECT 1"}) {
        CHECK(key_of(sql) == sql);
    }
}

TEST_CASE("unterminated constructs stop folding but never read past the end") {
    CHECK(key_of("SELECT 'open") == "SELECT 'open");
    CHECK(key_of("SELECT 1, $x$ never closed") == "SELECT ?, $x$ never closed");
    CHECK(key_of("SELECT /* open 1") == "SELECT /* open 1");
    CHECK(key_of("SELECT \"open 2") == "SELECT \"open 2");
    CHECK(key_of("") == "");
}
