#!/usr/bin/env bash
# The dense path's packed kernel (bias + ReLU fused, weights packed once) against OpenBLAS sgemm
# on the layer shapes of bench_infer.sh, one thread, best call of many each (bench/gemm.c), and
# its batch-1 row kernel against OpenBLAS sgemv (bench/gemv.c, min and median).
# OpenBLAS reports its kernel family first: Debian's 0.3.21 picks Haswell (AVX2) on CPUs it does
# not know (Zen 5), which is why the engine carries its own kernel.
# usage: bench/bench_gemm.sh [BUILD]
set -euo pipefail
build=${1:-build}
work=$(mktemp -d /tmp/ecprune-bench-gemm-XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc -I/usr/include/x86_64-linux-gnu/openblas-pthread \
    bench/gemm.c "$build/libecprune.a" -lopenblas -lprotobuf-c -lz -lm -lpthread $(pkg-config --libs ompi-c) -o "$work/gemm"
printf '#include <stdio.h>\nchar *openblas_get_corename(void);\nint main(void){puts(openblas_get_corename());return 0;}\n' \
    > "$work/core.c"
cc "$work/core.c" -lopenblas -o "$work/core" && echo "OpenBLAS kernels: $("$work/core")"
cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc -I/usr/include/x86_64-linux-gnu/openblas-pthread \
    bench/gemv.c "$build/libecprune.a" -lopenblas -lprotobuf-c -lz -lm -lpthread $(pkg-config --libs ompi-c) -o "$work/gemv"
for shape in "300 784 16 2000" "300 784 256 300" "100 300 256 1000" "4096 4096 16 20" \
             "4096 4096 256 6" "1024 4096 256 20"; do
    "$work/gemm" $shape
done
# batch 1: the row kernel of gemv.c against OpenBLAS sgemv, alternating call by call; the large
# layers cycle through copies that together exceed the last-level cache (cold, as in a network)
for shape in "300 784 3000" "100 300 10000" "4096 4096 30 2" "1024 4096 60 4" "4096 1024 60 4"; do
    "$work/gemv" $shape
done
