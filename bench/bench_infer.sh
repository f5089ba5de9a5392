#!/usr/bin/env bash
# Inference: ecprune's dense path and sparse engine against ONNX Runtime CPU and PyTorch CPU,
# same machine, same model file / weights, same inputs, same threads, one run
# (`ecprune bench-infer`, which starts both peers itself).
#   small:  784-300-100-10 relu, trained on mnist (`ecprune train`), dense and pruned to 90 % by
#           `ecprune prune --method ec`; mnist test inputs (else random weights, magnitude-pruned,
#           random inputs, when mnist is not there)
#   large:  1024-4096-4096-1024 relu, random weights, dense and 90 % magnitude-pruned (timing
#           needs only the shape and the sparsity), random inputs
# Batches 1, 16, 256, 1024. Prints per model a table of batch-1 latency / samples per second and
# the ratios against ONNX Runtime (goals: ecprune dense >= ORT at every batch; sparse >= 3x ORT
# at batch 1 and >= 2.5x at batch 256), then batch 1 of the pruned small model on random dense
# inputs (goal: sparse >= 5x dense), bytes per non-zero and the fraction of a STREAM-like copy
# bandwidth the batch-1 sparse pass on the large model reaches (goal >= 80 %), with float32 and
# with bf16 weights (--bf16: 16-bit values in the batch-1 layout).
# ORT's figures include the fixed cost of a call through its node binding; that cost is timed
# on a 1-1 model and printed, with the ratio against ORT without it in brackets.
# Every figure is the best over ROUNDS rounds (each contender timed once per round, in turn) of the
# median time of the calls in a round; the machine may be shared, so the rounds matter.
# usage: bench/bench_infer.sh [BUILD]   (THREADS=1, SECONDS_PER=0.5 per figure, ROUNDS=3)
set -euo pipefail
build=${1:-build}
threads=${THREADS:-1}
secs=${SECONDS_PER:-0.5}
rounds=${ROUNDS:-3}
ecp="$build/ecprune"
export ECPRUNE_TORCH_INFER="$(cd "$(dirname "$0")" && pwd)/torch_infer.py"
work=$(mktemp -d /tmp/ecprune-bench-infer-XXXXXX)
trap 'rm -rf "$work"' EXIT
LIBS="-lopenblas -lprotobuf-c -lz -lm -lpthread $(pkg-config --libs ompi-c)"
cc -std=c11 -O2 -Iinclude bench/mkmodel.c "$build/libecprune.a" $LIBS -o "$work/mkmodel"
cc -std=c11 -O3 -march=native bench/stream_copy.c -o "$work/stream_copy"
batches=1,16,256,1024

how="trained on mnist; 90 % by ec"
if "$ecp" train --data mnist --arch 784-300-100-10 --epochs 3 -o "$work/small_dense.onnx" >/dev/null 2>&1 &&
   "$ecp" prune "$work/small_dense.onnx" --data mnist --method ec --sparsity 0.9 -o "$work/small_90.onnx" >/dev/null 2>&1; then
    small_data=(--data mnist)
else
    how="random weights; 90 % by magnitude"; small_data=()
    "$work/mkmodel" 784-300-100-10 0 "$work/small_dense.onnx"
    "$work/mkmodel" 784-300-100-10 0.9 "$work/small_90.onnx"
fi
"$work/mkmodel" 1024-4096-4096-1024 0 "$work/large_dense.onnx"
"$work/mkmodel" 1024-4096-4096-1024 0.9 "$work/large_90.onnx"

run() { # name model extra-args...
    local name=$1 model=$2; shift 2
    "$ecp" bench-infer "$model" --threads "$threads" --seconds "$secs" --rounds "$rounds" --json "$@" \
        > "$work/$name.json"
}
run small_dense "$work/small_dense.onnx" --batch $batches "${small_data[@]}"
run small_90 "$work/small_90.onnx" --batch $batches "${small_data[@]}"
run small_90_rand "$work/small_90.onnx" --batch 1 --no-torch
run large_dense "$work/large_dense.onnx" --batch $batches
run large_90 "$work/large_90.onnx" --batch $batches
run large_90_bf16 "$work/large_90.onnx" --batch 1 --no-torch --no-ort --bf16
bw=$("$work/stream_copy" 128)

/usr/bin/python3 - "$work" "$bw" "$threads" "$how" "${small_data[*]:-random inputs}" "$batches" <<'PY'
import json, sys
work, bw, threads, how, inputs, batches = sys.argv[1:7]
bw, batches = float(bw), [int(b) for b in batches.split(",")]
def load(n):
    return json.load(open(f"{work}/{n}.json"))
def sps(r, b, k):
    """samples/s of engine k at batch b (latency converted at batch 1), None if absent"""
    e = r[f"batch{b}"]
    if b == 1:
        v = e.get(f"{k}_us")
        return None if v is None else 1e6 / v
    return e.get(f"{k}_sps")
def core(r, b, v):
    """ORT's samples/s without the fixed cost of one call through the binding"""
    ov = r.get("ort_overhead_us")
    if v is None or ov is None or b / v <= ov * 1e-6:
        return None
    return b / (b / v - ov * 1e-6)
def x(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"
def fig(b, v):
    return "n/a" if v is None else (f"{1e6 / v:.1f} us" if b == 1 else f"{v:,.0f}/s")
print(f"{threads} thread(s); batch 1 as latency, larger batches as samples/s; each the best of "
      f"{load('small_90')['rounds']} rounds of the median call; ratios > 1 favour ecprune; "
      f"(core): ORT without its per-call binding overhead")
for name, desc in (("small_dense", f"784-300-100-10 dense, {how.split(';')[0]}, {inputs}"),
                   ("small_90", f"784-300-100-10, {how}, {inputs}"),
                   ("large_dense", "1024-4096-4096-1024 dense, random weights and inputs"),
                   ("large_90", "1024-4096-4096-1024, 90 % magnitude-pruned, random inputs")):
    r = load(name)
    print(f"\n{name}: {desc}; density {r['density']:.3f}; ORT call overhead "
          f"{r['ort_overhead_us'] if r['ort_overhead_us'] is None else round(r['ort_overhead_us'], 1)} us")
    print(f"  {'batch':>5} {'dense':>12} {'sparse':>12} {'onnxruntime':>12} {'torch':>12}"
          f"   dense/ORT (core)    sparse/ORT (core)   sparse/dense")
    for b in batches:
        d, s, o, t = (sps(r, b, k) for k in ("dense", "sparse", "ort", "torch"))
        oc = core(r, b, o)
        print(f"  {b:>5} {fig(b, d):>12} {fig(b, s):>12} {fig(b, o):>12} {fig(b, t):>12}"
              f"   {x(d, o):>6} ({x(d, oc):>6})   {x(s, o):>6} ({x(s, oc):>6})   {x(s, d):>6}")
r = load("small_90_rand")
d, s = sps(r, 1, "dense"), sps(r, 1, "sparse")
print(f"\nsmall_90, batch 1 on random dense inputs: dense {fig(1, d)}, sparse {fig(1, s)}: "
      f"sparse {x(s, d)} dense (goal >= 5x)")
sizes = [1024, 4096, 4096, 1024]
dense_bytes = 4 * sum(a * b for a, b in zip(sizes, sizes[1:]))
for name in ("large_90", "large_90_bf16"):
    r = load(name)
    # the bytes of weights, indices and pointers a batch-1 pass reads in the layouts the engine
    # chose (bench-infer's b1_bytes); dense sgemv reads 4 bytes per weight
    nnz, sp_bytes = r["nnz"], r["b1_bytes"]
    bpn = sp_bytes / nnz
    b1 = r["batch1"]
    sgb, dgb = sp_bytes / b1["sparse_us"] * 1e-3, dense_bytes / b1["dense_us"] * 1e-3
    print(f"large_90, batch 1, {r['values']} weights: {bpn:.2f} bytes per non-zero; sparse "
          f"{b1['sparse_us']:.0f} us, {sgb:.1f} GB/s = {100 * sgb / bw:.0f} % of the copy "
          f"bandwidth {bw:.1f} GB/s (goal >= 80 %); dense {dgb:.1f} GB/s = {100 * dgb / bw:.0f} %")
PY
