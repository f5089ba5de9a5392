"""ecprune.prune and ecprune.scores on an nn.Sequential against `ecprune prune` on the same
model exported by torch.onnx.export and the same data: identical weights, biases and masks,
and a report that agrees with the CLI's --json."""
import json
import subprocess

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import ecprune
from _models import blobs, trained_classifier


def read_onnx(path):
    """Weights (out, in) and biases of the Gemm nodes of an ecprune-written model."""
    g = onnx.load(path).graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    ws, bs = [], []
    for node in g.node:
        if node.op_type == "Gemm":
            at = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            w = init[node.input[1]]
            ws.append(w if at.get("transB", 0) == 1 else w.T)
            bs.append(init[node.input[2]])
    return ws, bs


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("prune_cli")
    seq, x, y = trained_classifier()
    xt, yt = blobs(200, 10, 3, seed=1)
    for name, a in [("train_x", x), ("train_y", y), ("test_x", xt), ("test_y", yt)]:
        np.save(d / (name + ".npy"), a)
    torch.onnx.export(seq, torch.zeros(1, 10), str(d / "m.onnx"))
    return seq, x, y, xt, yt, d


# Every method the library lists (asked at run time: a new one is covered as it appears),
# then options.
CASES = [(m, {}, []) for m in ecprune.methods()] + [
    ("ec", {"sensitivity": "loss"}, ["--sensitivity", "loss"]),
    ("magnitude-bc", {"scope": "layer"}, ["--scope", "layer"]),
    ("wanda", {"exclude_layers": [2]}, ["--exclude-layer", "2"]),
    ("ec", {"sensitivity": "loss", "steps": 3, "finetune": {"epochs": 1, "lr": 2e-3,
                                                           "batch": 64}},
     ["--sensitivity", "loss", "--steps", "3", "--finetune-epochs", "1", "--lr", "2e-3",
      "--batch", "64"]),
    ("ec", {"sensitivity": "probe", "probes": 4}, ["--sensitivity", "probe", "--probes", "4"]),
]


@pytest.mark.parametrize("method,kw,flags", CASES)
def test_prune_matches_cli(setup, ecprune_bin, method, kw, flags):
    seq, x, y, xt, yt, d = setup
    out = d / ("p_%s_%d.onnx" % (method, len(flags)))
    cli = subprocess.run([ecprune_bin, "prune", str(d / "m.onnx"), "--data", str(d),
                          "--method", method, "--sparsity", "0.8", "--calib", "300", "--seed",
                          "3", "--threads", "1", "-o", str(out), "--json"] + flags,
                         check=True, stdout=subprocess.PIPE, text=True)
    cj = json.loads(cli.stdout)
    pruned, rep = ecprune.prune(seq, x, y, method=method, sparsity=0.8, calib=300, seed=3,
                                threads=1, test=(xt, yt), masks=True, progress=False, **kw)
    ws, bs = read_onnx(str(out))
    lins = [m for m in pruned if isinstance(m, torch.nn.Linear)]
    assert len(lins) == len(ws) == 3
    for l, (lin, w, b) in enumerate(zip(lins, ws, bs)):
        np.testing.assert_array_equal(lin.weight.detach().numpy(), w, "layer %d weights" % l)
        np.testing.assert_array_equal(lin.bias.detach().numpy(), b, "layer %d biases" % l)
        np.testing.assert_array_equal(lin.weight_mask.numpy(), (w != 0).astype(np.float32))
    # The input model is left as it was.
    assert all((m.weight != 0).all() for m in seq if isinstance(m, torch.nn.Linear))
    r = rep.to_dict()
    assert r["pruned"] == cj["pruned"] and r["weights"] == cj["weights"]
    assert r["sparsity"] == pytest.approx(cj["sparsity"], abs=1e-6)
    assert r["calib"] == cj["calib"] == 300
    for k in ("before", "after"):
        assert r[k]["loss"] == pytest.approx(cj[k]["loss"], rel=1e-7)
        assert r[k]["accuracy"] == pytest.approx(cj[k]["accuracy"], abs=1e-6)
    for lr, lc in zip(r["layers"], cj["layers"]):
        assert lr["pruned"] == lc["pruned"] and lr["dead_neurons"] == lc["dead_neurons"]
    assert json.loads(rep.to_json())["pruned"] == cj["pruned"]
    assert "sparsity %.4f" % r["sparsity"] in str(rep)


def test_scores_match_cli_dump(setup, ecprune_bin):
    seq, x, y, xt, yt, d = setup
    dump = d / "dump"
    dump.mkdir()
    subprocess.run([ecprune_bin, "prune", str(d / "m.onnx"), "--data", str(d), "--calib", "300",
                    "--seed", "5", "--threads", "1", "--dump-scores", str(dump)], check=True)
    score, comp = ecprune.scores(seq, x, y, method="ec", calib=300, seed=5)
    for l in range(3):
        np.testing.assert_array_equal(score[l].astype(np.float32), np.load(dump / ("score_%d.npy" % l)))
        np.testing.assert_array_equal(comp[l].astype(np.float32), np.load(dump / ("comp_%d.npy" % l)))
    s2, c2 = ecprune.scores(seq, x, y, method="magnitude")
    assert c2 is None
    np.testing.assert_array_equal(s2[0], np.abs(seq[0].weight.detach().numpy()).astype(np.float64))


def test_prune_mlp_copy_and_inplace(setup):
    seq, x, y, xt, yt, d = setup
    m = ecprune.MLP.from_torch(seq)
    p, rep = ecprune.prune(m, x, y, sparsity=0.5, progress=False)
    assert m.info()["pruned"] == 0 and p.info()["pruned"] == rep.pruned > 0
    q, rep2 = ecprune.prune(m, x, y, sparsity=0.5, inplace=True, progress=False)
    assert q is m and m.info()["pruned"] == rep.pruned
    for a, b in zip(p.weights, m.weights):
        np.testing.assert_array_equal(a, b)
    # Pruned weights are exactly zero and marked.
    for w, mk in zip(m.weights, m.masks):
        np.testing.assert_array_equal(mk, w == 0)
