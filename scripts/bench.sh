#!/usr/bin/env bash
# bench.sh BUILD: runs the benchmarks and prints one table: each figure,
# the reference measured in the same run, their ratio, and the goal.
# References: the sgemm ceiling (always) and PyTorch (when python3-torch is
# installed). Exits 1 if a goal is missed.
set -euo pipefail
build=${1:-build}
data=${MNISTD_DATA_DIR:-data}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

echo "bench: engine training throughput (dnn [100,100], Adagrad, clip 5, 1 thread)..." >&2
"$build/bench_train" "$data" >> "$out"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "bench: PyTorch reference..." >&2
  OMP_NUM_THREADS=1 /usr/bin/python3 bench/torch_train.py "$data" >> "$out"
else
  echo "bench: python3-torch is not installed; PyTorch columns are skipped" >&2
fi

val() { awk -v k="$1" '$1 == k { print $2 }' "$out"; }
fail=0
row() { # name value unit reference-name reference goal-min
  local name=$1 v=$2 unit=$3 rname=$4 r=$5 goal=$6 ratio="-" verdict="met"
  [ -n "$r" ] && ratio=$(awk -v a="$v" -v b="$r" 'BEGIN { printf "%.2f", a / b }')
  if awk -v a="$v" -v g="$goal" 'BEGIN { exit !(a < g) }'; then verdict="MISSED"; fail=1; fi
  printf '%-34s %12s %-9s %-26s %12s %7s  >= %-10s %s\n' "$name" "$v" "$unit" "$rname" "${r:--}" "$ratio" "$goal" "$verdict"
}
printf '%-34s %12s %-9s %-26s %12s %7s  %-13s %s\n' figure value unit reference ref-value ratio goal verdict
for b in 30 128; do
  goal=90000; [ "$b" = 128 ] && goal=150000
  row "train samples/s, batch $b" "$(val train_samples_per_s_b$b)" "samples/s" \
      "PyTorch 1 thread" "$(val torch_samples_per_s_b$b)" "$goal"
  ceil=$(val sgemm_ceiling_samples_per_s_b$b)
  row "  vs sgemm ceiling, batch $b" "$(val train_samples_per_s_b$b)" "samples/s" \
      "dense sgemm ceiling" "$ceil" "$(awk -v c="$ceil" 'BEGIN { printf "%.0f", c / 2 }')"
done
echo
echo "sgemm rate on the step's shapes: batch 30 $(val sgemm_gflops_b30) GFLOP/s, batch 128 $(val sgemm_gflops_b128) GFLOP/s"
echo "(ceiling: the dense step's FLOPs over that rate; goal: at least half of it. The engine
 skips zero pixels in the first layer, so it can pass the dense ceiling.)"
exit $fail
