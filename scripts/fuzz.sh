#!/usr/bin/env bash
# fuzz.sh: runs the libFuzzer targets of tests/fuzz/ (built by `make fuzz`).
#
#   scripts/fuzz.sh run BUILD SECONDS TARGET...
#     For each target (binary BUILD/fuzz_TARGET):
#     1. replays every file in tests/fuzz/regressions/TARGET/ once (the
#        crashers found so far, fixed since);
#     2. fuzzes for SECONDS seconds, starting from the seed corpus
#        tests/fuzz/corpus/TARGET/ (read, never written) and the working
#        corpus BUILD/corpus/TARGET/ (where new inputs go, kept between runs),
#        with a per-input timeout, an RSS and malloc limit, and leak
#        detection on.
#     Any crash, sanitizer report, leak, timeout or out-of-memory fails the
#     target; its input is saved under BUILD/artifacts/TARGET/ and the log
#     is BUILD/logs/TARGET.log. Prints one line per target (executions,
#     executions per second, coverage) and exits 1 if any target failed.
#   scripts/fuzz.sh seeds [DIR]
#     Rebuilds the seed corpora (default tests/fuzz/corpus) with
#     tests/fuzz/gen_seeds.c; the output is deterministic.
#
# A crasher, once fixed: minimise it (BUILD/fuzz_TARGET -minimize_crash=1
# -runs=10000 ARTIFACT), copy it to tests/fuzz/regressions/TARGET/ under a
# name saying what it broke; `make fuzz` and `make test` (suite fuzzreg)
# replay it from then on.
#
# Environment: FUZZ_TIMEOUT (seconds per input, 10), FUZZ_RSS_MB (2048),
# FUZZ_ARGS (more libFuzzer flags, e.g. -seed=1).
set -euo pipefail

fuzz_dir=tests/fuzz

# Longest input per target: room for the largest seed and then some.
max_len() {
  case "$1" in
    predict|csv|v2) echo 16384 ;;
    idx) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

# fz_stat NAME LOG: the value of libFuzzer's final `stat::NAME:` line, or "?".
fz_stat() {
  local v
  v=$(sed -n "s/^stat::$1: *//p" "$2" | tail -n 1)
  echo "${v:-?}"
}

run() {
  local build=$1 seconds=$2
  shift 2
  local timeout=${FUZZ_TIMEOUT:-10} rss=${FUZZ_RSS_MB:-2048}
  local failed=() summary=()
  # leaks are errors; UBSan stops at the first report (the code is also
  # built with -fno-sanitize-recover=all)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  mkdir -p "$build/logs"
  for t in "$@"; do
    local bin=$build/fuzz_$t log=$build/logs/$t.log
    local seeds=$fuzz_dir/corpus/$t regs=$fuzz_dir/regressions/$t
    local work=$build/corpus/$t arts=$build/artifacts/$t/
    local common=(-timeout="$timeout" -rss_limit_mb="$rss" -detect_leaks=1
                  -max_len="$(max_len "$t")" -artifact_prefix="$arts")
    [ -f "$fuzz_dir/$t.dict" ] && common+=(-dict="$fuzz_dir/$t.dict")
    if [ ! -x "$bin" ]; then
      echo "fuzz: $bin is missing (make fuzz builds it)" >&2
      exit 2
    fi
    if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
      echo "fuzz: $t: no seed corpus in $seeds" >&2
      exit 2
    fi
    mkdir -p "$work" "$arts"
    : > "$log"

    local regfiles=()
    if [ -d "$regs" ]; then
      while IFS= read -r -d '' f; do regfiles+=("$f"); done \
        < <(find "$regs" -type f ! -name '.*' -print0 | sort -z)
    fi
    if [ ${#regfiles[@]} -gt 0 ]; then
      echo "fuzz: $t: replaying ${#regfiles[@]} regression input(s)" >&2
      if ! "$bin" "${common[@]}" "${regfiles[@]}" >> "$log" 2>&1; then
        echo "fuzz: $t: a regression input fails again; see $log" >&2
        tail -n 40 "$log" >&2
        failed+=("$t")
        summary+=("$(printf '%-8s REGRESSION FAILED' "$t")")
        continue
      fi
    fi

    echo "fuzz: $t: fuzzing for ${seconds}s" >&2
    local rc=0
    # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
    "$bin" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 \
      ${FUZZ_ARGS:-} "$work" "$seeds" >> "$log" 2>&1 || rc=$?
    local execs rate cov
    execs=$(fz_stat number_of_executed_units "$log")
    rate=$(fz_stat average_exec_per_sec "$log")
    cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
    if [ $rc -ne 0 ]; then
      echo "fuzz: $t: FAILED (exit $rc); input saved under $arts; log $log" >&2
      grep -nE '^(==[0-9]+==ERROR|SUMMARY|.*runtime error:|.*fuzz check failed)' \
        "$log" | head -n 20 >&2 || true
      failed+=("$t")
      summary+=("$(printf '%-8s FAILED (exit %d), %s execs' "$t" "$rc" "$execs")")
    else
      summary+=("$(printf '%-8s %10s execs %8s exec/s  %s' "$t" "$execs" "$rate" "$cov")")
    fi
  done
  echo "fuzz: results (${seconds}s per target)"
  printf '  %s\n' "${summary[@]}"
  if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    return 1
  fi
}

seeds() {
  local dir=${1:-$fuzz_dir/corpus} bin
  bin=$(mktemp)
  trap 'rm -f "$bin"' RETURN
  # shellcheck disable=SC2046  # pkg-config prints a list of flags
  ${CC:-cc} -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O1 -Wall \
    -Wextra -Werror -I. $(pkg-config --cflags openblas zlib) \
    "$fuzz_dir/gen_seeds.c" engine/*.c -o "$bin" \
    $(pkg-config --libs openblas zlib) -lm -pthread
  for t in spec predict csv idx ckpt wsnap sweep; do mkdir -p "$dir/$t"; done
  "$bin" "$dir"
  echo "fuzz: seed corpora written to $dir" >&2
}

case "${1:-}" in
  run) shift; [ $# -ge 3 ] || { echo "usage: $0 run BUILD SECONDS TARGET..." >&2; exit 2; }
       run "$@" ;;
  seeds) shift; seeds "$@" ;;
  *) echo "usage: $0 run BUILD SECONDS TARGET... | $0 seeds [DIR]" >&2; exit 2 ;;
esac
