#!/usr/bin/env bash
# The Python package's overhead over the C library, same machine, same run:
#   - batch-1 predict (dense and sparse engine) against the bare C calls (bench/py_forward.c);
#   - ecprune.prune on an nn.Sequential against `ecprune prune` on the same model and data
#     (both: evaluate before, prune, evaluate after; the CLI also reads and writes files).
# Model: 784-300-100-10 relu trained 3 epochs on mnist by the CLI, pruned at 90 % by ec.
# usage: bench/bench_python.sh [BUILD]   (RUNS=5 prune repetitions, SECONDS_PER=1)
set -euo pipefail
build=${1:-build}
runs=${RUNS:-5}
secs=${SECONDS_PER:-1}
ecp="$build/ecprune"
work=$(mktemp -d /tmp/ecprune-bench-python-XXXXXX)
trap 'rm -rf "$work"' EXIT
LIBS="-lopenblas -lprotobuf-c -lz -lm -lpthread $(pkg-config --libs ompi-c)"
make --no-print-directory -s BUILD="$build" python
cc -std=c11 -O2 -Iinclude bench/py_forward.c "$build/libecprune.a" $LIBS -o "$work/py_forward"
export OPENBLAS_NUM_THREADS=1
"$ecp" train --data mnist --arch 784-300-100-10 --epochs 3 -o "$work/dense.onnx" >/dev/null
"$ecp" prune "$work/dense.onnx" --data mnist --sparsity 0.9 -o "$work/pruned.onnx" >/dev/null

PYTHONPATH="$build/python" /usr/bin/python3 - "$work" "$ecp" "$runs" "$secs" <<'PY'
import json, statistics, subprocess, sys, time
import numpy as np
import torch
import ecprune

work, ecp, runs, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
xtr, ytr, xte, yte = ecprune.load_data("mnist")
for name, a in (("train_x", xtr), ("train_y", ytr.astype(np.int64)), ("test_x", xte),
                ("test_y", yte.astype(np.int64))):
    np.save(f"{work}/{name}.npy", a)
x1 = np.ascontiguousarray(xte[:1])
np.save(f"{work}/x1.npy", x1)

c = json.loads(subprocess.run([f"{work}/py_forward", f"{work}/pruned.onnx", f"{work}/x1.npy",
                               str(secs)], check=True, stdout=subprocess.PIPE).stdout)
m = ecprune.MLP.load(f"{work}/pruned.onnx")
eng = m.engine("auto")


def median_us(f):
    blocks, t_end = [], time.perf_counter() + secs
    while len(blocks) < 5 or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        for _ in range(200):
            f()
        blocks.append((time.perf_counter() - t0) / 200 * 1e6)
    return statistics.median(blocks)


pd, ps = median_us(lambda: m.predict(x1)), median_us(lambda: eng.predict(x1))
# The same C call made straight through cffi: what any binding pays per call.
from ecprune._ffi import ffi, lib
h = m._h
ws = m._workspace(1)
xp = ffi.cast("float *", ffi.from_buffer(x1))
raw = median_us(lambda: lib.ecp_mlp_forward(h, ws, xp, 1))
print("batch-1 predict, 784-300-100-10 at 90 % sparsity, one mnist test row, 1 thread")
print("  dense:  C ecp_mlp_forward %7.2f us   m.predict %7.2f us   Python overhead %+6.2f us (%.2fx)"
      % (c["dense_us"], pd, pd - c["dense_us"], pd / c["dense_us"]))
print("          the bare cffi call of ecp_mlp_forward %.2f us (%+.2f us)" % (raw, raw - c["dense_us"]))
print("  sparse: C ecp_sparse_forward %4.2f us   engine.predict %4.2f us   Python overhead %+6.2f us (%.2fx)"
      % (c["sparse_us"], ps, ps - c["sparse_us"], ps / c["sparse_us"]))

seq = ecprune.MLP.load(f"{work}/dense.onnx").to_torch()
t_py, t_cli, c_py, c_cli = [], [], [], []
for _ in range(runs):
    t0 = time.perf_counter()
    _, rep = ecprune.prune(seq, xtr, ytr, sparsity=0.9, test=(xte, yte), progress=False)
    t_py.append(time.perf_counter() - t0)
    c_py.append(rep.seconds)
    t0 = time.perf_counter()
    out = subprocess.run([ecp, "prune", f"{work}/dense.onnx", "--data", work, "--sparsity", "0.9",
                          "-o", f"{work}/p.onnx", "--json"], check=True, stdout=subprocess.PIPE)
    t_cli.append(time.perf_counter() - t0)
    c_cli.append(json.loads(out.stdout)["seconds"])
med = statistics.median
print("prune 784-300-100-10 at 90 %% by ec, 2000 calibration samples, %d runs (min / median s)"
      % runs)
print("  wall:       ecprune.prune(nn.Sequential) %.3f / %.3f   ecprune prune (CLI, npy data) "
      "%.3f / %.3f   ratio of medians %.2fx"
      % (min(t_py), med(t_py), min(t_cli), med(t_cli), med(t_py) / med(t_cli)))
print("  ecp_prune:  from Python %.3f / %.3f              from the CLI %.3f / %.3f"
      % (min(c_py), med(c_py), min(c_cli), med(c_cli)))
PY
