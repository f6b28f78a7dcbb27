// The statement classifier: pg_query's JSON parse tree → Classification. The tree is read
// with a small iterative JSON reader (no recursion, so a 20,000-deep expression is only
// memory); the rules look at node names, a few fields and the tables of built-in names
// (builtins.cc). Anything unrecognised is a Write: misrouting a write to a standby costs a
// 25006 replay, misrouting a read costs nothing but master load, so every doubt goes to
// the master.
#include "pgrouter/route/classify.h"

#include <pg_query.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <optional>

#include "builtins.h"
#include "classify_json.h"
#include "pgrouter/base/ascii.h"

namespace pgrouter {

namespace {

using json::JNode;
using json::Json;
using json::JType;
using json::kNone;

// pg_temp, or pg_temp_N: the session's (or another session's) temporary schema.
bool is_pg_temp(std::string_view schema) {
    if (schema.size() < 7 || !ascii_iequals(schema.substr(0, 7), "pg_temp")) return false;
    return schema.size() == 7 || schema[7] == '_';
}

// PostgreSQL's parse_bool(): unique prefixes of true/false/yes/no, on/off, 1/0.
std::optional<bool> parse_bool(std::string_view v) {
    if (v.empty()) return std::nullopt;
    auto prefix_of = [&](std::string_view word) {
        return v.size() <= word.size() && ascii_iequals(v, word.substr(0, v.size()));
    };
    switch (ascii_lower(v[0])) {
        case 't':
            if (prefix_of("true")) return true;
            break;
        case 'f':
            if (prefix_of("false")) return false;
            break;
        case 'y':
            if (prefix_of("yes")) return true;
            break;
        case 'n':
            if (prefix_of("no")) return false;
            break;
        case 'o':
            if (v.size() >= 2 && prefix_of("on")) return true;
            if (v.size() >= 2 && prefix_of("off")) return false;
            break;
        case '1':
            if (v.size() == 1) return true;
            break;
        case '0':
            if (v.size() == 1) return false;
            break;
        default:
            break;
    }
    return std::nullopt;
}

// A transaction_isolation value ("serializable", "repeatable read", ...), case-insensitive.
Isolation parse_isolation(std::string_view v) {
    if (ascii_iequals(v, "serializable")) return Isolation::Serializable;
    if (ascii_iequals(v, "repeatable read")) return Isolation::RepeatableRead;
    if (ascii_iequals(v, "read committed")) return Isolation::ReadCommitted;
    if (ascii_iequals(v, "read uncommitted")) return Isolation::ReadUncommitted;
    return Isolation::Unchanged;
}

// A JSON reader's view of one unit, and the facts gathered while walking it.
class Walker {
  public:
    Walker(const Json& j, const std::vector<std::string>& write_functions)
        : j_(j), write_functions_(write_functions) {}

    struct Stmt {
        StatementKind kind = StatementKind::Write;
        bool read_only = false;
        bool read_write = false;
        std::string_view reason;
        bool modes = false;  // BEGIN / SET TRANSACTION: only sets the transaction's modes
    };

    // `wrapper` is a Node: an object with one member named after the node type.
    Stmt statement(std::uint32_t wrapper);

    Classification& flags() { return flags_; }

    // The bytes of the statement statement() looks at next, for the facts it names.
    void at_statement(std::uint32_t at, std::uint32_t size) {
        stmt_at_ = at;
        stmt_size_ = size;
    }

  private:
    Stmt select_like(std::uint32_t body, std::string_view read_reason);
    Stmt variable_set(std::uint32_t body);
    Stmt transaction(std::uint32_t body);
    // Looks at every node below `node`. Executed parts (executes) may write (locking
    // clauses, SELECT INTO, DML in WITH, functions on the write list); every part may pin
    // (temporary relations, pg_temp references).
    void walk(std::uint32_t node, bool executes);
    void function_call(std::uint32_t body);
    void server_local_call(std::uint32_t body, std::string_view name);
    void range_var(std::uint32_t body);
    Stmt show(std::uint32_t body);
    static Stmt discard_kind(Discard what);
    // The first family found names the unit; an empty reason changes nothing.
    void mark_server_local(std::string_view reason) {
        if (flags_.server_local.empty()) flags_.server_local = reason;
    }
    void write(std::string_view reason) {
        if (!write_) {
            write_ = true;
            write_reason_ = reason;
        }
    }
    void pin(std::uint16_t bit, std::string_view reason) {
        if (flags_.pins == 0) flags_.pin_reason = reason;
        flags_.pins |= bit;
    }
    void fact(NamedAction action, std::string_view name,
              Isolation isolation = Isolation::Unchanged) {
        NamedFact f;
        f.action = action;
        f.isolation = isolation;
        f.stmt_at = stmt_at_;
        f.stmt_size = stmt_size_;
        if (action == NamedAction::Set && names_catalog_objects(name)) flags_.names_objects = true;
        if (is_control_name(name)) flags_.names_controls = true;
        (void)flags_.add_fact(f, name);
    }
    std::optional<std::string> const_text(std::uint32_t node) const;
    std::optional<bool> defelem_bool(std::uint32_t args, std::string_view name) const;
    // The isolation level named by DefElem transaction_isolation in `args`.
    Isolation defelem_isolation(std::uint32_t args) const;

    const Json& j_;
    const std::vector<std::string>& write_functions_;
    Classification flags_;  // set, set_local, pins, discard, read_only_default, facts
    std::uint32_t stmt_at_ = 0;
    std::uint32_t stmt_size_ = 0;
    bool write_ = false;  // the statement being classified writes (from walk())
    std::string_view write_reason_;
};

// An A_Const (or a bare String/Integer node) as text: "on", "1", "true"; nullopt otherwise.
std::optional<std::string> Walker::const_text(std::uint32_t node) const {
    if (node == kNone || j_.at(node).type != JType::Object) return std::nullopt;
    std::uint32_t inner = j_.first(node);
    if (inner == kNone) return std::nullopt;
    std::string_view type = j_.at(inner).key;
    if (type == "A_Const") {
        if (std::uint32_t v = j_.get(inner, "sval"); v != kNone) {
            return j_.string(j_.get(v, "sval"));
        }
        if (std::uint32_t v = j_.get(inner, "ival"); v != kNone) {
            std::uint32_t n = j_.get(v, "ival");
            return n == kNone ? std::string("0") : std::string(j_.at(n).text);
        }
        if (std::uint32_t v = j_.get(inner, "boolval"); v != kNone) {
            std::uint32_t b = j_.get(v, "boolval");
            return std::string(b != kNone && j_.at(b).type == JType::True ? "true" : "false");
        }
        return std::nullopt;
    }
    if (type == "String") return j_.string(j_.get(inner, "sval"));
    if (type == "Integer") {
        std::uint32_t n = j_.get(inner, "ival");
        return n == kNone ? std::string("0") : std::string(j_.at(n).text);
    }
    return std::nullopt;
}

// The boolean value of DefElem `name` in a list of DefElems (transaction modes).
std::optional<bool> Walker::defelem_bool(std::uint32_t args, std::string_view name) const {
    std::optional<bool> result;
    if (args == kNone) return result;
    for (std::uint32_t item = j_.first(args); item != kNone; item = j_.next(item)) {
        std::uint32_t def = j_.get(item, "DefElem");
        if (def == kNone || j_.string(j_.get(def, "defname")) != name) continue;
        std::uint32_t arg = j_.get(def, "arg");
        if (arg == kNone) {
            result = true;
            continue;
        }
        if (auto text = const_text(arg)) result = parse_bool(*text);
    }
    return result;
}

Isolation Walker::defelem_isolation(std::uint32_t args) const {
    Isolation result = Isolation::Unchanged;
    if (args == kNone) return result;
    for (std::uint32_t item = j_.first(args); item != kNone; item = j_.next(item)) {
        std::uint32_t def = j_.get(item, "DefElem");
        if (def == kNone || j_.string(j_.get(def, "defname")) != "transaction_isolation") continue;
        if (auto text = const_text(j_.get(def, "arg"))) result = parse_isolation(*text);
    }
    return result;
}

void Walker::walk(std::uint32_t node, bool executes) {
    if (node == kNone) return;
    std::vector<std::uint32_t> todo{node};
    while (!todo.empty()) {
        std::uint32_t n = todo.back();
        todo.pop_back();
        const JNode& jn = j_.at(n);
        if (jn.type == JType::String) {
            if (jn.key == "relpersistence" && jn.text == "t") {
                pin(kPinTempTable, "temporary table");
            } else if (jn.key == "schemaname" && is_pg_temp(j_.string(n))) {
                pin(kPinPgTemp, "pg_temp reference");
            }
            continue;
        }
        if (jn.type != JType::Object && jn.type != JType::Array) continue;
        if (jn.type == JType::Object && !jn.key.empty()) {
            std::string_view k = jn.key;
            if (k == "String") {
                // Qualified names (function, type, column): pg_temp.f(), pg_temp.t.c.
                if (is_pg_temp(j_.string(j_.get(n, "sval")))) {
                    pin(kPinPgTemp, "pg_temp reference");
                }
                continue;
            }
            if (k == "RangeVar") range_var(n);
            if (executes) {
                if (k == "FuncCall") {
                    function_call(n);
                } else if (k == "InsertStmt" || k == "UpdateStmt" || k == "DeleteStmt" ||
                           k == "MergeStmt") {
                    write("data-modifying WITH");
                } else if (k == "intoClause") {
                    write("SELECT INTO");
                }
            }
        }
        if (jn.type == JType::Array && executes && jn.key == "lockingClause" &&
            j_.first(n) != kNone) {
            write("FOR UPDATE/SHARE");
        }
        for (std::uint32_t c = j_.first(n); c != kNone; c = j_.next(c)) todo.push_back(c);
    }
}

void Walker::function_call(std::uint32_t body) {
    std::vector<std::string> names;
    std::uint32_t list = j_.get(body, "funcname");
    if (list != kNone) {
        for (std::uint32_t item = j_.first(list); item != kNone; item = j_.next(item)) {
            names.push_back(ascii_lowered(j_.string(j_.get(j_.get(item, "String"), "sval"))));
        }
    }
    if (names.empty()) return;
    const std::string& name = names.back();
    std::string schema = names.size() >= 2 ? names[names.size() - 2] : std::string();

    for (const std::string& f : write_functions_) {
        std::size_t dot = f.rfind('.');
        bool match = dot == std::string::npos ? f == name
                                              : std::string_view(f).substr(0, dot) == schema &&
                                                    std::string_view(f).substr(dot + 1) == name;
        if (match) write("function on the operator's write list");
    }

    // Built-ins: an unqualified call resolves to pg_catalog first unless search_path says
    // otherwise, so unqualified names are taken as the built-in.
    if (!schema.empty() && schema != "pg_catalog") return;
    server_local_call(body, name);
    if (name.size() > 3 && name.compare(0, 3, "lo_") == 0 && name != "lo_get") {
        write("large object function");
        return;
    }
    for (const FunctionRule& rule : function_rules()) {
        if (rule.name != name) continue;
        switch (rule.effect) {
            case Effect::Write:
                write(rule.reason);
                break;
            case Effect::WritePinSeq:
                write(rule.reason);
                pin(kPinSequence, rule.reason);
                break;
            case Effect::PinSeq:
                pin(kPinSequence, rule.reason);
                break;
            case Effect::WritePinLock:
                write(rule.reason);
                pin(kPinAdvisoryLock, rule.reason);
                break;
            case Effect::WriteTryLock:
                write(rule.reason);
                pin(kPinAdvisoryLock, rule.reason);
                flags_.may_release |= kPinAdvisoryLock;
                break;
            case Effect::WriteUnlock:
                write(rule.reason);
                flags_.may_release |= kPinAdvisoryLock;
                break;
            case Effect::WriteUnpinLock:
                write(rule.reason);
                flags_.unpins |= kPinAdvisoryLock;
                break;
            case Effect::SetConfig: {
                // set_config(name, value, is_local): a constant true is SET LOCAL; false or
                // anything computed is taken as a session-level SET.
                std::uint32_t args = j_.get(body, "args");
                std::uint32_t first = j_.first(args);
                std::uint32_t third = j_.next(j_.next(first));
                std::optional<bool> local;
                if (auto text = const_text(third)) local = parse_bool(*text);
                bool is_local = local.value_or(false);
                if (is_local) {
                    flags_.set_local = true;
                } else {
                    flags_.set = true;
                }
                // A computed name is kept as an empty one: the setting is not known.
                std::string setting = ascii_lowered(const_text(first).value_or(""));
                Isolation iso = Isolation::Unchanged;
                if (setting == "default_transaction_isolation") {
                    iso = parse_isolation(const_text(j_.next(first)).value_or(""));
                }
                fact(is_local ? NamedAction::SetLocal : NamedAction::Set, setting, iso);
                break;
            }
        }
        return;
    }
}

// DISCARD TEMP and DISCARD ALL drop the session's temporary tables: catalog rows removed in
// the WAL, which a standby keeps listing until it has replayed them. So they are writes,
// for read-your-writes too (a session's reads after them wait for a standby that has).
// The other DISCARDs, like UNLISTEN, CLOSE and DEALLOCATE, drop backend memory only.
Walker::Stmt Walker::discard_kind(Discard what) {
    if (what == Discard::Temp || what == Discard::All) {
        return {StatementKind::Write, false, false, "DISCARD drops temporary tables"};
    }
    return {StatementKind::Session, false, false, "DISCARD"};
}

// A built-in function from the server-local table; current_setting() of a server-local
// setting (a constant name) counts as SHOW of it.
void Walker::server_local_call(std::uint32_t body, std::string_view name) {
    mark_server_local(server_local(ServerLocalObject::Function, name));
    std::uint32_t args = j_.get(body, "args");
    if (name != "current_setting" || args == kNone) return;
    if (auto setting = const_text(j_.first(args))) {
        mark_server_local(server_local(ServerLocalObject::Setting, ascii_lowered(*setting)));
    }
}

// A relation from the server-local table, unqualified or in pg_catalog. (A CTE of the
// same name is taken for the relation: the master answers it as well.)
void Walker::range_var(std::uint32_t body) {
    std::string schema = ascii_lowered(j_.string(j_.get(body, "schemaname")));
    if (!schema.empty() && schema != "pg_catalog") return;
    mark_server_local(server_local(ServerLocalObject::Relation,
                                   ascii_lowered(j_.string(j_.get(body, "relname")))));
}

Walker::Stmt Walker::show(std::uint32_t body) {
    std::string name = ascii_lowered(j_.string(j_.get(body, "name")));
    if (is_control_name(name)) flags_.names_controls = true;
    mark_server_local(server_local(ServerLocalObject::Setting, name));
    return {StatementKind::Read, false, false, "SHOW"};
}

Walker::Stmt Walker::select_like(std::uint32_t body, std::string_view read_reason) {
    write_ = false;
    walk(body, true);
    if (write_) return {StatementKind::Write, false, false, write_reason_};
    return {StatementKind::Read, false, false, read_reason};
}

Walker::Stmt Walker::variable_set(std::uint32_t body) {
    std::string_view kind = j_.at(j_.get(body, "kind")).text;
    std::string name = ascii_lowered(j_.string(j_.get(body, "name")));
    std::uint32_t local_node = j_.get(body, "is_local");
    bool is_local = local_node != kNone && j_.at(local_node).type == JType::True;
    std::uint32_t args = j_.get(body, "args");

    if (kind == "VAR_SET_MULTI" && name == "transaction") {
        if (Isolation iso = defelem_isolation(args); iso != Isolation::Unchanged) {
            flags_.isolation = iso;
        }
        if (defelem_bool(args, "transaction_read_only").value_or(false)) {
            return {StatementKind::SetTransactionReadOnly, false, false,
                    "SET TRANSACTION READ ONLY", true};
        }
        return {StatementKind::Session, false, false, "SET TRANSACTION", true};
    }
    if (kind == "VAR_SET_MULTI" && name == "session characteristics") {
        flags_.set = true;
        if (auto ro = defelem_bool(args, "transaction_read_only")) {
            flags_.read_only_default = *ro ? ReadOnlyDefault::On : ReadOnlyDefault::Off;
        }
        // Each transaction mode given is the session default of that mode.
        for (std::uint32_t item = j_.first(args); item != kNone; item = j_.next(item)) {
            std::string mode = j_.string(j_.get(j_.get(item, "DefElem"), "defname"));
            if (mode.empty()) continue;
            Isolation iso =
                mode == "transaction_isolation"
                    ? parse_isolation(
                          const_text(j_.get(j_.get(item, "DefElem"), "arg")).value_or(""))
                    : Isolation::Unchanged;
            fact(NamedAction::Set, "default_" + mode, iso);
        }
        return {StatementKind::Session, false, false, "SET SESSION CHARACTERISTICS"};
    }
    if (name == "transaction_read_only" && kind == "VAR_SET_VALUE") {
        // Transaction-scoped by nature: the same as SET TRANSACTION READ ONLY / READ WRITE.
        std::optional<std::string> v = args == kNone ? std::nullopt : const_text(j_.first(args));
        if (v && parse_bool(*v).value_or(false)) {
            return {StatementKind::SetTransactionReadOnly, false, false,
                    "SET transaction_read_only", true};
        }
        return {StatementKind::Session, false, false, "SET transaction_read_only", true};
    }
    if (is_local) {
        flags_.set_local = true;
        fact(NamedAction::SetLocal, name);
        return {StatementKind::Session, false, false, "SET LOCAL"};
    }
    flags_.set = true;
    bool reset = kind == "VAR_RESET" || kind == "VAR_SET_DEFAULT";
    if (kind == "VAR_RESET_ALL") {
        fact(NamedAction::ResetAll, "");
    } else if (name == "default_transaction_isolation") {
        Isolation iso = Isolation::Default;
        if (!reset) {
            iso = args == kNone ? Isolation::Unchanged
                                : parse_isolation(const_text(j_.first(args)).value_or(""));
        }
        fact(reset ? NamedAction::Reset : NamedAction::Set, name, iso);
    } else {
        fact(reset ? NamedAction::Reset : NamedAction::Set, name);
    }
    if (kind == "VAR_RESET_ALL") {
        flags_.read_only_default = ReadOnlyDefault::Off;
    } else if (name == "default_transaction_read_only") {
        if (kind == "VAR_SET_VALUE" && args != kNone) {
            if (auto v = const_text(j_.first(args))) {
                if (auto b = parse_bool(*v)) {
                    flags_.read_only_default = *b ? ReadOnlyDefault::On : ReadOnlyDefault::Off;
                }
            }
        } else if (kind == "VAR_SET_DEFAULT" || kind == "VAR_RESET") {
            flags_.read_only_default = ReadOnlyDefault::Off;
        }
    }
    return {StatementKind::Session, false, false, kind == "VAR_RESET" ? "RESET" : "SET"};
}

Walker::Stmt Walker::transaction(std::uint32_t body) {
    std::string_view kind = j_.at(j_.get(body, "kind")).text;
    if (kind == "TRANS_STMT_BEGIN" || kind == "TRANS_STMT_START") {
        std::optional<bool> ro = defelem_bool(j_.get(body, "options"), "transaction_read_only");
        if (Isolation iso = defelem_isolation(j_.get(body, "options"));
            iso != Isolation::Unchanged) {
            flags_.isolation = iso;
        }
        return {StatementKind::TransactionBegin, ro.value_or(false), ro.has_value() && !*ro,
                "BEGIN", true};
    }
    if (kind == "TRANS_STMT_COMMIT" || kind == "TRANS_STMT_ROLLBACK" ||
        kind == "TRANS_STMT_PREPARE") {
        return {StatementKind::TransactionEnd, false, false, "COMMIT/ROLLBACK"};
    }
    if (kind == "TRANS_STMT_SAVEPOINT" || kind == "TRANS_STMT_RELEASE" ||
        kind == "TRANS_STMT_ROLLBACK_TO") {
        fact(kind == "TRANS_STMT_SAVEPOINT" ? NamedAction::Savepoint
             : kind == "TRANS_STMT_RELEASE" ? NamedAction::Release
                                            : NamedAction::RollbackTo,
             j_.string(j_.get(body, "savepoint_name")));
        return {StatementKind::Session, false, false, "SAVEPOINT"};
    }
    // COMMIT PREPARED / ROLLBACK PREPARED run outside a block and finish a master's
    // prepared transaction.
    return {StatementKind::Write, false, false, "COMMIT/ROLLBACK PREPARED"};
}

Walker::Stmt Walker::statement(std::uint32_t wrapper) {
    std::uint32_t body = wrapper == kNone ? kNone : j_.first(wrapper);
    if (body == kNone) return {StatementKind::Write, false, false, "unknown statement"};
    std::string_view type = j_.at(body).key;
    write_ = false;

    if (type == "SelectStmt") return select_like(body, "SELECT");
    if (type == "VariableShowStmt") return show(body);
    if (type == "ExplainStmt") {
        std::uint32_t query = j_.get(body, "query");
        if (defelem_bool(j_.get(body, "options"), "analyze").value_or(false)) {
            Stmt inner = statement(query);
            if (inner.kind == StatementKind::Read) inner.reason = "EXPLAIN ANALYZE";
            return inner;
        }
        walk(query, false);
        return {StatementKind::Read, false, false, "EXPLAIN"};
    }
    if (type == "CopyStmt") {
        std::uint32_t from = j_.get(body, "is_from");
        if (from != kNone && j_.at(from).type == JType::True) {
            flags_.copy_from = true;
            walk(body, false);
            return {StatementKind::Write, false, false, "COPY FROM"};
        }
        if (j_.get(body, "filename") != kNone || j_.get(body, "is_program") != kNone) {
            walk(body, false);
            return {StatementKind::Write, false, false, "COPY to a server file or program"};
        }
        std::uint32_t query = j_.get(body, "query");
        if (query != kNone) {
            Stmt inner = statement(query);
            if (inner.kind == StatementKind::Read) inner.reason = "COPY TO STDOUT";
            return inner;
        }
        walk(body, false);
        return {StatementKind::Read, false, false, "COPY TO STDOUT"};
    }
    if (type == "VariableSetStmt") return variable_set(body);
    if (type == "TransactionStmt") return transaction(body);
    if (type == "DiscardStmt") {
        std::string_view target = j_.at(j_.get(body, "target")).text;
        flags_.discard = target == "DISCARD_ALL"         ? Discard::All
                         : target == "DISCARD_TEMP"      ? Discard::Temp
                         : target == "DISCARD_SEQUENCES" ? Discard::Sequences
                                                         : Discard::Plans;
        if (flags_.discard == Discard::All) {
            flags_.set = true;
            fact(NamedAction::ResetAll, "");
            flags_.read_only_default = ReadOnlyDefault::Off;
            flags_.unpins |= kPinAll;
        } else if (flags_.discard == Discard::Temp) {
            flags_.unpins |= kPinTempTable | kPinPgTemp;
        } else if (flags_.discard == Discard::Sequences) {
            flags_.unpins |= kPinSequence;
        }
        return discard_kind(flags_.discard);
    }
    if (type == "ListenStmt") {
        pin(kPinListen, "LISTEN");
        return {StatementKind::Session, false, false, "LISTEN"};
    }
    if (type == "UnlistenStmt") {
        if (j_.get(body, "conditionname") == kNone) flags_.unpins |= kPinListen;
        return {StatementKind::Session, false, false, "UNLISTEN"};
    }
    if (type == "PrepareStmt") {
        pin(kPinPrepare, "PREPARE");
        walk(j_.get(body, "query"), false);
        return {StatementKind::Session, false, false, "PREPARE"};
    }
    if (type == "DeallocateStmt") {
        if (j_.get(body, "name") == kNone) flags_.unpins |= kPinPrepare;
        // It drops protocol-level statements too: the session's registry must follow.
        fact(NamedAction::Deallocate, j_.string(j_.get(body, "name")));
        return {StatementKind::Session, false, false, "DEALLOCATE"};
    }
    if (type == "FetchStmt") return {StatementKind::Session, false, false, "FETCH/MOVE"};
    if (type == "ClosePortalStmt") {
        if (j_.get(body, "portalname") == kNone) flags_.unpins |= kPinHoldCursor;
        return {StatementKind::Session, false, false, "CLOSE"};
    }
    if (type == "DeclareCursorStmt") {
        std::uint32_t opts = j_.get(body, "options");
        constexpr long kCursorOptHold = 0x20;  // CURSOR_OPT_HOLD, parsenodes.h
        if (opts != kNone) {
            long bits = std::strtol(std::string(j_.at(opts).text).c_str(), nullptr, 10);
            if (bits & kCursorOptHold) pin(kPinHoldCursor, "cursor WITH HOLD");
        }
        Stmt inner = statement(j_.get(body, "query"));
        if (inner.kind == StatementKind::Read) inner.reason = "DECLARE CURSOR";
        return inner;
    }

    // Everything else runs on the master. DML and CALL execute their expressions (which
    // may pin); DDL bodies (CREATE FUNCTION ... BEGIN ATOMIC, column defaults) do not.
    std::string_view reason = "utility or DDL statement";
    bool executes = false;
    if (type == "InsertStmt" || type == "UpdateStmt" || type == "DeleteStmt" ||
        type == "MergeStmt") {
        reason = "INSERT/UPDATE/DELETE/MERGE";
        executes = true;
    } else if (type == "CallStmt" || type == "ExecuteStmt" || type == "CreateTableAsStmt") {
        reason = type == "CallStmt"      ? "CALL"
                 : type == "ExecuteStmt" ? "EXECUTE of a prepared statement"
                                         : "CREATE TABLE AS";
        executes = true;
    } else if (type == "NotifyStmt") {
        reason = "NOTIFY";
    } else if (type == "DoStmt") {
        reason = "DO";
    }
    walk(body, executes);
    return {StatementKind::Write, false, false, reason};
}

// The value of Number node `node`, or `otherwise` when absent.
std::size_t number(const Json& j, std::uint32_t node, std::size_t otherwise) {
    if (node == kNone || j.at(node).type != JType::Number) return otherwise;
    return std::strtoul(std::string(j.at(node).text).c_str(), nullptr, 10);
}

// The statements of one text, folded with merge(); `flags` holds what the walk gathered.
Classification combine(const Classification& flags, std::vector<Walker::Stmt>& stmts) {
    Classification c;
    if (stmts.empty()) {
        c.kind = StatementKind::Read;
        c.reason = "empty query";
    }
    bool modes = !stmts.empty();
    bool opens_block = false;
    for (std::size_t i = 0; i < stmts.size(); ++i) {
        opens_block = opens_block || stmts[i].kind == StatementKind::TransactionBegin;
        Classification one;
        one.kind = stmts[i].kind;
        one.reason = stmts[i].reason;
        one.statements = 1;
        // BEGIN; SET TRANSACTION READ ONLY: a read-only block, decided before its first query.
        bool then_ro =
            i + 1 < stmts.size() && stmts[i + 1].kind == StatementKind::SetTransactionReadOnly;
        one.read_only =
            stmts[i].read_only || (one.kind == StatementKind::TransactionBegin && then_ro);
        one.read_write = stmts[i].read_write;
        modes = modes && stmts[i].modes;
        c = i == 0 ? one : merge(c, one);
    }
    Classification out = flags;
    out.kind = c.kind;
    out.reason = c.reason;
    out.read_only = c.read_only;
    out.read_write = c.read_write;
    out.multi = stmts.size() > 1;
    out.transaction_modes = modes;
    out.opens_block = opens_block;
    out.statements = static_cast<std::uint16_t>(std::min<std::size_t>(stmts.size(), 0xffff));
    return out;
}

}  // namespace

Classifier::Classifier(std::vector<std::string> write_functions) {
    for (const std::string& f : write_functions) {
        if (!f.empty()) write_functions_.push_back(ascii_lowered(f));
    }
}

Classification Classifier::classify(std::string_view sql) const {
    Classification c;
    if (sql.find('\0') != std::string_view::npos) {
        c.parse_error = true;
        c.reason = "NUL byte in query text";
        return c;
    }
    std::string text(sql);
    // The tree's strings are views into pg_query's output: keep it until the walk is done.
    struct Parsed {
        PgQueryParseResult r;
        ~Parsed() { pg_query_free_parse_result(r); }
    } parsed{pg_query_parse(text.c_str())};
    if (parsed.r.error != nullptr || parsed.r.parse_tree == nullptr) {
        c.parse_error = true;
        c.reason = "the parser refused it";
        return c;
    }
    Json j;
    bool ok = j.parse(parsed.r.parse_tree);
    std::uint32_t list = ok ? j.get(0, "stmts") : kNone;
    if (!ok || (list != kNone && j.at(list).type != JType::Array)) {
        c.parse_error = true;
        c.reason = "unreadable parse tree";
        return c;
    }
    Walker walker(j, write_functions_);
    std::vector<Walker::Stmt> stmts;
    if (list != kNone) {
        for (std::uint32_t item = j.first(list); item != kNone; item = j.next(item)) {
            // pg_query leaves out a zero location and the length of a last statement.
            std::size_t at = std::min(number(j, j.get(item, "stmt_location"), 0), sql.size());
            std::size_t len =
                std::min(number(j, j.get(item, "stmt_len"), sql.size() - at), sql.size() - at);
            while (len > 0 && std::isspace(static_cast<unsigned char>(sql[at]))) {
                ++at;
                --len;
            }
            walker.at_statement(static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(len));
            stmts.push_back(walker.statement(j.get(item, "stmt")));
        }
    }
    Classification out = combine(walker.flags(), stmts);
    out.hint = parse_hint(sql);
    return out;
}

}  // namespace pgrouter
