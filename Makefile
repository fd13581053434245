# Makefile for mnistd: deps, data, all, run, test, bench, san.
#
#   make        build build/mnistd
#   make run    install what is missing, fetch MNIST, serve on :8080
#   make test   install what is missing, fetch MNIST, build, run every test
#   make san    the same suite under ASan/UBSan (build-san/)
#   make bench  benchmarks (ratios against references measured in the same run)

SHELL   := /bin/bash
PKGS    := libmicrohttpd jansson sqlite3 openblas zlib libpng
BUILD   ?= build
OPT     ?= -O2
# the engine's hot loops want the vectoriser, FMA, and sqrtf without errno
ENGINE_OPT ?= -O3 -fno-math-errno -ffp-contract=fast
SANFLAGS ?=
CC      ?= cc
PORT    ?= 8080

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS_ALL := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
              $(OPT) -g -Wall -Wextra -Werror -pthread -MMD -MP \
              $(SANFLAGS) $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL := $(SANFLAGS) -pthread $(PKG_LIBS) -lm $(LDFLAGS)

ENGINE_SRC := $(wildcard engine/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
UNIT_SRC   := $(wildcard tests/unit/*.c)

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ   := $(UNIT_SRC:%.c=$(BUILD)/%.o)

.PHONY: all deps data run test unit http san bench clean

all: $(BUILD)/mnistd

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(OBJ_OPT) -I. -c $< -o $@

$(ENGINE_OBJ): OBJ_OPT = $(ENGINE_OPT)

$(BUILD)/libengine.a: $(ENGINE_OBJ)
	ar rcs $@ $^

# generated sources: files embedded in the binary
GEN_OBJ := $(BUILD)/gen/openapi.o

$(BUILD)/gen/openapi.c: openapi.yaml scripts/embed-file.sh
	@mkdir -p $(dir $@)
	scripts/embed-file.sh mn_openapi_yaml $< > $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CFLAGS_ALL) -c $< -o $@

# schema migrations, embedded so that the binary needs no source tree
MIGRATIONS := $(sort $(wildcard migrations/*.sql))
GEN_OBJ += $(BUILD)/gen/migrations.o

$(BUILD)/gen/migrations.c: $(MIGRATIONS) migrations scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	scripts/embed-sql.sh $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/migrations.o: $(BUILD)/gen/migrations.c
	$(CC) $(CFLAGS_ALL) -I. -c $< -o $@

$(BUILD)/libserver.a: $(SERVER_OBJ) $(GEN_OBJ)
	ar rcs $@ $^

$(BUILD)/mnistd: $(BUILD)/server/main.o $(BUILD)/libserver.a $(BUILD)/libengine.a
	$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/unit_tests: $(UNIT_OBJ) $(BUILD)/libserver.a $(BUILD)/libengine.a
	$(CC) -o $@ $^ $(LDLIBS_ALL) -lcriterion

deps:
	@scripts/deps.sh

data:
	@scripts/fetch-data.sh data

run: deps data
	$(MAKE) all
	$(BUILD)/mnistd serve --port $(PORT) --db mnistd.db --data-dir data

# Criterion runs each test in a child process and does not fail a test on a
# sanitizer report at the child's exit (a leak), so the log is checked too.
unit: $(BUILD)/unit_tests
	set -o pipefail; MNISTD_DATA_DIR=$(CURDIR)/data $(BUILD)/unit_tests --jobs 1 2>&1 \
	    | tee $(BUILD)/unit.log
	@! grep -nE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' $(BUILD)/unit.log

http: $(BUILD)/mnistd
	MNISTD_BIN=$(CURDIR)/$(BUILD)/mnistd MNISTD_DATA_DIR=$(CURDIR)/data \
	    /usr/bin/python3 -m pytest -q tests/http

test: deps data
	$(MAKE) all $(BUILD)/unit_tests
	$(MAKE) unit
	$(MAKE) http

SAN_VARS := BUILD=build-san OPT=-O1 ENGINE_OPT=-O1 \
	SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

san: deps data
	$(MAKE) $(SAN_VARS) all build-san/unit_tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	    $(MAKE) $(SAN_VARS) unit http

$(BUILD)/bench_train: bench/bench_train.c $(BUILD)/libengine.a
	$(CC) $(CFLAGS_ALL) -I. $< $(BUILD)/libengine.a -o $@ $(LDLIBS_ALL)

bench: deps data
	$(MAKE) all $(BUILD)/bench_train
	scripts/bench.sh $(BUILD)

clean:
	rm -rf build build-san

-include $(ENGINE_OBJ:.o=.d) $(SERVER_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/server/main.d
-include $(BUILD)/gen/migrations.d
