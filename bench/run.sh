#!/usr/bin/env bash
# make bench: every bench/bench_*.sh with the build directory; each prints its own ratios
# against a peer (OpenBLAS dense, PyTorch CPU) measured in the same run.
set -u
build=${1:-build}
rc=0
for b in bench/bench_*.sh; do
    [[ -f "$b" ]] || continue
    echo "==== $b"
    bash "$b" "$build" || { echo "$b failed"; rc=1; }
    echo
done
exit $rc
