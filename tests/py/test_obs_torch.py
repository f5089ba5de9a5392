#!/usr/bin/env python3
"""Cross-check of the reconstruction methods of `ecprune prune` (sparsegpt, obs, ec-obs) against
an independent float64 PyTorch implementation written from the algorithm's statement, column by
column with no lazy batching:

  per layer l in order, on the network as pruned so far (sequential):
    A     inputs of layer l over the calibration set (float32 forward, then float64);
          A~ = [A | 1], the bias being the last column, never pruned
    S     ec-obs: S[n, i] = sum_k (dy_k/dz_i)^2 by autograd in float64; r_n = mean_i S[n, i],
          c_i = sum_n S[n, i] / sum_n r_n (weighting rank1; sample: c = 1; row: r = 1);
          sparsegpt, obs: r = c = 1
    H     sum_n r_n a~_n a~_n^T, Hd = H + lambda I with lambda = damping mean(diag H),
          U upper Cholesky of Hd^-1
    fit   sparsegpt, and layer 0: the start is the layer's weights W~0 = [W | b] and G = W~0 Hd.
          obs, ec-obs, layers l > 0: the target is the layer's output on the inputs a~0 that
          the original (unpruned) network gives it: C = sum_n r_n a~_n a~0_n^T,
          G = W~0 (C + lambda I)^T, and the sweep starts from the optimum G Hd^-1
    count t = min(round(s n_out n_in), n_out n_in - 1) (--allocation uniform)
    quota per block of B columns: sparsegpt t p1/n_in - t p0/n_in (rounded); obs, ec-obs how
          many of the t cheapest c_i w_ij^2 / U_jj^2 on the starting weights fall in the block
    sweep block by block: the block's mask = its quota cheapest on the current weights (ties by
          flat index); for each masked (i, j), column by column: w~_i,j: -= w~_ij / U_jj U_j,j:
    refit (auto: sum_i (k_i+1)^3 <= 3 cols^3, never for sparsegpt; or forced on/off): per row,
          the kept columns and the bias K solve Hd_KK w_K = G_iK
    write back as float32

The masks must be equal and the weights and biases agree (see Tolerance below). The same
networks also check bench/torch_obs.py (the PyTorch peer of bench/bench_obs.sh: blocked, lazy
updates, float32 sensitivities) against this reference, so the benchmark times the same
computation.

The networks (random, exported by torch.onnx.export): 10-16-12-3 tanh (regression targets),
10-16-12-3 relu (classes; 2 first-layer neurons never active), the same with 10 of 16 never
active (their rows' costs are exactly 0 for ec-obs, more than a layer's count: the choice among
them is the tie-break by flat index) and 140-24-3 relu, whose 141 columns exceed the 128 of one
lazy block, so the C code's deferred GEMM runs. --calib equals the training set: the C code
uses every sample (shuffled order).

Tolerance: |ecprune - reference| <= RTOL |reference| + FLOOR max|layer|. The floor, about one
float32 ulp at the layer's scale, is for entries a thousand times smaller than the layer's
largest: they carry the float32 rounding of the network between layers (the forward pass,
sgemm and tanhf in C and torch's kernels here; the weights stored as float32), amplified by
the solves, at up to ~1e-5 of their own size. ec-obs needs nothing wider: its float32
sensitivities move r_n and c_i by ~1e-7 relative.

Run directly (scripts/run_py_tests.sh) or by pytest. Environment: ECPRUNE_BIN (default
build/ecprune). Exits non-zero with a message on failure.
"""
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

warnings.filterwarnings("ignore")
torch.set_num_threads(1)  # tiny matrices: a second thread only waits

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("ECPRUNE_BIN", os.path.join(ROOT, "build", "ecprune"))
RTOL = 1e-5        # weights and biases, relative to the reference value ...
FLOOR = 1e-7       # ... plus this fraction of the layer's largest |value| (about 1 float32 ulp)


# ------------------------------------------------------------------ models and data

def make_net(sizes, act, seed, dead):
    torch.manual_seed(seed)
    mods = []
    for l in range(len(sizes) - 1):
        mods.append(nn.Linear(sizes[l], sizes[l + 1]))
        if l < len(sizes) - 2:
            mods.append(nn.Tanh() if act == "tanh" else nn.ReLU())
    net = nn.Sequential(*mods).eval()
    with torch.no_grad():  # neurons of the first layer that never fire: for ec-obs c_i = 0,
        net[0].bias[:dead] = -10.0  # so their weights' costs tie at exactly 0
    return net


def export(net, n_in, path):
    f = io.BytesIO()
    torch.onnx.export(net, torch.zeros(1, n_in), f, opset_version=13, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    with open(path, "wb") as out:
        out.write(f.getvalue())


def load_model(path):
    """(W float32 [n_out, n_in], b float32, activation) per layer, Gemm or MatMul+Add graphs."""
    g = onnx.load(path).graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    layers = []
    for n in g.node:
        if n.op_type == "Gemm":
            at = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            W = init[n.input[1]]
            layers.append([W if at.get("transB", 0) else W.T, init[n.input[2]], "identity"])
        elif n.op_type == "MatMul":
            layers.append([init[n.input[1]].T, None, "identity"])
        elif n.op_type == "Add":
            layers[-1][1] = init[[i for i in n.input if i in init][0]]
        elif n.op_type in ("Tanh", "Relu"):
            layers[-1][2] = n.op_type.lower()
        else:
            raise RuntimeError("unexpected ONNX node " + n.op_type)
    return [(np.ascontiguousarray(W, np.float32), np.asarray(b, np.float32), a)
            for W, b, a in layers]


def write_data(d, n, n_in, k, classes, seed):
    r = np.random.default_rng(seed)
    os.makedirs(d)
    x = r.normal(size=(n + 20, n_in)).astype(np.float32)
    y = r.integers(0, k, n + 20).astype(np.int64) if classes else \
        r.normal(size=(n + 20, k)).astype(np.float32)
    np.save(os.path.join(d, "train_x.npy"), x[:n])
    np.save(os.path.join(d, "train_y.npy"), y[:n])
    np.save(os.path.join(d, "test_x.npy"), x[n:])
    np.save(os.path.join(d, "test_y.npy"), y[n:])
    return x[:n]


# ------------------------------------------------------------------ the reference

ACT = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}


def inputs_f32(layers, x, l):
    a = torch.from_numpy(x)
    for W, b, act in layers[:l]:
        a = ACT[act](a @ torch.from_numpy(W).T + torch.from_numpy(b))
    return a


def sensitivity(layers, x, l):
    """S[n, i] = sum_k (dy_k/dz_i)^2 on the float64 network, z the pre-activation of layer l."""
    a = torch.from_numpy(x).double()
    z_l = None
    for m, (W, b, act) in enumerate(layers):
        z = a @ torch.from_numpy(W).double().T + torch.from_numpy(b).double()
        if m == l:
            z = z.detach().requires_grad_(True)
            z_l = z
        a = ACT[act](z)
    S = torch.zeros_like(z_l)
    for k in range(a.shape[1]):
        g, = torch.autograd.grad(a[:, k].sum(), z_l, retain_graph=True)
        S += g * g
    return S.detach()


def cheapest(score, n):
    """Flat indices of the n smallest scores, ties by flat index."""
    flat = score.reshape(-1).numpy()
    return np.lexsort((np.arange(flat.size), flat))[:n]


def augmented(layers, x, l):
    A = inputs_f32(layers, x, l).double()
    return torch.cat([A, torch.ones(A.shape[0], 1, dtype=torch.float64)], 1)


def reference_layer(layers, orig, x, l, method, s, block, damping, refit, weighting):
    W0, b0, _ = layers[l]
    no, ni = W0.shape
    cols = ni + 1
    At = augmented(layers, x, l)
    r = torch.ones(At.shape[0], dtype=torch.float64)
    c = torch.ones(no, dtype=torch.float64)
    if method == "ec-obs" and weighting != "none":
        S = sensitivity(layers, x, l)
        rs = S.mean(1)
        if weighting in ("rank1", "sample"):
            r = rs
        if weighting in ("rank1", "row"):
            c = S.sum(0) / rs.sum()
    H = (At * r[:, None]).T @ At
    mean = float(H.diagonal().mean())
    lam = damping * (mean if mean > 0 else 1.0)
    Hd = H + lam * torch.eye(cols, dtype=torch.float64)
    U = torch.linalg.cholesky(torch.linalg.inv(Hd), upper=True)
    Wt = torch.cat([torch.from_numpy(W0).double(), torch.from_numpy(b0).double()[:, None]], 1)
    if method == "sparsegpt" or l == 0:
        G = Wt @ Hd
    else:
        # min_w sum_n r_n (w a~_n - w~0 a~0_n)^2 + lambda |w - w~0|^2, solved directly
        At0 = augmented(orig, x, l)
        G = (At * r[:, None]).T @ At0 @ Wt.T + lam * Wt.T
        Wt = torch.linalg.solve(Hd, G).T.contiguous()
        G = G.T.contiguous()
    t = min(int(np.floor(s * no * ni + 0.5)), no * ni - 1)
    nb = (cols + block - 1) // block
    quota = np.zeros(nb, np.int64)
    if method == "sparsegpt":
        rnd = lambda v: int(np.floor(v + 0.5))
        for bk in range(nb):
            p0, p1 = bk * block, min((bk + 1) * block, ni)
            quota[bk] = rnd(t * p1 / ni) - rnd(t * p0 / ni) if p1 > p0 else 0
    else:
        d = U.diagonal()[:ni]
        for k in cheapest(c[:, None] * Wt[:, :ni] ** 2 / d[None, :] ** 2, t):
            quota[(k % ni) // block] += 1
    mask = np.zeros((no, ni), bool)
    for bk in range(nb):
        j0, j1 = bk * block, min((bk + 1) * block, cols)
        p1 = min(j1, ni)
        if p1 > j0:
            d = U.diagonal()[j0:p1]
            for k in cheapest(c[:, None] * Wt[:, j0:p1] ** 2 / d[None, :] ** 2, quota[bk]):
                mask[k // (p1 - j0), j0 + k % (p1 - j0)] = True
        for j in range(j0, min(j1, ni)):
            i = torch.from_numpy(np.nonzero(mask[:, j])[0])  # each masked row on its own
            e = Wt[i, j] / U[j, j]
            Wt[i, j:] -= e[:, None] * U[j, j:][None, :]
            Wt[i, j] = 0.0
    kept = (~mask).sum(1)
    if refit == "auto":
        do_refit = method != "sparsegpt" and float(((kept + 1.0) ** 3).sum()) <= 3.0 * cols ** 3
    else:
        do_refit = refit == "on"
    if do_refit:
        for i in range(no):
            K = torch.from_numpy(np.append(np.nonzero(~mask[i])[0], ni))
            Wt[i, K] = torch.linalg.solve(Hd[K][:, K], G[i, K])
    W = Wt[:, :ni].numpy().astype(np.float32)
    W[mask] = 0.0
    return W, Wt[:, ni].numpy().astype(np.float32), mask, do_refit


def reference(layers, x, method, s, block, damping=0.01, refit="auto", weighting="rank1"):
    orig, layers = layers, [list(L) for L in layers]
    masks, refits = [], []
    for l in range(len(layers)):
        W, b, mask, rf = reference_layer(layers, orig, x, l, method, s, block, damping, refit,
                                         weighting)
        layers[l][0], layers[l][1] = W, b
        masks.append(mask)
        refits.append(rf)
    return layers, masks, refits


def load_peer():
    """bench/torch_obs.py: the benchmark's PyTorch implementation, checked here too."""
    path = os.path.join(ROOT, "bench", "torch_obs.py")
    spec = importlib.util.spec_from_file_location("torch_obs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------ comparison

def compare(got, want, masks):
    """(max relative error, max error / layer's max |value|, failure message or None) over the
    weights and biases of every layer."""
    worst = worst_abs = 0.0
    for l, ((Wg, bg, _), (Wr, br, _)) in enumerate(zip(got, want)):
        zeros = Wg == 0
        if not np.array_equal(zeros, masks[l]):
            diff = np.argwhere(zeros != masks[l])
            first = tuple(diff[0])
            return worst, worst_abs, "layer %d: masks differ at %d weights, first %s (ecprune " \
                "%s)" % (l, len(diff), first, "pruned" if zeros[first] else "kept")
        for name, g, r in (("weight", Wg, Wr), ("bias", bg, br)):
            g, r = g.astype(np.float64), r.astype(np.float64)
            err = np.abs(g - r)
            tol = RTOL * np.abs(r) + FLOOR * float(np.abs(r).max())
            worst_abs = max(worst_abs, float(err.max()) / float(np.abs(r).max()))
            nz = r != 0
            if nz.any():
                worst = max(worst, float((err[nz] / np.abs(r[nz])).max()))
            if (err > tol).any():
                k = np.unravel_index(int(np.argmax(err - tol)), err.shape)
                return worst, worst_abs, "layer %d %s %s: %.9g, reference %.9g" % (
                    l, name, k, g[k], r[k])
    return worst, worst_abs, None


def run(args):
    p = subprocess.run([BIN] + args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("ecprune %s failed (rc %d): %s" % (" ".join(args), p.returncode,
                                                             p.stderr.strip()))
    return json.loads(p.stdout.strip().splitlines()[-1])


NETS = [("tanh", [10, 16, 12, 3], "tanh", False, 300, 0),
        ("relu", [10, 16, 12, 3], "relu", True, 300, 2),
        ("wide", [140, 24, 3], "relu", True, 400, 0),
        ("dead", [10, 16, 12, 3], "relu", True, 300, 10)]

# (net, method, sparsity, extra flags, refit, weighting)
CASES = [(n, m, s, ["--block", "4"], "auto", "rank1")
         for n in ("tanh", "relu") for m in ("sparsegpt", "obs", "ec-obs") for s in (0.5, 0.8)]
CASES += [("tanh", m, 0.5, ["--block", "4", "--refit", rf], rf, "rank1")
          for m in ("obs", "ec-obs") for rf in ("on", "off")]
CASES += [("relu", "ec-obs", 0.8, ["--block", "4", "--refit", "off"], "off", "rank1"),
          ("tanh", "ec-obs", 0.8, ["--block", "4", "--weighting", "sample"], "auto", "sample"),
          ("tanh", "ec-obs", 0.8, ["--block", "4", "--weighting", "row"], "auto", "row"),
          ("wide", "sparsegpt", 0.8, [], "auto", "rank1"),
          ("wide", "obs", 0.5, ["--block", "4", "--refit", "off"], "off", "rank1"),
          ("wide", "ec-obs", 0.9, [], "auto", "rank1"),
          ("dead", "ec-obs", 0.5, ["--block", "4"], "auto", "rank1"),
          ("dead", "ec-obs", 0.5, [], "auto", "rank1")]


def default_block(method, extra):
    return int(extra[extra.index("--block") + 1]) if "--block" in extra else \
        128 if method == "sparsegpt" else 16


def check_all():
    """Runs every case; returns (report lines, failures)."""
    if not os.path.exists(BIN):
        return [], ["ecprune binary not found: %s (set ECPRUNE_BIN)" % BIN]
    peer = load_peer()
    lines, failures = [], []
    with tempfile.TemporaryDirectory(prefix="ecp_obs_torch_") as tmp:
        nets = {}
        for seed, (name, sizes, act, classes, n, dead) in enumerate(NETS):
            d = os.path.join(tmp, name)
            x = write_data(d, n, sizes[0], sizes[-1], classes, seed + 5)
            model = os.path.join(tmp, name + ".onnx")
            export(make_net(sizes, act, seed + 1, dead), sizes[0], model)
            nets[name] = (d, x, model, load_model(model), n)
        for k, (name, method, s, extra, refit, wt) in enumerate(CASES):
            d, x, model, layers, n = nets[name]
            out = os.path.join(tmp, "p%d.onnx" % k)
            block = default_block(method, extra)
            js = run(["prune", model, "--data", d, "--method", method, "--allocation", "uniform",
                      "--calib", str(n), "--sparsity", str(s), "-o", out, "--json"] + extra)
            got = load_model(out)
            want, masks, refits = reference(layers, x, method, s, block, refit=refit,
                                            weighting=wt)
            tag = "%-4s %-9s s=%.1f %-28s" % (name, method, s, " ".join(extra))
            counts = [int(m.sum()) for m in masks]
            if [L["pruned"] for L in js["layers"]] != counts:
                failures.append("%s: --json per-layer counts %s, reference %s" %
                                (tag, [L["pruned"] for L in js["layers"]], counts))
            err, aerr, msg = compare(got, want, masks)
            if msg:
                failures.append("%s: %s" % (tag, msg))
            # The benchmark's peer, on the same counts.
            pw, pb, _ = peer.prune([torch.from_numpy(W) for W, _, _ in layers],
                                [torch.from_numpy(b) for _, b, _ in layers],
                                [a for _, _, a in layers], torch.from_numpy(x), method, counts,
                                block=block, refit=refit, weighting=wt, lazy=8)
            perr, _, pmsg = compare([(W.numpy(), b.numpy(), None) for W, b in zip(pw, pb)],
                                    want, masks)
            if pmsg:
                failures.append("%s: bench/torch_obs.py: %s" % (tag, pmsg))
            lines.append("%s refit %-6s ecprune: max rel err %.1e, max err/layer max %.1e; "
                         "torch_obs: max rel err %.1e%s" % (
                             tag, ",".join("ny"[r] for r in refits), err, aerr, perr,
                             "  FAIL" if msg or pmsg else ""))
            print(lines[-1], flush=True)
    return lines, failures


def test_obs_torch():
    _, failures = check_all()
    assert not failures, "\n".join(failures)


def main():
    t0 = time.time()
    lines, failures = check_all()
    print("%d cases in %.1f s" % (len(lines), time.time() - t0))
    if failures:
        print("%d FAILURE(S):\n  %s" % (len(failures), "\n  ".join(failures)))
        return 1
    print("OK: sparsegpt, obs and ec-obs agree with the float64 PyTorch reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
