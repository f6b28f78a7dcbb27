// libpq wrappers for tests. Blocking calls only; no knowledge of clusters or the router.
#include "pq.h"

#include <stdexcept>
#include <utility>

namespace pgrouter::test {

namespace {

std::string trimmed(const char* msg) {
    std::string s = msg != nullptr ? msg : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

void collect_notice(void* arg, const PGresult* res) {
    static_cast<std::vector<std::string>*>(arg)->push_back(trimmed(PQresultErrorMessage(res)));
}

}  // namespace

PgConn::PgConn(const std::string& conninfo)
    : conn_(PQconnectdb(conninfo.c_str())), notices_(std::make_unique<std::vector<std::string>>()) {
    if (conn_ == nullptr) throw std::runtime_error("PQconnectdb: out of memory");
    PQsetNoticeReceiver(conn_, collect_notice, notices_.get());
    if (PQstatus(conn_) != CONNECTION_OK) {
        std::string msg = trimmed(PQerrorMessage(conn_));
        PQfinish(conn_);
        conn_ = nullptr;
        throw std::runtime_error("connection failed: " + msg);
    }
}

PgConn::~PgConn() {
    if (conn_ != nullptr) PQfinish(conn_);
}

PgConn::PgConn(PgConn&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)), notices_(std::move(other.notices_)) {}

PgConn& PgConn::operator=(PgConn&& other) noexcept {
    if (this != &other) {
        if (conn_ != nullptr) PQfinish(conn_);
        conn_ = std::exchange(other.conn_, nullptr);
        notices_ = std::move(other.notices_);
    }
    return *this;
}

Rows PgConn::query(const std::string& sql) {
    if (conn_ == nullptr) throw std::runtime_error("query on a closed connection");
    if (PQsendQuery(conn_, sql.c_str()) == 0)
        throw std::runtime_error("query failed: " + trimmed(PQerrorMessage(conn_)));
    Rows rows;
    std::string error;
    while (PGresult* res = PQgetResult(conn_)) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
            if (error.empty()) error = trimmed(PQresultErrorMessage(res));
        } else if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            rows.clear();
            for (int r = 0; r < PQntuples(res); ++r) {
                std::vector<std::string> row;
                for (int c = 0; c < PQnfields(res); ++c)
                    row.emplace_back(PQgetisnull(res, r, c) ? "" : PQgetvalue(res, r, c));
                rows.push_back(std::move(row));
            }
        } else if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
            PQclear(res);
            throw std::runtime_error("query: COPY is not supported by this helper");
        }
        PQclear(res);
    }
    if (!error.empty()) throw std::runtime_error("query failed: " + error + "\n  sql: " + sql);
    if (PQstatus(conn_) != CONNECTION_OK)
        throw std::runtime_error("connection lost: " + trimmed(PQerrorMessage(conn_)));
    return rows;
}

std::string PgConn::value(const std::string& sql) {
    Rows rows = query(sql);
    if (rows.empty() || rows[0].empty()) return "";
    return rows[0][0];
}

int PgConn::backend_pid() const { return conn_ != nullptr ? PQbackendPID(conn_) : 0; }

Rows query_rows(const std::string& conninfo, const std::string& sql) {
    PgConn c(conninfo);
    return c.query(sql);
}

std::string query_value(const std::string& conninfo, const std::string& sql) {
    PgConn c(conninfo);
    return c.value(sql);
}

bool can_connect(const std::string& conninfo) {
    try {
        PgConn c(conninfo);
        c.exec("SELECT 1");
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

std::string sqlstate_of(PgConn& conn, const std::string& sql) {
    PGresult* res = PQexec(conn.get(), sql.c_str());
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    std::string out = state != nullptr ? state : "";
    PQclear(res);
    return out;
}

std::map<std::string, int> count_ports(PgConn& conn, int n, const std::string& sql) {
    std::map<std::string, int> seen;
    for (int i = 0; i < n; ++i) seen[conn.value(sql)] += 1;
    return seen;
}

}  // namespace pgrouter::test
