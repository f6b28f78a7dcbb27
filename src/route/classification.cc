// The Classification value (see classify.h): its named facts, how the classifications of
// two statements (or units) merge, and the kinds' names.
#include <algorithm>

#include "pgrouter/route/classify.h"

namespace pgrouter {

namespace {

// The strength of a kind when statements or units are merged, strongest first.
int strength(StatementKind k) {
    switch (k) {
        case StatementKind::Write:
            return 0;
        case StatementKind::TransactionBegin:
            return 1;
        case StatementKind::Read:
            return 2;
        case StatementKind::Session:
            return 3;
        case StatementKind::SetTransactionReadOnly:
            return 4;
        case StatementKind::TransactionEnd:
            return 5;
    }
    return 0;
}

}  // namespace

bool Classification::add_fact(NamedFact f, std::string_view name) {
    if (fact_count == kMaxFacts || name.size() > kNamesBytes - names_size_) {
        facts_truncated = true;
        return false;
    }
    f.name_at = names_size_;
    f.name_size = static_cast<std::uint8_t>(name.size());
    std::copy(name.begin(), name.end(), names_.begin() + names_size_);
    names_size_ = static_cast<std::uint16_t>(names_size_ + name.size());
    facts_[fact_count++] = f;
    return true;
}

Classification merge(const Classification& a, const Classification& b) {
    Classification c = a;
    if (strength(b.kind) < strength(a.kind)) {
        c.kind = b.kind;
        c.reason = b.reason;
    }
    bool a_begin = a.kind == StatementKind::TransactionBegin;
    bool b_begin = b.kind == StatementKind::TransactionBegin;
    if (a_begin && b_begin) {
        c.read_only = a.read_only && b.read_only;
        c.read_write = (a.read_write && !a.read_only) || (b.read_write && !b.read_only);
    } else if (b_begin) {
        c.read_only = b.read_only;
        c.read_write = b.read_write;
    }
    if (c.kind != StatementKind::TransactionBegin) c.read_only = c.read_write = false;
    c.set = a.set || b.set;
    c.set_local = a.set_local || b.set_local;
    c.names_objects = a.names_objects || b.names_objects;
    c.names_controls = a.names_controls || b.names_controls;
    c.hint.primary = a.hint.primary || b.hint.primary;
    c.hint.staleness = a.hint.staleness.tighter(b.hint.staleness);
    c.transaction_modes = a.transaction_modes && b.transaction_modes;
    c.multi = true;
    c.copy_from = a.copy_from || b.copy_from;
    c.opens_block = a.opens_block || b.opens_block;
    c.parse_error = a.parse_error || b.parse_error;
    if (b.read_only_default != ReadOnlyDefault::Unchanged)
        c.read_only_default = b.read_only_default;
    if (b.discard != Discard::None) c.discard = b.discard;
    if (b.isolation != Isolation::Unchanged) c.isolation = b.isolation;
    c.pins = static_cast<std::uint16_t>(a.pins | b.pins);
    c.unpins = static_cast<std::uint16_t>(a.unpins | b.unpins);
    c.may_release = static_cast<std::uint16_t>(a.may_release | b.may_release);
    if (c.pin_reason.empty()) c.pin_reason = b.pin_reason;
    if (c.server_local.empty()) c.server_local = b.server_local;
    c.statements = static_cast<std::uint16_t>(std::min(0xffff, a.statements + b.statements));
    c.facts_truncated =
        a.facts_truncated || b.facts_truncated || a.fact_count != 0 || b.fact_count != 0;
    c.fact_count = 0;
    c.names_size_ = 0;
    return c;
}

std::string_view kind_name(StatementKind kind) {
    switch (kind) {
        case StatementKind::Read:
            return "read";
        case StatementKind::Write:
            return "write";
        case StatementKind::TransactionBegin:
            return "begin";
        case StatementKind::TransactionEnd:
            return "end";
        case StatementKind::SetTransactionReadOnly:
            return "set-transaction-read-only";
        case StatementKind::Session:
            return "session";
    }
    return "?";
}

}  // namespace pgrouter
