#!/usr/bin/env bash
# `make fuzz FUZZ_S=60`: builds the library and the harnesses with clang's libFuzzer under
# ASan+UBSan (build-fuzz/), makes the seed corpora, and runs each harness for FUZZ_S seconds.
# Fails on any crash, leak, timeout or sanitizer report; prints executions per harness.
#   run.sh ECPRUNE_BINARY FUZZ_S [harness ...]
set -euo pipefail
bin=${1:?usage: run.sh ECPRUNE_BINARY SECONDS [harness ...]}
secs=${2:-60}
shift 2 || true
names=("$@")
((${#names[@]})) || names=(onnx npy idx csv cli)
B=build-fuzz
SAN="-fsanitize=fuzzer-no-link,address,undefined"
make --no-print-directory BUILD=$B CC=clang OPT="-O1 -march=native -fno-omit-frame-pointer" \
    SAN="$SAN" \
    $B/libecprune.a $B/obj/src/cli/common.o >/dev/null
LIBS="-lopenblas -lprotobuf-c -lz -lm -lpthread $(pkg-config --libs ompi-c)"
for n in "${names[@]}"; do
    clang -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -Iinclude -Isrc -I$B/gen \
        -o $B/fuzz_$n fuzz/fuzz_$n.c $B/obj/src/cli/common.o $B/libecprune.a $LIBS
done
[[ -d $B/seeds/onnx ]] || bash fuzz/make_corpus.sh $B/seeds "$bin" >/dev/null
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$PWD/fuzz/ubsan.supp
status=0
for n in "${names[@]}"; do
    mkdir -p $B/corpus/$n $B/artifacts
    log=$B/fuzz_$n.log
    if $B/fuzz_$n -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -dict=fuzz/$n.dict -artifact_prefix=$B/artifacts/$n- \
        $B/corpus/$n $B/seeds/$n >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log and $B/artifacts/)"
        status=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    printf 'fuzz %-5s %4ss  %10s executions  %-9s corpus %5s  %s\n' "$n" "$secs" \
        "${execs:-?}" "${cov:-}" "$(ls $B/corpus/$n | wc -l)" "$result"
done
exit $status
