#!/usr/bin/env bash
# bench_obs: one-shot reconstruction pruning, `ecprune prune --method obs|ec-obs` ("seconds" of
# --json: the allocation pass, then per layer the calibration pass, H, its inverse and factor,
# the column sweep and the re-fit) on mnist 784-300-100-10 (5 epochs), 2000 calibration
# samples, sparsity 0.9, against the same algorithm in PyTorch float64 (bench/torch_obs.py) at
# the same thread count. Both use the same 2000 digits (a dataset directory of exactly 2000
# training samples, which ecprune uses whole). PyTorch is given each layer's count from
# ecprune's --json "layers"[].pruned (its weights are then compared with ecprune's); in the
# "global" rows it is also timed computing that allocation itself (the EC loss-sensitivity pass
# and one global selection, as ecprune does), the like-for-like figure, and its counts are
# checked against ecprune's. The rows "uniform" are the same work on both sides
# (--allocation uniform: 0.9 in every layer, no allocation pass). ecprune's CLI times one cold
# call per process (`prune --json` "seconds"); PyTorch's side times calls after a warm-up, so
# bench/obs_warm.c also times the library's ecp_prune that way (best of REPS after one call).
# usage: bench/bench_obs.sh BUILD_DIR      (run by `make bench` through bench/run.sh)
set -euo pipefail
build=${1:-build}
bin="$build/ecprune"
py=/usr/bin/python3
here=$(cd "$(dirname "$0")" && pwd)
calib=2000
sparsity=0.9
reps=${ECP_BENCH_REPS:-5}
work="$build/bench"
mkdir -p "$work"
model="$work/obs_mnist_784-300-100-10.onnx"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
warm="$tmp/obs_warm"
cc -std=c11 -D_GNU_SOURCE -O2 -I"$here/../include" -I"$here/../src" \
    -I/usr/include/x86_64-linux-gnu/openblas-pthread "$here/obs_warm.c" "$build/libecprune.a" \
    -lopenblas -lprotobuf-c -lz -lm -lpthread $(pkg-config --libs ompi-c) -o "$warm"

if [[ ! -x $bin ]]; then echo "bench_obs: $bin not found" >&2; exit 1; fi
if ! $py -c 'import torch, onnx' 2>/dev/null; then
    echo "bench_obs: skipped (python3-torch / python3-onnx not installed for $py)"
    exit 0
fi
if [[ ! -f $model ]]; then
    if ! "$bin" train --data mnist --arch 784-300-100-10 --epochs 5 --seed 1 -o "$model" \
        >"$tmp/train.log" 2>&1; then
        echo "bench_obs: skipped (could not train on mnist; run 'make setup'):" >&2
        tail -3 "$tmp/train.log" >&2
        exit 0
    fi
fi
# The calibration set: the first 200 digits of each class of the mnist package (and the next
# 50 as the test split ecprune reports on).
"$py" - "$tmp/data" $calib <<'PY'
import json, os, sys
import numpy as np
d, n = sys.argv[1], int(sys.argv[2])
src = os.path.expanduser("~/.cache/ecprune/mnist/package/src/digits")
per, xs, ys = n // 10, {"train": [], "test": []}, {"train": [], "test": []}
for k in range(10):
    with open(os.path.join(src, "%d.json" % k)) as f:
        v = np.asarray(json.load(f)["data"], dtype=np.float32).reshape(-1, 784)
    for split, part in (("train", v[:per]), ("test", v[per:per + 50])):
        xs[split].append(part)
        ys[split].append(np.full(len(part), k, np.int64))
os.makedirs(d)
for split in ("train", "test"):
    np.save(os.path.join(d, split + "_x.npy"), np.concatenate(xs[split]))
    np.save(os.path.join(d, split + "_y.npy"), np.concatenate(ys[split]))
PY

echo "bench_obs: one-shot obs / ec-obs pruning to $sparsity, mnist 784-300-100-10,"
echo "  $calib calibration samples; min (median) over $reps runs; pytorch float64 with"
echo "  ecprune's per-layer counts given (no allocation pass: favours pytorch), and in the"
echo "  global rows also computing the same EC allocation itself (like for like); ecprune"
echo "  as the CLI runs it (a cold call per process) and warm in-process, as pytorch is timed"
printf '  %-7s %-8s %-7s %16s %16s %9s\n' method alloc threads "ecprune [s]" "pytorch [s]" ratio
# Both sides pinned to the same cores with every thread pool (OpenBLAS, OpenMP, torch) at T.
pin() {
    local t=$1
    shift
    taskset -c "0-$((t - 1))" env OPENBLAS_NUM_THREADS="$t" OMP_NUM_THREADS="$t" "$@"
}
for method in obs ec-obs; do
    for alloc in global uniform; do
        for t in 1 2; do
            out="$tmp/${method}_${alloc}_$t"
            for r in $(seq "$reps"); do
                pin "$t" "$bin" prune "$model" --data "$tmp/data" --method $method \
                    --allocation $alloc --sparsity $sparsity --calib $calib --threads "$t" \
                    -o "$out.onnx" --json 2>/dev/null | tail -1 >>"$out.json"
            done
            counts=$("$py" -c 'import json, sys; print(",".join(str(L["pruned"]) for L in
                json.loads(open(sys.argv[1]).readline())["layers"]))' "$out.json")
            pin "$t" "$py" "$here/torch_obs.py" "$model" "$tmp/data" $method "$counts" "$t" \
                "$reps" "$out.npz" >"$out.torch.json"
            pin "$t" "$warm" "$model" "$tmp/data" $method $alloc $sparsity $calib "$t" "$reps" \
                >"$out.warm.json"
            echo '{}' >"$out.torch_alloc.json"
            if [[ $alloc == global ]]; then
                pin "$t" "$py" "$here/torch_obs.py" "$model" "$tmp/data" $method \
                    "global:$sparsity" "$t" "$reps" >"$out.torch_alloc.json"
            fi
            "$py" - "$out" $method $alloc "$t" <<'PY'
import json, statistics, sys
import numpy as np
import onnx
from onnx import numpy_helper
out, method, alloc, t = sys.argv[1:5]
ec = [json.loads(l)["seconds"] for l in open(out + ".json") if l.strip()]
pt = json.load(open(out + ".torch.json"))
pa = json.load(open(out + ".torch_alloc.json"))
ew = json.load(open(out + ".warm.json"))
e_min, e_med = min(ec), statistics.median(ec)
print("  %-7s %-8s %-7s %7.3f (%6.3f) %7.3f (%6.3f) %8.2fx" % (
    method, alloc, t, e_min, e_med, pt["best"], pt["median"], pt["best"] / e_min))
print("  %-24s %7.3f (%6.3f) %16s %8.2fx" % (
    "  ecprune warm, in-process", ew["best"], ew["median"], "", pt["best"] / ew["best"]))
if pa:
    ours = [L["pruned"] for L in json.loads(open(out + ".json").readline())["layers"]]
    print("  %-24s %16s %7.3f (%6.3f) %8.2fx cold, %.2fx warm  (counts %s)" % (
        "  pytorch allocating too", "", pa["best"], pa["median"], pa["best"] / e_min,
        pa["best"] / ew["best"],
        "equal" if pa["counts"] == ours else "differ: %s against %s" % (pa["counts"], ours)))
# Same computation: the two pruned networks side by side.
g = onnx.load(out + ".onnx").graph
init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
W = [init[n.input[1]] for n in g.node if n.op_type == "Gemm"]
tw = np.load(out + ".npz")
same = sum(int(((w == 0) == (tw["W%d" % l] == 0)).sum()) for l, w in enumerate(W))
rel = max(float(np.linalg.norm(w - tw["W%d" % l]) / np.linalg.norm(w)) for l, w in enumerate(W))
print("          same zeros at %.4f%% of the weights; max over layers of |W_ec - W_pt|/|W_ec| "
      "%.1e" % (100.0 * same / sum(w.size for w in W), rel))
PY
        done
    done
done
