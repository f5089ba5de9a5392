#!/usr/bin/env bash
# Builds every examples/*.c against the installed copy in STAGE through pkg-config, as an
# embedder would, runs it, and prints "examples: N passed, N failed".
# usage: scripts/run_examples.sh STAGE OUTDIR
set -u
stage=$1 out=$2
mkdir -p "$out"
export PKG_CONFIG_PATH="$stage/lib/pkgconfig"
flags=$(pkg-config --cflags --libs ecprune) || { echo "examples: pkg-config cannot find ecprune"; exit 1; }
pass=0 fail=0
for src in examples/*.c; do
    name=$(basename "$src" .c)
    if ! cc -std=c11 -Wall -Wextra -Werror -O2 "$src" $flags -lm -Wl,-rpath,"$stage/lib" \
            -o "$out/$name"; then
        echo "---- $name: does not build"; fail=$((fail + 1)); continue
    fi
    if log=$("$out/$name" 2>&1); then
        pass=$((pass + 1))
    else
        echo "---- $name failed; its output:"; echo "$log" | tail -20; fail=$((fail + 1))
    fi
done
echo "examples: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
