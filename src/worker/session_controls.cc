// The session's side of the pgrouter.* parameters (route_controls.h): SHOW of them is
// answered here, a SET with a bad value or of a name pgrouter does not have is refused here
// (PostgreSQL would take anything for a placeholder), and SHOW pgrouter.commit_lsn waits for
// the watcher's sample of the master after the session's last commit. Good SETs go on to
// the backends like any SET, so an application that sets them works without pgrouter too.
// The extended protocol gets the same answers, in the messages a server would send them in.
#include <algorithm>
#include <functional>
#include <map>

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
std::string failing_sql(const ControlError& e) {
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
    return "DO " + literal(body);
}

std::string failing_statement(const ControlError& e) {
    std::string out;
    proto::encode_query(out, failing_sql(e));
    return out;
}

void encode_control_error(std::string& out, const ControlError& refusal) {
    proto::ErrorFields e;
    e.severity = e.severity_nonlocalized = "ERROR";
    e.sqlstate = refusal.sqlstate;
    e.message = refusal.message;
    e.detail = refusal.detail;
    e.hint = refusal.hint;
    proto::encode_error_response(out, e);
}

// One message of a unit's bytes (the cutter put only whole messages there).
struct UnitMessage {
    char type = 0;
    std::string_view payload;
    std::string_view bytes;  // the whole message
};

std::vector<UnitMessage> unit_messages(std::string_view bytes) {
    std::vector<UnitMessage> out;
    while (bytes.size() >= 5) {
        std::uint32_t n = 0;
        for (int i = 1; i <= 4; ++i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
        if (n < 4 || n > bytes.size() - 1) break;
        out.push_back(UnitMessage{bytes[0], bytes.substr(5, n - 4), bytes.substr(0, n + 1)});
        bytes.remove_prefix(n + 1);
    }
    return out;
}

using ClassifyFn = std::function<Classification(std::string_view)>;

// A Parse of a pgrouter.* SET that the session refuses: a server takes the Parse and fails
// the statement each time it runs, so the Parse goes on with failing_sql() in its place
// (the same answers to Describe, the error at Execute, on whichever backend runs it, in a
// block or a pipeline). The stored statement changes with it, so that a backend that parses
// it later gets the same; it no longer names a parameter, so its executions change nothing.
void refuse_parsed_controls(Unit& unit, Statements& statements, const ClassifyFn& classify,
                            const ControlValues& now) {
    std::string rewritten;
    std::size_t copied = 0;
    for (const UnitMessage& m : unit_messages(unit.bytes)) {
        if (m.type != static_cast<char>(FrontendMsg::Parse)) continue;
        proto::PayloadReader in(m.payload);
        std::string_view name, sql;
        if (!in.read_cstr(name) || !in.read_cstr(sql)) continue;
        Classification cls = classify(sql);
        if (!cls.names_controls || cls.statements != 1) continue;  // several: 42601 there
        std::optional<ControlError> refusal = refused_control(sql, cls, now);
        if (!refusal) continue;
        std::string parse;
        std::string failing = failing_sql(*refusal);
        proto::MessageBuilder(parse, FrontendMsg::Parse).cstr(name).cstr(failing).bytes(in.rest());
        auto at = static_cast<std::size_t>(m.bytes.data() - unit.bytes.data());
        rewritten.append(unit.bytes, copied, at - copied);
        rewritten += parse;
        copied = at + m.bytes.size();
        const Statement* st = statements.find(name);
        if (st != nullptr && st->parse == m.bytes) {  // its latest definition
            Classification quiet = cls;
            quiet.fact_count = 0;
            quiet.names_size_ = 0;
            quiet.facts_truncated = false;
            std::string_view p(parse);
            statements.rewrite(name, p, p.substr(5 + name.size() + 1, failing.size()), quiet);
        }
    }
    if (copied == 0) return;
    rewritten.append(unit.bytes, copied);
    unit.bytes = std::move(rewritten);
}

// What a statement of pgrouter.* that the session answers itself is: a SHOW of one of the
// parameters (`param`), a SHOW of a name it does not have (`unknown`), or a SET it refuses
// (`refusal`). Anything else: none().
struct ControlStatementAnswer {
    std::string param;
    bool unknown = false;
    std::optional<ControlError> refusal;
    [[nodiscard]] bool none() const { return param.empty() && !refusal; }
};

ControlStatementAnswer answer_of(std::string_view sql, const Classification& cls,
                                 const ControlValues& now) {
    ControlStatementAnswer a;
    if (!cls.names_controls || cls.statements != 1) return a;
    ControlStatement st = read_control_statement(sql);
    if (st.verb == ControlStatement::Verb::Show && is_control_name(st.name)) {
        a.unknown = !find_control(st.name);
        a.param = std::move(st.name);
        return a;
    }
    a.refusal = refused_control(sql, cls, now);
    return a;
}

// One answer of a unit of extended messages that only SHOWs pgrouter.* parameters or runs
// SETs of them that the session refuses.
struct ControlStep {
    enum class What : std::uint8_t {
        Parsed,
        Bound,
        DescribeStatement,
        DescribePortal,
        Execute,
        Failed,  // an error: the rest is skipped up to the Sync, as by a server
        Sync
    };
    What what = What::Sync;
    std::string param;                    // the SHOW's parameter; empty: a refused SET
    std::optional<ControlError> refusal;  // Failed; Execute of a refused SET
    std::int16_t format = 0;  // the portal's result format (text and binary are alike for text)
    bool suspended = false;   // Execute with a row limit of 1: the one row, then PortalSuspended
};

// The answers of `unit` when every message of it parses, binds, describes or executes a SHOW
// of a pgrouter.* parameter, or (outside a transaction block: in one the refusal must fail
// the block on its backend) a SET of one that the session refuses, up to its Sync (or a
// Flush, see below). nullopt when anything else is in it: the unit then goes to a backend.
// A SHOW of a name pgrouter does not have fails at its Parse, where a server looks the name
// up; a refused SET fails at its Execute, where a server checks the value. Statements parsed
// before this unit count only when they are SHOWs (a refused one was stored as
// failing_sql(), which the backend fails the same way).
std::optional<std::vector<ControlStep>> control_steps(const Unit& unit,
                                                      const Statements& statements,
                                                      const ClassifyFn& classify,
                                                      const ControlValues& now, bool in_block) {
    using What = ControlStep::What;
    std::vector<ControlStep> steps;
    std::map<std::string, ControlStatementAnswer, std::less<>> parsed;  // in this unit
    std::map<std::string, ControlStep, std::less<>> bound;              // portal → its statement
    auto statement = [&](std::string_view name) -> std::optional<ControlStatementAnswer> {
        if (auto it = parsed.find(name); it != parsed.end()) return it->second;
        const Statement* st = statements.find(name);
        if (st == nullptr || st->parse.empty()) return std::nullopt;
        ControlStatementAnswer a = answer_of(st->sql(), st->cls, now);
        if (a.param.empty() || a.unknown) return std::nullopt;
        return a;
    };
    std::vector<UnitMessage> messages = unit_messages(unit.bytes);
    if (messages.empty()) return std::nullopt;
    bool flushed = messages.back().type == static_cast<char>(FrontendMsg::Flush);
    if (!flushed && messages.back().type != static_cast<char>(FrontendMsg::Sync)) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i + 1 < messages.size(); ++i) {
        const UnitMessage& m = messages[i];
        proto::PayloadReader in(m.payload);
        std::string_view name, portal;
        if (m.type == static_cast<char>(FrontendMsg::Parse)) {
            std::string_view sql;
            std::int16_t types = 0;
            if (!in.read_cstr(name) || !in.read_cstr(sql) || !in.read_i16(types) || types != 0) {
                return std::nullopt;
            }
            ControlStatementAnswer a = answer_of(sql, classify(sql), now);
            if (a.none() || (a.refusal && in_block)) return std::nullopt;
            if (a.unknown) {
                steps.push_back(ControlStep{What::Failed, {}, unrecognized_control(a.param), 0});
                break;
            }
            parsed[std::string(name)] = std::move(a);
            steps.push_back(ControlStep{What::Parsed, {}, {}, 0});
        } else if (m.type == static_cast<char>(FrontendMsg::Bind)) {
            std::int16_t n = 0, params = 0, formats = 0, format = 0;
            if (!in.read_cstr(portal) || !in.read_cstr(name) || !in.read_i16(n))
                return std::nullopt;
            for (int k = 0; k < n; ++k) {
                if (!in.read_i16(format)) return std::nullopt;
            }
            format = 0;
            if (!in.read_i16(params) || params != 0 || !in.read_i16(formats) || formats > 1) {
                return std::nullopt;  // a server's 08P01 for those: the backend says it
            }
            if (formats == 1 && (!in.read_i16(format) || (format != 0 && format != 1))) {
                return std::nullopt;
            }
            auto a = statement(name);
            if (!a) return std::nullopt;
            bound[std::string(portal)] = ControlStep{What::Execute, a->param, a->refusal, format};
            steps.push_back(ControlStep{What::Bound, {}, {}, 0});
        } else if (m.type == static_cast<char>(FrontendMsg::Describe)) {
            std::uint8_t what = 0;
            if (!in.read_u8(what) || !in.read_cstr(name)) return std::nullopt;
            if (what == 'S') {
                auto a = statement(name);
                if (!a) return std::nullopt;
                steps.push_back(ControlStep{What::DescribeStatement, a->param, {}, 0});
            } else {
                auto it = bound.find(name);  // bound before this unit: gone at its Sync
                if (it == bound.end()) return std::nullopt;
                steps.push_back(
                    ControlStep{What::DescribePortal, it->second.param, {}, it->second.format});
            }
        } else if (m.type == static_cast<char>(FrontendMsg::Execute)) {
            std::int32_t max_rows = 0;
            if (!in.read_cstr(portal) || !in.read_i32(max_rows)) return std::nullopt;
            auto it = bound.find(portal);
            if (it == bound.end()) return std::nullopt;
            // A server stores a SHOW's one row and hands out up to max_rows of it: with a
            // limit of 1 (asyncpg's fetchval) the portal is not known to be at its end yet.
            it->second.suspended = max_rows == 1;
            steps.push_back(it->second);
            bound.erase(it);  // executing it again is not answered here
        } else {
            return std::nullopt;
        }
    }
    if (flushed) {
        // The batch goes on after a Flush, and what it leaves (a portal, an error after which
        // a server skips the client's messages up to a Sync) would be the next unit's: only
        // Parse and Describe of a statement are answered here (asyncpg's prepare()).
        for (const ControlStep& step : steps) {
            if (step.what != What::Parsed && step.what != What::DescribeStatement) {
                return std::nullopt;
            }
        }
        return steps;
    }
    steps.push_back(ControlStep{What::Sync, {}, {}, 0});
    return steps;
}

void encode_row_description(std::string& out, std::string_view column, std::int16_t format) {
    constexpr std::int32_t kTextOid = 25;
    proto::MessageBuilder(out, BackendMsg::RowDescription)
        .i16(1)
        .cstr(column)
        .i32(0)
        .i16(0)
        .i32(kTextOid)
        .i16(-1)
        .i32(-1)
        .i16(format);
}

ControlError no_commit_lsn() {
    return ControlError{proto::kSqlstateConnectionFailure,
                        "could not read the master's WAL position after the session's last "
                        "commit",
                        {},
                        {}};
}

// The answers of `steps` (control_steps()) with the values of `values`; `commit`, the
// session's commit_lsn (nullopt: none could be read, which fails its Execute).
void encode_control_steps(std::string& out, const std::vector<ControlStep>& steps,
                          const ControlValues& values, const std::optional<std::string>& commit,
                          proto::TransactionStatus status) {
    using What = ControlStep::What;
    bool failed = false;  // a server skips what follows an error up to the Sync
    for (const ControlStep& step : steps) {
        if (failed && step.what != What::Sync) continue;
        switch (step.what) {
            case What::Parsed:
                proto::MessageBuilder(out, BackendMsg::ParseComplete).finish();
                break;
            case What::Bound:
                proto::MessageBuilder(out, BackendMsg::BindComplete).finish();
                break;
            case What::DescribeStatement:
                proto::MessageBuilder(out, BackendMsg::ParameterDescription).i16(0).finish();
                [[fallthrough]];
            case What::DescribePortal:
                if (step.param.empty()) {
                    proto::MessageBuilder(out, BackendMsg::NoData).finish();  // a SET
                } else {
                    encode_row_description(out, step.param, step.format);
                }
                break;
            case What::Execute: {
                if (step.refusal) {
                    encode_control_error(out, *step.refusal);
                    failed = true;
                    break;
                }
                Control c = *find_control(step.param);
                std::optional<std::string> value =
                    c == Control::CommitLsn ? commit : std::optional(values.show(c));
                if (!value) {
                    encode_control_error(out, no_commit_lsn());
                    failed = true;
                    break;
                }
                proto::MessageBuilder(out, BackendMsg::DataRow)
                    .i16(1)
                    .i32(static_cast<std::int32_t>(value->size()))
                    .bytes(*value)
                    .finish();
                if (step.suspended) {
                    proto::MessageBuilder(out, BackendMsg::PortalSuspended).finish();
                } else {
                    proto::MessageBuilder(out, BackendMsg::CommandComplete).cstr("SHOW").finish();
                }
                break;
            }
            case What::Failed:
                encode_control_error(out, *step.refusal);
                failed = true;
                break;
            case What::Sync:
                proto::encode_ready_for_query(out, status);
                break;
        }
    }
}

// How many ParseComplete and CloseComplete `answer` holds before its first ErrorResponse.
std::size_t acknowledged(std::string_view answer) {
    std::size_t n = 0;
    for (;;) {
        auto r = proto::decode_backend(answer, answer.size());
        auto* m = std::get_if<proto::Message>(&r);
        if (m == nullptr || m->is(BackendMsg::ErrorResponse)) return n;
        if (m->is(BackendMsg::ParseComplete) || m->is(BackendMsg::CloseComplete)) ++n;
        answer.remove_prefix(m->bytes().size());
    }
}

}  // namespace

asio::awaitable<bool> Session::answer_controls(Unit& unit) {
    if (unit.bytes.empty()) co_return false;
    if (unit.bytes.front() != static_cast<char>(FrontendMsg::Query)) {
        // Extended messages (PQexecParams, PQprepare, drivers): a refused SET fails where a
        // server fails it, at Execute; a unit of such SETs and SHOWs only is answered here.
        ClassifyFn classify = [this](std::string_view sql) {
            return env_.cache.classify(sql, env_.classifier);
        };
        std::optional<std::vector<ControlStep>> steps;
        if (sticky_slot_ < 0 && state_.txn_status() != proto::TransactionStatus::Failed) {
            // Not in the rest of a batch after a Flush (its backend answers), nor in a failed
            // block (25P02 there). A unit in flight may open a block, which a refusal must fail.
            bool may_be_in_block = state_.in_block() || !inflight_.empty();
            steps = control_steps(unit, statements_, classify, state_.controls(), may_be_in_block);
        }
        refuse_parsed_controls(unit, statements_, classify, state_.controls());
        if (!steps) co_return false;
        // Answered here, after whatever is still in flight has been answered. The statements it
        // parses are on no backend: a later unit that uses one elsewhere parses it there first.
        while (!inflight_.empty() && !closed_) co_await wait_wakeup();
        if (closed_) co_return true;
        if (state_.txn_status() == proto::TransactionStatus::Failed) {
            co_return false;  // a unit that was in flight failed its block: 25P02 there
        }
        // commit_lsn waited for once, before the first answer.
        std::optional<std::string> commit;
        if (std::any_of(steps->begin(), steps->end(), [](const ControlStep& step) {
                return step.what == ControlStep::What::Execute &&
                       step.param == control_name(Control::CommitLsn);
            })) {
            if (auto lsn = co_await commit_lsn()) commit = format_lsn(*lsn);
            if (closed_) co_return true;
        }
        std::size_t from = client_.output().size();
        encode_control_steps(client_.output(), *steps, state_.controls(), commit,
                             state_.txn_status());
        // Its Parses were answered here: those this answer acknowledged hold (settle()).
        statements_.settle(unit.refs.completes,
                           acknowledged(std::string_view(client_.output()).substr(from)));
        co_return true;
    }
    if (!unit.sync || sticky_slot_ >= 0 ||
        state_.txn_status() == proto::TransactionStatus::Failed) {
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
            if (!value) refusal = no_commit_lsn();
            shown = ResultTable{{st.name}, {{value}}, "SHOW"};
        }
    } else if (!refusal) {
        co_return false;
    }
    if (refusal && (state_.in_block() || !inflight_.empty())) {
        unit.bytes = failing_statement(*refusal);
        unit.changes.clear();
        co_return false;  // the block's backend fails it
    }
    // Answered here, after whatever is still in flight has been answered.
    while (!inflight_.empty() && !closed_) co_await wait_wakeup();
    if (closed_) co_return true;
    if (state_.txn_status() == proto::TransactionStatus::Failed) {
        co_return false;  // a unit that was in flight failed its block: 25P02 there
    }
    if (refusal) {
        encode_control_error(client_.output(), *refusal);
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
