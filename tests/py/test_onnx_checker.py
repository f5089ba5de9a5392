#!/usr/bin/env python3
"""Models written by ecprune are valid ONNX and compute what ecprune computes.

For every activation: `ecprune train` writes a model; onnx.checker (python3-onnx 1.12, with
shape inference) must accept it; a small numpy interpreter evaluates the file's graph node by
node from its own initializers; `ecprune eval --predictions` must agree within 1e-5.
A model pruned by `ecprune prune` must keep its zeros in the file and pass the same checks.
(onnx.reference, the official evaluator, only arrived in onnx 1.13.)

Environment: ECPRUNE_BIN = the built CLI (default build/ecprune). Exits non-zero on failure.
"""
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

BIN = os.environ.get("ECPRUNE_BIN", "build/ecprune")
ACTS = ["relu", "leaky_relu", "tanh", "sigmoid", "softplus", "gelu", "identity", "silu",
        "elu:0.5", "clip:-1:2", "gelu_tanh", "softplus:2", "hardswish"]
TOL = 1e-5
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def run(args):
    p = subprocess.run([BIN] + args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s %s failed (exit %d): %s%s" % (BIN, " ".join(args), p.returncode,
                                                             p.stdout, p.stderr))
    return p.stdout


def write_dataset(d, n_in=4, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", 64), ("test", 40)):
        x = rng.normal(size=(n, n_in)).astype(np.float32)
        y = np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2], np.cos(x[:, 3])][:n_out], 1)
        np.save(os.path.join(d, split + "_x.npy"), x)
        np.save(os.path.join(d, split + "_y.npy"), y.astype(np.float32))


def attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


_erf = np.vectorize(math.erf)


def evaluate(model, x):
    """Runs the graph in float64 with numpy, one node at a time."""
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    env[model.graph.input[0].name] = x.astype(np.float64)
    for n in model.graph.node:
        a = [env[i] for i in n.input]
        op = n.op_type
        if op == "Gemm":
            w = a[1].T if attr(n, "transB", 0) else a[1]
            y = attr(n, "alpha", 1.0) * (a[0] @ w)
            if len(a) > 2:
                y = y + attr(n, "beta", 1.0) * a[2]
        elif op == "Relu":
            y = np.maximum(a[0], 0)
        elif op == "LeakyRelu":
            y = np.where(a[0] >= 0, a[0], attr(n, "alpha", 0.01) * a[0])
        elif op == "Tanh":
            y = np.tanh(a[0])
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-a[0]))
        elif op == "Softplus":
            y = np.logaddexp(0, a[0])
        elif op == "Elu":
            y = np.where(a[0] > 0, a[0], attr(n, "alpha", 1.0) * np.expm1(np.minimum(a[0], 0)))
        elif op == "Clip":
            y = np.clip(a[0], a[1], a[2])
        elif op == "HardSigmoid":
            y = np.clip(attr(n, "alpha", 0.2) * a[0] + attr(n, "beta", 0.5), 0, 1)
        elif op == "Erf":
            y = _erf(a[0])
        elif op == "Div":
            y = a[0] / a[1]
        elif op == "Mul":
            y = a[0] * a[1]
        elif op == "Add":
            y = a[0] + a[1]
        else:
            raise RuntimeError("unexpected op %s in an ecprune model" % op)
        env[n.output[0]] = y
    return env[model.graph.output[0].name]


def check_structure(model, act):
    g = model.graph
    ops = [n.op_type for n in g.node]
    if model.producer_name != "ecprune":
        fail("%s: producer_name is %r" % (act, model.producer_name))
    if [(o.domain, o.version) for o in model.opset_import] != [("", 13)]:
        fail("%s: opset_import is %s" % (act, model.opset_import))
    if model.ir_version not in (7, 8):
        fail("%s: ir_version %d" % (act, model.ir_version))
    if [i.name for i in g.input] != ["input"] or [o.name for o in g.output] != ["output"]:
        fail("%s: graph input/output names %s %s" % (act, g.input, g.output))
    if g.input[0].type.tensor_type.shape.dim[0].dim_param != "N":
        fail("%s: batch dimension is not the symbolic N" % act)
    if ops.count("Gemm") != 3 or any(attr(n, "transB", 0) != 1 for n in g.node
                                     if n.op_type == "Gemm"):
        fail("%s: expected 3 Gemm nodes with transB=1, got %s" % (act, ops))


def count_zeros(model):
    return sum(int(np.sum(numpy_helper.to_array(t) == 0)) for t in model.graph.initializer
               if t.name.endswith(".weight"))


def check_act(d, act, prune=False):
    tag = act + ("_pruned" if prune else "")
    m = os.path.join(d, "m_%s.onnx" % tag)
    pred = os.path.join(d, "pred_%s.npy" % tag)
    run(["train", "--data", d, "--arch", "4-8-6-3", "--act", act, "--epochs", "2", "--seed", "3",
         "-o", m])
    if prune:
        # Pruned weights must be stored as exact zeros, and still make a valid model.
        run(["prune", m, "--data", d, "--method", "magnitude", "--sparsity", "0.5", "-o", m])
    model = onnx.load(m)
    if prune and count_zeros(model) != (8 * 4 + 6 * 8 + 3 * 6) // 2:
        fail("%s: expected %d zero weights in the file, found %d" %
             (tag, (8 * 4 + 6 * 8 + 3 * 6) // 2, count_zeros(model)))
    act = tag
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # the checker raises ValidationError / InferenceError
        fail("%s: onnx.checker rejected the model: %s" % (act, e))
        return
    check_structure(model, act)
    run(["eval", m, "--data", d, "--split", "test", "--predictions", pred])
    got = np.load(pred)
    want = evaluate(model, np.load(os.path.join(d, "test_x.npy")))
    if got.shape != want.shape:
        fail("%s: ecprune predictions have shape %s, the graph gives %s" % (act, got.shape,
                                                                          want.shape))
        return
    err = float(np.max(np.abs(got - want)))
    if not np.allclose(got, want, rtol=TOL, atol=TOL):
        fail("%s: ecprune and the numpy evaluation of its file differ by %.3g" % (act, err))
    else:
        print("ok   %-10s checker passed, max |ecprune - numpy| = %.2e" % (act, err))


def main():
    if not os.access(BIN, os.X_OK):
        print("FAIL: ECPRUNE_BIN=%s is not an executable; build it first (make)" % BIN)
        return 1
    with tempfile.TemporaryDirectory() as d:
        write_dataset(d)
        for act in ACTS:
            try:
                check_act(d, act)
            except Exception as e:
                fail("%s: %s" % (act, e))
        try:
            check_act(d, "relu", prune=True)
        except Exception as e:
            fail("relu_pruned: %s (needs `ecprune prune --method magnitude`)" % e)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("all %d activations and a pruned model passed" % len(ACTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
