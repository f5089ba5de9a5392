#!/usr/bin/env bash
# Under mpirun with 2 ranks: pruning gives the single-process model (masks identical, weights
# and biases within 1e-5 relative); training gives it within 1e-5 of each tensor's scale; a
# sweep gives the same CSV rows (losses within 1e-6), also when resumed; eval and run the same
# loss; and a file one rank cannot read stops both ranks with one clear line in bounded time,
# with no output written. Prints "mpi: N passed, N failed".
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
# The test sets are small: leave their inputs on disk anyway, so the streamed reader is tested.
export ECPRUNE_STREAM_FROM=0
ok() { pass=$((pass + 1)); echo "  ok   $1"; }
bad() { fail=$((fail + 1)); echo "  FAIL $1: $2"; }

mkdir "$tmp/data"
$py "$here/tests/mpi/make_data.py" "$tmp/data" || { echo "mpi: 0 passed, 1 failed"; exit 1; }
"$ecp" train --data "$tmp/data" --arch 24-48-32-4 --epochs 3 --seed 3 -o "$tmp/m.onnx" \
    >/dev/null || { echo "mpi: 0 passed, 1 failed"; exit 1; }

# One option set per statistics path: moments on the zero-skipping pass with the output and the
# cross-entropy Gauss-Newton sensitivities, Rademacher probes on the dense pass (each rank skips
# the probes of the batches before its share), the column sums (wanda), the per-sample gradients
# (taylor), the reconstruction sums (H, C and the row weights of obs, ec-obs, sparsegpt), and the
# ec-exact oracle (weights shared out, on a smaller calibration set: it costs weights x samples);
# an iterative run with fine-tuning (which every rank does whole, the same way); and neuron
# pruning (its scores from the statistics pass, the refit from the reconstruction sums).
cases=("ec" "ec --sensitivity loss" "ec --sensitivity probe --probes 3" "wanda" "taylor"
       "obs" "ec-obs --sensitivity probe --probes 2" "sparsegpt" "ec-exact --calib 300"
       "ec --steps 2 --finetune-epochs 1" "ec --structure neuron"
       "l2 --structure neuron --keep-shape")
# prune_case MODEL DATA "METHOD [OPTIONS]": 2 ranks against 1 process.
prune_case() {
    local c=$3 name=${3// /_}
    read -ra opt <<<"--method $c"
    args=(prune "$1" --data "$2" --sparsity 0.8 --calib 3000 --threads 1 "${opt[@]}")
    if ! "$ecp" "${args[@]}" -o "$tmp/one_$name.onnx" --json >"$tmp/one.json" 2>"$tmp/err"; then
        bad "$c" "single process: $(cat "$tmp/err")"; return
    fi
    if ! "${mpirun[@]}" "$ecp" "${args[@]}" -o "$tmp/two_$name.onnx" --json >"$tmp/two.json" \
         2>"$tmp/err"; then
        bad "$c" "2 ranks: $(head -3 "$tmp/err")"; return
    fi
    if [[ $(grep -c '"method"' "$tmp/two.json") -ne 1 ]]; then
        bad "$c" "expected one JSON line from rank 0, got: $(cat "$tmp/two.json")"; return
    fi
    if msg=$($py "$here/tests/mpi/same_model.py" "$tmp/one_$name.onnx" "$tmp/two_$name.onnx" 1e-5 2>&1)
    then ok "prune --method $c${4:-}: 2 ranks = 1 process"
    else bad "$c" "$msg"; fi
}
for c in "${cases[@]}"; do
    prune_case "$tmp/m.onnx" "$tmp/data" "$c"
done

# A training set of gzip IDX files stays on disk: each rank reads the first batch (the reference
# values) and its share of the shuffled calibration rows from the file.
mkdir "$tmp/idx"
if $py "$here/tests/mpi/make_idx.py" "$tmp/idx" &&
   "$ecp" train --data "$tmp/idx" --arch 24-32-10 --epochs 2 --seed 3 -o "$tmp/mi.onnx" >/dev/null
then
    for c in "ec" "ec --sensitivity loss" "obs"; do
        prune_case "$tmp/mi.onnx" "$tmp/idx" "$c" " (IDX read from disk)"
    done
else
    bad "IDX data" "could not write the files or train on them"
fi

# Training: 2 epochs, 2 ranks against 1 process. Adam on inputs 70 % zeros (the sparse-input
# layout) with batches that divide the set; SGD on the denser set with a last batch of 56 and a
# validation split (sharded, reduced) with early stopping. The tolerance is relative to each
# tensor's largest magnitude: only the order of the float gradient sums differs.
mkdir "$tmp/sdata"
$py "$here/tests/mpi/make_data.py" "$tmp/sdata" 0.7
train_cases=("--data $tmp/sdata --arch 24-48-32-4 --batch 100"
             "--data $tmp/data --arch 24-40-4 --optim sgd --act tanh --valid 0.2 --patience 1")
for c in "${train_cases[@]}"; do
    read -ra opt <<<"$c"
    args=(train "${opt[@]}" --epochs 2 --seed 3 --threads 1)
    label="train ${c#--data * }: 2 ranks = 1 process"
    if ! "$ecp" "${args[@]}" -o "$tmp/t1.onnx" >/dev/null 2>"$tmp/err"; then
        bad "$label" "single process: $(cat "$tmp/err")"; continue
    fi
    if ! "${mpirun[@]}" "$ecp" "${args[@]}" -o "$tmp/t2.onnx" >"$tmp/out" 2>"$tmp/err"; then
        bad "$label" "2 ranks: $(head -3 "$tmp/err")"; continue
    fi
    if [[ $(grep -c '^trained' "$tmp/out") -ne 1 ]]; then
        bad "$label" "expected one report from rank 0, got: $(cat "$tmp/out")"; continue
    fi
    if msg=$($py "$here/tests/mpi/same_model.py" "$tmp/t1.onnx" "$tmp/t2.onnx" 1e-5 tensor 2>&1)
    then ok "$label"; else bad "$label" "$msg"; fi
done

# Sweep: rows spread over the ranks, written by rank 0 in the single-process order; then the
# two-rank sweep resumes a CSV cut after 5 rows.
sweep=(sweep "$tmp/m.onnx" --data "$tmp/data" --methods ec,magnitude,obs,small-dense
       --sparsities 0.5,0.8 --seeds 2 --calib 1000 --epochs 1 --threads 1)
if ! "$ecp" "${sweep[@]}" --csv "$tmp/s1.csv" >/dev/null 2>"$tmp/err"; then
    bad "sweep" "single process: $(cat "$tmp/err")"
elif ! "${mpirun[@]}" "$ecp" "${sweep[@]}" --csv "$tmp/s2.csv" >/dev/null 2>"$tmp/err"; then
    bad "sweep" "2 ranks: $(head -3 "$tmp/err")"
elif ! msg=$($py "$here/tests/mpi/same_csv.py" "$tmp/s1.csv" "$tmp/s2.csv" 1e-6 2>&1); then
    bad "sweep" "$msg"
else
    ok "sweep: 2 ranks write the rows of 1 process"
    head -6 "$tmp/s2.csv" >"$tmp/s3.csv"
    if ! "${mpirun[@]}" "$ecp" "${sweep[@]}" --csv "$tmp/s3.csv" >/dev/null 2>"$tmp/err"; then
        bad "sweep resumed" "2 ranks: $(head -3 "$tmp/err")"
    elif msg=$($py "$here/tests/mpi/same_csv.py" "$tmp/s1.csv" "$tmp/s3.csv" 1e-6 2>&1); then
        ok "sweep: 2 ranks resume a cut CSV to the rows of 1 process"
    else bad "sweep resumed" "$msg"; fi
fi

# eval and run over the training split: each rank its share, the sums reduced.
for c in eval run; do
    one=$("$ecp" $c "$tmp/m.onnx" --data "$tmp/data" --split train --json --threads 1 2>&1)
    two=$("${mpirun[@]}" "$ecp" $c "$tmp/m.onnx" --data "$tmp/data" --split train --json \
          --threads 1 2>&1)
    if $py - "$one" "$two" <<'PY'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ok = a["n"] == b["n"] == 3000 and a["accuracy"] == b["accuracy"]
sys.exit(not (ok and abs(a["loss"] - b["loss"]) <= 1e-6 * abs(a["loss"])))
PY
    then ok "$c: 2 ranks = 1 process"; else bad "$c" "1 process: $one; 2 ranks: $two"; fi
done

# Rank 1 alone cannot read the model (MPMD launch: each rank its own arguments).
good=(prune "$tmp/m.onnx" --data "$tmp/data" --sparsity 0.8 -o "$tmp/never.onnx")
missing=(prune "$tmp/missing.onnx" --data "$tmp/data" --sparsity 0.8 -o "$tmp/never.onnx")
check_failure() { # label, expected text[, command]; reads $rc and $tmp/err
    local lines cmd=${3:-prune}
    lines=$(grep -c "^ecprune $cmd: " "$tmp/err")
    if [[ $rc -eq 0 || $rc -eq 124 ]]; then bad "$1" "exit $rc (0: no error, 124: hung)"
    elif [[ $lines -ne 1 ]] || ! grep -q "^ecprune $cmd: .*$2" "$tmp/err"; then
        bad "$1" "expected one line naming '$2', got: $(grep '^ecprune' "$tmp/err")"
    elif [[ -e "$tmp/never.onnx" || -e "$tmp/never.csv" ]]; then bad "$1" "an output was written"
    else ok "$1"; fi
}
mpmd() { # command line of rank 0, then after "::" that of rank 1
    local i a=() b=()
    for ((i = 1; i <= $#; i++)); do [[ ${!i} == :: ]] && break; a+=("${!i}"); done
    b=("${@:i+1}")
    timeout 60 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 1 "$ecp" "${a[@]}" \
        : -np 1 "$ecp" "${b[@]}" >/dev/null 2>"$tmp/err"
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
# ... and so does its external data file, checked before the work as one process checks it.
ln -s /etc/passwd "$tmp/never.onnx.data"
"${mpirun[@]}" "$ecp" prune "$tmp/m.onnx" --data "$tmp/data" --sparsity 0.8 --external-data \
    -o "$tmp/never.onnx" >/dev/null 2>"$tmp/err"
rc=$?
check_failure "an external data file rank 0 will not write stops both ranks" "-o .*never.onnx.data"
rm -f "$tmp/never.onnx.data"
# The same for train, sweep and eval: rank 1 alone cannot read its data (a truncated file) or
# lacks the model.
cp -r "$tmp/data" "$tmp/cut"
head -c 1000 "$tmp/data/train_x.npy" >"$tmp/cut/train_x.npy"
tr=(train --arch 24-8-4 --epochs 1 -o "$tmp/never.onnx")
mpmd "${tr[@]}" --data "$tmp/data" :: "${tr[@]}" --data "$tmp/cut"
rc=$?
check_failure "train: data rank 1 cannot read stops both ranks" "cut/train_x.npy" train
sw=(--data "$tmp/data" --methods magnitude --sparsities 0.5 --seeds 1 --csv "$tmp/never.csv")
mpmd sweep "$tmp/m.onnx" "${sw[@]}" :: sweep "$tmp/missing.onnx" "${sw[@]}"
rc=$?
check_failure "sweep: a model rank 1 cannot read stops both ranks" "missing.onnx" sweep
mpmd eval "$tmp/m.onnx" --data "$tmp/data" :: eval "$tmp/m.onnx" --data "$tmp/nodata"
rc=$?
check_failure "eval: data rank 1 cannot read stops both ranks" "nodata" eval

# A command that is not distributed refuses to start, with one line, rather than run twice.
"${mpirun[@]}" "$ecp" export-c "$tmp/m.onnx" -o "$tmp/never.c" >/dev/null 2>"$tmp/err"
rc=$?
if [[ $rc -ne 0 && $rc -ne 124 && $(grep -c '^ecprune export-c: runs on one process' "$tmp/err") -eq 1 &&
      ! -e "$tmp/never.c" ]]
then ok "export-c refuses to run on 2 ranks"
else bad "export-c on 2 ranks" "exit $rc: $(grep '^ecprune' "$tmp/err")"; fi

echo "mpi: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
