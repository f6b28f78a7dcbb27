// The client's prepared statements per backend (see statements.h).
#include "pgrouter/worker/statements.h"

#include <algorithm>

#include "pgrouter/proto/encoder.h"

namespace pgrouter {

const Statement& Statements::define(std::string_view name, std::string_view parse,
                                    std::string_view sql, const Classification& cls) {
    Statement& st = statements_[std::string(name)];
    st = Statement{std::string(parse),
                   static_cast<std::size_t>(sql.data() - parse.data()),
                   sql.size(),
                   cls,
                   ++versions_,
                   {},
                   false,
                   {}};
    return st;
}

const Statement* Statements::find(std::string_view name) const {
    auto it = statements_.find(name);
    return it == statements_.end() ? nullptr : &it->second;
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
    for (const std::string& name : refs.parsed) {
        auto it = statements_.find(name);
        if (it != statements_.end()) backend.have[name] = it->second.version;
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
