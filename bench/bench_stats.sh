#!/usr/bin/env bash
# bench_stats: the time of ecprune's EC statistics pass ("stats_seconds" of `ecprune prune
# --method ec --json`: forward, K backward passes, the moment GEMMs and the scores) on mnist,
# 784-300-100-10, 2000 calibration samples, against the same computation in PyTorch CPU
# (bench/torch_stats.py) with the same number of threads. Goal: ecprune >= 3x faster.
# And against its roof (bench/stats_roof.c, same run, same threads): the pass's GEMM work, dense
# (as a dense implementation does it) and as the zero-skipping pass executes it on this data,
# divided by the rate OpenBLAS sgemm reaches on the dense pass's own shapes; stats_seconds also
# holds the scores and the selection, so the pass alone is timed there too (first call and warm).
# usage: bench/bench_stats.sh BUILD_DIR      (run by `make bench` through bench/run.sh)
set -euo pipefail
build=${1:-build}
bin="$build/ecprune"
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
calib=2000
reps=${ECP_BENCH_REPS:-5}
work="$build/bench"
mkdir -p "$work"
model="$work/stats_mnist_784-300-100-10.onnx"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
roof="$tmp/stats_roof"
cc -std=c11 -D_GNU_SOURCE -O2 -I"$here/../include" -I"$here/../src" -I/usr/include/x86_64-linux-gnu/openblas-pthread \
    "$here/stats_roof.c" "$build/libecprune.a" -lopenblas -lprotobuf-c -lz -lm -lpthread \
    $(pkg-config --libs ompi-c) -o "$roof"

if [[ ! -x $bin ]]; then echo "bench_stats: $bin not found" >&2; exit 1; fi
if ! $py -c 'import torch, onnx' 2>/dev/null; then
    echo "bench_stats: skipped (python3-torch / python3-onnx not installed for $py)"
    exit 0
fi
if [[ ! -f $model ]]; then
    if ! "$bin" train --data mnist --arch 784-300-100-10 --epochs 20 --seed 1 -o "$model" \
        >"$tmp/train.log" 2>&1; then
        echo "bench_stats: skipped (could not train on mnist; run 'make setup'):" >&2
        tail -3 "$tmp/train.log" >&2
        exit 0
    fi
fi

echo "bench_stats: EC statistics pass (forward + K=10 backward + M0/M1/M2 + scores),"
echo "  mnist 784-300-100-10, $calib calibration samples; min (median) over $reps runs"
printf '  %-7s %16s %16s %9s\n' threads "ecprune [s]" "pytorch [s]" ratio
# Both sides run pinned to the same cores with every thread pool (OpenBLAS, OpenMP, torch) at T:
# Debian's torch does its matmuls in OpenBLAS, whose own pool would otherwise use every core
# even under torch.set_num_threads(1).
pin() { local t=$1; shift; taskset -c "0-$((t - 1))" env OPENBLAS_NUM_THREADS="$t" OMP_NUM_THREADS="$t" "$@"; }
for t in 1 2; do
    for r in $(seq "$reps"); do
        pin "$t" "$bin" prune "$model" --data mnist --method ec --sparsity 0.9 --calib $calib \
            --threads "$t" -o "$tmp/p.onnx" --json 2>/dev/null | tail -1 >>"$tmp/ec_$t.json"
    done
    pin "$t" "$py" "$here/torch_stats.py" "$model" "$t" "$calib" 7 >"$tmp/torch_$t.json"
    pin "$t" "$roof" "$model" mnist "$calib" "$t" 7 >"$tmp/roof_$t.json"
    "$py" - "$tmp/ec_$t.json" "$tmp/torch_$t.json" "$t" "$tmp/roof_$t.json" <<'PY'
import json, sys, statistics
ec = [json.loads(l)["stats_seconds"] for l in open(sys.argv[1]) if l.strip()]
pt = json.loads(open(sys.argv[2]).read())
e_min, e_med = min(ec), statistics.median(ec)
ratio = pt["best"] / e_min
print("  %-7s %7.4f (%6.4f) %7.4f (%6.4f) %8.2fx  %s" % (
    sys.argv[3], e_min, e_med, pt["best"], pt["best_median"], ratio,
    "ok" if ratio >= 3 else "below the 3x goal"))
print("          pytorch: manual stacked backward %.4f s, autograd %.4f s" %
      (pt["manual"], pt["autograd"]))
rf = json.loads(open(sys.argv[4]).read())
print("          roof: dense %.3f GFLOP -> %.4f s, as executed %.3f GFLOP -> %.4f s "
      "(sgemm %.1f GFLOP/s)" % (rf["dense_flops"] * 1e-9, rf["dense_roof_s"],
                                rf["executed_flops"] * 1e-9, rf["executed_roof_s"],
                                rf["sgemm_gflops"]))
print("          the pass alone (ecp_stats_compute): first call %.4f s, best of the next %.4f s"
      % (rf["pass_cold_s"], rf["pass_warm_s"]))
print("          fraction of the roof reached (roof / time), dense | as executed roof:")
for name, t in (("stats_seconds min", e_min), ("pass, first call", rf["pass_cold_s"]),
                ("pass, warm", rf["pass_warm_s"])):
    print("            %-18s %.2f | %.2f" % (name, rf["dense_roof_s"] / t,
                                             rf["executed_roof_s"] / t))
PY
done
