// The session's state apart from its connections (see session_state.h).
#include "pgrouter/worker/session_state.h"

#include <algorithm>

namespace pgrouter {

namespace {

bool replayed(NamedAction a) {
    return a == NamedAction::Set || a == NamedAction::Reset || a == NamedAction::ResetAll;
}

bool touches_controls(const std::vector<SessionChange>& changes) {
    return std::any_of(changes.begin(), changes.end(), [](const SessionChange& c) {
        return c.action == NamedAction::ResetAll || is_control_name(c.name);
    });
}

// Applies one recorded statement (`key` empty: RESET ALL or DISCARD ALL) to `v`. A value the
// session refused never got this far; one that came another way (set_config()) is ignored.
void apply_control(ControlValues& v, const ControlValues& start, std::string_view key,
                   std::string_view text) {
    if (key.empty()) {
        v = start;
        return;
    }
    auto c = find_control(key);
    if (!c) return;
    ControlStatement st = read_control_statement(text);
    using Verb = ControlStatement::Verb;
    if (st.verb == Verb::Reset || (st.verb == Verb::SetLocal && st.values.empty())) {
        v.reset(*c, start);
    } else if ((st.verb == Verb::Set || st.verb == Verb::SetLocal) && st.values.size() == 1) {
        (void)v.set(*c, st.values.front());
    }
}

}  // namespace

void collect_changes(std::string_view text, const Classification& cls,
                     std::vector<SessionChange>& out) {
    for (const NamedFact& f : cls.facts()) {
        if (f.action == NamedAction::SetLocal && !is_control_name(cls.name_of(f))) continue;
        out.push_back(SessionChange{f.action, f.isolation, std::string(cls.name_of(f)),
                                    std::string(text.substr(f.stmt_at, f.stmt_size))});
    }
    if (cls.facts_truncated && cls.set) {
        out.push_back(SessionChange{NamedAction::Set, Isolation::Unchanged, {}, std::string(text)});
    }
}

void SetLog::record(const SessionChange& c) {
    if (c.action == NamedAction::ResetAll) {
        // Everything before it is undone by it: a backend catching up runs it first.
        entries_.clear();
        entries_.push_back(Entry{{}, c.text, Isolation::Default, ++seq_, true});
        serializable_default_ = false;
        return;
    }
    if (!replayed(c.action)) return;
    const std::string& key = c.name.empty() ? c.text : c.name;
    auto old = std::find_if(entries_.begin(), entries_.end(),
                            [&](const Entry& e) { return e.key == key; });
    if (old != entries_.end()) entries_.erase(old);
    entries_.push_back(Entry{key, c.text, c.isolation, ++seq_, c.action == NamedAction::Reset});
    if (key == "default_transaction_isolation") {
        serializable_default_ = c.isolation == Isolation::Serializable;
    }
}

bool SessionState::finish(const UnitOutcome& u) {
    bool touched = controls_in_block_ || (u.changes != nullptr && touches_controls(*u.changes));
    bool pins_changed = finish_unit(u);
    if (touched) update_controls();
    return pins_changed;
}

std::optional<ControlError> SessionState::start_controls(
    std::span<const std::pair<std::string, std::string>> settings) {
    ControlValues v;
    for (const auto& [name, value] : settings) {
        auto c = find_control(name);
        if (!c) return unknown_control(name);
        if (auto e = v.set(*c, value)) return e;
    }
    start_controls_ = v;
    controls_ = v;
    route_.controls = v.controls();
    return std::nullopt;
}

void SessionState::update_controls() {
    // The log's values, then the open block's changes in the order they were made: a SET
    // after a SET LOCAL of the same name wins, a SET LOCAL after a SET masks it until the
    // block ends (PostgreSQL's GUC stack). The savepoint markers and what a rollback to one
    // took back are already out of pending_.
    ControlValues v = start_controls_;
    for (const SetLog::Entry& e : log_.entries()) apply_control(v, start_controls_, e.key, e.text);
    for (const SessionChange& c : pending_) {
        if (c.action == NamedAction::ResetAll) {
            v = start_controls_;
        } else if (c.action == NamedAction::Set || c.action == NamedAction::Reset ||
                   c.action == NamedAction::SetLocal) {
            apply_control(v, start_controls_, c.name, c.text);
        }
    }
    controls_ = v;
    route_.controls = v.controls();
    controls_in_block_ = in_block();
}

bool SessionState::finish_unit(const UnitOutcome& u) {
    bool was_in_block = in_block();
    txn_status_ = u.status;
    route_.block_slot = in_block() ? u.slot : -1;
    // Only writes count: BEGIN/COMMIT of a block that only read leave reads free.
    bool wrote = u.on_master && (u.cls->kind == StatementKind::Write || u.cls->pins != 0);
    if (in_block()) {
        block_wrote_ = block_wrote_ || wrote;
    } else {
        if (wrote || block_wrote_) note_commit(route_.ryw, u.now_ns);
        block_wrote_ = false;
    }
    if (u.error) {
        if (!in_block()) pending_.clear();
        // A session-level advisory lock ignores transactions: one taken (or released) by a
        // statement before the one that failed, or in a block rolled back, stays so. It may
        // be held: pinned, and the server asked.
        auto locks =
            static_cast<std::uint16_t>((u.cls->pins | u.cls->may_release) & kPinAdvisoryLock);
        return set_pins(u, static_cast<std::uint16_t>(pins_ | (u.cls->pins & kPinAdvisoryLock)),
                        locks);
    }
    note_changes(u, was_in_block);
    if (u.cls->read_only_default == ReadOnlyDefault::On) route_.read_only_default = true;
    if (u.cls->read_only_default == ReadOnlyDefault::Off) route_.read_only_default = false;
    auto pins = static_cast<std::uint16_t>((pins_ & ~u.cls->unpins) | u.cls->pins);
    return set_pins(u, pins, u.cls->may_release);
}

bool SessionState::set_pins(const UnitOutcome& u, std::uint16_t pins, std::uint16_t unsure) {
    if ((unsure & kPinAdvisoryLock) != 0) advisory_unsure_ = true;
    if ((pins & kPinAdvisoryLock) == 0) advisory_unsure_ = false;
    if (pins == pins_) return false;
    pins_ = pins;
    route_.pinned_slot = pins_ != 0 ? u.slot : -1;
    route_.pinned_epoch = pins_ != 0 ? u.epoch : 0;
    return true;
}

bool SessionState::advisory_check_behind(const Classification& cls) const {
    auto after = static_cast<std::uint16_t>((pins_ & ~cls.unpins) | cls.pins);
    return (cls.may_release & kPinAdvisoryLock) != 0 && after == kPinAdvisoryLock &&
           !cls.opens_block && !cls.copy_from && !in_block();
}

bool SessionState::advisory_locks_gone() {
    advisory_unsure_ = false;
    if ((pins_ & kPinAdvisoryLock) == 0) return false;
    pins_ = static_cast<std::uint16_t>(pins_ & ~kPinAdvisoryLock);
    if (pins_ == 0) {
        route_.pinned_slot = -1;
        route_.pinned_epoch = 0;
    }
    return true;
}

void SessionState::note_changes(const UnitOutcome& u, bool was_in_block) {
    for (const SessionChange& c : *u.changes) pending_change(c);
    if (in_block()) return;
    // The unit ended the block, or ran outside one: its changes hold unless rolled back.
    bool keep = (!was_in_block && u.tag != "ROLLBACK") || u.tag == "COMMIT" || u.tag.empty();
    if (keep) {
        for (const SessionChange& c : pending_) log_.record(c);
    }
    pending_.clear();
}

void SessionState::pending_change(const SessionChange& c) {
    auto marker = [&] {
        for (std::size_t i = pending_.size(); i-- > 0;) {
            if (pending_[i].action == NamedAction::Savepoint && pending_[i].name == c.name) {
                return i;
            }
        }
        return pending_.size();
    };
    switch (c.action) {
        case NamedAction::RollbackTo:
            // The savepoint stays; what was changed after it is undone.
            if (std::size_t at = marker(); at < pending_.size()) pending_.resize(at + 1);
            break;
        case NamedAction::Release:
            // The savepoint and those made after it go; their changes stay.
            if (std::size_t at = marker(); at < pending_.size()) {
                pending_.erase(
                    std::remove_if(
                        pending_.begin() + static_cast<std::ptrdiff_t>(at), pending_.end(),
                        [](const SessionChange& p) { return p.action == NamedAction::Savepoint; }),
                    pending_.end());
            }
            break;
        default:  // SetLocal too: it goes with its savepoint, and is never logged
            pending_.push_back(c);
            break;
    }
}

void MovableBlock::finished(bool was_in_block, bool in_block, bool on_standby, bool error,
                            std::string_view text) {
    bool start = !was_in_block || movable();
    if (!in_block || !on_standby || error || text.empty() || !start) {
        start_.clear();
        return;
    }
    if (!was_in_block) start_.clear();
    start_.emplace_back(text);
}

void SessionState::block_lost() {
    txn_status_ = proto::TransactionStatus::Idle;
    route_.block_slot = -1;
    block_wrote_ = false;
    pending_.clear();
    if (controls_in_block_) update_controls();
}

}  // namespace pgrouter
