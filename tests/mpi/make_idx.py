"""A small classification dataset as gzip-compressed IDX files (the format of MNIST): images of
4 x 6 bytes, a third of them zero, labelled 0 to 3 by a random linear teacher. `prune` leaves
such a training set on disk and reads it a chunk of rows at a time.
usage: make_idx.py DIR"""
import gzip
import struct
import sys
import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(11)
teacher = rng.normal(size=(24, 4))
for name, n in (("train", 3000), ("t10k", 500)):
    x = rng.integers(0, 256, size=(n, 24)).astype(np.uint8)
    x[rng.random(size=x.shape) < 1 / 3] = 0
    z = (x / 255.0 - 0.5) @ teacher + 0.3 * rng.normal(size=(n, 4))
    y = np.argmax(z, axis=1).astype(np.uint8)
    with gzip.open(f"{out}/{name}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, n, 4, 6) + x.tobytes())
    with gzip.open(f"{out}/{name}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + y.tobytes())
