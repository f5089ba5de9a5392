#!/usr/bin/env python3
"""ONNX Runtime reads every model ecprune writes and computes what ecprune computes.

Every kind of file ecprune writes is run by ONNX Runtime CPU (npm onnxruntime-node, installed
by scripts/setup.sh, through bench/ort_infer.js --check in node) on the test inputs: a model
written by `ecprune train` for every activation; pruned by `ecprune prune` (dense storage,
`--storage sparse`, `--external-data`, both); the smaller model of `--structure neuron`; an
N:M pattern. Its outputs must agree with `ecprune eval --predictions` within 1e-5 per value,
and the loss computed from them with `ecprune run` (the inference engine) within 1e-5. ONNX
Runtime is the runtime these files are deployed with, so a file it rejects is a defect even
when onnx.checker accepts it.

Environment: ECPRUNE_BIN = the built CLI (default build/ecprune). Exits non-zero on failure.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import json

import numpy as np
import onnx

BIN = os.environ.get("ECPRUNE_BIN", "build/ecprune")
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "bench", "ort_infer.js")
ACTS = ["relu", "leaky_relu", "tanh", "sigmoid", "softplus", "gelu", "identity", "silu",
        "elu:0.5", "leaky_relu:0.2", "clip:-1:2", "gelu_tanh", "softplus:2", "hardsigmoid",
        "hardswish:0.25:0.5"]
TOL = 1e-5


def run(args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s%s" % (" ".join(args), p.returncode,
                                                         p.stdout, p.stderr))
    return p.stdout


def write_dataset(d, n_in=5, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", 64), ("test", 37)):
        x = rng.normal(size=(n, n_in)).astype(np.float32)
        y = np.stack([np.sin(x[:, 0]), x[:, 1] * x[:, 2], np.cos(x[:, 3]) + x[:, 4]], 1)
        np.save(os.path.join(d, split + "_x.npy"), x)
        np.save(os.path.join(d, split + "_y.npy"), y.astype(np.float32))


def storage_error(tag, model, sparse, external):
    """The file holds what its options promise: sparse initializers, an external data file."""
    g = onnx.load(model, load_external_data=False).graph
    n_sparse = len(g.sparse_initializer)
    n_ext = sum(t.data_location == onnx.TensorProto.EXTERNAL for t in g.initializer)
    if (n_sparse > 0) != sparse or (n_ext > 0) != external:
        return "%s: %d sparse initializers, %d external tensors" % (tag, n_sparse, n_ext)
    if external != os.path.exists(model + ".data"):
        return "%s: data file %s.data %s" % (tag, model, "missing" if external else "written")
    return None


def check(d, tag, model):
    """ORT's outputs on the test split against ecprune's; returns an error string or None."""
    x = np.load(os.path.join(d, "test_x.npy"))
    xf, yf, pred = (os.path.join(d, tag + s) for s in (".x.f32", ".y.f32", ".pred.npy"))
    x.astype("<f4").tofile(xf)
    run(["node", SCRIPT, "--check", model, xf, yf])
    got = np.fromfile(yf, dtype="<f4")
    run([BIN, "eval", model, "--data", d, "--split", "test", "--predictions", pred])
    want = np.load(pred)
    if got.size != want.size:
        return "%s: ONNX Runtime gave %d outputs, ecprune %d" % (tag, got.size, want.size)
    got = got.reshape(want.shape)
    err = float(np.max(np.abs(got - want)))
    if not np.allclose(got, want, rtol=TOL, atol=TOL):
        return "%s: ONNX Runtime and ecprune differ by %.3g" % (tag, err)
    # `run` (the inference engine, dense or sparse kernels) reports the loss: the mean squared
    # error over every output of this regression data.
    y = np.load(os.path.join(d, "test_y.npy"))
    ort_loss = float(np.mean((got.astype(np.float64) - y) ** 2))
    for engine in ("dense", "sparse"):
        r = json.loads(run([BIN, "run", model, "--data", d, "--engine", engine, "--json"]))
        if abs(r["loss"] - ort_loss) > TOL * max(1.0, abs(ort_loss)):
            return "%s: ONNX Runtime's loss %.9g, ecprune run --engine %s %.9g" % (
                tag, ort_loss, engine, r["loss"])
    print("ok   %-20s ONNX Runtime agrees, max |ort - ecprune| = %.2e" % (tag, err))
    return None


def main():
    if not os.access(BIN, os.X_OK):
        print("FAIL: ECPRUNE_BIN=%s is not an executable; build it first (make)" % BIN)
        return 1
    if not shutil.which("node"):
        print("FAIL: node not found (scripts/setup.sh installs npm, which brings it)")
        return 1
    failures = []
    with tempfile.TemporaryDirectory() as d:
        write_dataset(d)
        models = []
        for act in ACTS:
            m = os.path.join(d, act + ".onnx")
            run([BIN, "train", "--data", d, "--arch", "5-9-7-3", "--act", act, "--epochs", "2",
                 "--seed", "4", "-o", m])
            models.append((act, m))
        wide = os.path.join(d, "wide.onnx")
        run([BIN, "train", "--data", d, "--arch", "5-32-16-3", "--epochs", "2", "--seed", "4",
             "-o", wide])
        base = ["--data", d]
        # (tag, prune options, sparse initializers expected, external data expected)
        mag = ["--method", "magnitude"]
        kinds = [("pruned", mag + ["--sparsity", "0.9"], False, False),
                 ("pruned_sparse", mag + ["--sparsity", "0.9", "--storage", "sparse"], True,
                  False),
                 ("pruned_external", mag + ["--sparsity", "0.9", "--external-data"], False,
                  True),
                 ("pruned_sparse_external", mag + ["--sparsity", "0.9", "--storage", "sparse",
                                                   "--external-data"], True, True),
                 ("pattern_2_4", mag + ["--pattern", "2:4"], False, False),
                 ("structured", ["--structure", "neuron", "--sparsity", "0.5"], False, False),
                 ("structured_external", ["--structure", "neuron", "--sparsity", "0.5",
                                          "--external-data"], False, True)]
        expect = {}
        for tag, opts, sparse, external in kinds:
            p = os.path.join(d, tag + ".onnx")
            run([BIN, "prune", wide] + base + opts + ["-o", p])
            models.append((tag, p))
            expect[tag] = (sparse, external)
        for tag, m in models:
            try:
                e = storage_error(tag, m, *expect.get(tag, (False, False))) or check(d, tag, m)
            except Exception as ex:
                e = "%s: %s" % (tag, ex)
            if e:
                print("FAIL:", e)
                failures.append(e)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("ONNX Runtime read all %d models and agreed with ecprune" % len(models))
    return 0


if __name__ == "__main__":
    sys.exit(main())
