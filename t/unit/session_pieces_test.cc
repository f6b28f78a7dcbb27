// Unit tests of the session's pure pieces: the SET log and savepoints (session_state), the
// unit cutter (unit), prepared statements per backend (statements) and the meaning of
// backend messages (inflight). Table-driven; no sockets.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "pgrouter/proto/decoder.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/route/classify.h"
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

std::string replay_log(const std::vector<Step>& steps) {
    Classifier classifier;
    SessionState state;
    for (const Step& s : steps) {
        Classification cls = classifier.classify(s.sql);
        std::vector<SessionChange> changes;
        collect_changes(s.sql, cls, changes);
        UnitOutcome u;
        u.status = s.after;
        u.slot = 1;
        u.tag = s.tag;
        u.cls = &cls;
        u.changes = &changes;
        (void)state.finish(u);
    }
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
        std::string sql = "SET search_path = s" + std::to_string(i % 7);
        Classification cls = classifier.classify(sql);
        std::vector<SessionChange> changes;
        collect_changes(sql, cls, changes);
        UnitOutcome u;
        u.cls = &cls;
        u.changes = &changes;
        u.tag = "SET";
        (void)state.finish(u);
    }
    CHECK(state.log().entries().size() == 1);
    CHECK(state.log().head() == 1000);
}

TEST_CASE("session state: serializable default follows the log", "[session_state]") {
    Classifier classifier;
    SessionState state;
    auto run = [&](const char* sql) {
        Classification cls = classifier.classify(sql);
        std::vector<SessionChange> changes;
        collect_changes(sql, cls, changes);
        UnitOutcome u;
        u.cls = &cls;
        u.changes = &changes;
        u.tag = "SET";
        (void)state.finish(u);
        return state.log().serializable_default();
    };
    CHECK(run("SET default_transaction_isolation = 'serializable'"));
    CHECK(!run("RESET default_transaction_isolation"));
    CHECK(run("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE"));
    CHECK(!run("RESET ALL"));
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

    InFlight ghost;
    ghost.ghost = true;
    q.push(ghost);
    CHECK(q.on_message(msg(done)) == Answer::Drop);
    CHECK(q.on_message(msg(err)) == Answer::GhostError);
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
}
