"""pytest set-up for the Python package's tests: the package from $ECPRUNE_BUILD/python (as
`make python` builds it), the CLI from $ECPRUNE_BIN."""
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("ECPRUNE_BUILD", os.path.join(ROOT, "build"))
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)
sys.path.insert(0, os.path.join(BUILD, "python"))


@pytest.fixture(scope="session")
def ecprune_bin():
    return os.environ.get("ECPRUNE_BIN", os.path.join(BUILD, "ecprune"))


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def build_dir():
    return BUILD
