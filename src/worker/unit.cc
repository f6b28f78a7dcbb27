// The unit cutter (see unit.h).
#include "pgrouter/worker/unit.h"

#include <algorithm>

#include "pgrouter/proto/payload.h"

namespace pgrouter {

using proto::FrontendMsg;

namespace {
constexpr std::size_t kHeaderSize = 5;
constexpr std::size_t kKeptCapacity = 64 * 1024;  // beyond this a unit's buffer is let go
}  // namespace

void UnitCutter::begin() {
    if (!complete_) return;
    // A new unit; the buffers keep their capacity unless a long message swelled them.
    unit_.bytes.clear();
    if (unit_.bytes.capacity() > kKeptCapacity) std::string().swap(unit_.bytes);
    unit_.cls = Classification{};
    unit_.sync = true;
    unit_.refs.clear();
    unit_.changes.clear();
    unit_.described.clear();
    unit_.answers = -1;
    answers_ = 0;
    portals_.clear();
    have_cls_ = false;
    complete_ = false;
}

bool UnitCutter::takes_long(char type) {
    return type == static_cast<char>(FrontendMsg::Query) ||
           type == static_cast<char>(FrontendMsg::Parse);
}

Unit& UnitCutter::add_long(char type, std::string_view first) {
    begin();
    unit_.bytes.append(first);
    unit_.cls = Classification{};  // Write: the master
    // What it does to the session is not known (a SET in it would be replayed nowhere): the
    // session stays on the master from then on, as for any state that cannot be copied.
    unit_.cls.pins = kPinUnparsed;
    unit_.cls.pin_reason = "a statement too long to classify";
    if (type == static_cast<char>(FrontendMsg::Parse)) {
        std::string_view name;
        proto::PayloadReader in(first.substr(std::min(first.size(), kHeaderSize)));
        if (in.read_cstr(name)) {
            unit_.refs.completes.push_back(statements_.define(name, {}, {}, unit_.cls).version);
            unit_.refs.parsed.insert(std::string(name));
        }
        unit_.sync = false;
    }
    complete_ = true;
    return unit_;
}

bool UnitCutter::add(const proto::Message& m) {
    begin();
    unit_.bytes.append(m.bytes());
    if (m.is(FrontendMsg::Query)) {
        // Extended messages not yet synced travel with the Query as one unit (the backend
        // answers them all with the Query's one ReadyForQuery), and their statements count:
        // pgJDBC's unsynced BEGIN before a simple SAVEPOINT opens a read-write block.
        std::string_view sql = m.payload.substr(0, m.payload.find('\0'));
        Classification query = classify_(sql);
        unit_.cls = have_cls_ ? merge(unit_.cls, query) : query;
        collect_changes(sql, query, unit_.changes);
        for (const SessionChange& c : unit_.changes) {
            // DEALLOCATE of a protocol-level statement: it must exist where the unit runs.
            if (c.action == NamedAction::Deallocate && !c.name.empty() &&
                statements_.find(c.name) != nullptr) {
                unit_.refs.uses.push_back(c.name);
            }
        }
        return complete_ = true;
    }
    if (m.is(FrontendMsg::FunctionCall)) {
        unit_.cls = Classification{};  // Write: the master
        return complete_ = true;
    }
    extended(m);
    if (m.is(FrontendMsg::Sync) || m.is(FrontendMsg::Flush)) {
        if (!have_cls_) unit_.cls.kind = StatementKind::Read;  // Describe/Close only
        unit_.sync = m.is(FrontendMsg::Sync);
        if (!unit_.sync) unit_.answers = answers_;
        return complete_ = true;
    }
    return false;
}

void UnitCutter::use(std::string_view name) {
    const Statement* st = statements_.find(name);
    if (st == nullptr) return;
    unit_.refs.uses.emplace_back(name);
    unit_.cls = have_cls_ ? merge(unit_.cls, st->cls) : st->cls;
    have_cls_ = true;
}

// Remembers statements and what the extended messages of a unit refer to.
void UnitCutter::extended(const proto::Message& m) {
    // ParseComplete, ParameterDescription + RowDescription/NoData, RowDescription/NoData,
    // CloseComplete; anything else answers in ways not counted here.
    int answers = m.is(FrontendMsg::Parse) || m.is(FrontendMsg::Close) ? 1
                  : m.is(FrontendMsg::Describe) ? (m.payload.starts_with('S') ? 2 : 1)
                  : m.is(FrontendMsg::Flush)    ? 0
                                                : -1;
    answers_ = answers_ < 0 || answers < 0 ? -1 : answers_ + answers;
    proto::PayloadReader in(m.payload);
    std::string_view name;
    if (m.is(FrontendMsg::Parse)) {
        std::string_view sql;
        if (!in.read_cstr(name) || !in.read_cstr(sql)) return;
        Classification parsed = classify_(sql);
        // The text inside the stored message: type, length, name and its NUL come first.
        std::string_view bytes = m.bytes();
        const Statement& st =
            statements_.define(name, bytes, bytes.substr(5 + name.size() + 1, sql.size()), parsed);
        unit_.refs.completes.push_back(st.version);
        unit_.cls = have_cls_ ? merge(unit_.cls, parsed) : parsed;
        have_cls_ = true;
        unit_.refs.parsed.insert(std::string(name));
    } else if (m.is(FrontendMsg::Bind)) {
        std::string_view portal;
        if (!in.read_cstr(portal) || !in.read_cstr(name)) return;
        use(name);
        portals_.emplace_back(portal, name);
        // A SET or SAVEPOINT through the extended protocol (a prepared SET, pgJDBC, psycopg).
        if (const Statement* st = statements_.find(name)) {
            collect_changes(st->sql(), st->cls, unit_.changes);
        }
    } else if (m.is(FrontendMsg::Describe) || m.is(FrontendMsg::Close)) {
        std::uint8_t what = 0;
        if (!in.read_u8(what) || !in.read_cstr(name)) return;
        if (m.is(FrontendMsg::Close)) unit_.refs.completes.push_back(kClientClose);
        if (m.is(FrontendMsg::Describe) && what == 'P') {
            auto bound = std::find_if(portals_.rbegin(), portals_.rend(),
                                      [&](const auto& p) { return p.first == name; });
            unit_.described.push_back(bound != portals_.rend() ? bound->second : kUnknownStatement);
        }
        if (what != 'S') return;
        if (m.is(FrontendMsg::Describe)) unit_.described.emplace_back(name);
        use(name);
        if (m.is(FrontendMsg::Close)) unit_.refs.closed.insert(std::string(name));
    }
}

}  // namespace pgrouter
