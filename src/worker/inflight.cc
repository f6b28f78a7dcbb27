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
    // Statements::prepare writes its Closes and Parses before the unit's own messages.
    f.completes.insert(f.completes.begin(), static_cast<std::size_t>(std::max(f.swallow, 0)),
                       kInjected);
    if (!units_.empty() && !units_.back().sync && units_.back().slot == f.slot) {
        InFlight& batch = units_.back();
        batch.sync = f.sync;
        batch.answers_left = -1;  // the rest of the batch answers in ways not counted
        batch.swallow += f.swallow;
        batch.completes.insert(batch.completes.end(), f.completes.begin(), f.completes.end());
        batch.cls = merge(batch.cls, f.cls);
        for (SessionChange& c : f.changes) batch.changes.push_back(std::move(c));
        for (std::string& d : f.described) batch.described.push_back(std::move(d));
        return;
    }
    units_.push_back(std::move(f));
}

StandbyRefusal standby_refusal(std::string_view sqlstate, std::string_view message) {
    if (sqlstate == proto::kSqlstateReadOnlySqlTransaction) return StandbyRefusal::Write;
    bool feature = (sqlstate == proto::kSqlstateFeatureNotSupported &&
                    (message == "cannot use serializable mode in a hot standby" ||
                     message == "cannot set transaction read-write mode during recovery")) ||
                   (sqlstate == proto::kSqlstateObjectNotInPrerequisiteState &&
                    message == "recovery is in progress");
    return feature ? StandbyRefusal::Feature : StandbyRefusal::None;
}

const InFlight* InflightQueue::last_answering() const {
    for (auto it = units_.rbegin(); it != units_.rend(); ++it) {
        if (!it->ghost) return &*it;
    }
    return nullptr;
}

bool InflightQueue::replaying_state(int slot) const {
    return std::any_of(units_.begin(), units_.end(), [slot](const InFlight& f) {
        return (f.replays_state || f.verifies_shape) && f.slot == slot;
    });
}

const std::string* InflightQueue::answers_describe(const proto::Message& m, std::string& params) {
    InFlight& f = units_.front();
    if (m.is(BackendMsg::ParameterDescription)) f.params.assign(m.payload);
    if (!m.is(BackendMsg::RowDescription) && !m.is(BackendMsg::NoData)) return nullptr;
    params = std::move(f.params);
    f.params.clear();
    if (f.described_at >= f.described.size()) return nullptr;  // a simple Query's, or unknown
    return &f.described[f.described_at++];
}

Answer InflightQueue::on_message(const proto::Message& m) {
    InFlight& f = units_.front();
    if (f.unapplied && f.hold) {
        // The session's state did not apply on this backend: it must not serve this read,
        // which runs again on the master, where that state was first applied.
        replay_ = true;
        replay_wrote_ = false;
        replay_sqlstate_ = {};
        held_.clear();
        f.ghost = true;  // drop what it answers
        f.hold = false;
        f.unapplied = false;
        return m.is(BackendMsg::ReadyForQuery) ? Answer::Done : Answer::Replay;
    }
    if ((m.is(BackendMsg::ParseComplete) || m.is(BackendMsg::CloseComplete)) &&
        f.completed < f.completes.size() && f.completes[f.completed++] == kInjected) {
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
            auto fields = proto::parse_error_fields(m.payload);
            StandbyRefusal refusal =
                fields ? standby_refusal(fields->sqlstate, fields->message) : StandbyRefusal::None;
            // What only a standby refuses: the master can run it, and nothing was sent yet.
            if (refusal != StandbyRefusal::None) {
                replay_ = true;
                replay_wrote_ = refusal == StandbyRefusal::Write;
                replay_sqlstate_ = replay_wrote_ ? proto::kSqlstateReadOnlySqlTransaction
                                   : fields->sqlstate == proto::kSqlstateFeatureNotSupported
                                       ? proto::kSqlstateFeatureNotSupported
                                       : proto::kSqlstateObjectNotInPrerequisiteState;
                held_.clear();
                f.ghost = true;  // drop the rest of the standby's answer
                f.hold = false;
                return Answer::Replay;
            }
        }
        if (f.replays_state) {
            for (std::size_t i = 1; i < units_.size(); ++i) {
                if (units_[i].slot == f.slot && !units_[i].ghost) {
                    units_[i].unapplied = true;
                    break;
                }
            }
            return Answer::StateFailed;
        }
    }
    if (f.captures_lsn && m.is(BackendMsg::DataRow)) return Answer::Lsn;
    if (f.checks_advisory && m.is(BackendMsg::DataRow)) return Answer::AdvisoryLocks;
    if (f.answers_left > 0 && !f.ghost && !f.hold) {
        // An error keeps the unit in flight: the backend skips all until the client's Sync.
        if (m.is(BackendMsg::ErrorResponse)) f.answers_left = -1;
        bool asynchronous = m.is(BackendMsg::NoticeResponse) ||
                            m.is(BackendMsg::NotificationResponse) ||
                            m.is(BackendMsg::ParameterStatus);
        if (f.answers_left > 0 && !asynchronous && --f.answers_left == 0) return Answer::Complete;
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
    replay_sqlstate_ = proto::kSqlstateConnectionFailure;
    clear();
}

bool InflightQueue::take_replay(bool& wrote) {
    if (!replay_) return false;
    replay_ = false;
    wrote = replay_wrote_;
    return true;
}

}  // namespace pgrouter
