"""cffi computes struct layouts itself (ABI mode): check every offset and size of every struct
the package declares against what the C compiler makes of include/ecprune.h."""
import os
import subprocess

import ecprune
from ecprune._ffi import ffi


def _structs():
    out = {}
    for name in ffi.list_types()[0]:  # typedef names
        t = ffi.typeof(name)
        if t.kind == "struct" and t.fields is not None:
            out[name] = t
    return out


def test_layout_matches_compiler(tmp_path, root):
    structs = _structs()
    assert {"ecp_prune_opts", "ecp_train_opts", "ecp_dataset", "ecp_error",
            "ecp_prune_report", "ecp_sparse_opts"} <= set(structs)
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "ecprune.h"',
             "int main(void) {"]
    expect = []
    for name, t in sorted(structs.items()):
        lines.append('printf("%%zu\\n", sizeof(%s));' % name)
        expect.append(("sizeof", name, ffi.sizeof(t)))
        for f, _ in t.fields:
            lines.append('printf("%%zu\\n", offsetof(%s, %s));' % (name, f))
            expect.append(("offsetof", name + "." + f, ffi.offsetof(t, f)))
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([os.environ.get("CC", "cc"), "-std=c11", "-I", os.path.join(root, "include"),
                    str(src), "-o", str(exe)], check=True)
    got = [int(v) for v in subprocess.run([str(exe)], check=True, stdout=subprocess.PIPE,
                                          text=True).stdout.split()]
    assert len(got) == len(expect)
    bad = [(k, n, e, g) for (k, n, e), g in zip(expect, got) if e != g]
    assert not bad, "cffi and the compiler disagree: %s" % bad


def test_status_codes_match_library():
    lib = ecprune._ffi.lib
    for cls, name in [(ecprune.ArgumentError, "ECP_ERR_ARG"), (ecprune.FileError, "ECP_ERR_IO"),
                      (ecprune.FormatError, "ECP_ERR_FORMAT"),
                      (ecprune.OutOfMemoryError, "ECP_ERR_MEMORY"),
                      (ecprune.UnsupportedError, "ECP_ERR_UNSUPPORTED"),
                      (ecprune.NumericError, "ECP_ERR_NUMERIC"),
                      (ecprune.ShapeError, "ECP_ERR_SHAPE")]:
        assert cls.status == getattr(lib, name)
        assert cls.status_name == name
