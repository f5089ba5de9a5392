"""ecprune from Python: train, prune (elimination-compensation) and run fully-connected
networks with the C library, numpy arrays in and out, nn.Sequential in and out.

    import ecprune
    pruned, report = ecprune.prune(torch_model, x_train, y_train, sparsity=0.9)
    print(report)

Every computation happens in libecprune; this package only marshals arrays and options."""
from ._ffi import lib as _lib
from .data import Dataset, load_data
from .errors import (ArgumentError, ClosedError, DtypeError, Error, FileError, FormatError,
                     NumericError, OutOfMemoryError, ShapeError, UnsupportedError)
from .model import ACTIVATIONS, MLP, Engine
from .ops import PruneReport, evaluate, methods, prune, scores, train

__version__ = "0.1.0"


def set_threads(n):
    """Threads of OpenBLAS (dense layers, training), as the CLI's --threads."""
    _lib.openblas_set_num_threads(int(n))


__all__ = ["MLP", "Engine", "Dataset", "PruneReport", "train", "evaluate", "prune", "scores",
           "methods", "load_data", "set_threads", "ACTIVATIONS", "Error", "ArgumentError", "FileError",
           "FormatError", "OutOfMemoryError", "UnsupportedError", "NumericError", "ShapeError",
           "DtypeError", "ClosedError"]
