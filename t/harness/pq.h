// libpq conveniences for tests: one-shot queries and a small RAII connection. Every error
// (connection or query) is thrown as std::runtime_error with libpq's message, so a Catch2
// test fails with the server's words.
#pragma once

#include <libpq-fe.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pgrouter::test {

using Rows = std::vector<std::vector<std::string>>;  // NULL reads as ""

class PgConn {
  public:
    explicit PgConn(const std::string& conninfo);
    ~PgConn();
    PgConn(const PgConn&) = delete;
    PgConn& operator=(const PgConn&) = delete;
    PgConn(PgConn&& other) noexcept;
    PgConn& operator=(PgConn&& other) noexcept;

    // Runs sql (simple query protocol; may hold several statements) and returns the rows of
    // the last result. Throws on any error result.
    Rows query(const std::string& sql);
    // First column of the first row, "" when there is no row.
    std::string value(const std::string& sql);
    void exec(const std::string& sql) { (void)query(sql); }

    PGconn* get() const { return conn_; }
    int backend_pid() const;
    // NOTICE/WARNING messages received so far (libpq would print them to stderr).
    const std::vector<std::string>& notices() const { return *notices_; }

  private:
    PGconn* conn_ = nullptr;
    std::unique_ptr<std::vector<std::string>> notices_;  // stable across moves
};

// One connection per call.
Rows query_rows(const std::string& conninfo, const std::string& sql);
std::string query_value(const std::string& conninfo, const std::string& sql);

// The SQLSTATE of running `sql` on `conn` ("" when it succeeds).
std::string sqlstate_of(PgConn& conn, const std::string& sql);

// How many of `n` runs of `sql` answered each value (e.g. inet_server_port()).
std::map<std::string, int> count_ports(PgConn& conn, int n, const std::string& sql);

// True if a connection with conninfo succeeds (and "SELECT 1" works); never throws.
bool can_connect(const std::string& conninfo);

}  // namespace pgrouter::test
