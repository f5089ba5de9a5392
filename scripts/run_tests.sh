#!/usr/bin/env bash
# Runs every cmocka suite in BUILD/tests and prints one closing line: "N passed, N failed".
set -u
build=${1:-build}
pass=0; fail=0; failed=()
export ECPRUNE_BUILD="$build"
for t in "$build"/tests/test_*; do
    [[ -x "$t" ]] || continue
    out=$("$t" 2>&1); rc=$?
    echo "$out" | grep -E '^\[  (PASSED|FAILED)  \]|^\[  ERROR   \]|^\[  FAILED  \] [a-z]' || true
    n_ok=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
    n_bad=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | awk '{s+=$1} END {print s+0}')
    pass=$((pass + n_ok)); fail=$((fail + n_bad))
    if [[ $rc -ne 0 ]]; then
        [[ $n_bad -eq 0 ]] && fail=$((fail + 1))
        failed+=("$(basename "$t")")
        echo "---- $(basename "$t") failed (exit $rc); its output:"; echo "$out" | tail -40
    fi
done
# One word before the colon: the closing line CI reads is "WORD: N passed, N failed".
label=unit
[[ "$build" == *asan* ]] && label=asan
[[ "$build" == *tsan* ]] && label=tsan
echo "$label: $pass passed, $fail failed"
[[ $fail -eq 0 && ${#failed[@]} -eq 0 ]]
