"""A small classification dataset (train/test .npy) for the multi-process checks: 4 classes
from a random linear teacher on 24 inputs, a third of the inputs exactly zero (as pixels are),
so the sparse statistics path sees zeros."""
import sys
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(7)
teacher = rng.normal(size=(24, 4))
for split, n in (("train", 3000), ("test", 500)):
    x = rng.normal(size=(n, 24)).astype(np.float32)
    x[rng.random(size=x.shape) < 1 / 3] = 0
    y = np.argmax(x @ teacher + 0.3 * rng.normal(size=(n, 4)), axis=1).astype(np.int64)
    np.save(f"{out}/{split}_x.npy", x)
    np.save(f"{out}/{split}_y.npy", y)
