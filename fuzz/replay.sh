#!/usr/bin/env bash
# Replays the seed corpora through every harness, built with the ordinary compiler and
# BUILD's library (the ASan+UBSan build in `make test`), with fuzz/replay.c as main().
# Cheap (a few seconds): the fuzzing itself is `make fuzz`.
#   replay.sh BUILD ECPRUNE_BINARY
set -euo pipefail
B=${1:?usage: replay.sh BUILD ECPRUNE_BINARY}
bin=${2:?usage: replay.sh BUILD ECPRUNE_BINARY}
CC=${CC:-cc}
LIBS="-lopenblas -lprotobuf-c -lz -lm -lpthread $(pkg-config --libs ompi-c)"
[[ -d $B/seeds/onnx ]] || bash fuzz/make_corpus.sh $B/seeds "$bin" >/dev/null
export UBSAN_OPTIONS=print_stacktrace=1:suppressions=$PWD/fuzz/ubsan.supp
n_in=0
for n in onnx npy idx csv cli; do
    $CC -std=c11 -D_GNU_SOURCE -g -O1 ${SAN:-} -Iinclude -Isrc -I$B/gen -o $B/replay_$n \
        fuzz/fuzz_$n.c fuzz/replay.c $B/obj/src/cli/common.o $B/libecprune.a $LIBS
    $B/replay_$n $B/seeds/$n/* >/dev/null
    n_in=$((n_in + $(ls $B/seeds/$n | wc -l)))
done
echo "fuzz replay: $n_in seeds through 5 harnesses, no sanitizer report"
