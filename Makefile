# pgrouter — plain GNU make. `make` builds build/pgrouter; `make check` runs every test;
# see README.md. Sources are picked up by wildcard: a new src/*.cc or t/unit/*_test.cc
# needs no edit here.

CXX      ?= g++
BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
LIBEXECDIR ?= $(PREFIX)/lib/pgrouter
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)

# -flto was measured against -O2 at the fixed rate (t/bench/results/lto-2026-12-03.md):
# within noise, so not the default (it slows every link of the test binaries).
OPT      ?= -O2 -g
CPPFLAGS += -Iinclude -MMD -MP -DBOOST_ASIO_HAS_CO_AWAIT -DBOOST_ASIO_HAS_STD_COROUTINE \
            -DBOOST_ASIO_NO_DEPRECATED -DBOOST_ERROR_CODE_HEADER_ONLY -I/usr/include/postgresql
CXXFLAGS += -std=c++20 $(OPT) -Wall -Wextra -Werror -pthread
LDLIBS   += -lpq -lpg_query -lssl -lcrypto -lsystemd -lpthread -lrt

SRCS      := $(filter-out src/main.cc,$(sort $(wildcard src/*.cc src/*/*.cc)))
OBJS      := $(SRCS:%.cc=$(BUILD)/obj/%.o)
LIB       := $(BUILD)/libpgrouter.a
HARNESS   := $(BUILD)/libharness.a
HARNESS_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(sort $(wildcard t/harness/*.cc)))
UNIT_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(sort $(wildcard t/unit/*.cc)))
INTEG_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(sort $(wildcard t/integration/*.cc)))

.PHONY: all check unit integration deps demo install clean format format-check asan clang-check
all: $(BUILD)/pgrouter

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@

$(LIB): $(OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(HARNESS): $(HARNESS_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/pgrouter: $(BUILD)/obj/src/main.o $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/unit_tests: $(UNIT_OBJS) $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/integration_tests: $(INTEG_OBJS) $(HARNESS) $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

deps:
	@packaging/install-deps --check >/dev/null 2>&1 || packaging/install-deps

unit: deps $(BUILD)/unit_tests
	$(BUILD)/unit_tests

integration: deps $(BUILD)/pgrouter $(BUILD)/integration_tests
	$(BUILD)/integration_tests

# Runs every suite even when one fails, then prints one line "N passed, N failed"; the
# routing, session-state and driver suites run a second time in transaction pooling (t/txpool-suites).
check: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all $(BUILD)/unit_tests $(BUILD)/integration_tests
	@BUILD=$(BUILD) t/run-tests t/check-layers t/check-directives $(BUILD)/unit_tests $(BUILD)/integration_tests \
	    t/txpool-suites t/fuzz/smoke

demo: deps $(BUILD)/pgrouter $(BUILD)/testcluster
	t/demo

install: $(BUILD)/pgrouter
	install -D -m 0755 $(BUILD)/pgrouter $(DESTDIR)$(SBINDIR)/pgrouter
	install -D -m 0755 packaging/pgrouter-upgrade $(DESTDIR)$(LIBEXECDIR)/pgrouter-upgrade
	install -D -m 0644 man/pgrouter.8 $(DESTDIR)$(MANDIR)/man8/pgrouter.8
	install -D -m 0644 man/pgrouter.conf.5 $(DESTDIR)$(MANDIR)/man5/pgrouter.conf.5
	test ! -f man/pgrouter-hba.5 || install -D -m 0644 man/pgrouter-hba.5 $(DESTDIR)$(MANDIR)/man5/pgrouter-hba.5
	install -D -m 0644 etc/pgrouter.conf $(DESTDIR)$(SYSCONFDIR)/pgrouter/pgrouter.conf
	install -D -m 0644 etc/hba.conf $(DESTDIR)$(SYSCONFDIR)/pgrouter/hba.conf

# Compiles everything with clang++ into build-clang (the second supported compiler).
clang-check:
	$(MAKE) --no-print-directory CXX=clang++ BUILD=build-clang all $(if $(wildcard t/unit/*.cc),build-clang/unit_tests)

asan:
	$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" check

format:
	clang-format -i $(wildcard src/*.cc src/*/*.cc src/*/*.h include/pgrouter/*.h include/pgrouter/*/*.h t/*/*.cc t/*/*.h)

format-check:
	clang-format --dry-run -Werror $(wildcard src/*.cc src/*/*.cc include/pgrouter/*.h include/pgrouter/*/*.h t/*/*.cc t/*/*.h)

clean:
	rm -rf $(BUILD) build-clang build-asan

-include $(wildcard packaging/*.mk t/bench/*.mk t/fuzz/*.mk)
-include $(OBJS:.o=.d) $(UNIT_OBJS:.o=.d) $(INTEG_OBJS:.o=.d) $(HARNESS_OBJS:.o=.d) $(BUILD)/obj/src/main.d
