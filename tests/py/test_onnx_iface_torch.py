#!/usr/bin/env python3
"""A model from torch.onnx.export comes back from `ecprune prune` as a drop-in replacement.

nn.Sequential variants (a leading Flatten of N x C x H x W, BatchNorm1d in eval mode with random
running statistics, inference-mode Dropout, bias-free Linear layers, a final Softmax or
LogSoftmax) are exported at opsets 11, 13 and 17 with a dynamic or a static batch dimension.
For each:
  * `ecprune info --json` reports the file's input and output names, input shape and opset;
  * `ecprune eval --predictions` and `ecprune run --predictions` match PyTorch within 1e-5
    (BatchNorm folded, the output transform applied);
  * `ecprune prune` writes a file with the same names, shapes and opset, which onnx.checker
    accepts and ONNX Runtime (bench/ort_infer.js --check) runs with the original feeds (the
    original input name and shape), agreeing with `ecprune eval` of the pruned file within 1e-5.
Graphs that cannot be folded (BatchNorm after an activation or before the first layer, zero
variance with zero epsilon, training-mode Dropout, Softmax over the batch or not last) are
refused with one line naming the node and the file.

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
from onnx import numpy_helper
from torch import nn

warnings.filterwarnings("ignore")
BIN = os.environ.get("ECPRUNE_BIN", "build/ecprune")
ORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench",
                   "ort_infer.js")
TOL = 1e-5
N = 40
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def run(args):
    return subprocess.run(args, capture_output=True, text=True)


def bn(n, eps=1e-5, zero_var=False):
    """BatchNorm1d with random running statistics and affine parameters."""
    b = nn.BatchNorm1d(n, eps=eps)
    with torch.no_grad():
        b.running_mean.normal_()
        b.running_var.uniform_(0.5, 2.0)
        b.weight.normal_()
        b.bias.normal_()
        if zero_var:
            b.running_var[0] = 0
    return b


def inference_dropout(model):
    """A training-mode export's Dropout with its training_mode constant set to false: the form
    of a Dropout exported for inference with its mode kept as an input."""
    for node in model.graph.node:
        if node.op_type == "Constant" and any(
                n.op_type == "Dropout" and len(n.input) == 3 and n.input[2] == node.output[0]
                for n in model.graph.node):
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array(False), ""))
    return model


L = nn.Linear


def accepted():
    """(name, module, sample shape, opset, dynamic batch, export options, post-processing)"""
    torch.manual_seed(0)
    return [
        ("flatten_bn_softmax", nn.Sequential(nn.Flatten(), L(12, 16), bn(16), nn.ReLU(),
                                             nn.Dropout(0.3), L(16, 4), nn.Softmax(dim=1)),
         (3, 4), 17, True, {}, None),
        ("flatten_nchw_static", nn.Sequential(nn.Flatten(), L(12, 8), nn.Tanh(), L(8, 3)),
         (1, 3, 4), 11, False, {}, None),
        ("nobias_bn_logsoftmax", nn.Sequential(L(12, 10, bias=False), bn(10), nn.Sigmoid(),
                                               L(10, 3, bias=False), nn.LogSoftmax(dim=-1)),
         (12,), 13, True, {}, None),
        ("bn_before_linear", nn.Sequential(L(12, 6), bn(6), L(6, 2)), (12,), 13, False, {},
         None),
        ("dropout_inference", nn.Sequential(L(12, 8), nn.ReLU(), nn.Dropout(0.5), L(8, 3)),
         (12,), 13, True, {"training": torch.onnx.TrainingMode.TRAINING}, inference_dropout),
        ("logsoftmax_o11", nn.Sequential(L(12, 8), nn.ReLU(), L(8, 5), nn.LogSoftmax(dim=1)),
         (12,), 11, True, {}, None),
        ("softmax_static_o17", nn.Sequential(L(12, 8), nn.ReLU(), L(8, 4), nn.Softmax(dim=-1)),
         (12,), 17, False, {}, None),
        # a fresh BatchNorm1d: torch stores its running mean (zeros) and variance (ones) once,
        # as its bias and weight, and names them through Identity nodes
        ("bn_default_stats", nn.Sequential(L(12, 6), nn.BatchNorm1d(6), nn.ReLU(), L(6, 2)),
         (12,), 13, True, {}, None),
        ("bn_deep_o17", nn.Sequential(L(12, 9), bn(9), nn.ReLU(), L(9, 7), bn(7), nn.Tanh(),
                                      L(7, 3)), (12,), 17, True, {}, None),
    ]


def refused():
    """(name, module, opset, export options, what the message must say)"""
    torch.manual_seed(1)
    return [
        ("bn_after_relu", nn.Sequential(L(12, 6), nn.ReLU(), bn(6), L(6, 2)), 13, {},
         "follows an activation"),
        ("bn_first", nn.Sequential(bn(12), L(12, 2)), 13, {},
         "comes before the first Gemm/MatMul layer"),
        ("bn_zero_var_zero_eps", nn.Sequential(L(12, 4), bn(4, eps=0.0, zero_var=True),
                                               L(4, 2)), 13, {},
         "var 0 + epsilon 0 is not positive"),
        ("dropout_training", nn.Sequential(L(12, 8), nn.ReLU(), nn.Dropout(0.5), L(8, 3)), 13,
         {"training": torch.onnx.TrainingMode.TRAINING}, "training_mode is true"),
        ("softmax_over_batch", nn.Sequential(L(12, 4), nn.Softmax(dim=0)), 13, {}, "axis=0"),
        ("softmax_not_last", nn.Sequential(L(12, 4), nn.Softmax(dim=1), L(4, 2)), 13, {},
         "follows the output transform"),
    ]


def export(module, sample, opset, dynamic, opts, post):
    if "training" not in opts:
        module.eval()
    f = io.BytesIO()
    batch = 1 if not dynamic else 2
    axes = {"x": {0: "batch"}, "y": {0: "batch"}} if dynamic else None
    torch.onnx.export(module, torch.zeros((batch,) + sample), f, opset_version=opset,
                      input_names=["x"], output_names=["y"], dynamic_axes=axes, **opts)
    model = onnx.load_from_string(f.getvalue())
    if post:
        model = post(model)
    onnx.checker.check_model(model)
    module.eval()
    return model


def shape_of(vi):
    return [d.dim_param if d.HasField("dim_param") else d.dim_value
            for d in vi.type.tensor_type.shape.dim]


def interface(model):
    g = model.graph
    inits = {t.name for t in g.initializer}
    x = [i for i in g.input if i.name not in inits][0]
    opset = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0]
    return {"input": x.name, "in_shape": shape_of(x), "output": g.output[0].name,
            "out_shape": shape_of(g.output[0]), "opset": opset}


def write_dataset(d, x, k, classify, seed):
    rng = np.random.default_rng(seed)
    for split in ("train", "test"):
        np.save(os.path.join(d, split + "_x.npy"), x)
        y = (np.arange(len(x)) % k).astype(np.int64) if classify else \
            rng.normal(size=(len(x), k)).astype(np.float32)
        np.save(os.path.join(d, split + "_y.npy"), y)


def predictions(cmd, model, d, tag):
    pred = os.path.join(d, tag + ".npy")
    p = run([BIN, cmd, model, "--data", d, "--predictions", pred])
    if p.returncode != 0:
        raise RuntimeError("ecprune %s %s: %s%s" % (cmd, model, p.stdout, p.stderr))
    return np.load(pred)


def info(model):
    p = run([BIN, "info", model, "--json"])
    if p.returncode != 0:
        raise RuntimeError("ecprune info %s: %s%s" % (model, p.stdout, p.stderr))
    j = json.loads(p.stdout)
    return {"input": j["input"]["name"], "in_shape": j["input"]["shape"],
            "output": j["output"]["name"], "out_shape": j["output"]["shape"],
            "opset": j["opset"]}


def close(tag, got, want):
    if got.shape != want.shape:
        raise RuntimeError("%s: shape %s, want %s" % (tag, got.shape, want.shape))
    err = float(np.max(np.abs(got - want)))
    if not np.allclose(got, want, rtol=TOL, atol=TOL):
        raise RuntimeError("%s differs by %.3g" % (tag, err))
    return err


def ort_check(model, d, x, feed_name):
    xf, yf = os.path.join(d, "ort.x.f32"), os.path.join(d, "ort.y.f32")
    x.astype("<f4").tofile(xf)
    p = run(["node", ORT, "--check", model, xf, yf, "--feed", feed_name])
    if p.returncode != 0:
        raise RuntimeError("ONNX Runtime on %s: %s%s" % (model, p.stdout, p.stderr))
    return np.fromfile(yf, dtype="<f4")


def eval_json(model, d):
    p = run([BIN, "eval", model, "--data", d, "--json"])
    if p.returncode != 0:
        raise RuntimeError("ecprune eval %s: %s%s" % (model, p.stdout, p.stderr))
    return json.loads(p.stdout)


def check_one_hot(path, d, x, k):
    """A model ending in Softmax/LogSoftmax is a classifier: one-hot float targets evaluate as
    the class numbers they encode (cross-entropy and accuracy, not MSE)."""
    oh = d + ".onehot"
    os.mkdir(oh)
    y = np.eye(k, dtype=np.float32)[np.arange(len(x)) % k]
    for split in ("train", "test"):
        np.save(os.path.join(oh, split + "_x.npy"), x)
        np.save(os.path.join(oh, split + "_y.npy"), y)
    a, b = eval_json(path, d), eval_json(path, oh)
    if "accuracy" not in b or a != b:
        raise RuntimeError("eval with class numbers gives %s, with one-hot rows %s" % (a, b))


def check(root, name, module, sample, opset, dynamic, opts, post):
    model = export(module, sample, opset, dynamic, opts, post)
    want_iface = interface(model)
    d = os.path.join(root, name)
    os.mkdir(d)
    x = np.random.default_rng(3).normal(size=(N, int(np.prod(sample)))).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x).reshape((-1,) + sample)).numpy()
    classify = isinstance(module[-1], (nn.Softmax, nn.LogSoftmax))
    write_dataset(d, x, want.shape[1], classify, 4)
    path = os.path.join(d, "m.onnx")
    onnx.save(model, path)
    got_iface = info(path)
    if got_iface != want_iface:
        raise RuntimeError("info reports %s, the file has %s" % (got_iface, want_iface))
    e_eval = close("eval vs torch", predictions("eval", path, d, "eval"), want)
    if classify:
        check_one_hot(path, d, x, want.shape[1])
    e_run = close("run vs torch", predictions("run", path, d, "run"), want)
    pruned = os.path.join(d, "p.onnx")
    p = run([BIN, "prune", path, "--data", d, "--sparsity", "0.5", "-o", pruned])
    if p.returncode != 0:
        raise RuntimeError("ecprune prune: %s%s" % (p.stdout, p.stderr))
    pm = onnx.load(pruned)
    onnx.checker.check_model(pm)
    if interface(pm) != want_iface:
        raise RuntimeError("the pruned file has %s, the original %s" % (interface(pm),
                                                                        want_iface))
    mine = predictions("eval", pruned, d, "pruned")
    ort = ort_check(pruned, d, x, want_iface["input"]).reshape(mine.shape)
    e_ort = close("ONNX Runtime vs ecprune on the pruned file", ort, mine)
    ops = ",".join(sorted({n.op_type for n in model.graph.node} - {"Constant"}))
    print("ok   %-22s opset %d %-7s eval %.1e run %.1e ort(pruned) %.1e  ops %s" %
          (name, opset, "dynamic" if dynamic else "static", e_eval, e_run, e_ort, ops))


def check_refused(root, name, module, opset, opts, needle):
    model = export(module, (12,), opset, True, opts, None)
    d = os.path.join(root, name)
    os.mkdir(d)
    path = os.path.join(d, "m.onnx")
    onnx.save(model, path)
    p = run([BIN, "info", path])
    msg = (p.stdout + p.stderr).strip()
    if p.returncode == 0 or needle not in msg or "m.onnx" not in msg or "node '" not in msg \
            or len(msg.splitlines()) != 1:
        fail("%s: expected one line naming the node, the file and %r; got exit %d: %s" %
             (name, needle, p.returncode, msg))
    else:
        print("ok   %-22s refused: %s" % (name, msg))


def main():
    if not os.access(BIN, os.X_OK):
        print("FAIL: ECPRUNE_BIN=%s is not an executable; build it first (make)" % BIN)
        return 1
    if not shutil.which("node"):
        print("FAIL: node not found (scripts/setup.sh installs npm, which brings it)")
        return 1
    ok, bad = accepted(), refused()
    with tempfile.TemporaryDirectory() as root:
        for case in ok:
            try:
                check(root, *case)
            except Exception as e:
                fail("%s: %s" % (case[0], e))
        for case in bad:
            try:
                check_refused(root, *case)
            except Exception as e:
                fail("%s: %s" % (case[0], e))
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("all %d torch exports kept their interface through prune and %d were refused" %
          (len(ok), len(bad)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
