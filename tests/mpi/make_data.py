"""A small classification dataset (train/test .npy) for the multi-process checks: 4 classes
from a random linear teacher on 24 inputs, a third of the inputs exactly zero (as pixels are),
so the sparse statistics path sees zeros. An optional second argument sets the fraction of
zeros (0.7: training takes its sparse-input layout).
usage: make_data.py DIR [ZERO_FRACTION]"""
import sys
import numpy as np

out = sys.argv[1]
zeros = float(sys.argv[2]) if len(sys.argv) > 2 else 1 / 3
rng = np.random.default_rng(7)
teacher = rng.normal(size=(24, 4))
for split, n in (("train", 3000), ("test", 500)):
    x = rng.normal(size=(n, 24)).astype(np.float32)
    x[rng.random(size=x.shape) < zeros] = 0
    y = np.argmax(x @ teacher + 0.3 * rng.normal(size=(n, 4)), axis=1).astype(np.int64)
    np.save(f"{out}/{split}_x.npy", x)
    np.save(f"{out}/{split}_y.npy", y)
