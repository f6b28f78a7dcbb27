// The tables of built-in names (see builtins.h). The server-local table is one list, by
// name: exact names, and prefix rules where a whole family is server-local (pg_stat_*).
// Deliberately absent from it: inet_server_addr() / inet_server_port(), which keep
// answering where the statement ran (operators and tests use them to see the routing), and
// pure functions such as pg_wal_lsn_diff(), whose arguments decide
// (pg_wal_lsn_diff(pg_current_wal_lsn(), ...) is server-local through its argument).
#include "builtins.h"

#include <algorithm>
#include <array>

namespace pgrouter {

namespace {

constexpr std::array kFunctionRules = {
    FunctionRule{"nextval", Effect::Write, "nextval()"},
    FunctionRule{"setval", Effect::WritePinSeq, "setval()"},
    FunctionRule{"currval", Effect::PinSeq, "currval()"},
    FunctionRule{"lastval", Effect::PinSeq, "lastval()"},
    FunctionRule{"txid_current", Effect::Write, "txid_current() assigns a transaction id"},
    FunctionRule{"pg_current_xact_id", Effect::Write,
                 "pg_current_xact_id() assigns a transaction id"},
    FunctionRule{"pg_notify", Effect::Write, "pg_notify()"},
    FunctionRule{"set_config", Effect::SetConfig, "set_config()"},
    FunctionRule{"pg_advisory_lock", Effect::WritePinLock, "session advisory lock"},
    FunctionRule{"pg_advisory_lock_shared", Effect::WritePinLock, "session advisory lock"},
    FunctionRule{"pg_try_advisory_lock", Effect::WriteTryLock, "session advisory lock"},
    FunctionRule{"pg_try_advisory_lock_shared", Effect::WriteTryLock, "session advisory lock"},
    // Unlocks and transaction-scoped locks: the lock table that matters is the master's.
    FunctionRule{"pg_advisory_unlock", Effect::WriteUnlock, "advisory lock"},
    FunctionRule{"pg_advisory_unlock_shared", Effect::WriteUnlock, "advisory lock"},
    FunctionRule{"pg_advisory_unlock_all", Effect::WriteUnpinLock, "advisory lock"},
    FunctionRule{"pg_advisory_xact_lock", Effect::Write, "advisory lock"},
    FunctionRule{"pg_advisory_xact_lock_shared", Effect::Write, "advisory lock"},
    FunctionRule{"pg_try_advisory_xact_lock", Effect::Write, "advisory lock"},
    FunctionRule{"pg_try_advisory_xact_lock_shared", Effect::Write, "advisory lock"},
    // Large objects: every function but lo_get changes or needs a descriptor (see below).
    FunctionRule{"lowrite", Effect::Write, "large object function"},
    FunctionRule{"loread", Effect::Write, "large object function"},
    // Server administration that a standby refuses with something other than 25006.
    FunctionRule{"pg_switch_wal", Effect::Write, "WAL administration function"},
    FunctionRule{"pg_create_restore_point", Effect::Write, "WAL administration function"},
    FunctionRule{"pg_logical_emit_message", Effect::Write, "WAL administration function"},
    FunctionRule{"pg_create_physical_replication_slot", Effect::Write, "replication slot"},
    FunctionRule{"pg_create_logical_replication_slot", Effect::Write, "replication slot"},
    FunctionRule{"pg_drop_replication_slot", Effect::Write, "replication slot"},
    FunctionRule{"pg_replication_slot_advance", Effect::Write, "replication slot"},
    FunctionRule{"pg_copy_physical_replication_slot", Effect::Write, "replication slot"},
    FunctionRule{"pg_copy_logical_replication_slot", Effect::Write, "replication slot"},
    // Consume a master's slot's changes (the peek variants are server-local reads).
    FunctionRule{"pg_logical_slot_get_changes", Effect::Write, "replication slot"},
    FunctionRule{"pg_logical_slot_get_binary_changes", Effect::Write, "replication slot"},
    // Catalog or WAL writes that a standby refuses with 55000 or XX000, never 25006, so a
    // replay would not catch them.
    FunctionRule{"pg_replication_origin_create", Effect::Write, "replication origin"},
    FunctionRule{"pg_replication_origin_drop", Effect::Write, "replication origin"},
    FunctionRule{"pg_replication_origin_advance", Effect::Write, "replication origin"},
    FunctionRule{"pg_replication_origin_session_setup", Effect::Write, "replication origin"},
    FunctionRule{"pg_replication_origin_session_reset", Effect::Write, "replication origin"},
    FunctionRule{"pg_replication_origin_xact_setup", Effect::Write, "replication origin"},
    FunctionRule{"pg_replication_origin_xact_reset", Effect::Write, "replication origin"},
    FunctionRule{"brin_summarize_new_values", Effect::Write, "index maintenance function"},
    FunctionRule{"brin_summarize_range", Effect::Write, "index maintenance function"},
    FunctionRule{"brin_desummarize_range", Effect::Write, "index maintenance function"},
    FunctionRule{"gin_clean_pending_list", Effect::Write, "index maintenance function"},
    FunctionRule{"pg_import_system_collations", Effect::Write, "catalog function"},
    FunctionRule{"pg_nextoid", Effect::Write, "catalog function"},
    FunctionRule{"pg_log_standby_snapshot", Effect::Write, "WAL administration function"},
};

enum class Match : unsigned char { Exact, Prefix };

using Obj = ServerLocalObject;

struct Rule {
    Obj what;
    Match match;
    std::string_view name;
    std::string_view reason;
};

constexpr std::string_view kRecovery = kServerLocalRecovery;
constexpr std::string_view kBackend = kServerLocalBackend;
constexpr std::string_view kStatistics = kServerLocalStatistics;
constexpr std::string_view kXid = kServerLocalXid;
constexpr std::string_view kServer = kServerLocalServer;

constexpr std::array kRules = {
    // Recovery and WAL: a standby answers "in recovery" and its own positions.
    Rule{Obj::Function, Match::Exact, "pg_is_in_recovery", kRecovery},
    Rule{Obj::Function, Match::Prefix, "pg_current_wal_", kRecovery},
    Rule{Obj::Function, Match::Prefix, "pg_last_wal_", kRecovery},
    Rule{Obj::Function, Match::Exact, "pg_last_xact_replay_timestamp", kRecovery},
    Rule{Obj::Function, Match::Prefix, "pg_wal_replay_", kRecovery},
    Rule{Obj::Function, Match::Exact, "pg_is_wal_replay_paused", kRecovery},
    Rule{Obj::Function, Match::Exact, "pg_get_wal_replay_pause_state", kRecovery},
    Rule{Obj::Function, Match::Exact, "pg_promote", kRecovery},
    Rule{Obj::Function, Match::Prefix, "pg_walfile_name", kRecovery},
    Rule{Obj::Function, Match::Prefix, "pg_control_", kRecovery},
    Rule{Obj::Function, Match::Exact, "pg_backup_start", kRecovery},
    Rule{Obj::Function, Match::Exact, "pg_backup_stop", kRecovery},
    Rule{Obj::Function, Match::Exact, "pg_get_replication_slots", kRecovery},
    Rule{Obj::Function, Match::Prefix, "pg_replication_origin_", kRecovery},
    Rule{Obj::Function, Match::Prefix, "pg_logical_slot_", kRecovery},
    Rule{Obj::Relation, Match::Exact, "pg_replication_slots", kRecovery},
    Rule{Obj::Relation, Match::Exact, "pg_replication_origin_status", kRecovery},
    Rule{Obj::Setting, Match::Exact, "transaction_read_only", kRecovery},
    Rule{Obj::Setting, Match::Exact, "in_hot_standby", kRecovery},
    Rule{Obj::Setting, Match::Exact, "all", kRecovery},  // SHOW ALL lists both above
    // The session's own backend: its pid, its locks, its cursors and channels, and the
    // other backends of the server those pids belong to.
    Rule{Obj::Function, Match::Exact, "pg_backend_pid", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_blocking_pids", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_safe_snapshot_blocking_pids", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_isolation_test_session_is_blocked", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_cancel_backend", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_terminate_backend", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_log_backend_memory_contexts", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_get_backend_memory_contexts", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_lock_status", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_cursor", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_prepared_statement", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_prepared_xact", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_listening_channels", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_notification_queue_usage", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_my_temp_schema", kBackend},
    Rule{Obj::Function, Match::Exact, "pg_get_shmem_allocations", kBackend},
    Rule{Obj::Relation, Match::Exact, "pg_locks", kBackend},
    Rule{Obj::Relation, Match::Exact, "pg_backend_memory_contexts", kBackend},
    Rule{Obj::Relation, Match::Exact, "pg_cursors", kBackend},
    Rule{Obj::Relation, Match::Exact, "pg_prepared_statements", kBackend},
    Rule{Obj::Relation, Match::Exact, "pg_prepared_xacts", kBackend},
    Rule{Obj::Relation, Match::Exact, "pg_shmem_allocations", kBackend},
    // Statistics are kept per server (pg_stat_activity, pg_stat_replication,
    // pg_stat_wal_receiver, pg_stat_reset*(), pg_stat_force_next_flush() are all here).
    // pg_statistic and pg_stats are replicated planner data, not matched by "pg_stat_".
    Rule{Obj::Function, Match::Prefix, "pg_stat_", kStatistics},
    Rule{Obj::Relation, Match::Prefix, "pg_stat_", kStatistics},
    Rule{Obj::Function, Match::Prefix, "pg_statio_", kStatistics},
    Rule{Obj::Relation, Match::Prefix, "pg_statio_", kStatistics},
    // Transaction ids and snapshots: a standby has none of its own to give.
    Rule{Obj::Function, Match::Exact, "txid_current", kXid},
    Rule{Obj::Function, Match::Exact, "txid_current_if_assigned", kXid},
    Rule{Obj::Function, Match::Exact, "txid_current_snapshot", kXid},
    Rule{Obj::Function, Match::Exact, "txid_status", kXid},
    Rule{Obj::Function, Match::Exact, "pg_current_xact_id", kXid},
    Rule{Obj::Function, Match::Exact, "pg_current_xact_id_if_assigned", kXid},
    Rule{Obj::Function, Match::Exact, "pg_current_snapshot", kXid},
    Rule{Obj::Function, Match::Exact, "pg_xact_status", kXid},
    Rule{Obj::Function, Match::Prefix, "pg_xact_commit_timestamp", kXid},
    Rule{Obj::Function, Match::Exact, "pg_last_committed_xact", kXid},
    // The server's own files, configuration and process.
    Rule{Obj::Function, Match::Exact, "pg_reload_conf", kServer},
    Rule{Obj::Function, Match::Exact, "pg_rotate_logfile", kServer},
    Rule{Obj::Function, Match::Exact, "pg_current_logfile", kServer},
    Rule{Obj::Function, Match::Exact, "pg_postmaster_start_time", kServer},
    Rule{Obj::Function, Match::Exact, "pg_conf_load_time", kServer},
    Rule{Obj::Function, Match::Prefix, "pg_ls_", kServer},
    Rule{Obj::Function, Match::Exact, "pg_read_file", kServer},
    Rule{Obj::Function, Match::Exact, "pg_read_binary_file", kServer},
    Rule{Obj::Relation, Match::Exact, "pg_file_settings", kServer},
    Rule{Obj::Relation, Match::Exact, "pg_hba_file_rules", kServer},
    Rule{Obj::Relation, Match::Exact, "pg_ident_file_mappings", kServer},
};

}  // namespace

std::span<const FunctionRule> function_rules() { return kFunctionRules; }

std::string_view server_local(ServerLocalObject what, std::string_view name) {
    for (const Rule& r : kRules) {
        if (r.what != what) continue;
        if (r.match == Match::Exact ? name == r.name : name.starts_with(r.name)) return r.reason;
    }
    return {};
}

bool names_catalog_objects(std::string_view name) {
    static constexpr std::array<std::string_view, 6> kNames = {"role",
                                                               "session_authorization",
                                                               "search_path",
                                                               "default_tablespace",
                                                               "temp_tablespaces",
                                                               "default_text_search_config"};
    return name.empty() || std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

}  // namespace pgrouter
