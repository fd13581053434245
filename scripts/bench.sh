#!/usr/bin/env bash
# bench.sh BUILD [cnn]: runs the benchmarks and prints one table: each
# figure, the reference measured in the same run, their ratio, and the
# goal. With `cnn` (make bench-cnn): only the cnn's training figures and
# their references.
# References: the sgemm ceiling, a bare libmicrohttpd server and, for HTTPS,
# the same server over HTTP, the run queue's claims/s with 8 workers for 32
# and 64 (on a throwaway PostgreSQL, scripts/pg-temp.sh) (always),
# PyTorch (when python3-torch is installed). Exits 1 if a goal is missed.
set -euo pipefail
build=${1:-build}
part=${2:-all}
data=${MNISTD_DATA_DIR:-data}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

if [ "$part" = all ]; then
  echo "bench: engine training throughput (dnn [100,100], Adagrad, clip 5, 1 thread)..." >&2
  "$build/bench_train" "$data" >> "$out"
fi
echo "bench: engine cnn training throughput (default cnn, Adam, clip 5, 1 thread)..." >&2
"$build/bench_cnn" "$data" >> "$out"
if [ "$part" = all ]; then
  echo "bench: the service (recipe end to end, /predict under wrk, memory)..." >&2
  /usr/bin/python3 bench/http_bench.py "$build" "$data" >> "$out"
  echo "bench: the exercise's 12-trial search (POST /sweeps) and its trials one by one..." >&2
  /usr/bin/python3 bench/sweep_bench.py "$build" "$data" >> "$out"
  echo "bench: the run queue: 8, 32 and 64 workers claiming on one PostgreSQL..." >&2
  scripts/pg-temp.sh run sh -c '"$0" "$MNISTD_TEST_PG"' "$build/bench_claim" >> "$out"
fi
torch=0
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  torch=1
  echo "bench: PyTorch reference..." >&2
  [ "$part" = all ] && OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_train.py "$data" >> "$out"
  OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_cnn.py "$data" >> "$out"
  if [ "$part" = all ]; then
    echo "bench: the same search in Python with PyTorch..." >&2
    trials=$(mktemp)
    awk '$1 == "sweep_12_trials_json" { print $2 }' "$out" > "$trials"
    OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_sweep.py "$data" "$trials" >> "$out"
    rm -f "$trials"
  fi
else
  echo "bench: python3-torch is not installed; PyTorch columns are skipped" >&2
fi

val() { awk -v k="$1" '$1 == k { print $2 }' "$out"; }
fail=0
# row NAME VALUE UNIT REFERENCE-NAME REFERENCE OP GOAL (OP: >= or <=)
row() {
  local name=$1 v=$2 unit=$3 rname=$4 r=$5 op=$6 goal=$7 ratio="-" verdict="met"
  [ -n "$r" ] && ratio=$(awk -v a="$v" -v b="$r" 'BEGIN { printf "%.2f", a / b }')
  if [ -z "$v" ] || awk -v a="$v" -v g="$goal" -v op="$op" \
       'BEGIN { exit !((op == ">=") ? (a < g) : (a > g)) }'; then
    verdict="MISSED"; fail=1
  fi
  printf '%-36s %11s %-9s %-22s %11s %6s  %s %-9s %s\n' "$name" "${v:-?}" "$unit" \
    "$rname" "${r:--}" "$ratio" "$op" "$goal" "$verdict"
}
half() { awk -v c="$1" -v f="$2" 'BEGIN { printf "%.0f", c * f }'; }

printf '%-36s %11s %-9s %-22s %11s %6s  %-12s %s\n' figure value unit reference ref-value ratio goal verdict
if [ "$part" = all ]; then
  for b in 30 128; do
    goal=90000; [ "$b" = 128 ] && goal=150000
    row "train throughput, batch $b" "$(val train_samples_per_s_b$b)" samples/s \
        "PyTorch, 1 thread" "$(val torch_samples_per_s_b$b)" ">=" "$goal"
    ceil=$(val sgemm_ceiling_samples_per_s_b$b)
    row "  against the sgemm ceiling" "$(val train_samples_per_s_b$b)" samples/s \
        "dense sgemm ceiling" "$ceil" ">=" "$(half "$ceil" 0.5)"
  done
fi
# the issue's goal: 3x PyTorch on one thread, measured in this run (without
# PyTorch: 3x the ~1,000 samples/s the issue quotes)
for b in 32 128; do
  ref=$(val torch_cnn_samples_per_s_b$b)
  goal=3000; [ -n "$ref" ] && goal=$(half "$ref" 3)
  row "cnn train throughput, batch $b" "$(val cnn_train_samples_per_s_b$b)" samples/s \
      "PyTorch, 1 thread" "$ref" ">=" "$goal"
  ref=$(val torch_cnn_cpu_samples_per_s_b$b)
  goal=3000; [ -n "$ref" ] && goal=$(half "$ref" 3)
  row "  by CPU time (shared machine)" "$(val cnn_train_cpu_samples_per_s_b$b)" samples/s \
      "PyTorch, CPU time" "$ref" ">=" "$goal"
  ceil=$(val cnn_sgemm_ceiling_samples_per_s_b$b)
  row "  against the cnn sgemm ceiling" "$(val cnn_train_cpu_samples_per_s_b$b)" samples/s \
      "cnn sgemm ceiling" "$ceil" ">=" "$(half "$ceil" 0.5)"
done
if [ "$part" = all ]; then
row "dnn recipe end to end (POST /runs)" "$(val recipe_dnn_seconds)" s \
    "PyTorch, same work" "$(val torch_recipe_seconds)" "<=" 0.45
bare=$(val bare_rps)
row "predict, 1 image (wrk -t2 -c32)*" "$(val predict_rps)" req/s \
    "bare libmicrohttpd" "$bare" ">=" "$(half "$bare" 0.4)"
row "  p99 latency*" "$(val predict_p99_ms)" ms "bare libmicrohttpd" \
    "$(val bare_p99_ms)" "<=" 2
row "  non-2xx answers and socket errors" "$(val predict_bad)" count "" "" "<=" 0
row "predict, 1 image, default cnn run*" "$(val predict_cnn_rps)" req/s \
    "predict, dnn run" "$(val predict_rps)" ">=" "$(half "$(val predict_rps)" 0.1)"
row "  non-2xx answers and socket errors" "$(val predict_cnn_bad)" count "" "" "<=" 0
pred=$(val predict_rps)
row "v2 infer, 1 image, JSON*" "$(val v2_json_rps)" req/s "predict, same run" "$pred" \
    ">=" "$(half "$pred" 0.9)"
row "v2 infer, 1 image, binary*" "$(val v2_binary_rps)" req/s "predict, same run" "$pred" \
    ">=" "$(half "$pred" 0.9)"
row "TF Serving predict, 1 image*" "$(val tfs_rps)" req/s "predict, same run" "$pred" \
    ">=" "$(half "$pred" 0.9)"
row "  protocols' non-2xx and socket errors" \
    "$(awk '$1 ~ /^(v2_json|v2_binary|tfs)_bad$/ { s += $2 } END { print s + 0 }' "$out")" \
    count "" "" "<=" 0
# HTTPS: its own pair of servers, runs alternating (bench/http_bench.py)
https_ref=$(val tls_http_predict_rps)
row "predict over HTTPS, 1 image*" "$(val tls_https_predict_rps)" req/s \
    "predict over HTTP, alt." "$https_ref" ">=" "$(half "$https_ref" 0.5)"
https_cpu_ref=$(val tls_http_predict_cpu_us)
row "  server CPU per request over HTTPS" "$(val tls_https_predict_cpu_us)" us \
    "the same over HTTP" "$https_cpu_ref" "<=" "$(half "$https_cpu_ref" 2)"
row "  HTTPS non-2xx and socket errors" \
    "$(awk '$1 ~ /^tls_https?_predict_bad$/ { s += $2 } END { print s + 0 }' "$out")" \
    count "" "" "<=" 0
row "predict, batches of 1000, JSON" "$(val batch_json_images_per_s)" images/s "" "" ">=" 50000
row "predict, batches of 1000, raw bytes" "$(val batch_raw_images_per_s)" images/s "" "" ">=" 200000
row "12-trial search, median stopping" "$(val sweep_12_seconds)" s \
    "same trials one by one" "$(val sweep_12_serial_seconds)" "<=" \
    "$(half "$(val sweep_12_serial_seconds)" 0.85)"
# the same search in Python with PyTorch, when it is installed
if [ -n "$(val torch_sweep_12_seconds)" ]; then
  row "  against PyTorch's same search" "$(val sweep_12_seconds)" s \
      "PyTorch, 1 thread" "$(val torch_sweep_12_seconds)" "<=" \
      "$(val torch_sweep_12_seconds)"
fi
row "resident memory, MNIST + 2 runs" "$(val rss_two_runs_mb)" MB "" "" "<=" 150
# PostgreSQL against SQLite, measured alternately in this run (http_bench.py)
sq=$(val ab_sqlite_recipe_dnn_seconds)
row "dnn recipe on PostgreSQL" "$(val pg_recipe_dnn_seconds)" s "SQLite, alternately" \
    "$sq" "<=" "$(awk -v s="${sq:-0}" 'BEGIN { printf "%.3f", s * 1.25 }')"
sqp=$(val ab_sqlite_predict_rps)
row "predict on PostgreSQL, 1 image*" "$(val pg_predict_rps)" req/s "SQLite, alternately" \
    "$sqp" ">=" "$(half "${sqp:-0}" 0.9)"
row "  non-2xx answers and socket errors" \
    "$(val pg_predict_bad)" count "" "" "<=" 0
row "resident memory, PostgreSQL, 2 runs" "$(val pg_rss_two_runs_mb)" MB "" "" "<=" 150
unpaced=$(val store_bytes_per_run_unpaced)
row "store bytes written per dnn run" "$(val store_bytes_per_run_paced)" bytes \
    "checkpoint every period" "$unpaced" "<=" "$(half "$unpaced" 0.5)"
unpaced=$(val store_bytes_per_period_unpaced)
row "store bytes written per tiny period" "$(val store_bytes_per_period_paced)" bytes \
    "checkpoint every period" "$unpaced" "<=" "$(half "$unpaced" 0.25)"
# the run queue (bench/bench_claim.c): a node's workers need a claim each
# time a run ends; the recipes take about 0.5 s, so N workers need N / 0.5
# claims/s at least. Reference: the rate of 8 workers, same run.
w8=$(val claim_per_s_w8)
for n in 8 32 64; do
  ref=$w8; rname="8 workers, same run"; [ "$n" = 8 ] && { ref=""; rname=""; }
  row "queue claims, $n workers" "$(val claim_per_s_w$n)" claims/s "$rname" "$ref" \
      ">=" $((2 * n))
  row "  duplicate claims" "$(val claim_duplicates_w$n)" count "" "" "<=" 0
  row "  runs not finished, failed calls" "$(val claim_unfinished_w$n)" count "" "" "<=" 0
done
echo
echo "* medians of five wrk runs of ${WRK_SECONDS:-4} s (wrk niced, sharing the cores):"
grep -E '^(predict|predict_cnn|bare|v2_json|v2_binary|tfs|tls_https?_predict|ab_sqlite_predict|pg_predict)_run' "$out" | sed 's/^/    /'
echo "Queue claims: each of 3,000 empty runs claimed, heartbeated and finished by one of N"
echo "threads with its own connection; store_run_claim's p50/p99: 8 workers" \
  "$(val claim_p50_ms_w8)/$(val claim_p99_ms_w8) ms, 32 $(val claim_p50_ms_w32)/$(val claim_p99_ms_w32) ms," \
  "64 $(val claim_p50_ms_w64)/$(val claim_p99_ms_w64) ms."
echo "sgemm rate on the step's shapes: batch 30 $(val sgemm_gflops_b30) GFLOP/s, batch 128 $(val sgemm_gflops_b128) GFLOP/s."
echo "Ceiling: the dense step's FLOPs over that rate; the engine skips zero pixels in the"
echo "first layer, so it can pass it. Recipe validation accuracy: $(val recipe_dnn_accuracy)."
fi
[ "$part" = all ] && echo "12-trial search: best validation accuracy" \
  "$(val sweep_12_best_accuracy), $(val sweep_12_pruned) trials pruned (PyTorch's:" \
  "$(val torch_sweep_12_best_accuracy), $(val torch_sweep_12_pruned) pruned)."
for b in 32 128; do
  echo "cnn ceiling, batch $b: $(val cnn_flops_per_sample) floating-point operations a sample" \
       "(the dense method: every convolution's forward and backward as full im2col" \
       "products, and the dense layers) over cblas_sgemm's" \
       "$(val cnn_sgemm_gflops_b$b) GFLOP/s on the engine's shapes (CPU time) =" \
       "$(val cnn_sgemm_ceiling_samples_per_s_b$b) samples/s; the engine reaches" \
       "$(awk -v a="$(val cnn_train_cpu_samples_per_s_b$b)" -v c="$(val cnn_sgemm_ceiling_samples_per_s_b$b)" \
            'BEGIN { if (c > 0) printf "%.2f", a / c; else printf "?" }') of it (the pooled"  \
       "backward works only at each window's maximum, so the engine can pass 1)."
done
[ "$torch" = 1 ] || echo "PyTorch reference absent (python3-torch not installed): the cnn goal is" \
  "3x the issue's ~1,000 samples/s, no ratio."
exit $fail
