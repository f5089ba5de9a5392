#!/usr/bin/env python3
"""PyTorch CPU reference timing of EC's statistics pass (docs/METHOD.md), for bench/bench_stats.sh.

usage: torch_stats.py MODEL.onnx THREADS [N] [REPEATS]

Same computation as `ecprune prune --method ec --sensitivity output` on N calibration samples
(mnist digits, any N of them: timing only):
  forward (batched), the K vector-Jacobian products (one backward per output k, seeded with
  e_k), s_i = sum_k (dy_k/dz_i)^2, then per layer M0 = S^T 1, M1 = S^T A, M2 = S^T (A o A)
  (A shifted by the per-column mean of the first batch) as float32 matmuls accumulated in
  float64, and I = w^2 (m2 - m1^2/m0)/N, delta* = w (m1/m0 + c).
Two implementations are timed and the faster is reported:
  manual   - the K backward passes stacked into one batch of K*N rows (a few large GEMMs)
  autograd - K torch.autograd.grad calls on the retained graph
Prints one line of JSON: {"threads":T,"n":N,"manual":s,"autograd":s,"best":s, and the medians}
(times: the minimum over REPEATS (7) timed calls after two warm-up calls, and their median).
"""
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
from onnx import numpy_helper

DIGITS = os.path.expanduser("~/.cache/ecprune/mnist/package/src/digits")


def load_model(path):
    g = onnx.load(path).graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    W, b, act = [], [], []
    for n in g.node:
        if n.op_type == "Gemm":
            W.append(torch.tensor(init[n.input[1]], dtype=torch.float32))
            b.append(torch.tensor(init[n.input[2]], dtype=torch.float32))
            act.append("identity")
        elif n.op_type in ("Relu", "Tanh"):
            act[-1] = n.op_type.lower()
        else:
            raise RuntimeError("unsupported node " + n.op_type)
    return W, b, act


def load_digits(n):
    per = (n + 9) // 10
    xs = []
    for d in range(10):
        with open(os.path.join(DIGITS, "%d.json" % d)) as f:
            v = np.asarray(json.load(f)["data"], dtype=np.float32).reshape(-1, 784)
        xs.append(v[:per])
    return torch.from_numpy(np.concatenate(xs)[:n].copy())


def fwd(W, b, act, x):
    a, As, Zs = x, [x], []
    for l in range(len(W)):
        z = torch.addmm(b[l], a, W[l].t())
        Zs.append(z)
        a = torch.relu(z) if act[l] == "relu" else torch.tanh(z) if act[l] == "tanh" else z
        As.append(a)
    return As, Zs


def dact(kind, z, a):
    if kind == "relu":
        return (z > 0).to(z.dtype)
    if kind == "tanh":
        return 1 - a * a
    return torch.ones_like(z)


def moments_and_scores(W, As, S, N, B0=256):
    out = []
    for l in range(len(W)):
        A = As[l]
        c = A[:B0].mean(0)
        A = A - c
        m0 = S[l].sum(0, dtype=torch.float64)
        m1 = (S[l].t() @ A).double()
        m2 = (S[l].t() @ (A * A)).double()
        w = W[l].double()
        ok = (m0 > 0)[:, None]
        m0s = torch.where(m0 > 0, m0, torch.ones_like(m0))[:, None]
        var = (m2 - m1 * m1 / m0s).clamp_min(0)
        I = torch.where(ok, w * w * var / N, torch.zeros_like(w))
        d = torch.where(ok, w * (m1 / m0s + c.double()), torch.zeros_like(w))
        out.append((I, d))
    return out


def stats_manual(W, b, act, x):
    """K backward passes stacked: dz of shape (K*N) x n per layer, one GEMM per layer."""
    with torch.no_grad():
        N = x.shape[0]
        As, Zs = fwd(W, b, act, x)
        L, K = len(W), W[-1].shape[0]
        # seeds e_k for every sample: rows k*N + n
        dz = torch.eye(K).repeat_interleave(N, 0) * dact(act[-1], Zs[-1], As[-1]).repeat(K, 1)
        S = [None] * L
        for l in range(L - 1, -1, -1):
            S[l] = (dz * dz).view(K, N, -1).sum(0)
            if l:
                da = dz @ W[l]
                dz = da * dact(act[l - 1], Zs[l - 1], As[l]).repeat(K, 1)
        return moments_and_scores(W, As, S, N)


def stats_autograd(W, b, act, x):
    """K autograd.grad calls w.r.t. the pre-activations."""
    N = x.shape[0]
    L, K = len(W), W[-1].shape[0]
    a, As, Zs = x, [x], []
    for l in range(L):
        z = torch.addmm(b[l], a, W[l].t()).requires_grad_(True) if l == 0 else \
            torch.addmm(b[l], a, W[l].t())
        Zs.append(z)
        a = torch.relu(z) if act[l] == "relu" else torch.tanh(z) if act[l] == "tanh" else z
        As.append(a)
    y = As[-1]
    S = [torch.zeros_like(z) for z in Zs]
    seed = torch.zeros_like(y)
    for k in range(K):
        seed.zero_()
        seed[:, k] = 1
        g = torch.autograd.grad(y, Zs, seed, retain_graph=k < K - 1)
        for l in range(L):
            S[l].addcmul_(g[l], g[l])
    with torch.no_grad():
        return moments_and_scores(W, [t.detach() for t in As], S, N)


def timeit(fn, repeats):
    """(min, median) of `repeats` timed calls after two warm-up calls."""
    fn()
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.min(ts)), float(np.median(ts))


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    model, threads = sys.argv[1], int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 7
    torch.set_num_threads(threads)
    W, b, act = load_model(model)
    x = load_digits(n)
    # the two implementations compute the same thing
    r1, r2 = stats_manual(W, b, act, x), stats_autograd(W, b, act, x)
    for (i1, d1), (i2, d2) in zip(r1, r2):
        assert torch.allclose(i1, i2, rtol=1e-3, atol=1e-6 * float(i1.abs().max())), "impl. differ"
    tm = timeit(lambda: stats_manual(W, b, act, x), repeats)
    ta = timeit(lambda: stats_autograd(W, b, act, x), repeats)
    best = tm if tm[0] <= ta[0] else ta
    print(json.dumps({"threads": threads, "n": n, "manual": tm[0], "manual_median": tm[1],
                      "autograd": ta[0], "autograd_median": ta[1], "best": best[0],
                      "best_median": best[1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
