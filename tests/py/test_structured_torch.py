#!/usr/bin/env python3
"""Neuron pruning against PyTorch float64, onnx.checker and ONNX Runtime.

A torch MLP (tanh / sigmoid hidden layers) is exported to ONNX and pruned by
`ecprune prune --structure neuron`:
  * the dumped EC neuron scores and compensations equal the float64 computation from torch's
    own Jacobians (sensitivity s_i = sum_k (dy_k/dz_i)^2 of the layer the neuron feeds):
    score_j = sum_i w_ij^2 (sum s a_j^2 - (sum s a_j)^2 / sum s) / N,  comp_ij = w_ij sum s a_j / sum s;
    mean-replacement the same with s = 1;
  * the smaller model written equals, to 1e-6, the big model masked here from those dumps
    (lowest scores removed, columns zeroed, compensation added to the next biases), and the
    --keep-shape model; it passes onnx.checker with the new shapes, and ONNX Runtime
    (onnxruntime-node) computes the same outputs from the file.

Environment: ECPRUNE_BIN = the built CLI (default build/ecprune). Exits non-zero on failure.
"""
import io
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

warnings.filterwarnings("ignore")
BIN = os.environ.get("ECPRUNE_BIN", "build/ecprune")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N, N_IN, K = 300, 8, 3
failures = []


def check(ok, msg):
    if not ok:
        failures.append(msg)
        print("FAIL:", msg)


def ecprune(*args):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ecprune {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def gemms(path):
    """[(W, b)] of the Gemm nodes of an ecprune file, in order, as float64."""
    m = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
    out = []
    for node in m.graph.node:
        if node.op_type == "Gemm":
            out.append((init[node.input[1]], init[node.input[2]]))
    return out


def forward(layers, acts, x):
    a = x.astype(np.float64)
    for l, (W, b) in enumerate(layers):
        a = a @ W.T + b
        if l < len(layers) - 1:
            a = acts[l](a)
    return a


def sens_and_acts(model, x):
    """Per hidden layer h: a_h (N x n_h) and s of layer h+1 (N x n_{h+1}), float64."""
    lin = [m for m in model if isinstance(m, nn.Linear)]
    act = [m for m in model if not isinstance(m, nn.Linear)]
    out = []
    a = torch.tensor(x, dtype=torch.float64)
    hs = []
    for l, L in enumerate(lin[:-1]):
        a = act[l](L(a))
        hs.append(a.detach())
    for h in range(len(lin) - 1):
        z = lin[h + 1](hs[h]).detach().requires_grad_(True)
        y = z
        for l in range(h + 1, len(lin)):
            if l > h + 1:
                y = lin[l](y)
            if l < len(lin) - 1:
                y = act[l](y)
        s = torch.zeros_like(z)
        for k in range(K):
            g, = torch.autograd.grad(y[:, k].sum(), z, retain_graph=True)
            s += g * g
        out.append((hs[h].numpy(), s.detach().numpy()))
    return out


def reference(W, a, s):
    m0 = s.sum(0)                              # per row i
    m1 = s.T @ a                               # i x j
    m2 = s.T @ (a * a)
    score = (W * W * (m2 - m1 * m1 / m0[:, None])).sum(0) / len(a)
    comp = W * m1 / m0[:, None]
    return score, comp


def close(a, b, rtol):
    return np.max(np.abs(a - b)) <= rtol * max(np.max(np.abs(b)), 1e-12)


def ort_predict(path, x, tmp):
    xf, yf = os.path.join(tmp, "x.f32"), os.path.join(tmp, "y.f32")
    x.astype(np.float32).tofile(xf)
    r = subprocess.run(["node", os.path.join(ROOT, "bench", "ort_run.js"), path, "predict", xf,
                        str(len(x)), yf], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip())
    return np.fromfile(yf, dtype=np.float32).reshape(len(x), -1)


def main():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(N_IN, 12), nn.Tanh(), nn.Linear(12, 9), nn.Sigmoid(),
                          nn.Linear(9, K))
    acts = [np.tanh, lambda v: 1 / (1 + np.exp(-v))]
    rng = np.random.default_rng(4)
    x = (rng.uniform(-1, 1, (N, N_IN)) + 0.5).astype(np.float32)
    y = rng.normal(size=(N, K)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        for split in ("train", "test"):
            np.save(os.path.join(data, f"{split}_x.npy"), x)
            np.save(os.path.join(data, f"{split}_y.npy"), y)
        big = os.path.join(tmp, "big.onnx")
        buf = io.BytesIO()
        torch.onnx.export(model, torch.zeros(1, N_IN), buf, opset_version=13,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "n"}, "output": {0: "n"}})
        with open(big, "wb") as f:
            f.write(buf.getvalue())
        model = model.double()
        stats = sens_and_acts(model, x)
        lin = [m for m in model if isinstance(m, nn.Linear)]
        orig = [(L.weight.detach().numpy().astype(np.float32).astype(np.float64),
                 L.bias.detach().numpy().astype(np.float32).astype(np.float64)) for L in lin]

        for method in ("ec", "mean-replacement"):
            d = os.path.join(tmp, method)
            os.mkdir(d)
            ecprune("prune", big, "--structure", "neuron", "--data", data, "--calib", str(N),
                    "--method", method, "--sensitivity", "output", "--dump-scores", d)
            for h, (a, s) in enumerate(stats):
                W = orig[h + 1][0]
                score, comp = reference(W, a, s if method == "ec" else np.ones_like(s))
                got_s = np.load(os.path.join(d, f"neuron_score_{h}.npy"))
                got_c = np.load(os.path.join(d, f"neuron_comp_{h}.npy"))
                check(close(got_s, score, 1e-4), f"{method} scores of hidden layer {h}: "
                      f"{got_s} vs {score}")
                check(close(got_c, comp, 1e-4), f"{method} compensation of hidden layer {h}")

        # The smaller model against the big one masked here from the dumped EC scores (the
        # paper's output sensitivity and bias shifts, one global ranking).
        BIAS_GLOBAL = ("--sensitivity", "output", "--compensation", "bias", "--scope", "global")
        d = os.path.join(tmp, "ec")
        small, kept = os.path.join(tmp, "small.onnx"), os.path.join(tmp, "kept.onnx")
        ecprune("prune", big, "--structure", "neuron", "--data", data, "--calib", str(N),
                "--sparsity", "0.5", *BIAS_GLOBAL, "-o", small)
        ecprune("prune", big, "--structure", "neuron", "--data", data, "--calib", str(N),
                "--sparsity", "0.5", *BIAS_GLOBAL, "--keep-shape", "-o", kept)
        scores = [np.load(os.path.join(d, f"neuron_score_{h}.npy")) for h in range(2)]
        comps = [np.load(os.path.join(d, f"neuron_comp_{h}.npy")) for h in range(2)]
        cand = sorted((float(v), h, j) for h in range(2) for j, v in enumerate(scores[h]))
        gone = cand[:int(np.floor(0.5 * 21 + 0.5))]
        masked = [(W.copy(), b.copy()) for W, b in orig]
        for _, h, j in gone:
            masked[h + 1][1][:] += comps[h][:, j].astype(np.float64)
            masked[h + 1][0][:, j] = 0
        m = onnx.load(small)
        onnx.checker.check_model(m, full_check=True)
        got = gemms(small)
        widths = [W.shape[0] for W, _ in got]
        check(widths[:2] == [12 - sum(g[1] == 0 for g in gone), 9 - sum(g[1] == 1 for g in gone)]
              and sum(widths[:2]) == 21 - len(gone), f"smaller model widths {widths}")
        ys = forward(got, acts, x)
        ym = forward(masked, acts, x)
        yk = forward(gemms(kept), acts, x)
        check(np.max(np.abs(ys - ym)) < 1e-6, f"smaller vs masked: {np.max(np.abs(ys - ym))}")
        check(np.max(np.abs(ys - yk)) < 1e-6, f"smaller vs --keep-shape: {np.max(np.abs(ys - yk))}")
        yo = ort_predict(small, x, tmp)
        check(np.max(np.abs(yo - ys)) < 1e-5, f"ONNX Runtime vs smaller: {np.max(np.abs(yo - ys))}")
    print("structured: %d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
