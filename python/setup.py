"""Installs the ecprune package with Debian's pip (no PyPI):

    make
    python3 -m venv --system-site-packages .venv
    .venv/bin/pip install --no-build-isolation ./python

The build writes the cffi declarations from the public header (gen_cdef.py) into the package
and copies libecprune.so next to them, so the installed package stands alone. ECPRUNE_HEADER
and ECPRUNE_LIB point elsewhere than ../include/ecprune.h and ../build/libecprune.so.
"""
import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_cdef  # noqa: E402


class BuildPy(build_py):
    def run(self):
        super().run()
        pkg = os.path.join(self.build_lib, "ecprune")
        header = os.environ.get("ECPRUNE_HEADER") or os.path.join(HERE, "..", "include",
                                                                  "ecprune.h")
        lib = os.environ.get("ECPRUNE_LIB") or os.path.join(HERE, "..", "build", "libecprune.so")
        for path, what in ((header, "ECPRUNE_HEADER"), (lib, "ECPRUNE_LIB")):
            if not os.path.exists(path):
                sys.exit("ecprune: %s not found: run `make` first, or set %s" % (path, what))
        gen_cdef.main(["gen_cdef.py", header, os.path.join(pkg, "_ecprune.h"),
                       os.environ.get("CC", "cc")])
        shutil.copy(lib, os.path.join(pkg, "libecprune.so"))


setup(cmdclass={"build_py": BuildPy})
