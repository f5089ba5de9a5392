#!/usr/bin/env bash
# Training throughput (samples/s) of 784-300-100-10 relu, batch 128, Adam 1e-3, on the 8,000
# mnist training digits: `ecprune train --json` (field samples_per_s) against the same training
# in PyTorch CPU (bench/torch_train.py, Debian's python3-torch), run here with the same epochs,
# batch and thread count. ecprune: --threads T sets OpenBLAS's threads, and its own sparse
# kernels and optimiser use as many (src/nn/sparse_input.c). PyTorch: torch.set_num_threads(T)
# (ATen's intra-op OpenMP pool), OMP_NUM_THREADS=T, and OpenBLAS (Debian's torch runs its GEMMs
# on it) at T or at 1 thread, whichever is faster; Adam with foreach=True.
# On mnist (81 % of the inputs exactly 0) ecprune trains layer 0 with sparse-input kernels (CSR
# of the batch); it does the same arithmetic per product term as dense, less of it. Load on the
# machine moves both sides: read the ratio, and run it again when `uptime` shows other jobs.
# Usage: bench/bench_train.sh [BUILD_DIR]   (env: EPOCHS=5, THREADS="1 2", REPEATS=3; the best
# of REPEATS runs is reported for each side)
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
bin="$build/ecprune"
py=/usr/bin/python3
epochs=${EPOCHS:-5}
threads_list=${THREADS:-"1 2"}
repeats=${REPEATS:-3}
[[ -x "$bin" ]] || { echo "bench_train: $bin not built (make BUILD=$build)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

field() { sed -n "s/.*\"$1\": *\([0-9.eE+-]*\).*/\1/p"; }
best() { sort -g | tail -1; }

have_torch=1
"$py" -c 'import torch' 2>/dev/null || have_torch=0

echo "bench_train: $(uptime | sed 's/.*load/load/')"
echo "bench_train: 784-300-100-10 relu, Adam lr 1e-3, batch 128, $epochs epochs on mnist (8,000 samples); best of $repeats"
printf '%-8s %18s %18s %10s\n' threads "ecprune samples/s" "pytorch samples/s" "ratio"
for t in $threads_list; do
    e=()
    p=()
    for ((i = 0; i < repeats; i++)); do
        OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$bin" train --data mnist --arch 784-300-100-10 \
            --act relu --epochs "$epochs" --batch 128 --seed 1 --threads "$t" \
            -o "$tmp/m.onnx" --json >"$tmp/e.json"
        e+=("$(field samples_per_s <"$tmp/e.json")")
        if ((have_torch)); then
            # Debian's torch runs its GEMMs on OpenBLAS, whose own thread pool competes with
            # torch's OpenMP pool (spinning threads): try OpenBLAS with T threads and with 1,
            # and keep the faster, so that the peer is not handicapped.
            for ob in $(printf '%s\n' "$t" 1 | sort -u); do
                OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$ob "$py" "$here/torch_train.py" \
                    --threads "$t" --epochs "$epochs" --batch 128 >"$tmp/p.json"
                p+=("$(field samples_per_s <"$tmp/p.json")")
            done
        fi
    done
    es=$(printf '%s\n' "${e[@]}" | best | awk '{ printf "%.0f", $1 }')
    if ((have_torch)); then
        ps=$(printf '%s\n' "${p[@]}" | best | awk '{ printf "%.0f", $1 }')
        ratio=$(awk -v a="$es" -v b="$ps" 'BEGIN { printf "%.2f", a / b }')
    else
        ps="n/a"
        ratio="n/a"
    fi
    printf '%-8s %18s %18s %10s\n' "$t" "$es" "$ps" "$ratio"
    echo "bench_train threads=$t ecprune_samples_per_s=$es pytorch_samples_per_s=$ps ratio_ecprune_over_pytorch=$ratio"
done
((have_torch)) || echo "bench_train: python3-torch not found at $py: PyTorch side skipped"
