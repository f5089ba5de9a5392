#!/usr/bin/env python3
"""Writes the cffi declarations of ecprune: the public header itself, run through the C
preprocessor, keeping only the header's own lines (not <stdint.h>'s, which cffi knows).

One source of truth: the package declares exactly what include/ecprune.h declares, so a field
added to an options struct there is visible from Python after a rebuild, and struct layouts
cannot drift from the header (tests/python/test_layout.py checks cffi's offsets against the
compiler's).

usage: gen_cdef.py HEADER OUT [CC]
"""
import os
import re
import subprocess
import sys


def preprocess(header, cc="cc"):
    # cffi's parser knows neither GCC attributes nor the printf format checks they carry.
    out = subprocess.run([cc, "-E", "-D__attribute__(x)=", header], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    name = os.path.basename(header)
    keep, lines = False, []
    for line in out.splitlines():
        m = re.match(r'# \d+ "([^"]+)"', line)
        if m:
            keep = os.path.basename(m.group(1)) == name
            continue
        if keep and line.strip():
            lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__.strip().splitlines()[-1])
    text = preprocess(argv[1], argv[3] if len(argv) == 4 else os.environ.get("CC", "cc"))
    tmp = argv[2] + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, argv[2])


if __name__ == "__main__":
    main(sys.argv)
