"""Exceptions: one class per ecp_status, each also a built-in exception of the same meaning,
so `except ValueError` keeps working. `status` is the library's code, `status_name` its name
(ECP_ERR_ARG, ...), `message` the library's one-line message."""


class Error(Exception):
    """Any failure reported by ecprune."""
    status = None
    status_name = None

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class ArgumentError(Error, ValueError):
    """A bad argument or option value (ECP_ERR_ARG)."""
    status, status_name = 1, "ECP_ERR_ARG"


class FileError(Error, OSError):
    """A file cannot be opened, read or written (ECP_ERR_IO)."""
    status, status_name = 2, "ECP_ERR_IO"


class FormatError(Error, ValueError):
    """A malformed file or out-of-range data such as a bad label (ECP_ERR_FORMAT)."""
    status, status_name = 3, "ECP_ERR_FORMAT"


class OutOfMemoryError(Error, MemoryError):
    """Allocation failed or a size overflows (ECP_ERR_MEMORY)."""
    status, status_name = 4, "ECP_ERR_MEMORY"


class UnsupportedError(Error, NotImplementedError):
    """Valid input ecprune does not handle, e.g. a torch module or ONNX node (ECP_ERR_UNSUPPORTED)."""
    status, status_name = 5, "ECP_ERR_UNSUPPORTED"


class NumericError(Error, ValueError):
    """NaN or Inf where finite numbers are required (ECP_ERR_NUMERIC)."""
    status, status_name = 6, "ECP_ERR_NUMERIC"


class ShapeError(Error, ValueError):
    """Shapes that do not fit together (ECP_ERR_SHAPE)."""
    status, status_name = 7, "ECP_ERR_SHAPE"


class DtypeError(ArgumentError, TypeError):
    """An array of a dtype ecprune cannot take (strings, complex, floats as labels...)."""


class ClosedError(ArgumentError):
    """A call on a model or engine after close()."""


_BY_STATUS = {c.status: c for c in (ArgumentError, FileError, FormatError, OutOfMemoryError,
                                    UnsupportedError, NumericError, ShapeError)}


def from_status(status, message):
    cls = _BY_STATUS.get(status, Error)
    e = cls(message)
    e.status = status
    return e
