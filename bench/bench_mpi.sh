#!/usr/bin/env bash
# Processes against threads on this machine (docs/SCALING.md):
# 1. the statistics pass of `ec` (output sensitivity) on Fashion-MNIST's 60,000 training samples
#    with 784-1024-1024-10 (trained one epoch here first): `prune --json` field stats_seconds
#    and the wall time, with 1 process x 1 thread, 1 x 2 threads and mpirun -np 2 x 1 thread;
#    and the peak RSS of one process and of a rank (/usr/bin/time -f %M) with --calib 10000 and
#    60000;
# 2. training throughput (`train --json` field samples_per_s, one epoch of Fashion-MNIST,
#    batch 128, Adam): 1 x 1, 1 x 2 and 2 x 1, for 784-300-100-10 and 784-1024-1024-10.
# Under mpirun `train --json` also reports comm_seconds, the time a rank spent in the gradient
# sums (waiting for the other rank included). Each line ends with the speed-up of its median
# over the 1 process x 1 thread series of the same section. Other jobs on the
# machine move every figure: `uptime` is printed first and last.
# Usage: bench/bench_mpi.sh [BUILD_DIR]   (env: REPEATS=3; min and median are reported)
set -uo pipefail
build=${1:-build}
bin=$(realpath "$build/ecprune")
repeats=${REPEATS:-3}
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)
[[ -x "$bin" ]] || { echo "bench_mpi: $bin not built" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "bench_mpi: no mpirun (make setup)"; exit 0; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
field() { sed -n "s/.*\"$1\": *\([0-9.eE+-]*\).*/\1/p" | head -1; }
# min and median of the numbers on stdin
minmed() { sort -g | awk '{v[NR] = $1} END {printf "%.3g / %.3g", v[1], v[int((NR + 1) / 2)]}'; }
base=0
uptime

# $1 label, $2 "1" or "2" processes, rest: ecprune arguments; prints field $FIELD and wall time
series() {
    local label=$1 np=$2 i t0 out
    shift 2
    : >"$tmp/f"; : >"$tmp/w"; : >"$tmp/c"
    for ((i = 0; i < repeats; i++)); do
        t0=$(date +%s%N)
        if [[ $np == 2 ]]; then out=$("${mpirun[@]}" "$bin" "$@" 2>/dev/null)
        else out=$("$bin" "$@" 2>/dev/null); fi
        echo "$out" | field "$FIELD" >>"$tmp/f"
        echo "$out" | field comm_seconds >>"$tmp/c"
        echo $((($(date +%s%N) - t0) / 1000000)) | awk '{print $1 / 1000}' >>"$tmp/w"
    done
    printf "  %-24s %s: %s   wall s: %s" "$label" "$FIELD" "$(minmed <"$tmp/f")" \
        "$(minmed <"$tmp/w")"
    [[ -s "$tmp/c" ]] && printf "   in the gradient sums s: %s" "$(minmed <"$tmp/c")"
    # speed-up of the medians against the section's first series (1 process x 1 thread)
    local med
    med=$(sort -g "$tmp/f" | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
    [[ $label == "1 process x 1 thread" ]] && base=$med
    awk -v b="$base" -v m="$med" -v f="$FIELD" 'BEGIN {
        if (b > 0 && m > 0) printf "   speed-up x%.2f\n", f == "samples_per_s" ? m / b : b / m
        else print "" }' 
}

echo "training 784-1024-1024-10 one epoch on fashion (the model of the statistics pass)"
"$bin" train --data fashion --arch 784-1024-1024-10 --epochs 1 --seed 1 --json \
    -o "$tmp/big.onnx" | field samples_per_s | sed 's/^/  samples\/s (every core): /'

echo "statistics pass: ec, Fashion-MNIST, --calib 60000, 784-1024-1024-10 (min / median of $repeats)"
FIELD=stats_seconds
p=(prune "$tmp/big.onnx" --data fashion --method ec --sparsity 0.9 --calib 60000 --json)
series "1 process x 1 thread" 1 "${p[@]}" --threads 1 -o "$tmp/o.onnx"
series "1 process x 2 threads" 1 "${p[@]}" --threads 2 -o "$tmp/o.onnx"
series "2 processes x 1 thread" 2 "${p[@]}" --threads 1 -o "$tmp/o.onnx"
series "1 process, --calib 30000" 1 "${p[@]/60000/30000}" --threads 1 -o "$tmp/o.onnx"

# The training images stay on disk and the pass reads a chunk of rows at a time: the peak does
# not grow with --calib.
echo "peak RSS (MB): 1 process, and per rank of 2 processes x 1 thread"
for c in 10000 60000; do
    /usr/bin/time -f %M -o "$tmp/rss1" "$bin" "${p[@]/60000/$c}" --threads 1 \
        -o "$tmp/o.onnx" >/dev/null 2>&1
    "${mpirun[@]}" sh -c '/usr/bin/time -f %M -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$tmp/rss" \
        "$bin" "${p[@]/60000/$c}" --threads 1 -o "$tmp/o.onnx" >/dev/null 2>&1
    printf "  --calib %-6s 1 process: %d   2 processes, rank 0: %d   rank 1: %d\n" "$c" \
        $(($(tail -1 "$tmp/rss1") / 1024)) $(($(tail -1 "$tmp/rss.0") / 1024)) \
        $(($(tail -1 "$tmp/rss.1") / 1024))
done

FIELD=samples_per_s
for arch in 784-300-100-10 784-1024-1024-10; do
    echo "training throughput: $arch, fashion, 1 epoch, batch 128 (min / median of $repeats)"
    t=(train --data fashion --arch "$arch" --epochs 1 --seed 1 --json -o "$tmp/t.onnx")
    series "1 process x 1 thread" 1 "${t[@]}" --threads 1
    series "1 process x 2 threads" 1 "${t[@]}" --threads 2
    series "2 processes x 1 thread" 2 "${t[@]}" --threads 1
done
uptime
