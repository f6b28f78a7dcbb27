// The session's side of the pgrouter.* parameters (route_controls.h): SHOW of them is
// answered here, a SET with a bad value or of a name pgrouter does not have is refused here
// (PostgreSQL would take anything for a placeholder), and SHOW pgrouter.commit_lsn waits for
// the watcher's sample of the master after the session's last commit. Good SETs go on to
// the backends like any SET, so an application that sets them works without pgrouter too.
#include "pgrouter/base/ascii.h"
#include "pgrouter/worker/console.h"
#include "session_class.h"

namespace pgrouter::session_impl {

namespace {

constexpr auto kCommitLsnPoll = 5ms;
constexpr std::int64_t kRecheckEveryNs = 50'000'000;

// PostgreSQL's own error for a SET of a parameter with a list of values.
ControlError one_argument(std::string_view name) {
    return ControlError{proto::kSqlstateInvalidParameterValue,
                        "SET " + std::string(name) + " takes only one argument",
                        {},
                        {}};
}

// The first pgrouter.* statement of `sql` (classified as `cls`) that the session must
// refuse, with the error to give.
std::optional<ControlError> refused_control(std::string_view sql, const Classification& cls,
                                            const ControlValues& now) {
    for (const NamedFact& f : cls.facts()) {
        std::string_view name = cls.name_of(f);
        if (!is_control_name(name)) continue;
        auto c = find_control(name);
        if (!c) return unknown_control(name);
        if (f.action != NamedAction::Set && f.action != NamedAction::SetLocal) continue;
        ControlStatement st = read_control_statement(sql.substr(f.stmt_at, f.stmt_size));
        using Verb = ControlStatement::Verb;
        if (st.verb != Verb::Set && st.verb != Verb::SetLocal) continue;  // set_config()
        if (st.values.size() > 1) return one_argument(name);
        if (st.values.empty()) continue;  // SET LOCAL x TO DEFAULT
        ControlValues scratch = now;
        if (auto e = scratch.set(*c, st.values.front())) return e;
    }
    return std::nullopt;
}

// A DO block that fails with `e` on the server: inside a transaction block the refusal must
// fail the block there, as the statement would have on one server.
std::string failing_statement(const ControlError& e) {
    auto literal = [](std::string_view s) {
        std::string out = "'";
        for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
        return out + "'";
    };
    std::string body = "BEGIN RAISE EXCEPTION USING ERRCODE = " + literal(e.sqlstate) +
                       ", MESSAGE = " + literal(e.message);
    if (!e.detail.empty()) body += ", DETAIL = " + literal(e.detail);
    if (!e.hint.empty()) body += ", HINT = " + literal(e.hint);
    body += "; END";
    std::string out;
    proto::encode_query(out, "DO " + literal(body));
    return out;
}

}  // namespace

asio::awaitable<bool> Session::answer_controls(Unit& unit) {
    bool simple = !unit.bytes.empty() && unit.bytes.front() == 'Q' && unit.sync;
    if (!simple || sticky_slot_ >= 0 || state_.txn_status() == proto::TransactionStatus::Failed) {
        co_return false;  // a failed block refuses it on the server (25P02)
    }
    std::string_view sql(unit.bytes);
    sql = sql.substr(5, sql.size() > 6 ? sql.size() - 6 : 0);  // type, length; NUL
    std::optional<ControlError> refusal = refused_control(sql, unit.cls, state_.controls());
    ResultTable shown;
    if (!refusal && unit.cls.statements == 1) {
        ControlStatement st = read_control_statement(sql);
        if (st.verb != ControlStatement::Verb::Show || !is_control_name(st.name)) co_return false;
        auto c = find_control(st.name);
        if (!c) {
            refusal = unrecognized_control(st.name);
        } else {
            std::optional<std::string> value;
            if (*c == Control::CommitLsn) {
                if (auto lsn = co_await commit_lsn()) value = format_lsn(*lsn);
            } else {
                value = state_.controls().show(*c);
            }
            if (!value) {
                refusal = ControlError{proto::kSqlstateConnectionFailure,
                                       "could not read the master's WAL position after the "
                                       "session's last commit",
                                       {},
                                       {}};
            }
            shown = ResultTable{{st.name}, {{value}}, "SHOW"};
        }
    } else if (!refusal) {
        co_return false;
    }
    if (refusal && state_.in_block()) {
        unit.bytes = failing_statement(*refusal);
        unit.changes.clear();
        co_return false;  // the block's backend fails it
    }
    // Answered here, after whatever is still in flight has been answered.
    while (!inflight_.empty() && !closed_) co_await wait_wakeup();
    if (closed_) co_return true;
    if (refusal) {
        proto::ErrorFields e;
        e.severity = e.severity_nonlocalized = "ERROR";
        e.sqlstate = refusal->sqlstate;
        e.message = refusal->message;
        e.detail = refusal->detail;
        e.hint = refusal->hint;
        proto::encode_error_response(client_.output(), e);
        PGR_SESSION_DEBUG(id_, "refused: %s", refusal->message.c_str());
    } else {
        encode_result(client_.output(), shown);
    }
    proto::encode_ready_for_query(client_.output(), state_.txn_status());
    co_return true;
}

asio::awaitable<std::optional<std::uint64_t>> Session::commit_lsn() {
    RouteSession& rs = state_.route();
    asio::steady_timer pause(client_.socket().get_executor());
    std::int64_t start = now_ns();
    std::int64_t until = start + login_timeout().count() * 1000000;
    std::int64_t next_recheck = start;
    for (;;) {
        refresh_snapshot();
        rs.ryw = settle_read_your_writes(rs.ryw, snap_.backends);
        if (rs.ryw.commit_at_ns == 0) co_return rs.ryw.commit_lsn;
        std::int64_t now = now_ns();
        if (now >= until || closed_) co_return std::nullopt;
        if (now >= next_recheck) {
            env_.seg.recheck.post();  // the watcher samples the master now
            next_recheck = now + kRecheckEveryNs;
        }
        pause.expires_after(kCommitLsnPoll);
        co_await pause.async_wait(asio::use_awaitable);
    }
}

std::optional<ControlError> Session::start_controls() {
    std::vector<std::pair<std::string, std::string>> settings =
        startup_controls(login_.params.options);
    for (const auto& [name, value] : login_.params.params) {
        if (is_control_name(ascii_lowered(name))) settings.emplace_back(ascii_lowered(name), value);
    }
    if (settings.empty()) return std::nullopt;
    return state_.start_controls(settings);
}

}  // namespace pgrouter::session_impl
