#!/usr/bin/env bash
# Sparse inference engine vs dense OpenBLAS vs PyTorch CPU, same machine, same threads, one run.
#   small: 784-300-100-10 relu at 90 % sparsity (trained on mnist and pruned with
#          `ecprune prune --method ec` when that works; else random weights, magnitude-pruned)
#   large: 1024-4096-4096-1024 relu, random weights, 90 % magnitude-pruned (timing needs only
#          the shape and the sparsity)
# Prints batch-1 latency (goal: sparse >= 4x lower than dense/torch), batch-256 throughput
# (goal >= 2x dense), the break-even densities (`ecprune tune`), and the bandwidth the batch-1
# sparse pass reaches on the large model against a STREAM-like copy measured here.
# usage: bench/bench_infer.sh [BUILD]   (THREADS=1 by default; SECONDS_PER=0.5)
set -euo pipefail
build=${1:-build}
threads=${THREADS:-1}
secs=${SECONDS_PER:-0.5}
ecp="$build/ecprune"
export ECPRUNE_TORCH_INFER="$(cd "$(dirname "$0")" && pwd)/torch_infer.py"
work=$(mktemp -d /tmp/ecprune-bench-infer-XXXXXX)
trap 'rm -rf "$work"' EXIT
LIBS="-lopenblas -lprotobuf-c -lz -lm -lpthread"
cc -std=c11 -O2 -Iinclude bench/mkmodel.c "$build/libecprune.a" $LIBS -o "$work/mkmodel"
cc -std=c11 -O3 -march=native bench/stream_copy.c -o "$work/stream_copy"

small="$work/small.onnx"; small_how="random weights, magnitude-pruned"
if "$ecp" train --data mnist --arch 784-300-100-10 --epochs 3 -o "$work/dense.onnx" >/dev/null 2>&1 &&
   "$ecp" prune "$work/dense.onnx" --data mnist --method ec --sparsity 0.9 -o "$small" >/dev/null 2>&1; then
    small_how="trained on mnist, pruned by ec"
else
    "$work/mkmodel" 784-300-100-10 0.9 "$small"
fi
"$work/mkmodel" 1024-4096-4096-1024 0.9 "$work/large.onnx"

data_opt=()
"$ecp" eval "$small" --data mnist >/dev/null 2>&1 && data_opt=(--data mnist)
"$ecp" tune --threads "$threads" --json > "$work/tune.json"
"$ecp" bench-infer "$small" --threads "$threads" --seconds "$secs" "${data_opt[@]}" --json > "$work/small.json"
"$ecp" bench-infer "$work/large.onnx" --threads "$threads" --seconds "$secs" --json > "$work/large.json"
bw=$("$work/stream_copy" 128)

/usr/bin/python3 - "$work" "$bw" "$threads" "$small_how" "${data_opt[*]:-random inputs}" <<'PY'
import json, sys
work, bw, threads, how, inputs = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
tune = json.load(open(f"{work}/tune.json"))
def ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"
for name, desc, sizes in (("small", f"784-300-100-10, {how}, {inputs}", [784, 300, 100, 10]),
                          ("large", "1024-4096-4096-1024, random, 90% magnitude-pruned, random inputs",
                           [1024, 4096, 4096, 1024])):
    r = json.load(open(f"{work}/{name}.json"))
    b1, bn = r["batch1"], r["batch256"]
    print(f"{name}: {desc}; density {r['density']:.3f}, {threads} thread(s)")
    print(f"  batch 1 latency us: sparse {b1['sparse_us']:.1f}  dense {b1['dense_us']:.1f}  "
          f"torch {b1['torch_us'] if b1['torch_us'] is None else round(b1['torch_us'], 1)}")
    print(f"    sparse lower by {ratio(b1['dense_us'], b1['sparse_us'])} vs dense OpenBLAS, "
          f"{ratio(b1['torch_us'], b1['sparse_us'])} vs PyTorch   (goal >= 4x)")
    print(f"  batch 256 samples/s: sparse {bn['sparse_sps']:.0f}  dense {bn['dense_sps']:.0f}  "
          f"torch {bn['torch_sps'] if bn['torch_sps'] is None else round(bn['torch_sps'])}")
    print(f"    sparse higher by {ratio(bn['sparse_sps'], bn['dense_sps'])} vs dense, "
          f"{ratio(bn['sparse_sps'], bn['torch_sps'])} vs PyTorch   (goal >= 2x)")
    print(f"    effective GFLOP/s of non-zeros: batch 1 {b1['sparse_gflops']:.2f}, "
          f"batch 256 {bn['sparse_gflops']:.2f}")
    if name == "large":
        # bytes a batch-1 pass must read: values (4 B) + uint16 indices (2 B) per non-zero, plus
        # 8-byte row pointers; dense reads 4 B per weight
        nnz, rows = r["nnz"], sum(sizes[1:])
        sp_bytes = 6 * nnz + 8 * rows
        dense_bytes = 4 * sum(a * b for a, b in zip(sizes, sizes[1:]))
        print(f"  bandwidth at batch 1: sparse {sp_bytes / b1['sparse_us'] * 1e-3:.1f} GB/s, "
              f"dense {dense_bytes / b1['dense_us'] * 1e-3:.1f} GB/s; "
              f"STREAM-like copy {bw:.1f} GB/s")
print(f"break-even density (sparse wins below): batch 1 in-cache {tune['batch1_small']:.3f}, "
      f"batch 1 memory-bound {tune['batch1_large']:.3f}, batch 256 {tune['batchN']:.3f}")
PY
