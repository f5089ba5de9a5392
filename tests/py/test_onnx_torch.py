#!/usr/bin/env python3
"""ecprune reads what torch.onnx.export writes and computes what PyTorch computes.

nn.Sequential models of Linear and activation modules (with and without a leading
nn.Flatten, with bias-free Linear layers that export as MatMul, with weights moved into
Constant nodes or stored as float_data, with initializers listed as inputs) are exported at
opset 13 and evaluated by `ecprune eval --predictions`; the outputs must match PyTorch's within
1e-5. Graphs ecprune cannot represent (CELU, SELU) must be refused with a message naming the
node.

Environment: ECPRUNE_BIN = the built CLI (default build/ecprune). Exits non-zero on failure.
"""
import io
import json
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

warnings.filterwarnings("ignore")
BIN = os.environ.get("ECPRUNE_BIN", "build/ecprune")
TOL = 1e-5
N_IN = 12
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def models():
    """(name, module, input shape of one sample, export options, post-processing)"""
    torch.manual_seed(0)
    L = nn.Linear
    return [
        ("relu_tanh", nn.Sequential(L(N_IN, 16), nn.ReLU(), L(16, 8), nn.Tanh(), L(8, 3)),
         (N_IN,), {}, None),
        ("sigmoid_softplus", nn.Sequential(L(N_IN, 10), nn.Sigmoid(), L(10, 7), nn.Softplus(),
                                           L(7, 4), nn.Sigmoid()), (N_IN,), {}, None),
        ("leaky_gelu", nn.Sequential(L(N_IN, 9), nn.LeakyReLU(), L(9, 9), nn.GELU(), L(9, 2)),
         (N_IN,), {}, None),
        ("flatten", nn.Sequential(nn.Flatten(), L(N_IN, 8), nn.ReLU(), L(8, 3)), (3, 4), {},
         None),
        ("flatten_gelu_nofold", nn.Sequential(nn.Flatten(), L(N_IN, 6), nn.GELU(), L(6, 5),
                                              nn.Tanh(), L(5, 2)), (2, 6),
         {"do_constant_folding": False}, None),
        ("no_bias_matmul", nn.Sequential(L(N_IN, 8, bias=False), nn.ReLU(), L(8, 4, bias=False)),
         (N_IN,), {}, None),
        ("single_linear", nn.Sequential(L(N_IN, 5)), (N_IN,), {}, None),
        ("deep_relu", nn.Sequential(*[m for _ in range(5) for m in (L(N_IN, N_IN), nn.ReLU())],
                                    L(N_IN, 3)), (N_IN,), {}, None),
        ("initializers_as_inputs", nn.Sequential(L(N_IN, 8), nn.Tanh(), L(8, 3)), (N_IN,),
         {"keep_initializers_as_inputs": True}, None),
        ("constant_nodes", nn.Sequential(L(N_IN, 8), nn.ReLU(), L(8, 3)), (N_IN,), {},
         to_constant_nodes),
        ("float_data", nn.Sequential(L(N_IN, 8), nn.Softplus(), L(8, 3)), (N_IN,), {},
         to_float_data),
        ("pruned_zeros", nn.Sequential(L(N_IN, 8), nn.ReLU(), L(8, 3)), (N_IN,), {}, None),
    ]


def to_constant_nodes(model):
    """Moves every initializer into a Constant node (another way exporters store weights)."""
    g = model.graph
    consts = [helper.make_node("Constant", [], [t.name], name="const_" + t.name, value=t)
              for t in g.initializer]
    nodes = consts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    return model


def to_float_data(model):
    g = model.graph
    new = []
    for t in g.initializer:
        a = numpy_helper.to_array(t)
        new.append(helper.make_tensor(t.name, onnx.TensorProto.FLOAT, a.shape,
                                      a.flatten().tolist(), raw=False))
    del g.initializer[:]
    g.initializer.extend(new)
    return model


def export(module, sample_shape, opts, post):
    module.eval()
    f = io.BytesIO()
    torch.onnx.export(module, torch.zeros((1,) + sample_shape), f, opset_version=13,
                      input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, **opts)
    model = onnx.load_from_string(f.getvalue())
    if post:
        model = post(model)
    onnx.checker.check_model(model)
    return model


def run_eval(model_path, d, pred):
    return subprocess.run([BIN, "eval", model_path, "--data", d, "--split", "test",
                           "--predictions", pred], capture_output=True, text=True)


def write_dataset(d, x, k):
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        np.save(os.path.join(d, split + "_x.npy"), x)
        np.save(os.path.join(d, split + "_y.npy"),
                rng.normal(size=(x.shape[0], k)).astype(np.float32))


def check(d, name, module, sample_shape, opts, post):
    if name == "pruned_zeros":
        with torch.no_grad():
            module[0].weight[:, ::2] = 0  # what a pruned model looks like on disk
    model = export(module, sample_shape, opts, post)
    ops = sorted({n.op_type for n in model.graph.node})
    x = np.random.default_rng(2).normal(size=(50, N_IN)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x).reshape((-1,) + sample_shape)).numpy()
    sub = os.path.join(d, name)
    os.mkdir(sub)
    write_dataset(sub, x, want.shape[1])
    path = os.path.join(sub, "m.onnx")
    onnx.save(model, path)
    pred = os.path.join(sub, "pred.npy")
    p = run_eval(path, sub, pred)
    if p.returncode != 0:
        fail("%s (%s): ecprune eval failed: %s%s" % (name, ",".join(ops), p.stdout, p.stderr))
        return
    got = np.load(pred)
    if got.shape != want.shape:
        fail("%s: ecprune gives shape %s, PyTorch %s" % (name, got.shape, want.shape))
        return
    err = float(np.max(np.abs(got - want)))
    if not np.allclose(got, want, rtol=TOL, atol=TOL):
        fail("%s (%s): ecprune and PyTorch differ by %.3g" % (name, ",".join(ops), err))
        return
    if name == "pruned_zeros" and not check_pruned_count(path, 8 * N_IN // 2):
        return
    print("ok   %-24s max |ecprune - torch| = %.2e   ops: %s" % (name, err, ",".join(ops)))


def check_pruned_count(path, want):
    """Exact zeros in an imported file are pruned weights (ecprune info --json)."""
    p = subprocess.run([BIN, "info", path, "--json"], capture_output=True, text=True)
    try:
        got = json.loads(p.stdout)["pruned"]
    except (ValueError, KeyError) as e:
        fail("ecprune info --json %s: unreadable output (%s): %s%s" % (path, e, p.stdout,
                                                                     p.stderr))
        return False
    if got != want:
        fail("pruned_zeros: ecprune counts %s pruned weights, the file has %d zeros" % (got, want))
        return False
    return True


def check_refused(d, name, module, needle):
    """A graph ecprune cannot represent must fail cleanly, naming the node."""
    model = export(module, (N_IN,), {}, None)
    sub = os.path.join(d, name)
    os.mkdir(sub)
    write_dataset(sub, np.zeros((4, N_IN), np.float32), 3)
    path = os.path.join(sub, "m.onnx")
    onnx.save(model, path)
    p = run_eval(path, sub, os.path.join(sub, "pred.npy"))
    msg = p.stdout + p.stderr
    if p.returncode == 0 or needle not in msg or "m.onnx" not in msg:
        fail("%s: expected a failure naming %r and the file, got exit %d: %s" %
             (name, needle, p.returncode, msg.strip()))
    elif os.path.exists(os.path.join(sub, "pred.npy")):
        fail("%s: predictions were written although the model was refused" % name)
    else:
        print("ok   %-24s refused: %s" % (name, msg.strip().splitlines()[-1]))


def main():
    if not os.access(BIN, os.X_OK):
        print("FAIL: ECPRUNE_BIN=%s is not an executable; build it first (make)" % BIN)
        return 1
    with tempfile.TemporaryDirectory() as d:
        cases = models()
        for case in cases:
            try:
                check(d, *case)
            except Exception as e:
                fail("%s: %s" % (case[0], e))
        refused = [("celu", nn.Sequential(nn.Linear(N_IN, 4), nn.CELU(), nn.Linear(4, 3)), "Celu"),
                   ("selu", nn.Sequential(nn.Linear(N_IN, 4), nn.SELU(), nn.Linear(4, 3)),
                    "Selu")]
        for name, module, needle in refused:
            try:
                check_refused(d, name, module, needle)
            except Exception as e:
                fail("%s: %s" % (name, e))
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    print("all %d torch exports matched and %d unsupported graphs were refused" %
          (len(cases), len(refused)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
