"""Keyword arguments -> fields of the library's option structs, by the names the header gives
them. Every field of ecp_prune_opts / ecp_train_opts is settable under its own name; the
aliases below only give CLI-like names and types to some. Types follow the field: numbers are
converted, strings kept alive for the call, enums accept their short names ("output" for
ECP_SENS_OUTPUT)."""
import os

from . import errors
from ._ffi import ffi


def _enum_value(ctype, value, name):
    if isinstance(value, int):
        return value
    # A trailing ..._COUNT is the enum's size, not a choice.
    names = [k for k in sorted(ctype.relements, key=ctype.relements.get)
             if not k.endswith("_COUNT")]
    prefix = os.path.commonprefix(names)
    prefix = prefix[:prefix.rfind("_") + 1]  # ECP_SENS_ of ECP_SENS_OUTPUT, ECP_SENS_PROBE...
    full = prefix + str(value).upper().replace("-", "_")
    if full in names:
        return ctype.relements[full]
    short = [k[len(prefix):].lower() for k in names]
    raise errors.ArgumentError("%s '%s': choose %s" % (name, value, ", ".join(short)))


class Setter:
    """Sets fields of one cdata struct; keeps the strings it allocated alive with it."""

    def __init__(self, cdata, what):
        self.c, self.what, self.keep = cdata, what, []

    def fields(self, ctype=None):
        return [f for f, _ in (ctype or ffi.typeof(self.c).item).fields]

    def set(self, path, value, name=None):
        name = name or path
        parts = path.split(".")
        obj = self.c
        for p in parts[:-1]:
            obj = getattr(obj, p)
        ctype = ffi.typeof(obj)
        if ctype.kind == "pointer":
            ctype = ctype.item
        field = dict(ctype.fields).get(parts[-1])
        if field is None:
            raise errors.ArgumentError("%s: unknown option '%s'" % (self.what, name))
        t = field.type
        try:
            if t.kind == "enum":
                value = _enum_value(t, value, name)
            elif t.kind == "pointer" and t.item.cname == "char":
                b = ffi.new("char[]", str(value).encode())
                self.keep.append(b)
                value = b
            elif t.kind == "primitive":
                value = float(value) if t.cname in ("float", "double") else int(value)
            else:
                raise errors.ArgumentError("%s: option '%s' (%s) cannot be set from Python"
                                           % (self.what, name, t.cname))
            setattr(obj, parts[-1], value)
        except (TypeError, OverflowError, ValueError) as e:
            if isinstance(e, errors.Error):
                raise
            raise errors.ArgumentError("%s: %s %r: %s" % (self.what, name, value, e)) from None
