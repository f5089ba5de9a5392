"""train, evaluate, prune, scores: each one library call, with marshalling around it."""
import copy as _copy
import json

import numpy as np

from . import errors
from ._ffi import check, ffi, lib, new_error, string, view
from .data import Dataset
from .model import MLP
from .options import Setter
from .progress import Hook


def _is_torch(model):
    try:
        from torch import nn
    except ImportError:
        return False
    return isinstance(model, nn.Module)


def _as_mlp(model):
    if isinstance(model, MLP):
        return model
    if _is_torch(model):
        return MLP.from_torch(model)
    raise errors.ArgumentError("expected an ecprune.MLP or an nn.Sequential, got %s"
                               % type(model).__name__)


def _dataset(m, x, y, what):
    if isinstance(x, Dataset):
        d = x
    else:
        if y is None:
            raise errors.ArgumentError("%s: targets (y) are required" % what)
        d = Dataset(x, y, n_out=lib.ecp_mlp_n_out(m._h), what=what)
    err = new_error()
    check(lib.ecp_check_fit(m._h, d._c, b"model", what.encode(), err), err)
    return d


class _Threads:
    """BLAS threads for one call (the CLI's --threads); 0 or None leaves them alone."""

    def __init__(self, n):
        self.n = int(n or 0)

    def __enter__(self):
        if self.n > 0:
            self.prev = lib.openblas_get_num_threads()
            lib.openblas_set_num_threads(self.n)

    def __exit__(self, *exc):
        if self.n > 0:
            lib.openblas_set_num_threads(self.prev)


# ------------------------------------------------------------------ evaluate, train

def evaluate(model, x, y=None):
    """Mean per-sample loss (softmax cross-entropy for labels, MSE for targets) and accuracy
    (None for regression): {"loss", "accuracy", "n"}."""
    m = _as_mlp(model)
    d = _dataset(m, x, y, "data")
    r = ffi.new("ecp_eval_result *")
    err = new_error()
    check(lib.ecp_evaluate(m._h, d._c, r, err), err)
    return {"loss": r.loss, "accuracy": r.accuracy if r.accuracy >= 0 else None, "n": r.n}


def train(model, x, y=None, epochs=10, batch=128, lr=None, optimizer="adam", seed=1,
          threads=None, progress=None, **options):
    """Trains an MLP in place (pruned weights stay exactly 0). optimizer "adam" (lr 1e-3) or
    "sgd" (lr 0.05, momentum 0.9); other keywords name fields of ecp_optim_opts (momentum,
    beta1, beta2, eps, weight_decay). Returns {"final_loss", "seconds", "samples_per_s"}."""
    if not isinstance(model, MLP):
        raise errors.ArgumentError("train: expected an ecprune.MLP (MLP.from_torch converts "
                                   "an nn.Sequential), got %s" % type(model).__name__)
    m = model
    d = _dataset(m, x, y, "training data")
    o = ffi.new("ecp_train_opts *")
    lib.ecp_train_opts_default(o)
    s = Setter(o, "train")
    s.set("optim.kind", optimizer, "optimizer")
    lib.ecp_optim_opts_default(ffi.addressof(o.optim), o.optim.kind)
    s.set("epochs", epochs)
    s.set("batch", batch)
    s.set("seed", seed)
    if lr is not None:
        s.set("optim.lr", lr, "lr")
    for k, v in options.items():
        s.set("optim." + k, v, k)
    o.progress = 0
    rep = ffi.new("ecp_train_report *")
    err = new_error()
    with Hook(progress) as hook, _Threads(threads):
        o.progress_fn, o.progress_ctx = hook.fn, hook.ctx
        h = m._h
        check(lib.ecp_train(h, d._c, o, rep, err), err)
    return {"final_loss": rep.final_loss, "seconds": rep.seconds,
            "samples_per_s": rep.samples_per_s}


# ------------------------------------------------------------------ prune

class PruneReport:
    """What a pruning did: the same fields as `ecprune prune --json`. print() shows a table;
    to_dict() / to_json() give the data."""

    def __init__(self, d):
        self._d = d
        for k, v in d.items():
            setattr(self, k, v)

    def to_dict(self):
        return _copy.deepcopy(self._d)

    def to_json(self, **kw):
        return json.dumps(self._d, **kw)

    def __repr__(self):
        return "PruneReport(method=%r, sparsity=%.4f, loss %.6g -> %.6g)" % (
            self.method, self.sparsity, self.before["loss"], self.after["loss"])

    def __str__(self):
        d = self._d
        out = ["method %s%s, %s, %d step%s, %d fine-tuning epoch%s, %d calibration samples" % (
            d["method"], " (sensitivity %s)" % d["sensitivity"] if d["compensates"] else "",
            d["scope"], d["steps"], "s" if d["steps"] > 1 else "", d["finetune_epochs"],
            "" if d["finetune_epochs"] == 1 else "s", d["calib"])]
        out.append("  %-8s %12s %10s" % ("", "loss", "accuracy"))
        for k in ("before", "after"):
            acc = d[k].get("accuracy")
            out.append("  %-8s %12.6f %s" % (k, d[k]["loss"],
                                              "%9.2f%%" % (100 * acc) if acc is not None else ""))
        out.append("  sparsity %.4f (%d of %d weights)" % (d["sparsity"], d["pruned"],
                                                          d["weights"]))
        for l, ly in enumerate(d["layers"]):
            line = "    layer %d  %5d x %-5d  sparsity %.4f" % (l, ly["out"], ly["in"],
                                                               ly["sparsity"])
            if ly["dead_neurons"]:
                line += "  (%d neuron%s left with no input)" % (
                    ly["dead_neurons"], "" if ly["dead_neurons"] == 1 else "s")
            out.append(line)
        out.append("  statistics and scores: %.3f s; total %.3f s" % (d["stats_seconds"],
                                                                    d["seconds"]))
        return "\n".join(out)


def methods():
    """The pruning methods the library knows, in its order."""
    out, i = [], 0
    while True:
        p = lib.ecp_prune_method_name(i)
        if p == ffi.NULL:
            return out
        out.append(string(p))
        i += 1


def _layers_mask(layers, n_layers):
    mask = 0
    for l in ([layers] if isinstance(layers, int) else layers):
        if not 0 <= int(l) < n_layers:
            raise errors.ArgumentError("exclude_layers: layer %s, the model has layers 0..%d"
                                       % (l, n_layers - 1))
        mask |= 1 << int(l)
    return mask


def _finetune(s, finetune):
    if finetune is None or finetune is False:
        return
    if isinstance(finetune, int):
        finetune = {"epochs": finetune}
    if not isinstance(finetune, dict):
        raise errors.ArgumentError("finetune: give epochs (an int) or a dict of epochs, lr, "
                                   "batch, optimizer")
    ft = dict(finetune)
    if "optimizer" in ft:
        s.set("finetune.optim.kind", ft.pop("optimizer"), "finetune optimizer")
        lib.ecp_optim_opts_default(ffi.addressof(s.c.finetune.optim), s.c.finetune.optim.kind)
    s.set("finetune_epochs", ft.pop("epochs", 1), "finetune epochs")
    for k, v in ft.items():
        field = ("finetune." + k) if k == "batch" else ("finetune.optim." + k)
        s.set(field, v, "finetune " + k)


# Keyword -> field of ecp_prune_opts where the Python name differs from the C one. Any other
# keyword is taken as the name of a field (calib, probes, seed, steps, and whatever the header
# adds later), so a new library option needs no change here.
_ALIASES = {"sensitivity": "sens", "lr": "finetune.optim.lr", "batch": "finetune.batch"}


def _opts(m, n_train, method, sparsity, sensitivity, scope, steps, finetune, exclude_layers,
          options):
    o = ffi.new("ecp_prune_opts *")
    lib.ecp_prune_opts_default(o)
    s = Setter(o, "prune")
    if not lib.ecp_prune_method_exists(str(method).encode()):
        raise errors.ArgumentError("prune: method '%s' unknown (choose %s)"
                                   % (method, ", ".join(methods())))
    s.set("method", method)
    s.set("sparsity", sparsity)
    s.set("sens", sensitivity, "sensitivity")
    if scope not in ("global", "layer"):
        raise errors.ArgumentError("prune: scope '%s': choose global or layer" % scope)
    s.set("scope_layer", scope == "layer", "scope")
    s.set("steps", steps)
    _finetune(s, finetune)
    if exclude_layers is not None:
        s.set("exclude_mask", _layers_mask(exclude_layers, m.n_layers), "exclude_layers")
    calib_given = "calib" in options
    for k, v in options.items():
        s.set(_ALIASES.get(k, k), v, k)
    if not calib_given and o.calib > n_train:
        o.calib = n_train
    return s


def _pruned_torch(model, m, masks):
    import torch
    from torch import nn
    out = _copy.deepcopy(model)
    lins = [x for x in out.modules() if isinstance(x, nn.Linear)]
    for lin, w, b, mk in zip(lins, m.weights, m.biases, m.masks):
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            if lin.bias is None:
                lin.bias = nn.Parameter(torch.zeros(lin.out_features, dtype=lin.weight.dtype,
                                                    device=lin.weight.device))
            lin.bias.copy_(torch.from_numpy(b))
        if masks:
            import torch.nn.utils.prune as tprune
            tprune.custom_from_mask(lin, "weight", torch.from_numpy(~mk).to(lin.weight.device))
    return out


def prune(model, calib_x, calib_y=None, method="ec", sparsity=0.9, sensitivity="output",
          scope="global", steps=1, finetune=None, exclude_layers=None, test=None, masks=False,
          inplace=False, threads=None, progress=None, **options):
    """Prunes `model` (an nn.Sequential or an ecprune.MLP) and returns (pruned, report).

    calib_x / calib_y: the training data, as `ecprune prune --data`: calibration uses its first
    `calib` samples (2000, or all if fewer) after a shuffle seeded by `seed`; fine-tuning runs
    on all of it. calib_y None: the model's own outputs are the targets (enough for criteria
    that do not use the loss; gradient, taylor, obd, sensitivity="loss" and finetune need
    real targets). method: any name of ecprune.methods(). scope "global" or "layer"; steps > 1
    prunes on the cubic schedule; finetune: epochs, or {"epochs", "lr", "batch", "optimizer"};
    exclude_layers: layer numbers never pruned. Other keywords name fields of the library's
    ecp_prune_opts (calib, probes, seed, ...). test=(x, y) is what the report's before/after
    loss is measured on (default: the calibration data). threads: BLAS threads.

    An nn.Sequential comes back as a new one of the same structure with pruned weights and
    compensated biases (and torch.nn.utils.prune masks with masks=True); an MLP as a new MLP,
    or the same one pruned in place with inplace=True."""
    m = _as_mlp(model)
    if isinstance(model, MLP) and not inplace:
        m = model.copy()
    if calib_y is None and not isinstance(calib_x, Dataset):
        if finetune:
            raise errors.ArgumentError("prune: finetune needs calib_y (targets or labels)")
        calib_y = m.predict(calib_x)
    train_d = _dataset(m, calib_x, calib_y, "calibration data")
    test_d = train_d if test is None else (
        test if isinstance(test, Dataset) else _dataset(m, test[0], test[1], "test data"))
    s = _opts(m, train_d.n, method, sparsity, sensitivity, scope, steps, finetune,
              exclude_layers, options)
    o = s.c
    h = m._h
    before, after = ffi.new("ecp_eval_result *"), ffi.new("ecp_eval_result *")
    rep = ffi.new("ecp_prune_report *")
    err = new_error()
    with Hook(progress) as hook, _Threads(threads):
        o.finetune.progress_fn, o.finetune.progress_ctx = hook.fn, hook.ctx
        check(lib.ecp_evaluate(h, test_d._c, before, err), err)
        check(lib.ecp_prune(h, train_d._c, o, rep, err), err)
        check(lib.ecp_evaluate(h, test_d._c, after, err), err)
    report = PruneReport(_report_dict(m, o, rep, before, after))
    if isinstance(model, MLP):
        return m, report
    return _pruned_torch(model, m, masks), report


def _result(r):
    return {"loss": r.loss, "accuracy": r.accuracy if r.accuracy >= 0 else None}


def _report_dict(m, o, rep, before, after):
    layers = []
    for l in range(m.n_layers):
        out, inp = m._shape(l)
        layers.append({"out": out, "in": inp, "sparsity": rep.layer_pruned[l] / (out * inp),
                       "pruned": rep.layer_pruned[l], "dead_neurons": rep.dead_inputs[l]})
    method = ffi.string(o.method).decode()
    return {"method": method, "sensitivity": string(lib.ecp_sens_name(o.sens)),
            "compensates": bool(lib.ecp_prune_method_compensates(o.method)),
            "scope": "per layer" if o.scope_layer else "global", "target": o.sparsity,
            "sparsity": rep.pruned / rep.weights if rep.weights else 0.0,
            "before": _result(before), "after": _result(after), "layers": layers,
            "pruned": rep.pruned, "weights": rep.weights, "steps": o.steps,
            "finetune_epochs": o.finetune_epochs, "calib": o.calib, "guarded": rep.guarded,
            "stats_seconds": rep.stats_seconds, "seconds": rep.seconds}


# ------------------------------------------------------------------ scores

def scores(model, calib_x, calib_y=None, method="ec", sensitivity="output", probes=16, seed=1,
           calib=2000):
    """The per-weight scores (lower = removed first; pruned weights +inf) and bias shifts
    (delta*_ij added to b_i when weight (i, j) goes; None for methods without compensation)
    of one method on the model as it is, one float64 (out, in) array per layer each:
    returns (scores, shifts). The calibration set is that of prune() with the same seed
    (the same arrays as `ecprune prune --dump-scores`)."""
    m = _as_mlp(model)
    if calib_y is None and not isinstance(calib_x, Dataset):
        calib_y = m.predict(calib_x)
    d = _dataset(m, calib_x, calib_y, "calibration data")
    s = Setter(ffi.new("ecp_prune_opts *"), "scores")
    s.set("sens", sensitivity, "sensitivity")
    if not lib.ecp_prune_method_exists(str(method).encode()):
        raise errors.ArgumentError("scores: method '%s' unknown (choose %s)"
                                   % (method, ", ".join(methods())))
    n = min(int(calib), d.n)
    cal = ffi.new("ecp_dataset **")
    out = ffi.new("ecp_scores **")
    err = new_error()
    check(lib.ecp_prune_calib(d._c, n, int(seed), cal, err), err)
    cal = ffi.gc(cal[0], lib.ecp_dataset_free)
    check(lib.ecp_prune_scores(m._h, cal, str(method).encode(), s.c.sens, int(probes),
                               int(seed) + 1, out, err), err)
    sc = ffi.gc(out[0], lib.ecp_scores_free)
    shapes = [m._shape(l) for l in range(m.n_layers)]
    score = [view(sc, sc.score[l], shapes[l], "<f8") for l in range(m.n_layers)]
    comp = None if sc.comp == ffi.NULL else [view(sc, sc.comp[l], shapes[l], "<f8")
                                              for l in range(m.n_layers)]
    return score, comp
