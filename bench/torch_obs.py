#!/usr/bin/env python3
"""PyTorch CPU peer of `ecprune prune --method obs|ec-obs|sparsegpt` for bench/bench_obs.sh.

usage: torch_obs.py MODEL.onnx DATA_DIR METHOD COUNTS THREADS [REPEATS] [OUT.npz]

  DATA_DIR  train_x.npy (and train_y.npy): the calibration inputs (all of them are used)
  COUNTS    comma-separated weights to remove per layer (from ecprune's --json "layers"[].pruned,
            so no allocation is computed here), or `global:S`: the allocation is computed here
            and timed with the rest, as ecprune's --allocation global does it at sparsity S
            (EC with the loss sensitivity of softmax cross-entropy, one global selection)

The same computation as the C code, in the style of SparseGPT's reference implementation:
layer by layer on the network as pruned so far, a float32 forward (and for ec-obs the K
stacked backward passes for S = sum_k (dy_k/dz)^2, float32), H = sum_n r_n [a|1][a|1]^T in
float64, U = chol(inv(H + damping mean(diag H) I)) upper; for obs and ec-obs past layer 0 the
target is the layer's output on the original network's inputs a0 (C = sum_n r_n [a|1][a0|1]^T,
the sweep starting from the least-squares optimum); the column sweep on [W | b] in float64
with the mask chosen per block of `block` columns and the updates past each lazy block of
columns deferred to one matmul, then the exact re-fit of every row when it is cheap.
tests/py/test_obs_torch.py checks it against a column-by-column reference.

Prints one line of JSON: {"threads":T,"method":M,"n":N,"best":s,"median":s,"runs":[...],
"counts":[...]}
(times over REPEATS (5) timed calls after one warm-up; OUT.npz: the pruned weights).
"""
import json
import os
import sys
import time

import numpy as np
import torch

# The ONNX reader is torch_stats.py's, beside this file (also when loaded by path from tests/py).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_stats import load_model  # noqa: E402

F64 = torch.float64
ACT = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}


def dact(kind, a):
    """d act / dz from the activation's output."""
    if kind == "relu":
        return (a > 0).to(a.dtype)
    if kind == "tanh":
        return 1 - a * a
    return torch.ones_like(a)


def forward(W, b, act, x):
    acts = [x]
    for l in range(len(W)):
        acts.append(ACT[act[l]](torch.addmm(b[l], acts[-1], W[l].t())))
    return acts


def sensitivity(W, act, acts, l):
    """S[n, i] = sum_k (dy_k/dz^l_i)^2: the K backward passes stacked into K*N rows."""
    N, K = acts[0].shape[0], W[-1].shape[0]
    dz = torch.eye(K).repeat_interleave(N, 0) * dact(act[-1], acts[-1]).repeat(K, 1)
    for m in range(len(W) - 1, l, -1):
        dz = (dz @ W[m]) * dact(act[m - 1], acts[m]).repeat(K, 1)
    return (dz * dz).view(K, N, -1).sum(0)


def ec_allocation(W, b, act, x, sparsity, B0=256):
    """Weights to remove per layer: the global selection of EC's importance with the loss
    sensitivity of softmax cross-entropy, s = sum_k p_k J_k^2 - (sum_k p_k J_k)^2 (float32
    passes, moments summed in float64; importance w^2 (m2 - m1^2 / m0) / N around the first
    batch's column means, as docs/METHOD.md), the round(S x total) least important."""
    with torch.no_grad():
        acts = forward(W, b, act, x)
        N, K, L = x.shape[0], W[-1].shape[0], len(W)
        p = torch.softmax(acts[-1], 1).t().unsqueeze(2)  # K x N x 1
        dz = torch.eye(K).repeat_interleave(N, 0) * dact(act[-1], acts[-1]).repeat(K, 1)
        scores = [None] * L
        for l in range(L - 1, -1, -1):
            J = dz.view(K, N, -1)
            S = ((p * J * J).sum(0) - (p * J).sum(0) ** 2).clamp_min(0)
            A = acts[l] - acts[l][:B0].mean(0)
            m0 = S.sum(0, dtype=F64)[:, None]
            m1 = (S.t() @ A).double()
            m2 = (S.t() @ (A * A)).double()
            var = (m2 - m1 * m1 / torch.where(m0 > 0, m0, torch.ones_like(m0))).clamp_min(0)
            scores[l] = torch.where(m0 > 0, W[l].double() ** 2 * var / N, torch.zeros_like(var))
            if l:
                dz = (dz @ W[l]) * dact(act[l - 1], acts[l]).repeat(K, 1)
        flat = torch.cat([sc.flatten() for sc in scores])
        k = int(round(sparsity * flat.numel()))
        thr = torch.kthvalue(flat, k).values
        return [int((sc <= thr).sum()) for sc in scores]


def weights(W, act, acts, l, method, weighting):
    """(r, c): sample weights of H and row weights of the costs."""
    N, no = acts[0].shape[0], W[l].shape[0]
    r, c = torch.ones(N, dtype=F64), torch.ones(no, dtype=F64)
    if method != "ec-obs" or weighting == "none":
        return r, c
    S = sensitivity(W, act, acts, l).to(F64)
    rs = S.mean(1)
    if weighting in ("rank1", "sample"):
        r = rs
    if weighting in ("rank1", "row"):
        c = S.sum(0) / rs.sum()
    return r, c


def quotas(Wt, d, c, target, method, block, ni):
    """Weights each block of columns removes: the even split (sparsegpt) or where the target
    cheapest c_i w^2 / U_jj^2 of the whole layer lie."""
    nb = (ni + 1 + block - 1) // block
    if method == "sparsegpt":
        p = torch.clamp(torch.arange(nb + 1) * block, max=ni).to(F64)
        edge = torch.floor(target * p / ni + 0.5).long()
        return (edge[1:] - edge[:-1]).tolist()
    score = (c[:, None] * Wt[:, :ni] ** 2 / d[None, :ni] ** 2).reshape(-1)
    order = torch.sort(score, stable=True).indices[:target]  # ties: flat index
    return torch.bincount(order % ni // block, minlength=nb).tolist()


def sweep(Wt, U, c, quota, block, lazy, ni):
    cols = Wt.shape[1]
    d = U.diagonal()
    mask = torch.zeros(Wt.shape[0], ni, dtype=torch.bool)
    for c0 in range(0, cols, lazy):
        c1 = min(c0 + lazy, cols)
        W1 = Wt[:, c0:c1].clone()
        Err = torch.zeros_like(W1)
        for s0 in range(c0, c1, block):
            s1, p1 = min(s0 + block, c1), min(s0 + block, c1, ni)
            if p1 > s0 and quota[s0 // block] > 0:
                sc = c[:, None] * W1[:, s0 - c0:p1 - c0] ** 2 / d[None, s0:p1] ** 2
                pick = torch.sort(sc.reshape(-1), stable=True).indices[:quota[s0 // block]]
                m = torch.zeros(sc.numel(), dtype=torch.bool)
                m[pick] = True
                mask[:, s0:p1] = m.view(sc.shape)
            for j in range(s0, min(s1, ni)):
                e = torch.where(mask[:, j], W1[:, j - c0] / d[j], 0.0)
                W1[:, j - c0:] -= e[:, None] * U[j, j:c1][None, :]
                W1[:, j - c0] = torch.where(mask[:, j], 0.0, W1[:, j - c0])
                Err[:, j - c0] = e
        Wt[:, c0:c1] = W1
        if c1 < cols:
            Wt[:, c1:] -= Err @ U[c0:c1, c1:]
    return mask


def refit_rows(Wt, Hd, G, mask):
    ni = mask.shape[1]
    for i in range(Wt.shape[0]):
        K = torch.cat([torch.nonzero(~mask[i]).view(-1), torch.tensor([ni])])
        L, info = torch.linalg.cholesky_ex(Hd[K][:, K])
        if int(info) == 0:
            Wt[i, K] = torch.cholesky_solve(G[i, K][:, None], L).view(-1)


def augment(a, r):
    """sqrt(r_n) [a_n | 1] in float64."""
    X = torch.cat([a.to(F64), torch.ones(a.shape[0], 1, dtype=F64)], 1)
    return X * r.sqrt()[:, None]


def prune_layer(W, b, act, acts, acts0, l, method, target, block, damping, refit, weighting,
                lazy):
    """acts0: the original network's activations, or None to fit the layer's own weights."""
    no, ni = W[l].shape
    cols = ni + 1
    r, c = weights(W, act, acts, l, method, weighting)
    Xr = augment(acts[l], r)
    Hd = Xr.t() @ Xr
    mean = float(Hd.diagonal().mean())
    lam = damping * (mean if mean > 0 else 1.0)
    Hd.diagonal().add_(lam)
    Lh = torch.linalg.cholesky(Hd)
    U = torch.linalg.cholesky(torch.cholesky_inverse(Lh), upper=True)
    Wt = torch.cat([W[l].to(F64), b[l].to(F64)[:, None]], 1)
    if acts0 is None:
        G = Wt @ Hd
    else:
        G = (Wt @ augment(acts0[l], r).t()) @ Xr + lam * Wt
        Wt = torch.cholesky_solve(G.t(), Lh).t().contiguous()
    quota = quotas(Wt, U.diagonal(), c, target, method, block, ni)
    mask = sweep(Wt, U, c, quota, block, lazy, ni)
    kept = (~mask).sum(1).to(F64)
    do = refit == "on" or (refit == "auto" and method != "sparsegpt" and
                           float(((kept + 1) ** 3).sum()) <= 3.0 * cols ** 3)
    if do:
        refit_rows(Wt, Hd, G, mask)
    W[l] = torch.where(mask, 0.0, Wt[:, :ni]).float()
    b[l] = Wt[:, ni].float()


def prune(W, b, act, x, method, counts, block=None, damping=0.01, refit="auto",
          weighting="rank1", lazy=None):
    """Prunes float32 layers W, b (lists of tensors, not modified) on calibration inputs x with
    counts[l] weights removed from layer l (counts a float: the global sparsity, allocated by
    ec_allocation); returns the new lists and the counts."""
    if isinstance(counts, float):
        counts = ec_allocation(W, b, act, x, counts)
    W, b = list(W), list(b)
    block = block or (128 if method == "sparsegpt" else 16)
    lazy = lazy or 128
    lazy = max(block, lazy // block * block)
    acts0 = forward(W, b, act, x) if method != "sparsegpt" else None
    for l in range(len(W)):
        if counts[l] <= 0:
            continue
        acts = forward(W, b, act, x)
        prune_layer(W, b, act, acts, acts0 if l else None, l, method, counts[l], block, damping,
                    refit, weighting, lazy)
    return W, b, counts


def main():
    if len(sys.argv) < 6:
        print(__doc__)
        return 2
    model, data, method, counts, threads = sys.argv[1:6]
    repeats = int(sys.argv[6]) if len(sys.argv) > 6 else 5
    torch.set_num_threads(int(threads))
    W, b, act = load_model(model)
    x = torch.from_numpy(np.load(data + "/train_x.npy").astype(np.float32))
    if counts.startswith("global:"):
        counts = float(counts[len("global:"):])
    else:
        counts = [int(v) for v in counts.split(",")]
    run = lambda: prune(W, b, act, x, method, counts)
    out = run()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        ts.append(time.perf_counter() - t0)
    if len(sys.argv) > 7:
        np.savez(sys.argv[7], **{"W%d" % l: w.numpy() for l, w in enumerate(out[0])},
                 **{"b%d" % l: v.numpy() for l, v in enumerate(out[1])})
    print(json.dumps({"threads": int(threads), "method": method, "n": x.shape[0],
                      "best": min(ts), "median": float(np.median(ts)), "runs": ts,
                      "counts": out[2]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
