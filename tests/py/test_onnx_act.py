#!/usr/bin/env python3
"""Every activation with its parameters, from torch.onnx.export to every piece of ecprune.

For each activation module (with parameters other than the defaults where it has any) a small
nn.Sequential is exported at opsets 11, 13 and 17 and
  - `ecprune eval --predictions` must match PyTorch's float64 forward within 1e-5;
  - the file ecprune writes back (`prune --sparsity 0`) must run in ONNX Runtime (npm
    onnxruntime-node through bench/ort_infer.js --check, one process for all files) with the
    same outputs within 1e-5.
For one export per activation, an EC prune to 50 % must give finite outputs that ONNX Runtime
reproduces; the sparse engine (`ecprune run --engine sparse`, batch 7 and 1) must agree with
the dense one (the loss within 1e-5), and the C of `ecprune export-c`, compiled, with `ecprune eval`.
Parameters out of range in a file are refused with one line naming the node.

Environment: ECPRUNE_BIN = the built CLI (default build/ecprune). Exits non-zero on failure.
"""
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

warnings.filterwarnings("ignore")
BIN = os.environ.get("ECPRUNE_BIN", "build/ecprune")
HERE = os.path.dirname(os.path.abspath(__file__))
ORT = os.path.join(HERE, "..", "..", "bench", "ort_infer.js")
TOL = 1e-5
N_IN, N_OUT, N = 6, 3, 40
OPSETS = (11, 13, 17)
failures = []

# (tag, module, the spelling `ecprune info` must show for the hidden layers)
ACTS = [
    ("silu", nn.SiLU(), "silu"),
    ("elu", nn.ELU(0.7), "elu:0.7"),
    ("leaky", nn.LeakyReLU(0.2), "leaky_relu:0.2"),
    ("relu6", nn.ReLU6(), "clip:0:6"),
    ("hardtanh", nn.Hardtanh(-2.0, 1.5), "clip:-2:1.5"),
    ("gelu_tanh", nn.GELU(approximate="tanh"), "gelu_tanh"),
    ("gelu", nn.GELU(), "gelu"),
    ("softplus2", nn.Softplus(beta=2.0), "softplus:2"),
    ("hardsigmoid", nn.Hardsigmoid(), "hardsigmoid"),
    ("hardswish", nn.Hardswish(), "hardswish"),
]

# A C harness for export-c: reads N x N_IN floats on stdin, writes N x N_OUT on stdout.
HARNESS = r"""
#include <stdio.h>
#include "model.h"
int main(void)
{
    float x[%d], y[%d];
    while (fread(x, sizeof x, 1, stdin) == 1) {
        model_predict(x, y);
        fwrite(y, sizeof y, 1, stdout);
    }
    return 0;
}
""" % (N_IN, N_OUT)


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def run(args, **kw):
    p = subprocess.run(args, capture_output=True, **kw)
    if p.returncode != 0:
        out = p.stdout + p.stderr
        raise RuntimeError("%s: exit %d: %s" % (" ".join(map(str, args[:3])), p.returncode,
                                                out.decode() if isinstance(out, bytes) else out))
    return p.stdout


def model_for(act):
    torch.manual_seed(3)
    m = nn.Sequential(nn.Linear(N_IN, 10), act, nn.Linear(10, 8), act, nn.Linear(8, N_OUT))
    # Wide pre-activations, so that every branch (clip bounds, ELU's exponential) is taken.
    with torch.no_grad():
        for layer in (m[0], m[2]):
            layer.weight.mul_(3.0)
    return m.eval()


def export(module, opset, path):
    f = io.BytesIO()
    torch.onnx.export(module, torch.zeros(1, N_IN), f, opset_version=opset,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    model = onnx.load_from_string(f.getvalue())
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return sorted({n.op_type for n in model.graph.node})


def write_dataset(d, x, y):
    os.makedirs(d, exist_ok=True)
    for split in ("train", "test"):
        np.save(os.path.join(d, split + "_x.npy"), x)
        np.save(os.path.join(d, split + "_y.npy"), y)


def predictions(model, d):
    pred = os.path.join(d, "pred.npy")
    run([BIN, "eval", model, "--data", d, "--split", "test", "--predictions", pred], text=True)
    return np.load(pred)


ort_jobs = []  # (model, x file, output file, expected, tag, what): one node run checks all


def ort_later(model, x, want, tag, what):
    base = os.path.splitext(model)[0]
    xf, yf = base + ".x.f32", base + ".ort.f32"
    x.astype("<f4").tofile(xf)
    ort_jobs.append((model, xf, yf, want, tag, what))


def ort_check_all(n_rows):
    run(["node", ORT, "--check"] + [f for job in ort_jobs for f in job[:3]], text=True)
    for model, _, yf, want, tag, what in ort_jobs:
        err = close(tag, what, np.fromfile(yf, dtype="<f4").reshape(n_rows, -1), want)
        if err is not None:
            print("ok   %-22s %s: %.1e" % (tag, what, err))


def close(tag, what, got, want):
    err = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
    if not np.all(np.isfinite(got)) or not np.allclose(got, want, rtol=TOL, atol=TOL):
        fail("%s: %s differ by %.3g (shapes %s, %s)" % (tag, what, err, got.shape, want.shape))
        return None
    return err


def check_export(d, tag, module, spelling, opset, x, want):
    sub = os.path.join(d, "%s_%d" % (tag, opset))
    write_dataset(sub, x, want.astype(np.float32))
    path = os.path.join(sub, "m.onnx")
    ops = export(module, opset, path)
    e1 = close("%s opset %d" % (tag, opset), "ecprune eval and torch float64",
               predictions(path, sub), want)
    info = json.loads(run([BIN, "info", path, "--json"], text=True))
    acts = [layer["act"] for layer in info["layers"]]
    if acts != [spelling, spelling, "identity"]:
        fail("%s opset %d: info shows activations %s, expected %s" % (tag, opset, acts,
                                                                      spelling))
    out = os.path.join(sub, "rewritten.onnx")
    run([BIN, "prune", path, "--data", sub, "--method", "magnitude", "--sparsity", "0",
         "-o", out], text=True)
    ort_later(out, x, want, "%s opset %d" % (tag, opset), "|ort(rewritten) - torch|")
    if e1 is not None:
        print("ok   %-12s opset %d  |ecprune - torch| %.1e  ops: %s" % (tag, opset, e1,
                                                                       ",".join(ops)))
    return sub, path


def run_loss(model, d, engine, batch):
    r = json.loads(run([BIN, "run", model, "--data", d, "--engine", engine, "--batch",
                        str(batch), "--json"], text=True))
    return r["loss"]


def export_c(tag, model, d, x):
    out = os.path.join(d, "c")
    run([BIN, "export-c", model, "-o", out, "--name", "model"], text=True)
    with open(os.path.join(out, "main.c"), "w") as f:
        f.write(HARNESS)
    exe = os.path.join(out, "predict")
    run(["cc", "-std=c99", "-O2", "-I", out, "-o", exe, os.path.join(out, "main.c"),
         os.path.join(out, "model.c"), "-lm"], text=True)
    y = run([exe], input=x.astype("<f4").tobytes())
    return np.frombuffer(y, dtype="<f4").reshape(x.shape[0], N_OUT)


def check_pruned(tag, sub, path, x):
    """EC at 50 %: finite, ONNX Runtime agrees, sparse engine = dense, export-c = eval."""
    pruned = os.path.join(sub, "ec.onnx")
    run([BIN, "prune", path, "--data", sub, "--sparsity", "0.5", "-o", pruned], text=True)
    got = predictions(pruned, sub)
    if not np.all(np.isfinite(got)):
        fail("%s: EC-pruned model gives non-finite outputs" % tag)
        return
    ort_later(pruned, x, got, tag + " EC 50%", "|ort - ecprune eval|")
    # Batch 7 (the batched kernels) and 1 (the kernels that skip zero inputs).
    dense = run_loss(pruned, sub, "dense", 7)
    sparse = [run_loss(pruned, sub, "sparse", b) for b in (7, 1)]
    e2 = max(abs(dense - v) for v in sparse)
    if not np.all(np.isfinite(sparse)) or e2 > TOL * max(1.0, abs(dense)):
        fail("%s pruned: run --engine sparse loss %s (batch 7, 1), dense %.9g" %
             (tag, sparse, dense))
        e2 = None
    e3 = close(tag + " pruned", "export-c and ecprune eval", export_c(tag, pruned, sub, x), got)
    if None not in (e2, e3):
        print("ok   %-12s EC 50%%: |sparse - dense loss| %.1e  |export-c - ecprune| %.1e" %
              (tag, e2, e3))


def bad_model(d, name, op, attrs, extra_inputs=(), consts=()):
    """Linear(2, 2) then one activation node with the given attributes / constant inputs."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1, 0, 0, 1])
    inits = [w] + [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in consts]
    nodes = [helper.make_node("Gemm", ["x", "w"], ["z"], name="gemm", transB=1),
             helper.make_node(op, ["z"] + list(extra_inputs), ["y"], name=name, **attrs)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     ["N", 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    path = os.path.join(d, name + ".onnx")
    onnx.save(m, path)
    return path


def scalar(name, v):
    return helper.make_tensor(name, TensorProto.FLOAT, [], [v])


def other_forms():
    """(name, nodes after Gemm z, initializers, opset, numpy reference of z): forms other
    exporters (or other torch versions) write."""
    k = np.sqrt(2 / np.pi)
    gelu_tanh = lambda z: 0.5 * z * (1 + np.tanh(k * (z + 0.044715 * z ** 3)))
    mk = helper.make_node
    return [
        # x/2 first: the cube is not x's first reader.
        ("gelu_tanh_pow", [mk("Mul", ["z", "half"], ["h"]), mk("Pow", ["z", "three"], ["c"]),
                           mk("Mul", ["c", "kappa"], ["kc"]), mk("Add", ["z", "kc"], ["i"]),
                           mk("Mul", ["i", "k"], ["ki"]), mk("Tanh", ["ki"], ["t"]),
                           mk("Add", ["t", "one"], ["t1"]), mk("Mul", ["h", "t1"], ["y"])],
         [scalar("three", 3.0), scalar("kappa", 0.044715), scalar("k", k), scalar("one", 1.0),
          scalar("half", 0.5)], 13, gelu_tanh),
        ("gelu_op_tanh", [mk("Gelu", ["z"], ["y"], approximate="tanh")], [], 20, gelu_tanh),
        ("clip_attrs", [mk("Clip", ["z"], ["y"], min=-0.5, max=0.75)], [], 6,
         lambda z: np.clip(z, -0.5, 0.75)),
        ("clip_min_only", [mk("Clip", ["z", "lo"], ["y"])], [scalar("lo", 0.25)], 13,
         lambda z: np.maximum(z, 0.25)),
        ("softplus_mul_inv", [mk("Mul", ["z", "b"], ["zb"]), mk("Softplus", ["zb"], ["s"]),
                              mk("Mul", ["s", "inv"], ["y"])],
         [scalar("b", 4.0), scalar("inv", 0.25)], 13, lambda z: np.logaddexp(0, 4 * z) / 4),
        ("hardswish_op", [mk("HardSwish", ["z"], ["y"])], [], 14,
         lambda z: z * np.clip(z / 6 + 0.5, 0, 1)),
        ("silu_swapped", [mk("Sigmoid", ["z"], ["s"]), mk("Mul", ["s", "z"], ["y"])], [], 13,
         lambda z: z / (1 + np.exp(-z))),
    ]


def check_other_forms(d):
    rng = np.random.default_rng(9)
    w = rng.normal(size=(4, 3)).astype(np.float32) * 2
    x = rng.normal(size=(N, 3)).astype(np.float32) * 2
    z = x.astype(np.float64) @ w.T.astype(np.float64)
    for name, nodes, inits, opset, ref in other_forms():
        g = helper.make_graph(
            [helper.make_node("Gemm", ["x", "w"], ["z"], transB=1)] + nodes, name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
            [helper.make_tensor("w", TensorProto.FLOAT, [4, 3], w.flatten())] + inits)
        sub = os.path.join(d, name)
        write_dataset(sub, x, np.zeros((N, 4), np.float32))
        path = os.path.join(sub, "m.onnx")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), path)
        err = close(name, "ecprune eval and numpy", predictions(path, sub), ref(z))
        if err is not None:
            print("ok   %-16s read (opset %d), |ecprune - numpy| %.1e" % (name, opset, err))


def check_refusals(d):
    cases = [
        ("elu_nan", "Elu", {"alpha": float("nan")}, (), (), "alpha nan is not finite"),
        ("leaky_inf", "LeakyRelu", {"alpha": float("inf")}, (), (), "slope inf is not finite"),
        ("clip_inverted", "Clip", {}, ("lo", "hi"), (("lo", 2.0), ("hi", 1.0)),
         "min 2 is above max 1"),
        ("hardsigmoid_nan", "HardSigmoid", {"beta": float("nan")}, (), (),
         "beta nan is not finite"),
    ]
    for name, op, attrs, inputs, consts, needle in cases:
        path = bad_model(d, name, op, attrs, inputs, consts)
        p = subprocess.run([BIN, "info", path], capture_output=True, text=True)
        msg = (p.stdout + p.stderr).strip()
        if p.returncode == 0 or needle not in msg or "'%s'" % name not in msg or \
                len(msg.splitlines()) != 1:
            fail("%s: expected one line naming node '%s' and %r, got exit %d: %s" %
                 (name, name, needle, p.returncode, msg))
        else:
            print("ok   refused %-16s %s" % (name, msg))
    # Softplus(beta <= 0) as torch writes Softplus(beta): Mul(x, b), Softplus, Div(., b).
    g = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["z"], name="gemm", transB=1),
         helper.make_node("Mul", ["z", "b"], ["zb"], name="scale"),
         helper.make_node("Softplus", ["zb"], ["s"], name="sp"),
         helper.make_node("Div", ["s", "b"], ["y"], name="unscale")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1, 0, 0, 1]),
         helper.make_tensor("b", TensorProto.FLOAT, [], [-1.0])])
    path = os.path.join(d, "softplus_neg.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    p = subprocess.run([BIN, "info", path], capture_output=True, text=True)
    msg = (p.stdout + p.stderr).strip()
    if p.returncode == 0 or "beta -1 must be > 0" not in msg or "'scale'" not in msg:
        fail("softplus beta -1: expected a refusal naming node 'scale', got: %s" % msg)
    else:
        print("ok   refused %-16s %s" % ("softplus_neg", msg))


def main():
    if not os.access(BIN, os.X_OK):
        print("FAIL: ECPRUNE_BIN=%s is not an executable; build it first (make)" % BIN)
        return 1
    for tool in ("node", "cc"):
        if not shutil.which(tool):
            print("FAIL: %s not found" % tool)
            return 1
    x = (np.random.default_rng(5).normal(size=(N, N_IN)) * 1.5).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        for tag, act, spelling in ACTS:
            module = model_for(act)
            with torch.no_grad():
                want = module.double()(torch.from_numpy(x).double()).numpy()
            module.float()
            for opset in OPSETS:
                try:
                    sub, path = check_export(d, tag, module, spelling, opset, x, want)
                    if opset == OPSETS[-1]:
                        check_pruned(tag, sub, path, x)
                except Exception as e:
                    fail("%s opset %d: %s" % (tag, opset, e))
        try:
            ort_check_all(N)
        except Exception as e:
            fail("ONNX Runtime: %s" % e)
        try:
            check_other_forms(d)
        except Exception as e:
            fail("other forms: %s" % e)
        try:
            check_refusals(d)
        except Exception as e:
            fail("refusals: %s" % e)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("all %d activations matched torch at opsets %s, in ONNX Runtime, the sparse engine "
          "and export-c" % (len(ACTS), ",".join(map(str, OPSETS))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
