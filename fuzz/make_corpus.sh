#!/usr/bin/env bash
# Seed corpora for the fuzz harnesses, made from scratch (nothing binary is checked in):
#   make_corpus.sh OUT_DIR ECPRUNE_BINARY
# OUT_DIR/{onnx,npy,idx,csv,cli}: small valid files of each kind, the variants the readers
# accept (ONNX from ecprune itself and from the onnx Python package, .npy versions 1-3,
# gzipped IDX, CSV with header, BOM and CRLF) and a few near misses.
set -euo pipefail
out=${1:?usage: make_corpus.sh OUT_DIR ECPRUNE_BINARY}
bin=${2:?usage: make_corpus.sh OUT_DIR ECPRUNE_BINARY}
PY=/usr/bin/python3
mkdir -p "$out"/{onnx,npy,idx,csv,cli}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Data the models below are trained on (a few rows: the seeds must stay small).
"$PY" - "$tmp" <<'PY'
import numpy as np, sys
d = sys.argv[1]
rng = np.random.default_rng(1)
x = rng.standard_normal((24, 3)).astype(np.float32)
np.save(f"{d}/train_x.npy", x); np.save(f"{d}/test_x.npy", x)
y = (x[:, 0] > 0).astype(np.int64)
np.save(f"{d}/train_y.npy", y); np.save(f"{d}/test_y.npy", y)
PY
i=0
for act in relu tanh gelu leaky_relu sigmoid softplus identity; do
    "$bin" train --data "$tmp" --arch 3-4-2 --act "$act" --epochs 1 --seed 1 \
        -o "$out/onnx/ecprune-$act.onnx" >/dev/null
done
"$bin" train --data "$tmp" --arch 3-5-4-2 --epochs 1 -o "$out/onnx/ecprune-deep.onnx" >/dev/null
"$bin" prune "$out/onnx/ecprune-deep.onnx" --data "$tmp" --sparsity 0.5 --method magnitude \
    -o "$out/onnx/ecprune-pruned.onnx" >/dev/null
# Wide enough that 90 % sparse layers are written as sparse_initializer (smaller than dense).
"$bin" train --data "$tmp" --arch 3-40-20-2 --epochs 1 -o "$tmp/wide.onnx" >/dev/null
"$bin" prune "$tmp/wide.onnx" --data "$tmp" --sparsity 0.9 --method magnitude --storage sparse \
    -o "$out/onnx/ecprune-sparse.onnx" >/dev/null
# External data references (the data file itself stays out of the corpus: the harness's memfd
# lives in /proc/self/fd, so the reader's location checks are what gets fuzzed).
"$bin" prune "$tmp/wide.onnx" --data "$tmp" --sparsity 0.5 --method magnitude --external-data \
    -o "$tmp/external.onnx" >/dev/null
cp "$tmp/external.onnx" "$out/onnx/ecprune-external.onnx"

# Other producers' idioms: MatMul + Add with initializers listed as inputs, Flatten, erf GELU.
"$PY" - "$out/onnx" <<'PY'
import sys, numpy as np
try:
    import onnx
    from onnx import helper, TensorProto, numpy_helper
except ImportError:
    sys.exit(0)
d = sys.argv[1]
W = numpy_helper.from_array(np.ones((3, 2), np.float32), "W")
B = numpy_helper.from_array(np.zeros(2, np.float32), "B")
s2 = numpy_helper.from_array(np.array(1.41421356, np.float32), "s2")
one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
nodes = [helper.make_node("Flatten", ["x"], ["f"], axis=1),
         helper.make_node("MatMul", ["f", "W"], ["m"]),
         helper.make_node("Add", ["m", "B"], ["h"]),
         helper.make_node("Div", ["h", "s2"], ["q"]),
         helper.make_node("Erf", ["q"], ["e"]),
         helper.make_node("Add", ["e", "one"], ["a"]),
         helper.make_node("Mul", ["h", "a"], ["p"]),
         helper.make_node("Mul", ["p", "half"], ["y"])]
g = helper.make_graph(nodes, "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
                       helper.make_tensor_value_info("W", TensorProto.FLOAT, [3, 2])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
                      [W, B, s2, one, half])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 7
open(f"{d}/onnx-matmul-gelu.onnx", "wb").write(m.SerializeToString())
PY

# .npy: the dtypes and header versions the reader takes, and near misses.
"$PY" - "$out/npy" <<'PY'
import numpy as np, sys, io
d = sys.argv[1]
np.save(f"{d}/f4-2d.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
np.save(f"{d}/f8-1d.npy", np.array([1.5, -2.0, 1e300]))
np.save(f"{d}/i8-labels.npy", np.array([0, 3, 1], dtype=np.int64))
np.save(f"{d}/empty.npy", np.zeros((0, 4), np.float32))
np.save(f"{d}/fortran.npy", np.asfortranarray(np.ones((2, 2), np.float32)))
np.save(f"{d}/i4.npy", np.ones(3, np.int32))
for v in (2, 3):
    b = io.BytesIO()
    np.lib.format.write_array(b, np.ones((2, 2), np.float32), version=(v, 0))
    open(f"{d}/v{v}.npy", "wb").write(b.getvalue())
PY

# IDX: plain and gzipped images and labels; zero-sized and 4-D variants.
"$PY" - "$out/idx" <<'PY'
import gzip, struct, sys
d = sys.argv[1]
def idx(dims, fill=7):
    n = 1
    for k in dims: n *= k
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", k) for k in dims) + bytes([fill]) * n
open(f"{d}/images", "wb").write(idx([3, 2, 2]))
open(f"{d}/labels", "wb").write(idx([3], 1))
open(f"{d}/images.gz", "wb").write(gzip.compress(idx([3, 2, 2])))
open(f"{d}/labels.gz", "wb").write(gzip.compress(idx([3], 2)))
open(f"{d}/zero-dim", "wb").write(idx([3, 0, 2]))
open(f"{d}/four-d.gz", "wb").write(gzip.compress(idx([1, 1, 2, 2])))
open(f"{d}/int32-type", "wb").write(bytes([0, 0, 0x0c, 1, 0, 0, 0, 1, 0, 0, 0, 5]))
PY

# CSV: the first byte of each seed picks the target columns in the harness.
printf '\x00a,b,c\n1,2,3\n4,5,6\n' > "$out/csv/header"
printf '\x001,2,3\r\n4,5,6\r\n\r\n' > "$out/csv/crlf"
printf '\003\xef\xbb\xbfx,y\n 1.5e3 , -2\n1e-3,4\n' > "$out/csv/bom-targets"
printf '\x001,2\n3,nan\n' > "$out/csv/nan"
printf '\x001,2\n3,1e39\n' > "$out/csv/too-big"
printf '\x001,2,3\n4,5\n' > "$out/csv/ragged"

# Option values, NUL-separated as the harness splits them.
printf '784-300-100-10\x00relu\x00output\x00--max-memory\x008G\x00ec\x00' > "$out/cli/typical"
printf '1-2\x00gelu\x00probe\x00name_9\x00--max-memory=1.5GiB\x003e-2\x00' > "$out/cli/values"
printf '8-16777216-3\x00-1\x00stdint\x00_STDINT\x00' > "$out/cli/limits"
echo "corpus: $(find "$out" -type f | wc -l) seeds in $out"
