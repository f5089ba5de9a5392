"""Datasets over numpy arrays, handed to the library without a copy when the layout allows.

x: (n, n_in) floating point. float32 C-contiguous arrays are used in place; other float dtypes
and non-contiguous arrays are copied once into float32 (so float64 or a transposed view work,
at the cost of a copy). Integers, booleans, complex or object arrays are refused (DtypeError):
features given as integers are usually a mistake (unscaled pixels).
y: integer labels (n,) or (n, 1) make a classification set with n_out classes (int32 used in
place, other integer dtypes converted); floating (n,) or (n, K) make a regression set.
Every value is checked by the library (NaN/Inf, labels outside [0, n_out)) before use.
"""
import numpy as np

from . import errors
from ._ffi import check, ffi, lib, new_error


def _as_array(a, what):
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch tensor: shares memory on the CPU
        a = a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as e:  # ragged lists and the like
        raise errors.DtypeError("%s: not an array (%s)" % (what, e)) from None


def as_features(x, what="x", n_in=None):
    x = _as_array(x, what)
    if x.dtype.kind != "f":
        raise errors.DtypeError("%s: dtype %s, expected floating point (float32 is used without a "
                                "copy)" % (what, x.dtype))
    if x.ndim == 1 and n_in is not None and x.shape[0] == n_in:
        x = x.reshape(1, n_in)
    if x.ndim != 2:
        raise errors.ShapeError("%s: shape %s, expected (samples, features)" % (what, x.shape))
    if n_in is not None and x.shape[1] != n_in:
        raise errors.ShapeError("%s: %d features but the model takes %d inputs"
                                % (what, x.shape[1], n_in))
    return np.ascontiguousarray(x, dtype=np.float32)


def as_targets(y, n, what="y"):
    """Returns (array, is_class): int32 labels or float32 (n, K) targets."""
    y = _as_array(y, what)
    if y.ndim == 2 and y.shape[1] == 1 and y.dtype.kind in "iu":
        y = y.reshape(-1)
    if y.shape[:1] != (n,):
        raise errors.ShapeError("%s: %d rows but x has %d" % (what, y.shape[0] if y.ndim else 0, n))
    if y.dtype.kind in "iu":
        if y.ndim != 1:
            raise errors.ShapeError("%s: integer labels of shape %s, expected (samples,)"
                                    % (what, y.shape))
        if y.size and (y.min() < -2**31 or y.max() >= 2**31):
            raise errors.FormatError("%s: labels outside the int32 range" % what)
        return np.ascontiguousarray(y, dtype=np.int32), True
    if y.dtype.kind != "f":
        raise errors.DtypeError("%s: dtype %s, expected integer labels or floating targets"
                                % (what, y.dtype))
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2:
        raise errors.ShapeError("%s: shape %s, expected (samples,) or (samples, targets)"
                                % (what, y.shape))
    return np.ascontiguousarray(y, dtype=np.float32), False


class Dataset:
    """A dataset the library reads in place. n_out: classes for labels (default max label + 1,
    give the model's output width when some class is absent), targets for regression.

    The arrays are held by this object (`x`, `y`); the library never frees or writes them."""

    def __init__(self, x, y, n_out=None, what="data"):
        self.x = as_features(x, what + " x")
        self.y, self.is_class = as_targets(y, self.x.shape[0], what + " y")
        if self.is_class:
            if n_out is None:
                n_out = int(self.y.max()) + 1 if self.y.size else 1
        else:
            if n_out is not None and n_out != self.y.shape[1]:
                raise errors.ShapeError("%s y: %d targets, expected %d"
                                        % (what, self.y.shape[1], n_out))
            n_out = self.y.shape[1]
        self.what = what
        c = ffi.new("ecp_dataset *")
        c.n = self.x.shape[0]
        c.n_in = self.x.shape[1]
        c.n_out = n_out
        c.is_class = int(self.is_class)
        c.x = ffi.cast("float *", ffi.from_buffer(self.x))
        if self.is_class:
            c.label = ffi.cast("int32_t *", ffi.from_buffer(self.y))
        else:
            c.y = ffi.cast("float *", ffi.from_buffer(self.y))
        self._c = c
        err = new_error()
        check(lib.ecp_dataset_validate(c, what.encode(), err), err)

    @property
    def n(self):
        return self._c.n

    @property
    def n_in(self):
        return self._c.n_in

    @property
    def n_out(self):
        return self._c.n_out

    def __len__(self):
        return self.n

    def __repr__(self):
        return "Dataset(n=%d, n_in=%d, %s)" % (
            self.n, self.n_in, ("%d classes" % self.n_out) if self.is_class
            else ("%d targets" % self.n_out))


def check_inputs(xp, n, n_in, what):
    """Refuses NaN/Inf in inputs that have no targets (prediction). xp: a float* to x.
    Without an error struct first: the message is asked for only when there is one."""
    c = ffi.new("ecp_dataset *")
    c.n, c.n_in, c.n_out = n, n_in, 0
    c.x = xp
    if lib.ecp_dataset_validate(c, what, ffi.NULL) != 0:
        err = new_error()
        check(lib.ecp_dataset_validate(c, what, err), err)


def _arrays(ptr):
    """Views of a library-owned dataset's arrays, which free it once the last one goes."""
    from ._ffi import view
    d = ffi.gc(ptr, lib.ecp_dataset_free)
    x = view(d, d.x, (d.n, d.n_in), "<f4")
    if d.is_class:
        return x, view(d, d.label, (d.n,), "<i4")
    return x, view(d, d.y, (d.n, d.n_out), "<f4")


def load_data(spec, target_cols=None, test_frac=0.2, split_seed=None):
    """A dataset as the CLI's --data opens it: mnist, fashion, diffsorp[:noise], a directory
    of train_x/train_y/test_x/test_y.npy (or IDX files, or train.csv and test.csv), or one
    CSV file (split by test_frac). Returns (x_train, y_train, x_test, y_test) as numpy arrays
    (int32 labels for classification, float32 targets for regression)."""
    import os
    o = ffi.new("ecp_data_opts *")
    lib.ecp_data_opts_default(o)
    keep = None
    if target_cols is not None:
        keep = ffi.new("char[]", str(target_cols).encode())
        o.target_cols = keep
    o.test_frac = float(test_frac)
    if split_seed is not None:
        o.split_seed = int(split_seed)
    tr, te = ffi.new("ecp_dataset **"), ffi.new("ecp_dataset **")
    err = new_error()
    check(lib.ecp_data_open(os.fsencode(spec), o, tr, te, err), err)
    return _arrays(tr[0]) + _arrays(te[0])
