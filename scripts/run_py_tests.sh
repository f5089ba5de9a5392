#!/usr/bin/env bash
# Cross-checks against independent computations in Python (PyTorch, onnx, numpy), run with
# Debian's /usr/bin/python3 so that python3-torch and python3-onnx are the ones used.
set -u
build=${1:-build}
export ECPRUNE_BIN="$PWD/$build/ecprune"
pass=0; fail=0
for t in tests/py/test_*.py; do
    [[ -f "$t" ]] || continue
    if out=$(/usr/bin/python3 "$t" 2>&1); then
        pass=$((pass + 1)); echo "PASS $t"
    else
        fail=$((fail + 1)); echo "FAIL $t"; echo "$out" | tail -30
    fi
done
echo "python: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
