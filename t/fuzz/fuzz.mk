# libFuzzer targets (clang). `make fuzz` builds each t/fuzz/fuzz_NAME.cc with the sources
# it tests into $(BUILD)/fuzz/fuzz_NAME; `make fuzz-smoke` runs each for FUZZ_SECONDS on a
# scratch copy of t/fuzz/corpus/NAME (the seeds stay untouched) and fails on any crash,
# leak, sanitizer report or timeout. libFuzzer's runtime is Debian's libclang-rt-14-dev.
# A new target: add NAME to FUZZ_TARGETS and define FUZZ_SRCS_NAME before the foreach.

FUZZ_CXX     ?= clang++
FUZZ_SECONDS ?= 20
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_FLAGS   := -std=c++20 -g -O1 -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -Iinclude -I/usr/include/postgresql
FUZZ_LIBS    := -lssl -lcrypto

FUZZ_TARGETS += startup codec hba scram
FUZZ_SRCS_startup := $(wildcard src/proto/*.cc)
FUZZ_SRCS_codec   := $(wildcard src/proto/*.cc)
FUZZ_SRCS_hba     := src/auth/hba.cc src/auth/authdb.cc src/auth/scram.cc src/auth/md5auth.cc
FUZZ_SRCS_scram   := src/auth/scram.cc

FUZZ_HEADERS := $(wildcard include/pgrouter/*.h include/pgrouter/*/*.h)

define pgr_fuzz_target
$(FUZZ_DIR)/fuzz_$(1): t/fuzz/fuzz_$(1).cc $(FUZZ_SRCS_$(1)) $(FUZZ_HEADERS)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CXX) $(FUZZ_FLAGS) t/fuzz/fuzz_$(1).cc $(FUZZ_SRCS_$(1)) -o $$@ $(FUZZ_LIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call pgr_fuzz_target,$(t))))

.PHONY: fuzz fuzz-smoke
fuzz: $(foreach t,$(FUZZ_TARGETS),$(FUZZ_DIR)/fuzz_$(t))

fuzz-smoke: fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
	    work=$(FUZZ_DIR)/corpus-$$t; rm -rf $$work; mkdir -p $$work; \
	    if [ -d t/fuzz/corpus/$$t ]; then cp -R t/fuzz/corpus/$$t/. $$work/; fi; \
	    dict=""; [ ! -f t/fuzz/corpus/$$t.dict ] || dict=-dict=t/fuzz/corpus/$$t.dict; \
	    echo "fuzz-smoke: $$t for $(FUZZ_SECONDS)s"; \
	    if ! $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	            -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/$$t- $$dict $$work \
	            >$(FUZZ_DIR)/$$t.log 2>&1; then \
	        tail -n 40 $(FUZZ_DIR)/$$t.log; echo "fuzz-smoke: $$t FAILED (see $(FUZZ_DIR)/$$t.log)"; exit 1; \
	    fi; \
	    grep -E '^stat::number_of_executed_units|^#[0-9]+ +DONE' $(FUZZ_DIR)/$$t.log | tr '\n' ' '; echo; \
	done; echo "fuzz-smoke: $(words $(FUZZ_TARGETS)) targets passed"
