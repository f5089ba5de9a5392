"""Exit 0 when two pruned ONNX models are the same up to rounding: every initializer has the
same exact zeros (the mask) and values within a relative tolerance; else print the first
difference and exit 1. With SCALE "tensor" the tolerance is relative to each tensor's largest
magnitude (trained models: a weight that ends near zero keeps the absolute rounding of the
sums that moved it, so its own relative error says nothing), and masks are not compared.
usage: same_model.py A.onnx B.onnx RTOL [element|tensor]"""
import sys
import numpy as np
import onnx
from onnx import numpy_helper


def tensors(path):
    return {t.name: numpy_helper.to_array(t).astype(np.float64)
            for t in onnx.load(path).graph.initializer}


a, b, rtol = tensors(sys.argv[1]), tensors(sys.argv[2]), float(sys.argv[3])
per_tensor = len(sys.argv) > 4 and sys.argv[4] == "tensor"
if a.keys() != b.keys() or not a:
    sys.exit(f"{sys.argv[2]}: initializers {sorted(b)} differ from {sorted(a)}")
for name in sorted(a):
    x, y = a[name], b[name]
    if x.shape != y.shape:
        sys.exit(f"{name}: shape {y.shape} != {x.shape}")
    if not per_tensor and not np.array_equal(x == 0, y == 0):
        sys.exit(f"{name}: masks differ in {int(np.sum((x == 0) != (y == 0)))} entries")
    scale = np.maximum(np.abs(x), np.abs(y))
    if per_tensor:
        scale = np.full_like(x, np.abs(x).max())
    bad = np.abs(x - y) > rtol * scale
    if bad.any():
        i = np.unravel_index(np.argmax(np.abs(x - y) - rtol * scale), x.shape)
        sys.exit(f"{name}{list(i)}: {y[i]!r} vs {x[i]!r} (relative tolerance {rtol})")
