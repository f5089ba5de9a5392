#!/usr/bin/env bash
# Pruning under mpirun with 2 ranks gives the single-process model (masks identical, weights and
# biases within 1e-5 relative), and a file one rank cannot read stops both ranks with one clear
# line in bounded time. Prints "mpi: N passed, N failed".
# usage: scripts/run_mpi_tests.sh BUILD
set -u
build=${1:-build}
ecp=$(realpath "$build/ecprune")
py=/usr/bin/python3
here=$(cd "$(dirname "$0")/.." && pwd)
# CI runs as root; two ranks may share one core.
mpirun=(timeout 60 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "  ok   $1"; }
bad() { fail=$((fail + 1)); echo "  FAIL $1: $2"; }

mkdir "$tmp/data"
$py "$here/tests/mpi/make_data.py" "$tmp/data" || { echo "mpi: 0 passed, 1 failed"; exit 1; }
"$ecp" train --data "$tmp/data" --arch 24-48-32-4 --epochs 3 --seed 3 -o "$tmp/m.onnx" \
    >/dev/null || { echo "mpi: 0 passed, 1 failed"; exit 1; }

# One option set per statistics path: moments on the sparse output pass, the dense pass with the
# cross-entropy Gauss-Newton sensitivity, Rademacher probes (each rank skips the probes of the
# batches before its share), the column sums (wanda), the per-sample gradients (taylor), and the
# reconstruction sums (H, C and the row weights of obs, ec-obs, sparsegpt); and an iterative run
# with fine-tuning (which every rank does whole, the same way).
cases=("ec" "ec --sensitivity loss" "ec --sensitivity probe --probes 3" "wanda" "taylor"
       "obs" "ec-obs --sensitivity probe --probes 2" "sparsegpt"
       "ec --steps 2 --finetune-epochs 1")
for c in "${cases[@]}"; do
    name=${c// /_}
    read -ra opt <<<"--method $c"
    args=(prune "$tmp/m.onnx" --data "$tmp/data" --sparsity 0.8 --calib 3000 --threads 1 "${opt[@]}")
    if ! "$ecp" "${args[@]}" -o "$tmp/one_$name.onnx" --json >"$tmp/one.json" 2>"$tmp/err"; then
        bad "$c" "single process: $(cat "$tmp/err")"; continue
    fi
    if ! "${mpirun[@]}" "$ecp" "${args[@]}" -o "$tmp/two_$name.onnx" --json >"$tmp/two.json" \
         2>"$tmp/err"; then
        bad "$c" "2 ranks: $(head -3 "$tmp/err")"; continue
    fi
    if [[ $(grep -c '"method"' "$tmp/two.json") -ne 1 ]]; then
        bad "$c" "expected one JSON line from rank 0, got: $(cat "$tmp/two.json")"; continue
    fi
    if msg=$($py "$here/tests/mpi/same_model.py" "$tmp/one_$name.onnx" "$tmp/two_$name.onnx" 1e-5 2>&1)
    then ok "prune --method $c: 2 ranks = 1 process"
    else bad "$c" "$msg"; fi
done

# Rank 1 alone cannot read the model (MPMD launch: each rank its own arguments).
good=(prune "$tmp/m.onnx" --data "$tmp/data" --sparsity 0.8 -o "$tmp/never.onnx")
missing=(prune "$tmp/missing.onnx" --data "$tmp/data" --sparsity 0.8 -o "$tmp/never.onnx")
check_failure() { # label, expected text; reads $rc and $tmp/err
    local lines
    lines=$(grep -c '^ecprune prune: ' "$tmp/err")
    if [[ $rc -eq 0 || $rc -eq 124 ]]; then bad "$1" "exit $rc (0: no error, 124: hung)"
    elif [[ $lines -ne 1 ]] || ! grep -q "^ecprune prune: .*$2" "$tmp/err"; then
        bad "$1" "expected one line naming '$2', got: $(grep '^ecprune' "$tmp/err")"
    elif [[ -e "$tmp/never.onnx" ]]; then bad "$1" "an output was written"
    else ok "$1"; fi
}
timeout 60 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 1 "$ecp" "${good[@]}" \
    : -np 1 "$ecp" "${missing[@]}" >/dev/null 2>"$tmp/err"
rc=$?
check_failure "a model rank 1 cannot read stops both ranks" "missing.onnx"
# Rank 0 alone writes: an output that is a directory fails there and stops rank 1 too.
mkdir "$tmp/dir.onnx"
"${mpirun[@]}" "$ecp" prune "$tmp/m.onnx" --data "$tmp/data" --sparsity 0.8 -o "$tmp/dir.onnx" \
    >/dev/null 2>"$tmp/err"
rc=$?
check_failure "an output rank 0 cannot write stops both ranks" "dir.onnx"

echo "mpi: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
