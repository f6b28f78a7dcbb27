// Unit tests of the session's pure pieces: the SET log and savepoints (session_state), the
// unit cutter (unit), prepared statements per backend (statements) and the meaning of
// backend messages (inflight). Table-driven; no sockets.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "pgrouter/proto/decoder.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/route/classify.h"
#include "pgrouter/worker/ghosts.h"
#include "pgrouter/worker/inflight.h"
#include "pgrouter/worker/session_state.h"
#include "pgrouter/worker/statements.h"
#include "pgrouter/worker/unit.h"

using namespace pgrouter;

namespace {

using proto::TransactionStatus;

// Runs simple queries through SessionState as if each succeeded with the given status and
// tag; returns the SET log's texts joined by " | ".
struct Step {
    const char* sql;
    TransactionStatus after;
    const char* tag;
};

// Feeds `state` one unit of `sql` that came back with `tag` and status `after`.
void finish_unit(SessionState& state, const Classifier& classifier, std::string_view sql,
                 std::string_view tag, TransactionStatus after = TransactionStatus::Idle) {
    Classification cls = classifier.classify(sql);
    std::vector<SessionChange> changes;
    collect_changes(sql, cls, changes);
    UnitOutcome u;
    u.status = after;
    u.slot = 1;
    u.tag = tag;
    u.cls = &cls;
    u.changes = &changes;
    (void)state.finish(u);
}

// As finish_unit(), with the outcome's error flag; whether the pins changed.
bool finish_pins(SessionState& state, const Classifier& classifier, std::string_view sql,
                 bool error = false, TransactionStatus after = TransactionStatus::Idle) {
    Classification cls = classifier.classify(sql);
    std::vector<SessionChange> changes;
    UnitOutcome u;
    u.status = after;
    u.slot = 1;
    u.on_master = true;
    u.error = error;
    u.cls = &cls;
    u.changes = &changes;
    return state.finish(u);
}

std::string replay_log(const std::vector<Step>& steps) {
    Classifier classifier;
    SessionState state;
    for (const Step& s : steps) finish_unit(state, classifier, s.sql, s.tag, s.after);
    std::string out;
    state.log().since(0, [&](const SetLog::Entry& e) {
        if (!out.empty()) out += " | ";
        out += e.text;
    });
    return out;
}

constexpr auto I = TransactionStatus::Idle;
constexpr auto T = TransactionStatus::InTransaction;

}  // namespace

TEST_CASE("session state: the SET log keeps one entry per parameter", "[session_state]") {
    struct Case {
        std::vector<Step> steps;
        const char* log;
    };
    const Case cases[] = {
        {{{"SET a = 1", I, "SET"}, {"SET b = 2", I, "SET"}, {"SET a = 3", I, "SET"}},
         "SET b = 2 | SET a = 3"},
        {{{"SET a = 1", I, "SET"}, {"RESET a", I, "RESET"}}, "RESET a"},
        {{{"SET a = 1", I, "SET"}, {"SET b = 1", I, "SET"}, {"RESET ALL", I, "RESET"}},
         "RESET ALL"},
        {{{"SET a = 1", I, "SET"}, {"DISCARD ALL", I, "DISCARD ALL"}, {"SET c = 1", I, "SET"}},
         "DISCARD ALL | SET c = 1"},
        {{{"SET LOCAL a = 1", I, "SET"}}, ""},
        {{{"SET a = 1; SET b = 2", I, "SET"}}, "SET a = 1 | SET b = 2"},
        {{{"BEGIN", T, "BEGIN"}, {"SET a = 1", T, "SET"}, {"COMMIT", I, "COMMIT"}}, "SET a = 1"},
        {{{"BEGIN", T, "BEGIN"}, {"SET a = 1", T, "SET"}, {"ROLLBACK", I, "ROLLBACK"}}, ""},
        {{{"BEGIN", T, "BEGIN"},
          {"SET a = 1", T, "SET"},
          {"SAVEPOINT s", T, "SAVEPOINT"},
          {"SET b = 1", T, "SET"},
          {"ROLLBACK TO s", T, "ROLLBACK"},
          {"SET c = 1", T, "SET"},
          {"COMMIT", I, "COMMIT"}},
         "SET a = 1 | SET c = 1"},
        {{{"BEGIN", T, "BEGIN"},
          {"SAVEPOINT s", T, "SAVEPOINT"},
          {"SET b = 1", T, "SET"},
          {"RELEASE s", T, "RELEASE"},
          {"COMMIT", I, "COMMIT"}},
         "SET b = 1"},
        {{{"SELECT set_config('a', '1', false)", I, "SELECT 1"}, {"SET a = 2", I, "SET"}},
         "SET a = 2"},
    };
    for (const Case& c : cases) {
        std::string desc;
        for (const Step& s : c.steps) desc += std::string(s.sql) + "; ";
        INFO(desc);
        CHECK(replay_log(c.steps) == c.log);
    }
}

TEST_CASE("session state: SETs in a loop do not grow the log", "[session_state]") {
    Classifier classifier;
    SessionState state;
    for (int i = 0; i < 1000; ++i) {
        finish_unit(state, classifier, "SET search_path = s" + std::to_string(i % 7), "SET");
    }
    CHECK(state.log().entries().size() == 1);
    CHECK(state.log().head() == 1000);
}

TEST_CASE("session state: serializable default follows the log", "[session_state]") {
    Classifier classifier;
    SessionState state;
    auto run = [&](const char* sql) {
        finish_unit(state, classifier, sql, "SET");
        return state.log().serializable_default();
    };
    CHECK(run("SET default_transaction_isolation = 'serializable'"));
    CHECK(!run("RESET default_transaction_isolation"));
    CHECK(run("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE"));
    CHECK(!run("RESET ALL"));
}

TEST_CASE("session state: when to ask whether the session still holds an advisory lock",
          "[session_state]") {
    Classifier cl;
    SessionState st;
    // A blocking lock is held once it returns: nothing to ask.
    CHECK(finish_pins(st, cl, "SELECT pg_advisory_lock(1)"));
    CHECK(st.pins() == kPinAdvisoryLock);
    CHECK(st.route().pinned_slot == 1);
    CHECK_FALSE(st.advisory_check_due());
    // An unlock may have released the last one: ask, once.
    CHECK_FALSE(finish_pins(st, cl, "SELECT pg_advisory_unlock(1)"));
    CHECK(st.advisory_check_due());
    st.advisory_check_sent();
    CHECK_FALSE(st.advisory_check_due());
    CHECK(st.pins() == kPinAdvisoryLock);
    // The server says none is held: the pin goes, and with it the pinned backend.
    CHECK(st.advisory_locks_gone());
    CHECK(st.pins() == 0);
    CHECK(st.route().pinned_slot == -1);
    CHECK_FALSE(st.advisory_locks_gone());  // nothing more to drop

    SECTION("a try-lock pins until the server says it took nothing") {
        CHECK(finish_pins(st, cl, "SELECT pg_try_advisory_lock(7)"));
        CHECK(st.pins() == kPinAdvisoryLock);
        CHECK(st.advisory_check_due());
    }
    SECTION("not inside a block: transaction-level locks would answer too") {
        finish_pins(st, cl, "BEGIN", false, T);
        finish_pins(st, cl, "SELECT pg_try_advisory_lock(7)", false, T);
        CHECK(st.pins() == kPinAdvisoryLock);
        CHECK_FALSE(st.advisory_check_due());
        finish_pins(st, cl, "COMMIT");
        CHECK(st.advisory_check_due());
    }
    SECTION("not while another pin holds the session anyway; asked once that one goes") {
        finish_pins(st, cl, "LISTEN c");
        finish_pins(st, cl, "SELECT pg_try_advisory_lock(7)");
        CHECK(st.pins() == (kPinAdvisoryLock | kPinListen));
        CHECK_FALSE(st.advisory_check_due());
        finish_pins(st, cl, "UNLISTEN *");
        CHECK(st.advisory_check_due());
        // An answer while other pins remain drops only the lock's.
        finish_pins(st, cl, "LISTEN c");
        CHECK(st.advisory_locks_gone());
        CHECK(st.pins() == kPinListen);
        CHECK(st.route().pinned_slot == 1);
    }
    SECTION("what drops every advisory lock leaves nothing to ask") {
        finish_pins(st, cl, "SELECT pg_try_advisory_lock(7)");
        finish_pins(st, cl, "SELECT pg_advisory_unlock_all()");
        CHECK(st.pins() == 0);
        CHECK_FALSE(st.advisory_check_due());
        finish_pins(st, cl, "SELECT pg_try_advisory_lock(7)");
        finish_pins(st, cl, "DISCARD ALL");
        CHECK_FALSE(st.advisory_check_due());
    }
    SECTION("a session lock outlives the failure of its unit: pinned, and asked") {
        // SELECT pg_advisory_lock(1); SELECT 1/0 holds the lock although the unit failed.
        CHECK(finish_pins(st, cl, "SELECT pg_advisory_lock(1); SELECT 1/0", true));
        CHECK(st.pins() == kPinAdvisoryLock);
        CHECK(st.advisory_check_due());
        // A failed unit that names no lock function changes nothing.
        st.advisory_check_sent();
        CHECK_FALSE(finish_pins(st, cl, "SELECT 1/0", true));
        CHECK_FALSE(st.advisory_check_due());
        // A failed unlock may have released it all the same.
        CHECK_FALSE(finish_pins(st, cl, "SELECT pg_advisory_unlock(1); SELECT 1/0", true));
        CHECK(st.advisory_check_due());
    }
}

TEST_CASE("session state: when the question can follow the unit in its own write",
          "[session_state]") {
    Classifier cl;
    SessionState st;
    auto behind = [&](std::string_view sql) { return st.advisory_check_behind(cl.classify(sql)); };
    // Unpinned: a try-lock may take nothing, an unlock has nothing to end.
    CHECK(behind("SELECT pg_try_advisory_lock(1)"));
    CHECK_FALSE(behind("SELECT pg_advisory_unlock(1)"));
    CHECK_FALSE(behind("SELECT pg_advisory_lock(1)"));  // held once it returns
    finish_pins(st, cl, "SELECT pg_advisory_lock(1)");
    CHECK(behind("SELECT pg_advisory_unlock(1)"));
    CHECK(behind("SELECT pg_advisory_unlock_shared(1)"));
    CHECK_FALSE(behind("SELECT 1"));
    CHECK_FALSE(behind("SELECT pg_advisory_unlock_all()"));  // unpins by itself
    // Not behind a BEGIN (the block stays open) nor a COPY FROM (CopyData follows).
    CHECK(behind("SELECT pg_advisory_unlock(1); SELECT 1"));
    CHECK_FALSE(behind("BEGIN; SELECT pg_advisory_unlock(1)"));
    CHECK_FALSE(behind("START TRANSACTION; SELECT pg_advisory_unlock(1); COMMIT"));
    CHECK(cl.classify("SELECT 1; BEGIN").opens_block);
    CHECK_FALSE(cl.classify("SELECT 1; COMMIT").opens_block);
    CHECK(cl.classify("COPY t FROM STDIN").copy_from);
    CHECK_FALSE(cl.classify("COPY t TO STDOUT").copy_from);
    CHECK_FALSE(behind("COPY t FROM STDIN WHERE pg_advisory_unlock(1)"));
    // The extended protocol's Parse and Bind of one statement merge into one unit.
    Classification unlock = cl.classify("SELECT pg_advisory_unlock($1)");
    CHECK(st.advisory_check_behind(merge(unlock, unlock)));
    // Another pin keeps the session anyway.
    CHECK_FALSE(behind("SELECT pg_advisory_unlock(1); LISTEN c"));
    finish_pins(st, cl, "LISTEN c");
    CHECK_FALSE(behind("SELECT pg_advisory_unlock(1)"));
    finish_pins(st, cl, "UNLISTEN *");
    CHECK(behind("SELECT pg_advisory_unlock(1)"));
    // Inside a block the answer would count its transaction-level locks too.
    finish_pins(st, cl, "BEGIN", false, T);
    CHECK_FALSE(behind("SELECT pg_advisory_unlock(1)"));
}

TEST_CASE("inflight: what backend messages mean for the head unit", "[inflight]") {
    auto msg = [](std::string& buf) {
        return std::get<proto::Message>(proto::decode_backend(buf));
    };
    std::string parse_complete, row, done, rfq, err;
    proto::MessageBuilder(parse_complete, proto::BackendMsg::ParseComplete);
    proto::MessageBuilder(row, proto::BackendMsg::DataRow).i16(0);
    proto::MessageBuilder(done, proto::BackendMsg::CommandComplete).cstr("SELECT 1");
    proto::encode_ready_for_query(rfq, TransactionStatus::Idle);
    proto::encode_error_response(err, "ERROR", "25006", "read-only");

    InflightQueue q;
    InFlight f;
    f.slot = 1;
    f.swallow = 1;
    q.push(f);
    CHECK(q.on_message(msg(parse_complete)) == Answer::Swallow);
    CHECK(q.on_message(msg(parse_complete)) == Answer::Forward);
    CHECK(q.on_message(msg(done)) == Answer::Forward);
    CHECK(q.front().tag == "SELECT 1");
    CHECK(q.on_message(msg(rfq)) == Answer::Done);
    q.pop_front();

    InFlight held;
    held.slot = 2;
    held.hold = true;
    q.push(held);
    CHECK(q.on_message(msg(row)) == Answer::Release);
    std::string out;
    q.release_held(out);
    CHECK(out == row);
    q.pop_front();

    q.push(held);
    CHECK(q.on_message(msg(err)) == Answer::Replay);
    CHECK(q.on_message(msg(rfq)) == Answer::Done);
    bool wrote = false;
    CHECK(q.take_replay(wrote));
    CHECK(wrote);
    q.pop_front();

    // A ghost of pgrouter's own that is not a state replay: its error is nobody's business.
    InFlight ghost;
    ghost.ghost = true;
    q.push(ghost);
    CHECK(q.on_message(msg(done)) == Answer::Drop);
    CHECK(q.on_message(msg(err)) == Answer::Drop);
    CHECK(q.on_message(msg(rfq)) == Answer::Done);
    q.pop_front();

    SECTION("a failed state replay: the held read behind it runs again on the master") {
        InFlight replay = ghost;
        replay.slot = 2;
        replay.replays_state = true;
        q.push(replay);  // SET ROLE r: fails, r not replayed yet
        q.push(replay);  // SET search_path: succeeds
        q.push(held);
        CHECK(q.on_message(msg(err)) == Answer::StateFailed);
        CHECK(q.on_message(msg(rfq)) == Answer::Done);
        q.pop_front();
        CHECK(q.on_message(msg(done)) == Answer::Drop);
        CHECK(q.on_message(msg(rfq)) == Answer::Done);
        q.pop_front();
        CHECK(q.front().unapplied);
        CHECK(q.on_message(msg(row)) == Answer::Replay);  // never reaches the client
        CHECK(q.on_message(msg(done)) == Answer::Drop);
        CHECK(q.on_message(msg(rfq)) == Answer::Done);
        CHECK(q.take_replay(wrote));
        CHECK_FALSE(wrote);  // not a write: read-your-writes is not concerned
    }
    SECTION("a failed state replay marks only the next unit of that backend") {
        InFlight replay = ghost;
        replay.slot = 2;
        replay.replays_state = true;
        InFlight other = held;
        other.slot = 3;
        q.push(replay);
        q.push(other);
        q.push(held);
        CHECK(q.on_message(msg(err)) == Answer::StateFailed);
        CHECK_FALSE(q.units()[1].unapplied);
        CHECK(q.units()[2].unapplied);
    }
    SECTION("the master's WAL position comes back in a capture's DataRow") {
        InFlight capture = ghost;
        capture.captures_lsn = true;
        q.push(capture);
        CHECK(q.on_message(msg(row)) == Answer::Lsn);
        CHECK(q.on_message(msg(done)) == Answer::Drop);
        CHECK(q.on_message(msg(err)) == Answer::Drop);  // in an aborted block: no position
    }
    SECTION("whether the session holds an advisory lock comes back in a check's DataRow") {
        InFlight check = ghost;
        check.checks_advisory = true;
        q.push(check);
        CHECK(q.on_message(msg(row)) == Answer::AdvisoryLocks);
        CHECK(q.on_message(msg(done)) == Answer::Drop);
        CHECK(q.on_message(msg(err)) == Answer::Drop);  // no answer: the pin stays
        CHECK(q.on_message(msg(rfq)) == Answer::Done);
    }
}

TEST_CASE("inflight: a FATAL means the backend is lost, whatever the unit", "[inflight]") {
    auto msg = [](std::string& buf) {
        return std::get<proto::Message>(proto::decode_backend(buf));
    };
    std::string description, row;
    proto::MessageBuilder(description, proto::BackendMsg::RowDescription).i16(0);
    proto::MessageBuilder(row, proto::BackendMsg::DataRow).i16(0);
    for (const char* code : {"57P01", "57P02", "57P03", "XX000"}) {
        for (const char* severity : {"FATAL", "PANIC"}) {
            INFO(code << " " << severity);
            std::string fatal;
            proto::encode_error_response(fatal, severity, code, "terminating connection");
            InflightQueue q;
            InFlight ghost;
            ghost.slot = 1;
            ghost.ghost = true;
            q.push(ghost);
            InFlight held;
            held.slot = 1;
            held.hold = true;
            q.push(held);
            CHECK(q.holds_read());
            // During the ghost of a SET replay: the read behind it is still held.
            CHECK(q.on_message(msg(fatal)) == Answer::Lost);
            CHECK(q.holds_read());
            q.pop_front();
            CHECK(q.on_message(msg(description)) == Answer::Hold);
            CHECK(q.on_message(msg(fatal)) == Answer::Lost);
            std::string out;
            q.held_read_lost();
            bool wrote = true;
            CHECK(q.take_replay(wrote));
            CHECK(!wrote);
            q.release_held(out);
            CHECK(out.empty());  // nothing of the dying standby's answer
            // A unit that already streamed rows: lost too (the session fails it).
            q.push(held);
            CHECK(q.on_message(msg(row)) == Answer::Release);
            q.release_held(out);
            CHECK(!q.holds_read());
            CHECK(q.on_message(msg(fatal)) == Answer::Lost);
        }
    }
    std::string error;
    proto::encode_error_response(error, "ERROR", "57P01", "not the connection's end");
    InflightQueue q;
    q.push(InFlight{});
    CHECK(q.on_message(msg(error)) == Answer::Forward);
}

TEST_CASE("unit cutter and statements: units end at Query, Sync and Flush", "[unit][statements]") {
    Classifier classifier;
    Statements statements;
    UnitCutter cutter(statements, [&](std::string_view sql) { return classifier.classify(sql); });
    auto frontend = [](std::string& buf) {
        return std::get<proto::Message>(proto::decode_frontend(buf));
    };
    std::string parse, bind, sync, query;
    proto::MessageBuilder(parse, proto::FrontendMsg::Parse).cstr("s1").cstr("SET a = 1").i16(0);
    proto::MessageBuilder(bind, proto::FrontendMsg::Bind).cstr("").cstr("s1").i16(0).i16(0).i16(0);
    proto::MessageBuilder(sync, proto::FrontendMsg::Sync);
    proto::encode_query(query, "SELECT 1");

    CHECK(!cutter.add(frontend(parse)));
    CHECK(!cutter.add(frontend(bind)));
    CHECK(cutter.add(frontend(sync)));
    Unit& u = cutter.unit();
    CHECK(u.sync);
    CHECK(u.cls.set);
    CHECK(u.refs.parsed.count("s1") == 1);
    REQUIRE(u.changes.size() == 1);
    CHECK(u.changes[0].name == "a");

    // Another backend lacks s1: a unit that binds it gets the Parse injected first.
    std::string out;
    CHECK(statements.prepare(1, u.refs, out) == 0);
    CHECK(statements.backend_has(1, "s1"));
    CHECK(!cutter.add(frontend(bind)));
    CHECK(cutter.add(frontend(sync)));
    CHECK(cutter.unit().refs.parsed.empty());
    CHECK(statements.prepare(2, cutter.unit().refs, out) == 1);
    CHECK(out == parse);
    CHECK(statements.prepare(2, cutter.unit().refs, out) == 0);

    CHECK(cutter.add(frontend(query)));
    CHECK(cutter.unit().cls.kind == StatementKind::Read);
    CHECK(cutter.unit().bytes == query);

    // Unsynced extended messages and the Query after them are one unit, classified by both.
    std::string begin, unnamed, execute, savepoint;
    proto::MessageBuilder(begin, proto::FrontendMsg::Parse).cstr("").cstr("BEGIN").i16(0);
    proto::MessageBuilder(unnamed, proto::FrontendMsg::Bind).cstr("").cstr("").i16(0).i16(0).i16(0);
    proto::MessageBuilder(execute, proto::FrontendMsg::Execute).cstr("").i32(0);
    proto::encode_query(savepoint, "SAVEPOINT a");
    CHECK(!cutter.add(frontend(begin)));
    CHECK(!cutter.add(frontend(unnamed)));
    CHECK(!cutter.add(frontend(execute)));
    CHECK(cutter.add(frontend(savepoint)));
    CHECK(cutter.unit().cls.kind == StatementKind::TransactionBegin);
    CHECK_FALSE(cutter.unit().cls.read_only);
    CHECK(cutter.unit().bytes == begin + unnamed + execute + savepoint);
    REQUIRE(cutter.unit().changes.size() == 1);
    CHECK(cutter.unit().changes[0].action == NamedAction::Savepoint);
}

TEST_CASE("standby refusals and the movable start of a block", "[inflight][session_state]") {
    CHECK(standby_refusal("25006", "cannot execute INSERT in a read-only transaction") ==
          StandbyRefusal::Write);
    CHECK(standby_refusal("0A000", "cannot use serializable mode in a hot standby") ==
          StandbyRefusal::Feature);
    CHECK(standby_refusal("0A000", "cannot set transaction read-write mode during recovery") ==
          StandbyRefusal::Feature);
    CHECK(standby_refusal("55000", "recovery is in progress") == StandbyRefusal::Feature);
    // The same codes for other reasons are the statement's own errors.
    CHECK(standby_refusal("0A000", "cached plan must not change result type") ==
          StandbyRefusal::None);
    CHECK(standby_refusal("55000", "cursor \"c\" is not positioned on a row") ==
          StandbyRefusal::None);
    CHECK(standby_refusal("42P01", "relation \"t\" does not exist") == StandbyRefusal::None);

    MovableBlock b;
    b.finished(false, true, true, false, "Q:BEGIN READ ONLY");
    CHECK(b.movable());
    b.finished(true, true, true, false, "Q:SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    REQUIRE(b.start().size() == 2);
    SECTION("a statement of another kind: the block stays where it is") {
        b.finished(true, true, true, false, "");
        CHECK_FALSE(b.movable());
        b.finished(true, true, true, false, "Q:SET TRANSACTION READ ONLY");
        CHECK_FALSE(b.movable());
    }
    SECTION("the block ends") {
        b.finished(true, false, true, false, "");
        CHECK_FALSE(b.movable());
    }
    SECTION("a failed statement") {
        b.finished(true, true, true, true, "Q:SET TRANSACTION READ WRITE");
        CHECK_FALSE(b.movable());
    }
    SECTION("on the master nothing is to move") {
        MovableBlock m;
        m.finished(false, true, false, false, "Q:BEGIN");
        CHECK_FALSE(m.movable());
    }
    SECTION("a new block starts afresh") {
        b.finished(true, false, true, false, "");
        b.finished(false, true, true, false, "Q:BEGIN");
        CHECK(b.start().size() == 1);
    }
}

TEST_CASE("unit cutter: a long Query or Parse goes to the master unclassified",
          "[unit][statements]") {
    Classifier classifier;
    Statements statements;
    int classified = 0;
    UnitCutter cutter(statements, [&](std::string_view sql) {
        ++classified;
        return classifier.classify(sql);
    });
    CHECK(UnitCutter::takes_long('Q'));
    CHECK(UnitCutter::takes_long('P'));
    CHECK_FALSE(UnitCutter::takes_long('B'));
    CHECK_FALSE(UnitCutter::takes_long('d'));

    // The start of a Query that claims 1 GB: the unit ends there, a write, unparsed.
    std::string start = std::string("Q\x40\0\0\0", 5) + "SELECT 1 /* ...";
    Unit& q = cutter.add_long('Q', start);
    CHECK(q.bytes == start);
    CHECK(q.cls.kind == StatementKind::Write);
    CHECK(q.cls.pins == kPinUnparsed);  // what it did to the session is not known
    CHECK(q.sync);
    CHECK(classified == 0);

    // A long Parse: a write whose batch goes on (like a Flush); its statement is known (a
    // write, so units using it go to the master) but never repeated on another backend.
    std::string parse = std::string("P\x40\0\0\0", 5) + std::string("big\0SELECT ", 11);
    Unit& p = cutter.add_long('P', parse);
    CHECK(p.bytes == parse);
    CHECK_FALSE(p.sync);
    CHECK(p.refs.parsed.count("big") == 1);
    CHECK(classified == 0);
    std::string out;
    CHECK(statements.prepare(1, p.refs, out) == 0);
    std::string bind, sync;
    proto::MessageBuilder(bind, proto::FrontendMsg::Bind).cstr("").cstr("big").i16(0).i16(0).i16(0);
    proto::MessageBuilder(sync, proto::FrontendMsg::Sync);
    CHECK(!cutter.add(std::get<proto::Message>(proto::decode_frontend(bind))));
    CHECK(cutter.add(std::get<proto::Message>(proto::decode_frontend(sync))));
    CHECK(cutter.unit().cls.kind == StatementKind::Write);
    CHECK(cutter.unit().cls.pins == kPinUnparsed);
    CHECK(statements.prepare(2, cutter.unit().refs, out) == 0);  // nothing to repeat
    CHECK(out.empty());
}

TEST_CASE("statement shapes: what the client saw described, and what to verify elsewhere",
          "[statements][unit]") {
    Classifier classifier;
    Statements statements;
    UnitCutter cutter(statements, [&](std::string_view sql) { return classifier.classify(sql); });
    auto frontend = [](std::string& buf) {
        return std::get<proto::Message>(proto::decode_frontend(buf));
    };
    std::string parse, bind, describe_p, describe_s, execute, sync;
    proto::MessageBuilder(parse, proto::FrontendMsg::Parse).cstr("s").cstr("SELECT 1").i16(0);
    proto::MessageBuilder(bind, proto::FrontendMsg::Bind).cstr("p").cstr("s").i16(0).i16(0).i16(0);
    proto::MessageBuilder(describe_p, proto::FrontendMsg::Describe).u8('P').cstr("p");
    proto::MessageBuilder(describe_s, proto::FrontendMsg::Describe).u8('S').cstr("s");
    proto::MessageBuilder(execute, proto::FrontendMsg::Execute).cstr("p").i32(0);
    proto::MessageBuilder(sync, proto::FrontendMsg::Sync);
    for (std::string* m : {&parse, &describe_s, &bind, &describe_p, &execute}) {
        CHECK(!cutter.add(frontend(*m)));
    }
    CHECK(cutter.add(frontend(sync)));
    Unit& u = cutter.unit();
    // A Describe of a statement, then one of the portal bound from it: both describe "s".
    REQUIRE(u.described == std::vector<std::string>{"s", "s"});
    std::string sent;
    CHECK(statements.prepare(1, u.refs, sent) == 0);

    // A backend that lacks s: verified only once the client has seen s described.
    std::string bind_only;
    proto::MessageBuilder(bind_only, proto::FrontendMsg::Bind)
        .cstr("")
        .cstr("s")
        .i16(0)
        .i16(0)
        .i16(0);
    CHECK(!cutter.add(frontend(bind_only)));
    CHECK(cutter.add(frontend(sync)));
    StatementRefs refs = cutter.unit().refs;
    CHECK(statements.to_verify(2, refs).empty());
    statements.note_shape("s", "shape", "");
    CHECK(statements.to_verify(2, refs) == std::vector<std::string>{"s"});
    CHECK(statements.to_verify(1, refs).empty());  // backend 1 has it
    std::string out;
    statements.reparse(2, {"s"}, out);
    CHECK(out == parse);
    CHECK(statements.backend_has(2, "s"));
    CHECK(statements.to_verify(2, refs).empty());
    out.clear();
    statements.close_on(2, {"s"}, out);
    CHECK(out[0] == 'C');
    CHECK_FALSE(statements.backend_has(2, "s"));
    CHECK(statements.to_verify(2, refs) == std::vector<std::string>{"s"});

    // The answers: the k-th RowDescription/NoData answers the k-th Describe.
    InflightQueue q;
    InFlight f;
    f.described = {"s", "s"};
    q.push(f);
    std::string row, nodata, complete;
    proto::MessageBuilder(row, proto::BackendMsg::RowDescription).i16(0);
    proto::MessageBuilder(nodata, proto::BackendMsg::NoData);
    proto::MessageBuilder(complete, proto::BackendMsg::CommandComplete).cstr("SELECT 1");
    auto backend = [](std::string& buf) {
        return std::get<proto::Message>(proto::decode_backend(buf));
    };
    std::string params, pd;
    proto::MessageBuilder(pd, proto::BackendMsg::ParameterDescription).i16(1).i32(23);
    CHECK(q.answers_describe(backend(complete), params) == nullptr);
    CHECK(q.answers_describe(backend(pd), params) == nullptr);
    REQUIRE(q.answers_describe(backend(row), params) != nullptr);  // a statement's Describe
    CHECK(params == backend(pd).payload);
    REQUIRE(q.answers_describe(backend(nodata), params) != nullptr);  // a portal's
    CHECK(params.empty());
    CHECK(q.answers_describe(backend(row), params) == nullptr);  // a third: not a Describe's
}

TEST_CASE("result_shape: a RowDescription without its format codes", "[proto]") {
    auto field = [](std::string name, std::int16_t format) {
        std::string f = name + '\0';
        f += std::string("\0\0\x40\x01\0\x02\0\0\0\x17\0\x04\xff\xff\xff\xff", 16);
        f += static_cast<char>(format >> 8);
        f += static_cast<char>(format & 0xff);
        return f;
    };
    std::string two = std::string("\0\x02", 2) + field("id", 0) + field("v", 0);
    std::string binary = std::string("\0\x02", 2) + field("id", 1) + field("v", 1);
    std::string three = std::string("\0\x03", 2) + field("id", 0) + field("v", 0) + field("x", 0);
    auto shape = [](const std::string& row) -> std::optional<std::string> {
        std::string out = "old contents";
        if (!proto::result_shape(row, out)) return std::nullopt;
        return out;
    };
    REQUIRE(shape(two));
    CHECK(shape(two) == shape(binary));
    CHECK(shape(two) != shape(three));
    CHECK_FALSE(shape(two.substr(0, two.size() - 1)));
    CHECK_FALSE(shape(two + "x"));
    CHECK_FALSE(shape(std::string("\xff\xff", 2)));
}

TEST_CASE("ghosts: what a backend lacks of the session's state, as ghost units", "[ghosts]") {
    SetLog log;
    log.record(SessionChange{NamedAction::Set, Isolation::Unchanged, "role", "SET ROLE r"});
    log.record(SessionChange{NamedAction::Set, Isolation::Unchanged, "search_path",
                             "SET search_path = s"});
    InflightQueue q;
    std::string out;
    StateApplied applied;
    // A standby: both SETs, then the check against the catalog position 0/3000148.
    CHECK(queue_state_replay(q, out, 2, log, 0x3000148, true, applied) == 3);
    REQUIRE(q.size() == 3);
    for (const InFlight& g : q.units()) {
        CHECK(g.ghost);
        CHECK(g.replays_state);
        CHECK(g.slot == 2);
    }
    CHECK(out.find("SET ROLE r") != std::string::npos);
    CHECK(out.find("SET search_path = s") != std::string::npos);
    CHECK(out.find("pg_last_wal_replay_lsn() >= '0/3000148'") != std::string::npos);
    CHECK(applied.sets == log.head());
    CHECK(applied.catalog_lsn == 0x3000148);
    // Up to date: nothing more; the master is never checked.
    CHECK(queue_state_replay(q, out, 2, log, 0x3000148, true, applied) == 0);
    StateApplied master;
    CHECK(queue_state_replay(q, out, 0, log, 0x3000148, false, master) == 2);
    CHECK(master.catalog_lsn == 0);
    // The capture of the master's position: its DataRow is an Lsn answer.
    queue_lsn_capture(q, out, 0);
    CHECK(q.back().captures_lsn);
    CHECK_FALSE(q.back().replays_state);
    // The question whether the session holds an advisory lock: one Query, answered by a
    // boolean (only session-level locks remain between transactions).
    std::string check;
    queue_advisory_check(q, check, 0);
    CHECK(q.back().checks_advisory);
    CHECK(q.back().ghost);
    CHECK_FALSE(q.back().replays_state);
    CHECK(q.back().slot == 0);
    CHECK(check[0] == 'Q');
    CHECK(check.find("pg_catalog.pg_locks") != std::string::npos);
    CHECK(check.find("locktype = 'advisory'") != std::string::npos);
    CHECK(check.find("pg_catalog.pg_backend_pid()") != std::string::npos);
    CHECK(advisory_locks_held("t") == true);
    CHECK(advisory_locks_held("f") == false);
    CHECK_FALSE(advisory_locks_held("").has_value());
}

TEST_CASE("an unsynced Parse/Describe batch is complete when its answers are in",
          "[unit][inflight]") {
    Classifier classifier;
    Statements statements;
    UnitCutter cutter(statements, [&](std::string_view sql) { return classifier.classify(sql); });
    auto frontend = [](std::string& buf) {
        return std::get<proto::Message>(proto::decode_frontend(buf));
    };
    std::string parse, describe, flush, bind, sync;
    proto::MessageBuilder(parse, proto::FrontendMsg::Parse).cstr("a1").cstr("SELECT 1").i16(0);
    proto::MessageBuilder(describe, proto::FrontendMsg::Describe).u8('S').cstr("a1");
    proto::MessageBuilder(flush, proto::FrontendMsg::Flush);
    proto::MessageBuilder(bind, proto::FrontendMsg::Bind).cstr("").cstr("a1").i16(0).i16(0).i16(0);
    proto::MessageBuilder(sync, proto::FrontendMsg::Sync);
    CHECK(!cutter.add(frontend(parse)));
    CHECK(!cutter.add(frontend(describe)));
    CHECK(cutter.add(frontend(flush)));
    CHECK_FALSE(cutter.unit().sync);
    CHECK(cutter.unit().answers == 3);  // ParseComplete, ParameterDescription, RowDescription
    CHECK(!cutter.add(frontend(bind)));
    CHECK(cutter.add(frontend(flush)));
    CHECK(cutter.unit().answers == -1);  // a Bind: answers not counted
    CHECK(cutter.add(frontend(sync)));
    CHECK(cutter.unit().answers == -1);

    using namespace std::string_literals;
    auto backend = [](char type, std::string payload = {}) {
        std::string out;
        proto::MessageBuilder(out, static_cast<proto::BackendMsg>(type)).bytes(payload);
        return out;
    };
    std::string one = backend('1'), t = backend('t', std::string(2, '\0')),
                row = backend('T', std::string(2, '\0')), notice = backend('N', "Mx\0\0"s);
    std::string err = backend('E', "SERROR\0C42601\0Mbad\0\0"s);
    auto decoded = [](std::string& buf) {
        return std::get<proto::Message>(proto::decode_backend(buf));
    };
    InflightQueue q;
    InFlight f;
    f.sync = false;
    f.answers_left = 3;
    q.push(f);
    CHECK(q.on_message(decoded(one)) == Answer::Forward);
    CHECK(q.on_message(decoded(notice)) == Answer::Forward);  // not an answer
    CHECK(q.on_message(decoded(t)) == Answer::Forward);
    CHECK(q.on_message(decoded(row)) == Answer::Complete);
    q.pop_front();
    // An error: the backend skips until the client's Sync, so the unit stays in flight.
    q.push(f);
    CHECK(q.on_message(decoded(err)) == Answer::Forward);
    CHECK(q.front().answers_left == -1);
    q.pop_front();
    // The rest of the batch joined it before its answers were in: not counted any more.
    q.push(f);
    InFlight rest;
    rest.sync = true;
    q.push(rest);
    CHECK(q.size() == 1);
    CHECK(q.front().answers_left == -1);
}

namespace {

// Cuts one unit of `messages` (built by the caller) and returns it.
Unit& cut(UnitCutter& cutter, const std::vector<std::string>& messages) {
    for (const std::string& m : messages) {
        (void)cutter.add(std::get<proto::Message>(proto::decode_frontend(m)));
    }
    return cutter.unit();
}

std::string parse_msg(const char* name, const char* sql) {
    std::string out;
    proto::MessageBuilder(out, proto::FrontendMsg::Parse).cstr(name).cstr(sql).i16(0);
    return out;
}

std::string bind_msg(const char* statement) {
    std::string out;
    proto::MessageBuilder(out, proto::FrontendMsg::Bind)
        .cstr("")
        .cstr(statement)
        .i16(0)
        .i16(0)
        .i16(0);
    return out;
}

std::string sync_msg() {
    std::string out;
    proto::MessageBuilder(out, proto::FrontendMsg::Sync);
    return out;
}

std::string sql_of(const Statements& statements, const char* name) {
    const Statement* st = statements.find(name);
    return st != nullptr ? std::string(st->sql()) : "(none)";
}

}  // namespace

TEST_CASE("statements: a Parse holds only once the server acknowledged it", "[statements]") {
    Classifier classifier;
    Statements statements;
    UnitCutter cutter(statements, [&](std::string_view sql) { return classifier.classify(sql); });
    std::string out;
    // Parse s1 on backend 1 (acknowledged), then again with another text (42P05 there).
    Unit& first = cut(cutter, {parse_msg("s1", "SELECT 'from b'"), sync_msg()});
    REQUIRE(first.refs.completes.size() == 1);
    CHECK(statements.prepare(1, first.refs, out) == 0);
    statements.settle(first.refs.completes, 1);
    CHECK(statements.pending() == 0);
    Unit& again = cut(cutter, {parse_msg("s1", "SELECT 'again'"), sync_msg()});
    CHECK(sql_of(statements, "s1") == "SELECT 'again'");  // taken for granted meanwhile
    CHECK(statements.prepare(1, again.refs, out) == 0);
    CHECK(statements.backend_has(1, "s1"));
    statements.settle(again.refs.completes, 0);
    CHECK(sql_of(statements, "s1") == "SELECT 'from b'");
    CHECK(statements.backend_has(1, "s1"));  // it kept the first text: nothing to re-parse
    CHECK(statements.pending() == 0);
    // A standby that lacks it gets the text the server kept.
    Unit& use = cut(cutter, {bind_msg("s1"), sync_msg()});
    CHECK(use.refs.completes.empty());
    out.clear();
    CHECK(statements.prepare(2, use.refs, out) == 1);
    CHECK(out == parse_msg("s1", "SELECT 'from b'"));
    out.clear();
    CHECK(statements.prepare(1, use.refs, out) == 0);

    SECTION("a first Parse that failed defines nothing, and its backend has nothing") {
        Unit& bad = cut(cutter, {parse_msg("s2", "SELECT * FROM nope"), sync_msg()});
        CHECK(statements.prepare(1, bad.refs, out) == 0);
        statements.settle(bad.refs.completes, 0);
        CHECK(statements.find("s2") == nullptr);
        CHECK_FALSE(statements.backend_has(1, "s2"));
        Unit& good = cut(cutter, {parse_msg("s2", "SELECT 'good'"), sync_msg()});
        CHECK(statements.prepare(1, good.refs, out) == 0);
        statements.settle(good.refs.completes, 1);
        CHECK(sql_of(statements, "s2") == "SELECT 'good'");
        CHECK(statements.backend_has(1, "s2"));
    }
    SECTION("Parses after an error in the unit were skipped: only those before it hold") {
        std::string execute;
        proto::MessageBuilder(execute, proto::FrontendMsg::Execute).cstr("").i32(0);
        Unit& u = cut(
            cutter, {parse_msg("", "SELECT 1/0"), bind_msg(""), execute,
                     parse_msg("s1", "SELECT 'skipped'"), parse_msg("s3", "SELECT 3"), sync_msg()});
        REQUIRE(u.refs.completes.size() == 3);
        CHECK(statements.prepare(1, u.refs, out) == 0);
        statements.settle(u.refs.completes, 1);  // ParseComplete, BindComplete, error
        CHECK(sql_of(statements, "") == "SELECT 1/0");
        CHECK(sql_of(statements, "s1") == "SELECT 'from b'");
        CHECK(statements.backend_has(1, "s1"));
        CHECK(statements.find("s3") == nullptr);
        CHECK_FALSE(statements.backend_has(1, "s3"));
    }
    SECTION("a refused Parse of the unnamed statement leaves none") {
        Unit& u = cut(cutter, {parse_msg("", "SELECT 1"), sync_msg()});
        CHECK(statements.prepare(1, u.refs, out) == 0);
        statements.settle(u.refs.completes, 1);
        Unit& bad = cut(cutter, {parse_msg("", "SELEC 2"), sync_msg()});
        CHECK(statements.prepare(1, bad.refs, out) == 0);
        statements.settle(bad.refs.completes, 0);
        CHECK(statements.find("") == nullptr);  // PostgreSQL dropped the old one first
        CHECK_FALSE(statements.backend_has(1, ""));
    }
    SECTION("a long batch of unnamed Parses keeps one of them pending, not each") {
        std::vector<std::string> batch;
        for (int i = 0; i < 100; ++i) {
            batch.push_back(parse_msg("", "SELECT 1"));
            batch.push_back(bind_msg(""));
        }
        batch.push_back(sync_msg());
        Unit& u = cut(cutter, batch);
        CHECK(u.refs.completes.size() == 100);
        CHECK(statements.pending() == 1);
        CHECK(statements.prepare(1, u.refs, out) == 0);
        statements.settle(u.refs.completes, 100);
        CHECK(sql_of(statements, "") == "SELECT 1");
        CHECK(statements.backend_has(1, ""));
        CHECK(statements.pending() == 0);
    }
    SECTION("units in flight together: each refusal goes back past the refused ones") {
        // Pipelined: both cut and sent before either is answered.
        Unit& u2 = cut(cutter, {parse_msg("s1", "SELECT 2"), sync_msg()});
        std::vector<std::uint64_t> c2 = u2.refs.completes;
        CHECK(statements.prepare(1, u2.refs, out) == 0);
        Unit& u3 = cut(cutter, {parse_msg("s1", "SELECT 3"), sync_msg()});
        std::vector<std::uint64_t> c3 = u3.refs.completes;
        CHECK(statements.prepare(1, u3.refs, out) == 0);
        bool second_taken = GENERATE(false, true);
        INFO("the second Parse acknowledged: " << second_taken);
        statements.settle(c2, 0);
        CHECK(sql_of(statements, "s1") == "SELECT 3");  // still pending
        statements.settle(c3, second_taken ? 1 : 0);
        CHECK(sql_of(statements, "s1") == (second_taken ? "SELECT 3" : "SELECT 'from b'"));
        CHECK(statements.backend_has(1, "s1"));
        CHECK(statements.pending() == 0);
    }
    SECTION("two Parses of a name in one unit: the second refused, the first holds") {
        std::string close;
        proto::MessageBuilder(close, proto::FrontendMsg::Close).u8('P').cstr("");
        Unit& u = cut(
            cutter, {parse_msg("s1", "SELECT 2"), close, parse_msg("s1", "SELECT 3"), sync_msg()});
        REQUIRE(u.refs.completes.size() == 3);
        CHECK(u.refs.completes[1] == kClientClose);
        CHECK(statements.prepare(1, u.refs, out) == 0);
        statements.settle(u.refs.completes, 2);
        CHECK(sql_of(statements, "s1") == "SELECT 2");
        CHECK(statements.backend_has(1, "s1"));
        out.clear();
        CHECK(statements.prepare(2, cut(cutter, {bind_msg("s1"), sync_msg()}).refs, out) == 1);
        CHECK(out == parse_msg("s1", "SELECT 2"));
    }
    SECTION("a unit never answered (not sent, or lost) is undone by the next one answered") {
        Unit& lost = cut(cutter, {parse_msg("s1", "SELECT 'lost'"), sync_msg()});
        CHECK(statements.prepare(1, lost.refs, out) == 0);
        Unit& next = cut(cutter, {parse_msg("s4", "SELECT 4"), sync_msg()});
        CHECK(statements.prepare(1, next.refs, out) == 0);
        statements.settle(next.refs.completes, 1);
        CHECK(sql_of(statements, "s1") == "SELECT 'from b'");
        CHECK(sql_of(statements, "s4") == "SELECT 4");
        CHECK(statements.pending() == 0);
    }
}

TEST_CASE("inflight: which ParseCompletes answer the client's Parses", "[inflight][statements]") {
    auto msg = [](std::string& buf) {
        return std::get<proto::Message>(proto::decode_backend(buf));
    };
    std::string parse_complete, close_complete, err, rfq;
    proto::MessageBuilder(parse_complete, proto::BackendMsg::ParseComplete);
    proto::MessageBuilder(close_complete, proto::BackendMsg::CloseComplete);
    proto::encode_error_response(err, "ERROR", "42P05", "prepared statement exists");
    proto::encode_ready_for_query(rfq, TransactionStatus::Idle);

    InflightQueue q;
    InFlight f;
    f.slot = 1;
    f.swallow = 2;  // an injected Close and Parse come first
    f.completes = {7, kClientClose, 8};
    q.push(f);
    CHECK(q.front().completes == std::vector<std::uint64_t>{kInjected, kInjected, 7, 0, 8});
    CHECK(q.on_message(msg(close_complete)) == Answer::Swallow);
    CHECK(q.on_message(msg(parse_complete)) == Answer::Swallow);
    CHECK(q.on_message(msg(parse_complete)) == Answer::Forward);
    CHECK(q.on_message(msg(close_complete)) == Answer::Forward);
    CHECK(q.on_message(msg(err)) == Answer::Forward);  // Parse 8 refused
    CHECK(q.on_message(msg(rfq)) == Answer::Done);
    CHECK(q.front().completed == 4);  // 7 acknowledged, 8 not
    q.pop_front();

    // A flushed batch joined by its rest: the rest's injected Parse is answered after the
    // batch's own Parse, and is swallowed there, not in its place.
    InFlight head;
    head.slot = 1;
    head.sync = false;
    head.completes = {9};
    q.push(head);
    InFlight rest;
    rest.slot = 1;
    rest.swallow = 1;
    rest.completes = {10};
    q.push(rest);
    REQUIRE(q.size() == 1);
    CHECK(q.front().completes == std::vector<std::uint64_t>{9, kInjected, 10});
    CHECK(q.on_message(msg(parse_complete)) == Answer::Forward);  // Parse 9
    CHECK(q.on_message(msg(parse_complete)) == Answer::Swallow);
    CHECK(q.on_message(msg(err)) == Answer::Forward);  // Parse 10 refused
    CHECK(q.on_message(msg(rfq)) == Answer::Done);
    CHECK(q.front().completed == 2);
}

// A read's classification, and the Parse of "SELECT 1" as statement `name`.
Classification read_unit() {
    Classification read;
    read.kind = StatementKind::Read;
    return read;
}
std::string parse_select_1(std::string_view name) {
    std::string parse;
    proto::MessageBuilder(parse, proto::FrontendMsg::Parse).cstr(name).cstr("SELECT 1").i16(0);
    return parse;
}

TEST_CASE("statements: SQL DEALLOCATE takes a protocol-level statement from the client",
          "[statements]") {
    Statements statements;
    Classification read = read_unit();
    std::string parse = parse_select_1("s1");
    statements.define("s1", parse, "SELECT 1", read);
    statements.define("s2", parse, "SELECT 1", read);
    StatementRefs refs;
    refs.uses = {"s1", "s2"};
    std::string out;
    statements.prepare(1, refs, out);
    statements.prepare(2, refs, out);
    statements.deallocated(1, "s1");
    CHECK(statements.find("s1") == nullptr);
    CHECK_FALSE(statements.backend_has(1, "s1"));
    // Backend 2 still has it: closed there before its next unit, unseen by the client.
    out.clear();
    CHECK(statements.prepare(2, StatementRefs{}, out) == 1);
    CHECK(out.find("s1") != std::string::npos);
    statements.deallocated(2, "");  // DEALLOCATE ALL
    CHECK(statements.size() == 0);
}

TEST_CASE("statements: a backend holds the client's named statements, not the unnamed one",
          "[statements]") {
    Statements statements;
    Classification read = read_unit();
    std::string parse = parse_select_1("");
    statements.define("", parse, "SELECT 1", read);
    StatementRefs refs;
    refs.uses = {""};
    std::string out;
    statements.prepare(1, refs, out);
    CHECK_FALSE(statements.backend_has_named(1));
    statements.define("s1", parse, "SELECT 1", read);
    refs.uses = {"s1"};
    statements.prepare(1, refs, out);
    CHECK(statements.backend_has_named(1));
    CHECK_FALSE(statements.backend_has_named(2));
}
