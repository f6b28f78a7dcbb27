// The watcher's libpq connection to one backend: non-blocking connect (PQconnectStartParams,
// PQconnectPoll), one query per check (PQsendQuery, PQconsumeInput), a deadline per check.
// It never waits itself and never logs: results go back to the watcher's loop, which polls
// every backend's socket at once.
#include "pgrouter/health/health_probe.h"

#include <libpq-fe.h>
#include <openssl/x509.h>
#include <poll.h>

#include <cctype>
#include <charconv>
#include <cstdlib>

#include "pgrouter/base/ascii.h"
#include "pgrouter/base/clock.h"

namespace pgrouter {

namespace {

// On a standby the timeline being received (the checkpoint's when nothing streams) and
// whether its WAL receiver streams; on a primary the timeline of the WAL being written, from
// the name of its current WAL file: pg_control_checkpoint() would show the old timeline
// until the checkpoint that follows a promotion completes, which on a busy server takes as
// long as a spread checkpoint. pg_is_in_recovery() is read once (the OFFSET 0 fence) so the
// columns agree mid-promotion. A full check adds the system identifier. A health user
// without pg_read_all_stats (pg_monitor) sees only the WAL receiver's pid: then a running
// receiver counts as streaming, and the timeline is the last checkpoint's.
constexpr const char* kColumns =
    "SELECT s.r, CASE WHEN s.r THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END, "
    "pg_last_wal_receive_lsn(), "
    "CASE WHEN s.r THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), "
    "(SELECT timeline_id FROM pg_control_checkpoint())) "
    "ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END, "
    "COALESCE((SELECT CASE WHEN status IS NULL THEN pid IS NOT NULL "
    "ELSE status = 'streaming' END FROM pg_stat_wal_receiver), false)";
constexpr const char* kSystemIdColumn = ", (SELECT system_identifier FROM pg_control_system())";
constexpr const char* kFrom = " FROM (SELECT pg_is_in_recovery() AS r OFFSET 0) s";

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

std::string millis(std::int64_t ns) { return std::to_string(ns / 1'000'000) + " ms"; }

}  // namespace

namespace {
// OpenSSL's default CA bundle, or the one SSL_CERT_FILE names.
std::string default_ca_file() {
    const char* env = std::getenv(X509_get_default_cert_file_env());
    return env != nullptr && *env != '\0' ? env : X509_get_default_cert_file();
}
}  // namespace

std::vector<std::pair<std::string, std::string>> probe_conninfo(const ProbeTarget& t) {
    std::vector<std::pair<std::string, std::string>> kv = {
        {"host", t.host},     {"port", std::to_string(t.port)},         {"dbname", t.database},
        {"user", t.username}, {"application_name", "pgrouter watcher"}, {"gssencmode", "disable"},
    };
    if (!t.password.empty()) kv.emplace_back("password", t.password);
    switch (t.tls) {
        case TlsMode::Off:
            kv.emplace_back("sslmode", "disable");
            break;
        case TlsMode::SkipVerify:
            kv.emplace_back("sslmode", "require");
            break;
        case TlsMode::Verify:
            kv.emplace_back("sslmode", "verify-full");
            // libpq (before 16's sslrootcert=system) would look in ~/.postgresql/root.crt;
            // pgrouter's default is the system store, as for the sessions' connections.
            kv.emplace_back("sslrootcert", t.ca.empty() ? default_ca_file() : t.ca);
            break;
    }
    return kv;
}

const char* probe_query(bool full) {
    static const std::string sample = std::string(kColumns) + kFrom;
    static const std::string check = std::string(kColumns) + kSystemIdColumn + kFrom;
    return full ? check.c_str() : sample.c_str();
}

std::optional<HealthSample> parse_probe_row(const std::vector<std::optional<std::string>>& row,
                                            bool full) {
    if (row.size() != (full ? 6u : 5u) || !row[0] || !row[1] || !row[3] || !row[4]) {
        return std::nullopt;
    }
    HealthSample s;
    if (*row[0] == "t") {
        s.in_recovery = true;
    } else if (*row[0] != "f") {
        return std::nullopt;
    }
    auto lsn = parse_lsn(*row[1]);
    if (!lsn) return std::nullopt;
    s.lsn = *lsn;
    if (s.in_recovery && row[2]) {
        auto receive = parse_lsn(*row[2]);
        if (!receive) return std::nullopt;
        s.receive_lsn = *receive;
    }
    const std::string& tl = *row[3];
    auto [end, ec] = std::from_chars(tl.data(), tl.data() + tl.size(), s.timeline);
    if (ec != std::errc() || end != tl.data() + tl.size()) return std::nullopt;
    if (*row[4] == "t") {
        s.streaming = s.in_recovery;
    } else if (*row[4] != "f") {
        return std::nullopt;
    }
    if (full) {
        if (!row[5]) return std::nullopt;
        const std::string& id = *row[5];
        std::int64_t v = 0;  // bigint: the unsigned identifier as PostgreSQL prints it
        auto [e, err] = std::from_chars(id.data(), id.data() + id.size(), v);
        if (err != std::errc() || e != id.data() + id.size() || v == 0) return std::nullopt;
        s.system_identifier = static_cast<std::uint64_t>(v);
    }
    return s;
}

std::string short_error(std::string_view message) {
    std::string_view s = trim(message.substr(0, message.find('\n')));
    if (starts_with(s, "connection to server")) {
        std::size_t at = s.find("failed: ");
        if (at != std::string_view::npos) s = trim(s.substr(at + 8));
    }
    for (std::string_view severity : {"FATAL:", "ERROR:", "PANIC:", "WARNING:"}) {
        if (starts_with(s, severity)) s = trim(s.substr(severity.size()));
    }
    if (s.empty()) return "unknown error";
    std::string out(s);
    // "Connection refused" (strerror) reads as "connection refused"; "SSL ..." stays.
    if (out.size() > 1 && std::isupper(static_cast<unsigned char>(out[0])) &&
        std::islower(static_cast<unsigned char>(out[1]))) {
        out[0] = ascii_lower(out[0]);
    }
    return out;
}

HealthProbe::~HealthProbe() { close(); }

void HealthProbe::close() {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = nullptr;
    phase_ = Phase::Closed;
    flushing_ = false;
    pending_.reset();
    pending_error_.clear();
}

ProbeResult HealthProbe::fail(std::string_view why) {
    ProbeResult r;
    r.full = full_;
    r.error = std::string(why);
    close();
    return r;
}

void HealthProbe::on_notice(void* arg, const char* message) {
    std::string_view m(message);
    // Only what may explain a closing connection (an immediate shutdown says WARNING);
    // libpq's default would print it on stderr.
    if (starts_with(m, "FATAL") || starts_with(m, "PANIC") || starts_with(m, "ERROR") ||
        starts_with(m, "WARNING")) {
        static_cast<HealthProbe*>(arg)->last_notice_ = short_error(m);
    }
}

std::optional<ProbeResult> HealthProbe::start(bool full, std::int64_t now_ns,
                                              std::int64_t timeout_ns) {
    if (busy()) return std::nullopt;
    full_ = full;
    timeout_ns_ = timeout_ns;
    deadline_ns_ = now_ns + timeout_ns;
    if (phase_ == Phase::Closed) return connect();
    return send_query();
}

std::optional<ProbeResult> HealthProbe::connect() {
    full_ = true;  // a new connection is always checked in full: it may be another server
    had_success_ = false;
    last_notice_.clear();
    auto kv = probe_conninfo(target_);
    std::vector<const char*> keys;
    std::vector<const char*> values;
    for (const auto& [k, v] : kv) {
        keys.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_ = PQconnectStartParams(keys.data(), values.data(), 0);
    if (conn_ == nullptr) return fail("out of memory");
    PQsetNoticeProcessor(conn_, &HealthProbe::on_notice, this);
    if (PQstatus(conn_) == CONNECTION_BAD || PQsocket(conn_) < 0) {
        return fail(short_error(PQerrorMessage(conn_)));
    }
    phase_ = Phase::Connecting;
    connect_wants_write_ = true;
    return std::nullopt;
}

std::optional<ProbeResult> HealthProbe::send_query() {
    sent_at_ns_ = now_ns();
    if (PQsendQuery(conn_, probe_query(full_)) == 0)
        return fail(short_error(PQerrorMessage(conn_)));
    phase_ = Phase::Querying;
    pending_.reset();
    pending_error_.clear();
    int flushed = PQflush(conn_);
    if (flushed < 0) return fail(short_error(PQerrorMessage(conn_)));
    flushing_ = flushed == 1;
    return std::nullopt;
}

int HealthProbe::fd() const { return conn_ == nullptr ? -1 : PQsocket(conn_); }

short HealthProbe::events() const {
    switch (phase_) {
        case Phase::Connecting:
            return connect_wants_write_ ? POLLOUT : POLLIN;
        case Phase::Idle:
            return POLLIN;
        case Phase::Querying:
            return static_cast<short>(POLLIN | (flushing_ ? POLLOUT : 0));
        case Phase::Closed:
            return 0;
    }
    return 0;
}

std::optional<ProbeResult> HealthProbe::on_io(short revents) {
    switch (phase_) {
        case Phase::Closed:
            return std::nullopt;
        case Phase::Connecting:
            switch (PQconnectPoll(conn_)) {
                case PGRES_POLLING_OK:
                    if (PQsetnonblocking(conn_, 1) != 0) {
                        return fail(short_error(PQerrorMessage(conn_)));
                    }
                    phase_ = Phase::Idle;
                    return send_query();
                case PGRES_POLLING_READING:
                    connect_wants_write_ = false;
                    return std::nullopt;
                case PGRES_POLLING_WRITING:
                    connect_wants_write_ = true;
                    return std::nullopt;
                default:
                    return fail(short_error(PQerrorMessage(conn_)));
            }
        case Phase::Idle:
            // Nothing is expected while idle: readable means the server is closing this
            // session (shutdown, crash, pg_terminate_backend) or sent a stray message.
            if (PQconsumeInput(conn_) == 0 || PQstatus(conn_) == CONNECTION_BAD) {
                std::string why =
                    last_notice_.empty() ? short_error(PQerrorMessage(conn_)) : last_notice_;
                ProbeResult r = fail(why);
                r.lost = true;
                return r;
            }
            while (PGnotify* n = PQnotifies(conn_)) PQfreemem(n);
            return std::nullopt;
        case Phase::Querying:
            if (flushing_ && (revents & POLLOUT) != 0) {
                int flushed = PQflush(conn_);
                if (flushed < 0) return fail(short_error(PQerrorMessage(conn_)));
                flushing_ = flushed == 1;
            }
            if ((revents & (POLLIN | POLLERR | POLLHUP)) != 0) return read_results();
            return std::nullopt;
    }
    return std::nullopt;
}

std::optional<ProbeResult> HealthProbe::read_results() {
    auto reason = [this] {
        if (!pending_error_.empty()) return pending_error_;
        if (!last_notice_.empty()) return last_notice_;
        return short_error(PQerrorMessage(conn_));
    };
    if (PQconsumeInput(conn_) == 0) return fail(reason());
    while (PQisBusy(conn_) == 0) {
        PGresult* res = PQgetResult(conn_);
        if (res == nullptr) {  // the query is complete
            if (!pending_) return fail(pending_error_.empty() ? "no answer" : pending_error_);
            phase_ = Phase::Idle;
            had_success_ = true;
            last_notice_.clear();
            ProbeResult r;
            r.ok = true;
            r.sent_at_ns = sent_at_ns_;
            r.full = full_;
            r.sample = *pending_;
            pending_.reset();
            return r;
        }
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            std::vector<std::optional<std::string>> row;
            for (int c = 0; c < PQnfields(res); ++c) {
                if (PQgetisnull(res, 0, c)) {
                    row.emplace_back();
                } else {
                    row.emplace_back(PQgetvalue(res, 0, c));
                }
            }
            pending_ = parse_probe_row(row, full_);
            if (!pending_) pending_error_ = "unexpected answer to the health query";
        } else {
            const char* msg = PQresultErrorMessage(res);
            pending_error_ = (msg != nullptr && *msg != '\0')
                                 ? short_error(msg)
                                 : "unexpected answer to the health query";
        }
        PQclear(res);
    }
    if (PQstatus(conn_) == CONNECTION_BAD) return fail(reason());
    return std::nullopt;
}

std::optional<ProbeResult> HealthProbe::on_deadline(std::int64_t now_ns) {
    if (!busy() || now_ns < deadline_ns_) return std::nullopt;
    if (phase_ == Phase::Connecting) {
        return fail("timeout: no answer to the health login within " + millis(timeout_ns_));
    }
    return fail("timeout: no answer to the health query within " + millis(timeout_ns_));
}

}  // namespace pgrouter
