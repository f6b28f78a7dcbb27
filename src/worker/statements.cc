// The client's prepared statements per backend (see statements.h).
#include "pgrouter/worker/statements.h"

#include <algorithm>

#include "pgrouter/proto/encoder.h"

namespace pgrouter {

const Statement& Statements::define(std::string_view name, std::string_view parse,
                                    std::string_view sql, const Classification& cls) {
    Pending pending;
    pending.version = versions_ + 1;
    pending.name = name;
    auto it = statements_.find(name);
    if (name.empty()) {
        // Undone, the unnamed statement is none (undo()), whatever came before: a pending
        // Parse of it is moot once another follows (a long batch keeps one, not one each).
        auto moot = std::find_if(pending_.begin(), pending_.end(),
                                 [](const Pending& p) { return p.name.empty(); });
        if (moot != pending_.end()) pending_.erase(moot);
    } else if (it != statements_.end()) {
        pending.previous = std::move(it->second);
    }
    Statement& st = statements_[std::string(name)];
    st = Statement{std::string(parse),
                   static_cast<std::size_t>(sql.data() - parse.data()),
                   sql.size(),
                   cls,
                   ++versions_,
                   {},
                   false,
                   {}};
    pending_.push_back(std::move(pending));
    return st;
}

void Statements::rewrite(std::string_view name, std::string_view parse, std::string_view sql,
                         const Classification& cls) {
    auto it = statements_.find(name);
    if (it == statements_.end()) return;
    Statement& st = it->second;
    st.parse.assign(parse);
    st.sql_at = static_cast<std::size_t>(sql.data() - parse.data());
    st.sql_size = sql.size();
    st.cls = cls;
}

void Statements::settle(const std::vector<std::uint64_t>& completes, std::size_t answered) {
    auto first = std::find_if(completes.begin(), completes.end(), is_client_parse);
    if (first == completes.end()) return;
    // Older than the unit's and still pending: their units were never answered.
    while (!pending_.empty() && pending_.front().version < *first) undo(pending_.front().version);
    for (std::size_t i = 0; i < completes.size(); ++i) {
        if (!is_client_parse(completes[i])) continue;
        if (i < answered) {
            confirm(completes[i]);
        } else {
            undo(completes[i]);
        }
    }
    if (pending_.empty()) std::vector<Pending>().swap(pending_);  // an idle session keeps none
}

std::vector<Statements::Pending>::iterator Statements::pending(std::uint64_t version) {
    auto it = std::lower_bound(pending_.begin(), pending_.end(), version,
                               [](const Pending& p, std::uint64_t v) { return p.version < v; });
    return it != pending_.end() && it->version == version ? it : pending_.end();
}

void Statements::confirm(std::uint64_t version) {
    auto it = pending(version);
    if (it != pending_.end()) pending_.erase(it);
}

// The server never took the Parse that defined `version`. A later Parse of the same name,
// still pending, replaced it already: that one then replaces what this one replaced (and
// its backend had what this one's had), so that undoing it too goes back past both.
void Statements::undo(std::uint64_t version) {
    auto it = pending(version);
    if (it == pending_.end()) return;
    Pending p = std::move(*it);
    pending_.erase(it);
    if (p.name.empty()) {
        // PostgreSQL drops the unnamed statement before it parses the new one: after a
        // refused Parse there is none (and when the Parse was only skipped, a statement
        // unknown here fails where one re-parsed from a stale copy would run). define()
        // kept no previous one.
        p.had = 0;
    }
    auto current = statements_.find(p.name);
    if (current != statements_.end() && current->second.version == version) {
        if (p.previous) {
            current->second = std::move(*p.previous);
        } else {
            statements_.erase(current);
        }
    } else {
        for (Pending& q : pending_) {
            if (q.version > version && q.name == p.name && q.previous &&
                q.previous->version == version) {
                q.previous = std::move(p.previous);
                break;
            }
        }
    }
    auto backend = backends_.find(p.slot);
    if (backend == backends_.end()) return;
    auto& have = backend->second.have;
    auto had = have.find(p.name);
    if (had != have.end() && had->second == version) {
        if (p.had != 0) {
            had->second = p.had;
        } else {
            have.erase(had);
        }
        return;
    }
    for (Pending& q : pending_) {
        if (q.version > version && q.slot == p.slot && q.name == p.name && q.had == version) {
            q.had = p.had;
            break;
        }
    }
}

const Statement* Statements::find(std::string_view name) const {
    auto it = statements_.find(name);
    return it == statements_.end() ? nullptr : &it->second;
}

bool Statements::backend_has_named(int slot) const {
    auto b = backends_.find(slot);
    if (b == backends_.end()) return false;
    const auto& have = b->second.have;
    return have.size() > (have.contains(std::string_view()) ? 1U : 0U);
}

bool Statements::backend_has(int slot, std::string_view name) const {
    auto b = backends_.find(slot);
    const Statement* st = find(name);
    if (b == backends_.end() || st == nullptr) return false;
    auto have = b->second.have.find(name);
    return have != b->second.have.end() && have->second == st->version;
}

void Statements::note_shape(std::string_view name, const std::string& shape,
                            const std::string& params) {
    auto it = statements_.find(name);
    if (it == statements_.end()) return;
    if (it->second.shape != shape) it->second.shape = shape;  // a statement run again: same
    if (!params.empty()) it->second.params = params;
    it->second.described = true;
}

std::vector<std::string> Statements::to_verify(int slot, const StatementRefs& refs) const {
    std::vector<std::string> out;
    for (const std::string& name : refs.uses) {
        const Statement* st = find(name);
        if (st == nullptr || !st->described || refs.parsed.count(name) != 0) continue;
        if (backend_has(slot, name)) continue;
        if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
    }
    return out;
}

void Statements::reparse(int slot, const std::vector<std::string>& names, std::string& out) {
    Backend& backend = backends_[slot];
    for (const std::string& name : names) {
        auto it = statements_.find(name);
        if (it == statements_.end()) continue;
        out += it->second.parse;
        backend.have[name] = it->second.version;
    }
}

void Statements::close_on(int slot, const std::vector<std::string>& names, std::string& out) {
    Backend& backend = backends_[slot];
    for (const std::string& name : names) {
        proto::MessageBuilder(out, proto::FrontendMsg::Close).u8('S').cstr(name);
        backend.have.erase(name);
    }
}

void Statements::deallocated(int slot, std::string_view name) {
    std::vector<std::string> names;
    if (!name.empty()) {
        if (statements_.find(name) != statements_.end()) names.emplace_back(name);
    } else {
        for (const auto& [n, st] : statements_) {
            if (!n.empty()) names.push_back(n);
        }
    }
    for (const std::string& n : names) {
        for (auto& [other_slot, other] : backends_) {
            if (other.have.erase(n) != 0 && other_slot != slot) other.to_close.insert(n);
        }
        statements_.erase(n);
    }
}

int Statements::prepare(int slot, const StatementRefs& refs, std::string& out) {
    Backend& backend = backends_[slot];
    int hidden = 0;
    for (const std::string& name : backend.to_close) {
        proto::MessageBuilder(out, proto::FrontendMsg::Close).u8('S').cstr(name);
        hidden += 1;
    }
    backend.to_close.clear();
    for (const std::string& name : refs.uses) {
        auto it = statements_.find(name);
        if (it == statements_.end() || refs.parsed.count(name) != 0) continue;
        if (it->second.parse.empty()) continue;  // too long to keep: only where it was parsed
        auto have = backend.have.find(name);
        if (have != backend.have.end() && have->second == it->second.version) continue;
        out += it->second.parse;  // this backend has not seen the statement
        backend.have[name] = it->second.version;
        hidden += 1;
    }
    for (std::uint64_t version : refs.completes) {
        // Taken for granted (a unit after it may use it) until the server answers.
        auto p = is_client_parse(version) ? pending(version) : pending_.end();
        if (p == pending_.end()) continue;
        std::uint64_t& have = backend.have[p->name];
        p->slot = slot;
        p->had = have;
        have = version;
    }
    for (const std::string& name : refs.closed) {
        backend.have.erase(name);
        for (auto& [other_slot, other] : backends_) {
            if (other_slot != slot && other.have.erase(name) != 0) other.to_close.insert(name);
        }
        // A Close then a new Parse of a name in one unit defines it afresh (the order is
        // not kept, so a named statement parsed in the unit stays); the unnamed one goes.
        if (name.empty() || refs.parsed.count(name) == 0) statements_.erase(name);
    }
    return hidden;
}

}  // namespace pgrouter
