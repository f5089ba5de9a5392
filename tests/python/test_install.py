"""The two documented ways of getting the package outside the tree: pip into a virtual
environment (Debian's pip, no index) and `make install PREFIX=...`."""
import os
import shutil
import subprocess
import sys

import numpy as np

import ecprune

SMOKE = ("import ecprune, numpy as np; m = ecprune.MLP([3, 4, 2], 'tanh', seed=7); "
         "print(ecprune.__file__); print(repr(m.predict(np.ones((1, 3), np.float32)).tolist()))")


def _expected():
    return repr(ecprune.MLP([3, 4, 2], "tanh", seed=7).predict(np.ones((1, 3), np.float32))
                .tolist())


def test_pip_install_into_venv(tmp_path, root, build_dir):
    # The package sources are copied so that the build leaves nothing in the tree.
    src = tmp_path / "python"
    shutil.copytree(os.path.join(root, "python"), src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    build = build_dir
    env = dict(os.environ, ECPRUNE_HEADER=os.path.join(root, "include", "ecprune.h"),
               ECPRUNE_LIB=os.path.join(build, "libecprune.so"), PIP_NO_INDEX="1")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-build-isolation", str(src)],
                   check=True, env=env, cwd=tmp_path)
    env.pop("ECPRUNE_LIB")
    env.pop("PYTHONPATH", None)
    out = subprocess.run([str(venv / "bin" / "python"), "-c", SMOKE], check=True, env=env,
                         cwd=tmp_path, stdout=subprocess.PIPE, text=True).stdout.split("\n")
    assert out[0].startswith(str(venv)) and out[1] == _expected()


def test_make_install(tmp_path, root, build_dir):
    prefix = tmp_path / "prefix"
    build = build_dir
    subprocess.run(["make", "--no-print-directory", "-s", "install", "PREFIX=" + str(prefix),
                    "BUILD=" + os.path.relpath(build, root)], check=True, cwd=root,
                   stdout=subprocess.DEVNULL)
    pydir = prefix / "lib" / ("python%d.%d" % sys.version_info[:2]) / "dist-packages"
    env = dict(os.environ, PYTHONPATH=str(pydir))
    env.pop("ECPRUNE_LIB", None)
    out = subprocess.run([sys.executable, "-c", SMOKE], check=True, env=env, cwd=tmp_path,
                         stdout=subprocess.PIPE, text=True).stdout.split("\n")
    assert out[0].startswith(str(pydir)) and out[1] == _expected()


def test_load_data(tmp_path):
    g = np.random.default_rng(3)
    arrays = {"train_x": g.random((30, 4)), "train_y": g.integers(0, 3, 30),
              "test_x": g.random((10, 4)).astype(np.float32), "test_y": g.integers(0, 3, 10)}
    for k, v in arrays.items():
        np.save(tmp_path / (k + ".npy"), v)
    xtr, ytr, xte, yte = ecprune.load_data(str(tmp_path))
    np.testing.assert_array_equal(xtr, arrays["train_x"].astype(np.float32))
    np.testing.assert_array_equal(ytr, arrays["train_y"])
    np.testing.assert_array_equal(xte, arrays["test_x"])
    np.testing.assert_array_equal(yte, arrays["test_y"])
    assert ytr.dtype == np.int32
    try:
        ecprune.load_data(str(tmp_path / "missing"))
    except ecprune.Error as e:
        assert "missing" in e.message
    else:
        raise AssertionError("no error for a missing directory")
