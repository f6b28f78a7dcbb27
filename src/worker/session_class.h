// The class of a client session (see session.h and session.cc), shared by its two halves:
// session.cc, the client's side (login, units, routing, sending a unit and bringing its
// backend up to the session's state), and session_responses.cc, the backends' side (their
// answers in order, idle messages, lost backends). Private to src/worker.
#pragma once

#include <exception>
#include <map>

#include "pgrouter/base/clock.h"
#include "pgrouter/base/counted.h"
#include "pgrouter/base/deadline.h"
#include "pgrouter/health/health.h"
#include "pgrouter/net/relay.h"
#include "pgrouter/os/commit_floors.h"
#include "pgrouter/os/shm.h"
#include "pgrouter/proto/encoder.h"
#include "pgrouter/proto/payload.h"
#include "pgrouter/route/router.h"
#include "pgrouter/worker/backend.h"
#include "pgrouter/worker/cancel.h"
#include "pgrouter/worker/frontdoor.h"
#include "pgrouter/worker/ghosts.h"
#include "pgrouter/worker/inflight.h"
#include "pgrouter/worker/session_log.h"
#include "pgrouter/worker/session_state.h"
#include "pgrouter/worker/session_stats.h"
#include "pgrouter/worker/startup_params.h"
#include "pgrouter/worker/statements.h"
#include "pgrouter/worker/unit.h"

namespace pgrouter::session_impl {

using namespace std::chrono_literals;
using proto::BackendMsg;
using proto::FrontendMsg;

// Abnormal closes are logged at INFO, the others at DEBUG.
enum class Closing : bool { Normal, Abnormal };

inline int len(std::string_view s) { return static_cast<int>(s.size()); }

// One backend connection of the session and how far it has replayed the session's SETs.
struct Server {
    Server(std::unique_ptr<BackendConnection> c, WorkerSlot& slot,
           std::atomic<std::int64_t>& backend_gauge)
        : conn(std::move(c)), counted(slot.connections), counted_backend(backend_gauge) {}
    std::unique_ptr<BackendConnection> conn;
    Counted counted;
    Counted counted_backend;     // pgrouter_server_connections{backend}
    StateApplied applied;        // how far the session's state was replayed here
    bool state_failed = false;   // a replay failed (what failed: state_error)
    bool shape_changed = false;  // a statement re-parsed here describes another result
    std::string state_error;
    bool broken = false;
    bool pooled = false;    // the client left and the connection goes back to the pool
    bool foreign = false;   // taken from the pool carrying another session's state
    ParamList startup;      // the client's startup values its login lacks (startup_params.h)
    bool watched = false;   // an idle wait for readability is pending
    bool readable = false;  // that wait fired
};

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(tcp::socket socket, WorkerEnv& env)
        : env_(env),
          id_(env.next_session_id++),
          client_(std::move(socket)),
          counted_(env.slot.clients),
          wakeup_(client_.socket().get_executor()),
          cutter_(statements_, [this](std::string_view sql) {
              if (classified_) {
                  Classification c = std::move(*classified_);
                  classified_.reset();
                  return c;
              }
              return env_.cache.classify(sql, env_.classifier);
          }) {
        wakeup_.expires_at(asio::steady_timer::time_point::max());
        env_.wakeups.insert(&wakeup_);  // SIGTERM wakes the session (WorkerEnv::draining)
    }

    ~Session() {
        for (auto& [slot, server] : servers_) {
            if (server->pooled) env_.pool.give_back(std::move(server->conn));
        }
        env_.wakeups.erase(&wakeup_);
        env_.idle_unwatched.erase(&wakeup_);
        cancel_release(env_.seg, cancel_);
    }

    std::uint64_t id() const { return id_; }

    asio::awaitable<void> run();

    // The one way the session's connections close: one backend connection (`backend`; the
    // session goes on without it), or the client and every backend. Logs why.
    void close(std::string_view reason, Closing how, Server* backend = nullptr);

  private:
    void wake() { wakeup_.cancel(); }

    asio::awaitable<void> wait_wakeup();

    // The ReadyForQuery-free error for a unit that cannot be placed.
    void error_to_client(std::string_view severity, std::string_view sqlstate,
                         std::string_view message, std::string_view detail = {});

    // The error of a unit that cannot be placed, with its ReadyForQuery when it has one.
    void unit_error_to_client(std::string_view sqlstate, std::string_view message, bool sync);

    // ---- the backend table: every read of the shared snapshot is here -------------------

    bool refresh_snapshot() { return refresh_routing_view(env_.seg, snap_); }

    const BackendView* view_of(int slot) const;

    // The master's slot in the last snapshot; -1 when there is none.
    int master_slot() const;

    // Where a unit that `slot` cannot serve goes instead: the master, as the snapshot says
    // now, when it is another backend; -1 otherwise.
    int master_instead_of(int slot);

    bool all_starting() const;

    std::chrono::milliseconds login_timeout() const;

    // ---- backends ------------------------------------------------------------------------

    // The session's connection to `slot` when it has a working one, else nullptr.
    Server* connected(int slot);
    // The connection to `slot`, logging in when there is none. Null with the reason in
    // `failure` when the backend cannot be reached.
    asio::awaitable<Server*> server_for(int slot, LoginFailure& failure);

    // The first backend: the master (a wrong database fails at login, as with PostgreSQL),
    // or a standby when there is no master. Its ParameterStatus goes to the client.
    asio::awaitable<bool> first_login();

    // The client's start-up: its login at the front door, then first_login(), within the
    // startup timeout. False when the session goes no further.
    asio::awaitable<bool> start();

    // A connection the pool gave for `slot`: where it stands with the session's state (the
    // one it parked: as it left it; another's: reset first; a clean one: nothing of it).
    void adopt(int slot, Server& server);

    // Transaction pooling, between two transactions (nothing in flight or on its way, no
    // open block, no pin, not inside a Flush batch): every connection goes back to its pool
    // as it is, and the next unit takes one again (adopt()).
    void park_servers();

    // ---- client → backends -----------------------------------------------------------------

    asio::awaitable<void> client_pump();
    // The client's next message, as Wire::read_frontend() (long ones above classify-limit).
    asio::awaitable<WireRead> read_client(const proto::DecodeLimits& limits);

    // A Query or Parse too long to classify: its unit goes where the cutter says with
    // what has arrived of it, and the rest follows as it arrives, never held whole.
    asio::awaitable<void> dispatch_long(const WireLongMessage& head);

    // The client's next `n` bytes, a Copy message (whole or as it arrives), go to the
    // backend of the COPY in progress.
    asio::awaitable<void> copy_to_backend(std::size_t n);

    // The client's next `n` bytes go to `to` (or nowhere) as they arrive.
    asio::awaitable<void> relay_to(Server* to, std::size_t n, std::string_view lost);

    asio::awaitable<void> terminate_backends();

    // A Query's or Parse's SQL longer than kParseOnLoop is classified on the worker's parse
    // thread (WorkerEnv::parse_pool); the cutter's next classification is that one.
    static constexpr std::size_t kParseOnLoop = 32 * 1024;
    asio::awaitable<void> classify_long_sql(const proto::Message& m);

    // read-your-writes user: shares this session's latest commit with every session of its
    // (user, database) and takes theirs into its own read-your-writes (commit_floors.h).
    void share_commits();

    // Places one unit: chooses the backend, and sends the unit there.
    asio::awaitable<void> dispatch(Unit& unit);

    // ---- the pgrouter.* parameters (session_controls.cc) -----------------------------------

    // A unit that names pgrouter.* (Classification::names_controls), a simple Query: SHOW is
    // answered here, a bad SET refused here (outside a block; inside one it becomes a
    // statement that fails the same way on the block's backend). True when answered.
    asio::awaitable<bool> answer_controls(Unit& unit);

    // The session's commit_lsn, waiting (up to health.timeout) for a master sample taken
    // after its last commit; nullopt when none came.
    asio::awaitable<std::optional<std::uint64_t>> commit_lsn();

    // The pgrouter.* settings of the start-up packet (options=-c ...) into the session
    // state; the error to refuse the connection with when one is bad.
    std::optional<ControlError> start_controls();

    // Queues on `slot` what it lacks of the session's state (ghosts.h); how many.
    int replay_state(int slot, Server& server, bool standby);

    // Waits for the state replays sent to `server` to be answered. False when they failed
    // (or the connection did): the unit must not run there.
    asio::awaitable<bool> state_applied(int slot, Server& server);

    // The statements `refs` uses that backend `slot` lacks and whose result the client saw
    // described: parsed there afresh (with a Describe and a Sync of their own, whose answers
    // the client never sees), they must describe the result the client knows, or the unit
    // fails as it would on one server: 0A000 "cached plan must not change result type".
    asio::awaitable<bool> shapes_match(int slot, Server& server,
                                       const std::vector<std::string>& names);

    // Sends `unit` to `slot` and, for a read held on a standby, waits for its outcome and
    // replays it on the master after a refusal (25006) or the standby's loss. `refs` is what
    // the unit does with prepared statements.
    asio::awaitable<void> send_unit(int slot, Unit& unit, const StatementRefs& refs,
                                    const Classification& cls, std::string_view reason,
                                    bool may_hold);

    // The block that began on standby `standby` moves to the master: the standby's block
    // ends, and its start (BEGIN, SET TRANSACTION) runs again on the master, unseen, before
    // the unit that the standby refused.
    asio::awaitable<void> move_block_start(int standby, int master);

    // ---- backends → client -----------------------------------------------------------------

    static asio::awaitable<void> response_pump(std::shared_ptr<Session> self);

    asio::awaitable<void> forward_responses();

    // After SIGTERM a session ends between transactions: nothing in flight, the last
    // ReadyForQuery idle ('I'), and no unit on its way to a backend (the client pump waits
    // for the client, so nothing the client sent is left unanswered but a part of a unit).
    bool at_shutdown_boundary() const;

    // While no unit is in flight, a backend can still speak: NOTIFY for a LISTEN, a notice,
    // a ParameterStatus, or its end (a FATAL before an administrator's shutdown). Each idle
    // backend socket is watched; what arrives is read and passed on at once.
    void arm_idle_watches();
    // Idle with a backend socket not watched: listed for the worker's idle sweep, whose
    // wakeup (it takes the session off the list) arms the watches. Busy again: off the list.
    void idle_watch_due();
    void idle_watch_cancel();

    void forward_idle_messages();

    // An idle backend left. The session carries on elsewhere, unless state that cannot be
    // copied lived there: then the client is told, as PostgreSQL would tell it, and leaves.
    void idle_backend_gone(int slot, Server& server, std::string_view reason);

    // Handles one message of the head unit. True when the head unit is finished.
    bool on_backend_message(const proto::Message& m, Server& server);

    // `m` describes statement `name`: the client's view of its result, or (after a re-parse
    // elsewhere) what that backend makes of it now.
    void described(const std::string& name, const proto::Message& m, const std::string& params,
                   Server& server);

    void finish_unit(const proto::Message& m);

    void pins_changed();

    // The head unit's backend closed (`how`: "closed", "sent FATAL"). A held read is replayed
    // elsewhere, whether or not the ghosts of its SET replay were still in front of it;
    // otherwise the client gets the error and the session ends (its state on that backend
    // is gone).
    //
    // Only a held read is replayed: it is alone in flight (with its ghosts), outside a
    // transaction block, ends with a Sync, and nothing of it reached the client. Any other
    // unit is not safe to run again: inside a transaction its snapshot and locks died with
    // the backend; behind other units in flight (a pipeline) the units before it may have
    // answered in part or changed the session, and replaying it alone would reorder them;
    // the first part of a Flush batch would have to be replayed with the rest, which the
    // client has not sent yet. Those fail with PostgreSQL's error for a lost connection.
    asio::awaitable<void> backend_lost(Server& server, std::string_view how);

    WorkerEnv& env_;
    std::uint64_t id_;
    Wire client_;
    Counted counted_;
    SessionStats stats_{env_};  // counters, SHOW CLIENTS row, disconnection log
    ClientLogin login_;
    CancelHandle cancel_;
    bool closed_ = false;

    asio::steady_timer wakeup_;         // "something changed" between the two pumps
    RoutingView& snap_ = env_.routing;  // the worker's; refreshed before each decision
    std::mt19937_64& rng_ = env_.rng;
    SessionState state_;
    MovableBlock movable_;  // the start of a block on a standby, while it can still move
    std::optional<Counted> pinned_counted_;  // in the monitor's "pinned" while pinned
    bool close_after_flush_ = false;
    bool going_away_ = false;         // the head unit's backend sent FATAL: handle as its loss
    bool dispatching_ = false;        // the client pump is placing a unit
    std::size_t floor_index_ = 0;     // share_commits(): the entry of (user, database)
    std::int64_t floor_seen_ns_ = 0;  // the latest commit shared or taken from it
    bool idle_listed_ = false;        // in WorkerEnv::idle_unwatched (idle_watch_due())

    std::map<int, std::unique_ptr<Server>> servers_;  // by backend slot
    // park_servers(): per backend slot, the connection this session parked last (the tag it
    // left on it, BackendConnection::owner) and how far it had taken the session's state.
    struct Parked {
        int slot = -1;
        std::uint64_t lease = 0;
        StateApplied applied;
    };
    std::vector<Parked> parked_;
    const Parked* parked_on(int slot) const;
    InflightQueue inflight_;
    int sticky_slot_ = -1;  // after a Flush: where the rest of the batch goes
    int last_slot_ = -1;
    Statements statements_;      // the client's prepared statements, per backend
    std::string shape_scratch_;  // described(): a result shape, its capacity kept
    // Off the loop, for the cutter's next message; on the heap, as it is rare and large.
    std::unique_ptr<Classification> classified_;
    UnitCutter cutter_;  // after statements_, which it updates
};

}  // namespace pgrouter::session_impl
