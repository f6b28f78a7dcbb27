// The in-flight queue and the meaning of backend messages (see inflight.h).
#include "pgrouter/worker/inflight.h"

#include <algorithm>

#include "pgrouter/proto/payload.h"
#include "pgrouter/proto/sqlstate.h"

namespace pgrouter {

using proto::BackendMsg;

namespace {

// FATAL and PANIC end the backend's connection (PostgreSQL closes it right after): 57P01
// admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now and the like.
bool ends_connection(const proto::ErrorFields& e) {
    std::string_view severity =
        !e.severity_nonlocalized.empty() ? e.severity_nonlocalized : e.severity;
    return severity == "FATAL" || severity == "PANIC";
}

}  // namespace

void InflightQueue::push(InFlight f) {
    if (!units_.empty() && !units_.back().sync && units_.back().slot == f.slot) {
        InFlight& batch = units_.back();
        batch.sync = f.sync;
        batch.swallow += f.swallow;
        batch.cls = merge(batch.cls, f.cls);
        for (SessionChange& c : f.changes) batch.changes.push_back(std::move(c));
        return;
    }
    units_.push_back(std::move(f));
}

Answer InflightQueue::on_message(const proto::Message& m) {
    InFlight& f = units_.front();
    if (f.swallow > 0 && (m.is(BackendMsg::ParseComplete) || m.is(BackendMsg::CloseComplete))) {
        f.swallow -= 1;
        return Answer::Swallow;
    }
    if (m.is(BackendMsg::ErrorResponse)) {
        f.error = true;
        auto fields = proto::parse_error_fields(m.payload);
        if (fields && ends_connection(*fields)) {
            // Whatever the unit: a dying server's last word is about itself, not about the
            // statement (a held read is replayed; the others fail as with a lost backend).
            held_.clear();
            return Answer::Lost;
        }
        if (f.hold) {
            std::string_view code = fields ? std::string_view(fields->sqlstate) : "";
            // 25006: a write a standby refuses; 0A000: what a hot standby cannot do at
            // all (SERIALIZABLE). Either way the master can, and nothing was sent yet.
            if (code == proto::kSqlstateReadOnlySqlTransaction ||
                code == proto::kSqlstateFeatureNotSupported) {
                replay_ = true;
                replay_wrote_ = code == proto::kSqlstateReadOnlySqlTransaction;
                held_.clear();
                f.ghost = true;  // drop the rest of the standby's answer
                f.hold = false;
                return Answer::Replay;
            }
        }
        if (f.ghost) return Answer::GhostError;
    }
    if (m.is(BackendMsg::ReadyForQuery)) return Answer::Done;
    if (m.is(BackendMsg::CommandComplete)) f.tag.assign(m.payload.substr(0, m.payload.find('\0')));
    if (f.ghost) return Answer::Drop;
    if (!f.hold) return Answer::Forward;
    held_.append(m.bytes());
    // Once the read produced something (rows, a result, an error of its own), it cannot
    // be replayed without the client noticing: it is past the point of replay.
    if (m.is(BackendMsg::DataRow) || m.is(BackendMsg::CommandComplete) ||
        m.is(BackendMsg::CopyOutResponse) || m.is(BackendMsg::CopyInResponse) ||
        m.is(BackendMsg::EmptyQueryResponse) || m.is(BackendMsg::PortalSuspended) ||
        m.is(BackendMsg::ErrorResponse)) {
        return Answer::Release;
    }
    return Answer::Hold;
}

void InflightQueue::release_held(std::string& client_out) {
    if (!units_.empty()) units_.front().hold = false;
    client_out += held_;
    held_.clear();
}

bool InflightQueue::holds_read() const {
    return std::any_of(units_.begin(), units_.end(), [](const InFlight& f) { return f.hold; });
}

void InflightQueue::held_read_lost() {
    replay_ = true;
    replay_wrote_ = false;
    clear();
}

bool InflightQueue::take_replay(bool& wrote) {
    if (!replay_) return false;
    replay_ = false;
    wrote = replay_wrote_;
    return true;
}

}  // namespace pgrouter
