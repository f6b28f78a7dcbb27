// The statement classifier: SQL text of one routing unit → what it needs (a standby may run
// it, the master must, it opens or ends a transaction block) and what it does to the
// session (settings to replay, state that pins the session to the master). It parses with
// the real PostgreSQL grammar (pg_query); it never touches sockets, shared memory or the
// clock, and it never throws. Parsing costs tens of µs, so callers go through ClassifyCache.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pgrouter/route/route_controls.h"

namespace pgrouter {

enum class StatementKind : std::uint8_t {
    Read,                    // may run on a standby
    Write,                   // must run on the master
    TransactionBegin,        // BEGIN / START TRANSACTION (see read_only, read_write)
    TransactionEnd,          // COMMIT, ROLLBACK, END, ABORT, PREPARE TRANSACTION
    SetTransactionReadOnly,  // SET TRANSACTION READ ONLY (first statement of a block)
    Session,                 // changes only session state: SET, DISCARD, LISTEN, PREPARE...
};

// Why a unit pins its session to the master: state that lives in one backend and cannot
// be copied. A bit set; Classification::pin_reason names the first one for the logs.
enum PinReason : std::uint16_t {
    kPinTempTable = 1 << 0,     // CREATE TEMP ..., SELECT INTO TEMP
    kPinPgTemp = 1 << 1,        // a reference to pg_temp.x
    kPinListen = 1 << 2,        // LISTEN
    kPinPrepare = 1 << 3,       // SQL-level PREPARE
    kPinHoldCursor = 1 << 4,    // DECLARE ... WITH HOLD
    kPinAdvisoryLock = 1 << 5,  // pg_advisory_lock*, pg_try_advisory_lock* (session-scoped)
    kPinSequence = 1 << 6,      // currval, lastval, setval
    // Not from the classifier: a statement too long to classify (classify-limit), whose
    // effect on the session (a SET, a temporary table...) is not known.
    kPinUnparsed = 1 << 7,
};
inline constexpr std::uint16_t kPinAll = (1 << 8) - 1;

// What DISCARD throws away. All: every pin (it also resets every setting, RESET ALL, and
// drops the session's advisory locks, LISTENs, prepared statements and cursors); Temp:
// kPinTempTable and kPinPgTemp; Sequences: kPinSequence; Plans: no pin.
enum class Discard : std::uint8_t { None, Plans, Sequences, Temp, All };

// How a unit changes default_transaction_read_only (which lets BEGIN start on a standby).
// Off also stands for RESET / SET ... TO DEFAULT: the server's own default is assumed off,
// which only costs a BEGIN on the master when an operator set it on in postgresql.conf.
enum class ReadOnlyDefault : std::uint8_t { Unchanged, On, Off };

// A transaction isolation level as a statement names it. Default: RESET, SET ... TO
// DEFAULT, RESET ALL, DISCARD ALL (the server's own default, assumed not SERIALIZABLE).
enum class Isolation : std::uint8_t {
    Unchanged,
    Default,
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    Serializable,
};

// What one statement does to session state that the session tracks by name.
enum class NamedAction : std::uint8_t {
    Set,         // SET x, SET ROLE, SET SESSION AUTHORIZATION, SET TIME ZONE, set_config(x, v,
                 // false); SET SESSION CHARACTERISTICS: one per default_transaction_* it sets
    SetLocal,    // SET LOCAL x, set_config(x, v, true): for the current transaction only
    Reset,       // RESET x, SET x TO DEFAULT
    ResetAll,    // RESET ALL, DISCARD ALL (no name)
    Savepoint,   // SAVEPOINT s
    Release,     // RELEASE [SAVEPOINT] s
    RollbackTo,  // ROLLBACK TO [SAVEPOINT] s
    Deallocate,  // DEALLOCATE [PREPARE] s (no name: DEALLOCATE ALL)
};

// One named fact of a unit: the parameter (lower-cased; empty when set_config's name is not
// a constant) or the savepoint name, and the statement's bytes in the unit's text.
struct NamedFact {
    NamedAction action = NamedAction::Set;
    Isolation isolation = Isolation::Unchanged;  // the value, for default_transaction_isolation
    std::uint8_t name_size = 0;
    std::uint16_t name_at = 0;    // into Classification::names_
    std::uint32_t stmt_at = 0;    // the statement, leading blanks skipped
    std::uint32_t stmt_size = 0;  // up to (not including) its semicolon
};

// The classification of one unit (one Query message, or one prepared statement's text).
// Trivially copyable; the strings are static literals, so caching and copying never
// allocate.
struct Classification {
    StatementKind kind = StatementKind::Write;
    // TransactionBegin: READ ONLY was given (or SET TRANSACTION READ ONLY follows the BEGIN
    // in the same unit); READ WRITE was given explicitly.
    bool read_only = false;
    bool read_write = false;
    // SET, RESET, SET ROLE, SET SESSION AUTHORIZATION, set_config(.., false), DISCARD ALL:
    // changes settings that the session replays on its other backends.
    bool set = false;
    // SET LOCAL, set_config(.., true): lasts for the current transaction only.
    bool set_local = false;
    // A session-level SET of a parameter that names catalog objects (role, session
    // authorization, search_path, tablespaces, text search configuration; see builtins.h):
    // a standby serves the session only once it has replayed the catalog as of the SET.
    bool names_objects = false;
    // Only BEGIN / START TRANSACTION / SET TRANSACTION: sets the modes of the transaction.
    bool transaction_modes = false;
    bool multi = false;  // more than one statement
    // COPY ... FROM: CopyData may follow the unit's Query, so nothing may be sent behind it.
    bool copy_from = false;
    // A BEGIN / START TRANSACTION among its statements: the unit may leave a block open.
    bool opens_block = false;
    bool parse_error = false;  // the grammar refused it (kind is Write)
    // Non-empty: the unit asks about the server itself rather than about data (recovery
    // state, WAL positions, its backends, statistics, transaction ids; see server_local.cc),
    // and says which ("statistics"). The client sees one server: the master answers.
    std::string_view server_local = "";
    ReadOnlyDefault read_only_default = ReadOnlyDefault::Unchanged;
    Discard discard = Discard::None;
    std::uint16_t pins = 0;  // PinReason bits: state this unit creates
    // PinReason bits whose state this unit drops entirely: DISCARD, UNLISTEN *, DEALLOCATE
    // ALL, CLOSE ALL, pg_advisory_unlock_all(). After success, apply unpins, then pins.
    std::uint16_t unpins = 0;
    // PinReason bits whose state may be gone after this unit, which only the server knows:
    // pg_try_advisory_lock*() that returned false took nothing, pg_advisory_unlock*(k) may
    // have released the session's last advisory lock. The session asks the server.
    std::uint16_t may_release = 0;
    std::uint16_t statements = 0;      // 0: empty (only blanks, comments, semicolons)
    std::string_view reason = "";      // why this kind, for debug logs ("FOR UPDATE/SHARE")
    std::string_view pin_reason = "";  // the first pin's cause ("LISTEN"), empty when none
    // BEGIN / START TRANSACTION / SET TRANSACTION: the level named (the last one in the unit).
    Isolation isolation = Isolation::Unchanged;
    // SET, SET LOCAL, RESET or SHOW of a pgrouter.* name (route_controls.h): the session
    // checks the value (PostgreSQL takes anything for a placeholder) or answers itself.
    bool names_controls = false;
    // The hint at the start of the text (/* pgrouter: primary */): for this unit's routing.
    StatementHint hint;

    // Facts named in the unit, in statement order. Inline (no allocation, so the cache and
    // copies stay cheap): a unit with more than kMaxFacts of them, or longer names, keeps the
    // first ones and sets facts_truncated. merge() drops them (they index one text).
    static constexpr std::size_t kMaxFacts = 8;
    static constexpr std::size_t kNamesBytes = 192;
    std::uint8_t fact_count = 0;
    bool facts_truncated = false;
    std::uint16_t names_size_ = 0;
    std::array<NamedFact, kMaxFacts> facts_{};
    std::array<char, kNamesBytes> names_{};

    [[nodiscard]] bool pins_master() const { return pins != 0; }
    [[nodiscard]] std::span<const NamedFact> facts() const { return {facts_.data(), fact_count}; }
    [[nodiscard]] std::string_view name_of(const NamedFact& f) const {
        return {names_.data() + f.name_at, f.name_size};
    }
    // Adds a fact; false (and facts_truncated) when there is no room left for it.
    bool add_fact(NamedFact f, std::string_view name);
};

// The classification of units sent one after another as one (extended messages up to a Sync,
// a pipelined batch): the strongest kind wins (Write, then a BEGIN, then Read, Session,
// SET TRANSACTION READ ONLY, COMMIT/ROLLBACK), pins and settings add up, and a BEGIN stays
// read-only only when every BEGIN in it is. The one merge rule: classify() folds the
// statements of one text with it too.
[[nodiscard]] Classification merge(const Classification& a, const Classification& b);

// Classifies with the PostgreSQL 15 grammar. One per process (pg_query keeps per-thread
// parser memory); classify() is const and reentrant within a thread.
class Classifier {
  public:
    // write_functions: operator-supplied function names whose calls must run on the master,
    // matched case-insensitively. "f" matches f() in any schema; "s.f" matches only s.f().
    explicit Classifier(std::vector<std::string> write_functions = {});

    // Never fails: text the grammar refuses, or that holds a NUL byte, is a Write.
    [[nodiscard]] Classification classify(std::string_view sql) const;

    const std::vector<std::string>& write_functions() const { return write_functions_; }

  private:
    std::vector<std::string> write_functions_;  // lower-cased
};

// Names for logs and tests: "read", "write", "begin", "end", "set-transaction-read-only",
// "session".
[[nodiscard]] std::string_view kind_name(StatementKind kind);

}  // namespace pgrouter
