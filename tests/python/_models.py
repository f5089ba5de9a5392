"""Small trained torch models and data shared by the tests (seeded, CPU, float32)."""
import numpy as np
import torch
from torch import nn


def blobs(n, n_in=10, k=3, seed=0):
    """k Gaussian clusters in n_in dimensions with int64 labels."""
    g = np.random.default_rng(seed)
    centres = g.normal(0, 2.0, size=(k, n_in))
    y = g.integers(0, k, size=n)
    x = centres[y] + g.normal(0, 1.0, size=(n, n_in))
    return x.astype(np.float32), y.astype(np.int64)


def trained_classifier(sizes=(10, 32, 16, 3), act=nn.ReLU, n=600, epochs=30, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    seq = nn.Sequential(*layers)
    x, y = blobs(n, sizes[0], sizes[-1], seed)
    opt = torch.optim.Adam(seq.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(seq(xt), yt).backward()
        opt.step()
    return seq, x, y
