"""ecprune.MLP: a handle on the library's ecp_mlp, and Engine: the sparse inference engine."""
import os
import threading

import numpy as np

from . import errors
from ._ffi import check, ffi, lib, new_error, string, view
from .data import as_features, check_inputs

# Names as the library spells them (ecp_act_name), in enum order. An activation with
# parameters is spelled NAME:P[:Q] ("elu:0.5", "leaky_relu:0.2", "clip:0:6"; "relu6" and
# "hardtanh" are clips), as `ecprune train --act` takes it.
ACTIVATIONS = tuple(string(lib.ecp_act_name(i)) for i in range(lib.ECP_ACT_COUNT))


def _act(a):
    """(kind, parameters) of an activation given by number or spelling."""
    if isinstance(a, int):
        if not 0 <= a < lib.ECP_ACT_COUNT:
            raise errors.ArgumentError("activation %d: choose one of %s" % (a, ", ".join(ACTIVATIONS)))
        p = ffi.new("float[]", lib.ECP_ACT_NPARAM)
        lib.ecp_act_defaults(a, p)
        return a, p
    out = ffi.new("ecp_act *")
    p = ffi.new("float[]", lib.ECP_ACT_NPARAM)
    err = new_error()
    check(lib.ecp_act_parse_params(str(a).encode(), out, p, err), err)
    return out[0], p


class MLP:
    """A fully-connected network: layer l maps sizes[l] inputs to sizes[l+1] outputs,
    a[l+1] = act_l(W_l a[l] + b_l), W_l of shape (sizes[l+1], sizes[l]) as torch's Linear.weight.

    MLP(sizes, acts="relu", seed=1): acts is one name for every hidden layer (the output layer
    is then linear, "identity") or one name per layer. Weights are Kaiming-uniform, as
    torch.nn.Linear's. The arrays of `weights`, `biases` and `masks` are views of the model's
    own memory: writing them changes the model (call mask_from_zeros() after zeroing weights by
    hand). close() frees the model once no view is left; any later call raises ClosedError."""

    def __init__(self, sizes, acts="relu", seed=1):
        sizes = [int(s) for s in sizes]
        L = len(sizes) - 1
        if L < 1:
            raise errors.ArgumentError("sizes %s: need at least an input and an output size" % sizes)
        if isinstance(acts, (str, int)):
            acts = [acts] * (L - 1) + ["identity"]
        acts = list(acts)
        if len(acts) != L:
            raise errors.ArgumentError("acts: %d activations for %d layers" % (len(acts), L))
        parsed = [_act(a) for a in acts]
        ca = ffi.new("ecp_act[]", [k for k, _ in parsed])
        cs = ffi.new("int[]", sizes)
        out = ffi.new("ecp_mlp **")
        err = new_error()
        check(lib.ecp_mlp_create(out, L, cs, ca, err), err)
        self._adopt(out[0])
        for l, (k, p) in enumerate(parsed):
            check(lib.ecp_mlp_set_layer_act_params(self._h, l, k, p, err), err)
        lib.ecp_mlp_init(self._h, int(seed))

    # -------------------------------------------------------------- lifetime

    def _adopt(self, ptr):
        self._handle = ffi.gc(ptr, lib.ecp_mlp_free)
        self._lock = threading.Lock()

    @classmethod
    def _wrap(cls, ptr):
        m = cls.__new__(cls)
        m._adopt(ptr)
        return m

    @property
    def _h(self):
        h = getattr(self, "_handle", None)
        if h is None:
            raise errors.ClosedError("the model was closed")
        return h

    def close(self):
        """Releases the model (its memory goes when the last weight view goes)."""
        self._handle = None

    @property
    def closed(self):
        return getattr(self, "_handle", None) is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -------------------------------------------------------------- construction

    @classmethod
    def from_weights(cls, weights, biases=None, acts="relu"):
        """From numpy arrays: weights[l] of shape (out, in), biases[l] of shape (out,) (zeros if
        None). Exact zeros are marked as pruned, as in a model file."""
        ws = [np.asarray(w) for w in weights]
        for l, w in enumerate(ws):
            if w.ndim != 2:
                raise errors.ShapeError("weights[%d]: shape %s, expected (out, in)" % (l, w.shape))
            if l and w.shape[1] != ws[l - 1].shape[0]:
                raise errors.ShapeError("weights[%d]: %d inputs but layer %d has %d outputs"
                                        % (l, w.shape[1], l - 1, ws[l - 1].shape[0]))
        sizes = [ws[0].shape[1]] + [w.shape[0] for w in ws] if ws else []
        m = cls(sizes, acts)
        bs = biases if biases is not None else [None] * len(ws)
        if len(bs) != len(ws):
            raise errors.ArgumentError("biases: %d arrays for %d layers" % (len(bs), len(ws)))
        for l, (w, b) in enumerate(zip(ws, bs)):
            if w.dtype.kind not in "fiu":
                raise errors.DtypeError("weights[%d]: dtype %s, expected floating point"
                                        % (l, w.dtype))
            m.weights[l][...] = w
            if b is None:
                m.biases[l][...] = 0
            else:
                b = np.asarray(b)
                if b.shape != (w.shape[0],):
                    raise errors.ShapeError("biases[%d]: shape %s, expected (%d,)"
                                            % (l, b.shape, w.shape[0]))
                m.biases[l][...] = b
        err = new_error()
        check(lib.ecp_mlp_check_finite(m._h, b"weights", err), err)
        m.mask_from_zeros()
        return m

    @classmethod
    def load(cls, path):
        """Reads an ONNX model (ecprune's own, or torch.onnx.export of an nn.Sequential)."""
        out = ffi.new("ecp_mlp **")
        err = new_error()
        check(lib.ecp_onnx_load(out, os.fsencode(path), err), err)
        return cls._wrap(out[0])

    def save(self, path, storage="dense", external_data=False):
        """Writes an opset-13 ONNX model (atomically: a failed write leaves nothing behind).
        storage="sparse" writes weight matrices below ~1/3 density as sparse_initializer;
        external_data=True puts the weights in PATH.data beside the model."""
        if storage not in ("dense", "sparse"):
            raise ValueError("storage %r: expected 'dense' or 'sparse'" % (storage,))
        opts = ffi.new("ecp_onnx_options *")
        opts.sparse = storage == "sparse"
        opts.external_data = bool(external_data)
        err = new_error()
        check(lib.ecp_onnx_save_with(self._h, os.fsencode(path), opts, err), err)

    def copy(self):
        out = ffi.new("ecp_mlp **")
        err = new_error()
        check(lib.ecp_mlp_clone(self._h, out, err), err)
        return MLP._wrap(out[0])

    @classmethod
    def from_torch(cls, module):
        """From an nn.Sequential of Linear and supported activation modules."""
        from .torch_io import from_torch
        return from_torch(module)

    def to_torch(self, masks=False):
        """A new nn.Sequential with this model's weights (float32). masks=True also attaches
        torch.nn.utils.prune masks (weight_orig and weight_mask) for the pruned weights."""
        from .torch_io import to_torch
        return to_torch(self, masks)

    # -------------------------------------------------------------- shape and parameters

    @property
    def n_layers(self):
        return lib.ecp_mlp_n_layers(self._h)

    @property
    def sizes(self):
        h = self._h
        return [lib.ecp_mlp_n_in(h)] + [lib.ecp_mlp_layer_out(h, l) for l in range(self.n_layers)]

    @property
    def acts(self):
        """Per layer, the activation as `--act` spells it ("relu", "elu:0.5", "clip:0:6")."""
        h, buf = self._h, ffi.new("char[]", 64)
        out = []
        for l in range(self.n_layers):
            lib.ecp_act_format(lib.ecp_mlp_layer_act(h, l), lib.ecp_mlp_layer_act_params(h, l),
                               buf, 64)
            out.append(string(buf))
        return out

    def _shape(self, l):
        return (lib.ecp_mlp_layer_out(self._h, l), lib.ecp_mlp_layer_in(self._h, l))

    @property
    def weights(self):
        """Per layer, a float32 (out, in) view of the weights (no copy)."""
        h = self._h
        return [view(h, lib.ecp_mlp_weights(h, l), self._shape(l), "<f4")
                for l in range(self.n_layers)]

    @property
    def biases(self):
        h = self._h
        return [view(h, lib.ecp_mlp_bias(h, l), self._shape(l)[:1], "<f4")
                for l in range(self.n_layers)]

    @property
    def masks(self):
        """Per layer, a read-only bool (out, in) view: True where the weight is pruned."""
        h = self._h
        return [view(h, lib.ecp_mlp_pruned(h, l), self._shape(l), "|b1", writable=False)
                for l in range(self.n_layers)]

    def mask_from_zeros(self):
        """Marks every exactly-zero weight as pruned."""
        lib.ecp_mlp_mask_from_zeros(self._h)

    def info(self):
        """Sizes, activations, weight and pruned counts, per layer and overall (a dict)."""
        h = self._h
        layers = []
        for l in range(self.n_layers):
            o, i = self._shape(l)
            p = lib.ecp_mlp_layer_n_pruned(h, l)
            layers.append({"in": i, "out": o, "act": self.acts[l], "weights": o * i,
                           "pruned": p, "sparsity": p / (o * i)})
        nw = lib.ecp_mlp_n_weights(h)
        return {"sizes": self.sizes, "acts": self.acts, "weights": nw,
                "params": lib.ecp_mlp_n_params(h), "pruned": lib.ecp_mlp_n_pruned(h),
                "sparsity": lib.ecp_mlp_n_pruned(h) / nw if nw else 0.0, "layers": layers}

    def __repr__(self):
        if self.closed:
            return "MLP(closed)"
        i = self.info()
        return "MLP(%s, acts=%s, sparsity=%.4f)" % ("-".join(map(str, i["sizes"])), i["acts"],
                                                     i["sparsity"])

    # -------------------------------------------------------------- inference

    def predict(self, x, engine="dense", threads=0):
        """Outputs (n, n_out) float32 for inputs (n, n_in) (or one sample (n_in,)).
        engine "dense" runs the model as it is; "sparse" / "auto" build an Engine for the call
        (build one with engine() to predict repeatedly)."""
        if engine != "dense":
            return self.engine(engine, threads=threads).predict(x)
        h = self._h
        n_in = lib.ecp_mlp_n_in(h)
        x = as_features(x, "x", n_in)
        n, K = x.shape[0], lib.ecp_mlp_n_out(h)
        y = np.empty((n, K), dtype=np.float32)
        if n == 0:
            return y
        xp = ffi.cast("float *", ffi.from_buffer(x))
        yp = ffi.cast("float *", ffi.from_buffer(y, require_writable=True))
        check_inputs(xp, n, n_in, b"x")
        B = min(n, 1024)
        with self._lock:  # the workspace is reused between calls: one call at a time
            ws = self._workspace(B)
            for at in range(0, n, B):
                b = min(B, n - at)
                lib.ecp_mlp_forward(h, ws, xp + at * n_in, b)
                ffi.memmove(yp + at * K, lib.ecp_ws_output(ws), b * K * 4)
        return y

    def _workspace(self, B):
        ws = getattr(self, "_ws", None)
        if ws is None or lib.ecp_ws_max_batch(ws) < B or self._ws_owner is not self._handle:
            out = ffi.new("ecp_ws **")
            err = new_error()
            check(lib.ecp_ws_create(out, self._h, B, err), err)
            self._ws = ffi.gc(out[0], lib.ecp_ws_free)
            self._ws_owner = self._handle
        return self._ws

    def engine(self, mode="auto", threads=0, max_batch=256, bf16=False):
        """The sparse inference engine on a copy of the current weights (see Engine)."""
        return Engine(self, mode, threads, max_batch, bf16)


class Engine:
    """The library's inference engine: each layer dense (OpenBLAS) or sparse (CSR/CSC), chosen
    against this machine's break-even densities. mode "auto", "dense" or "sparse". It copies
    the weights: later changes to the model do not reach it. bf16=True rounds them to bfloat16
    (each within 2^-8 of itself, a layer's pre-activation within 2^-8 * sum |w x|), stored in
    16 bits where batch 1 streams them: faster on large layers at batch 1."""

    _MODES = {"auto": "ECP_ENGINE_AUTO", "dense": "ECP_ENGINE_DENSE",
              "sparse": "ECP_ENGINE_SPARSE"}

    def __init__(self, model, mode="auto", threads=0, max_batch=256, bf16=False):
        if mode not in self._MODES:
            raise errors.ArgumentError("engine '%s': choose auto, dense or sparse" % mode)
        o = ffi.new("ecp_sparse_opts *")
        lib.ecp_sparse_opts_default(o)
        o.mode = getattr(lib, self._MODES[mode])
        o.threads = int(threads)
        o.max_batch = int(max_batch)
        o.bf16 = 1 if bf16 else 0
        out = ffi.new("ecp_sparse_net **")
        err = new_error()
        check(lib.ecp_sparse_create(out, model._h, o, err), err)
        self._handle = ffi.gc(out[0], lib.ecp_sparse_free)
        self._lock = threading.Lock()
        self._err = new_error()  # used under the lock
        self.mode = mode
        self._n_layers = model.n_layers

    @property
    def _h(self):
        if self._handle is None:
            raise errors.ClosedError("the engine was closed")
        return self._handle

    def close(self):
        self._handle = None

    @property
    def n_in(self):
        return lib.ecp_sparse_n_in(self._h)

    @property
    def n_out(self):
        return lib.ecp_sparse_n_out(self._h)

    def predict(self, x):
        h = self._h
        n_in = lib.ecp_sparse_n_in(h)
        x = as_features(x, "x", n_in)
        n = x.shape[0]
        y = np.empty((n, lib.ecp_sparse_n_out(h)), dtype=np.float32)
        xp = ffi.cast("float *", ffi.from_buffer(x))
        yp = ffi.cast("float *", ffi.from_buffer(y, require_writable=True))
        check_inputs(xp, n, n_in, b"x")
        with self._lock:  # the engine is not reentrant
            err = self._err
            check(lib.ecp_sparse_forward(h, xp, n, yp, err), err)
        return y

    def info(self, batch=1):
        """Kept weights, density and the kernel of each layer at this batch size."""
        h = self._h
        kernels = [string(lib.ecp_sparse_kernel_name(lib.ecp_sparse_layer_kernel(h, l, batch)))
                   for l in range(self._n_layers)]
        return {"nnz": lib.ecp_sparse_nnz(h), "weights": lib.ecp_sparse_n_weights(h),
                "kernels": kernels,
                "density": lib.ecp_sparse_density(h)}
