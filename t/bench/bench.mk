# make bench: pgrouter side by side with direct connections and the proxies users would pick
# instead (HAProxy+bgw_replstatus, PgBouncer in session and transaction mode, pgpool-II), and
# pgrouter pooling in session and transaction mode, on a cluster built by build/testcluster;
# results in $(BUILD)/bench/ (results.md, results.csv, ratios.png). BENCH_SECONDS,
# BENCH_ROUNDS, BENCH_IDLE, BENCH_WORKLOADS, BENCH_TARGETS, BENCH_POOL, BENCH_POOL_TX,
# BENCH_J_*: see t/bench/run-bench.
# make bench-deps installs the peers; make profile records a pgrouter worker with perf.
.PHONY: bench bench-deps profile bench-instructions

$(BUILD)/bench/pgclient: t/bench/pgclient.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror -I/usr/include/postgresql $< -o $@ -lpq

# The accept-spreading experiment (README.md, Performance): build/bench/accept_herd MODE.
$(BUILD)/bench/accept_herd: t/bench/accept_herd.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -Wall -Wextra -Werror $< -o $@

bench-deps:
	t/bench/install-bench-deps

bench: deps $(BUILD)/pgrouter $(BUILD)/testcluster $(BUILD)/bench/pgclient
	@t/bench/install-bench-deps --check || t/bench/install-bench-deps
	BUILD=$(BUILD) t/bench/run-bench

# User-space instructions per transaction, pgrouter's worker and PgBouncer, under callgrind
# (t/bench/instructions; this VM has no hardware counter for perf stat's row).
bench-instructions: deps $(BUILD)/pgrouter $(BUILD)/testcluster
	@command -v valgrind >/dev/null 2>&1 || apt-get install -y valgrind
	BUILD=$(BUILD) t/bench/instructions

profile: deps $(BUILD)/pgrouter $(BUILD)/testcluster $(BUILD)/bench/pgclient
	@command -v perf >/dev/null 2>&1 || t/bench/install-bench-deps --perf
	BUILD=$(BUILD) t/bench/run-bench --profile

# What the consistency controls cost a unit when none is set: old code against new with one
# source (t/bench/controls_cost.cc; results/controls-cost-2026-12-03.md).
$(BUILD)/bench/controls_cost: t/bench/controls_cost.cc $(LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) $< $(LIB) -o $@ $(LDFLAGS) $(LDLIBS)
