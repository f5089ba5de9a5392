#!/usr/bin/env bash
# Cross-checks against independent computations in Python (PyTorch, onnx, numpy), run with
# Debian's /usr/bin/python3 so that python3-torch and python3-onnx are the ones used; then the
# Python package's pytest suite (tests/python) against BUILD/python (`make python`).
set -u
build=${1:-build}
export ECPRUNE_BIN="$PWD/$build/ecprune"
export ECPRUNE_BUILD="$PWD/$build"
pass=0; fail=0
for t in tests/py/test_*.py; do
    [[ -f "$t" ]] || continue
    if out=$(/usr/bin/python3 "$t" 2>&1); then
        pass=$((pass + 1)); echo "PASS $t"
    else
        fail=$((fail + 1)); echo "FAIL $t"; echo "$out" | tail -30
    fi
done
# pytest counts its own tests; no cache or bytecode left in the tree.
out=$(PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/python 2>&1)
rc=$?
summary=$(echo "$out" | tail -1)
n_ok=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
n_bad=$(echo "$summary" | grep -oE '[0-9]+ (failed|error|errors)' | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
echo "pytest tests/python: $summary"
if [[ $rc -ne 0 ]]; then
    echo "$out" | tail -60
    [[ $n_bad -eq 0 ]] && n_bad=1
fi
pass=$((pass + n_ok)); fail=$((fail + n_bad))
echo "python: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
