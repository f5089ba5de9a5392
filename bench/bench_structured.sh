#!/usr/bin/env bash
# Structured pruning, what it buys at inference, one thread, same machine, one run:
#   * the smaller dense models (25 / 50 / 75 % of the hidden neurons removed by ec) against the
#     original 784-300-100-10 (trained on mnist): batch-256 throughput through the dense path
#     (OpenBLAS, the engine in dense mode) and through ONNX Runtime (onnxruntime-node, CPU), and
#     the ratio of multiply-adds they should follow;
#   * 2:4 (ec) on the same model: the N:M kernels at batch 1 and 256 against dense and against
#     the engine (auto) on an unstructured 50 % ec model.
# usage: bench/bench_structured.sh [BUILD]   (SECONDS_PER=0.5; MODEL=an existing mnist model)
set -euo pipefail
build=${1:-build}
secs=${SECONDS_PER:-0.5}
ecp="$build/ecprune"
work=$(mktemp -d /tmp/ecprune-bench-structured-XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -std=c11 -D_GNU_SOURCE -O3 -march=native -Iinclude -Isrc \
    -I/usr/include/x86_64-linux-gnu/openblas-pthread bench/bench_structured.c \
    "$build/libecprune.a" -lopenblas -lprotobuf-c -lz -lm -lpthread $(pkg-config --libs ompi-c) -o "$work/bench"

model=${MODEL:-$work/mnist.onnx}
[[ -f "$model" ]] || "$ecp" train --data mnist --arch 784-300-100-10 --epochs 20 --seed 1 \
    -o "$model" >/dev/null
models=("$model")
for sp in 0.25 0.5 0.75; do
    "$ecp" prune "$model" --structure neuron --scope layer --data mnist --sparsity "$sp" \
        -o "$work/neurons_$sp.onnx" >/dev/null
    models+=("$work/neurons_$sp.onnx")
done
"$ecp" prune "$model" --data mnist --pattern 2:4 -o "$work/p24.onnx" >/dev/null
"$ecp" prune "$model" --data mnist --sparsity 0.5 -o "$work/u50.onnx" >/dev/null
models+=("$work/p24.onnx" "$work/u50.onnx")

"$work/bench" "$secs" "${models[@]}" >"$work/c.json"
for m in "${models[@]}"; do
    node bench/ort_run.js "$m" bench 256 "$secs" 1 >>"$work/ort256.json"
    node bench/ort_run.js "$m" bench 1 "$secs" 1 >>"$work/ort1.json"
done
ECP="$ecp" /usr/bin/python3 - "$work" "${models[@]}" <<'EOF'
import json, os, subprocess, sys
work, models = sys.argv[1], sys.argv[2:]
c = [json.loads(l) for l in open(os.path.join(work, "c.json"))]
o256 = [json.loads(l) for l in open(os.path.join(work, "ort256.json"))]
o1 = [json.loads(l) for l in open(os.path.join(work, "ort1.json"))]
def arch(path):
    j = json.loads(subprocess.run([os.environ.get("ECP", "build/ecprune"), "info", path, "--json"],
                                  capture_output=True, text=True).stdout)
    return "-".join([str(j["layers"][0]["in"])] + [str(l["out"]) for l in j["layers"]])
base = c[0]
names = ["original"] + [f"neurons -{s}%" for s in (25, 50, 75)] + ["2:4 (ec)", "unstructured 50% (ec)"]
print("batch 256, 1 thread: samples/s (max over runs; median in brackets)")
print(f"{'model':24} {'arch':16} {'MAC ratio':>9} {'dense path':>20} {'x':>6} {'ONNX Runtime':>20} {'x':>6}")
for k in range(4):
    d = c[k]["engine"]["dense"]
    r = c[0]["macs"] / c[k]["macs"]
    print(f"{names[k]:24} {arch(models[k]):16} {r:9.2f} {d['b256_sps_max']:10.0f} ({d['b256_sps_med']:7.0f}) "
          f"{d['b256_sps_max'] / base['engine']['dense']['b256_sps_max']:6.2f} "
          f"{256 / o256[k]['min_s']:10.0f} ({o256[k]['sps']:7.0f}) {o256[0]['min_s'] / o256[k]['min_s']:6.2f}")
print()
print("batch 1 (us per sample, min; median in brackets) and batch 256 (samples/s, max), 1 thread")
for k in (0, 4, 5):
    e = c[k]["engine"]
    row = f"{names[k]:24} dense {e['dense']['b1_us_min']:6.2f} ({e['dense']['b1_us_med']:6.2f}) {e['dense']['b256_sps_max']:8.0f}"
    row += f" | engine auto {e['sparse']['b1_us_min']:6.2f} ({e['sparse']['b1_us_med']:6.2f}) {e['sparse']['b256_sps_max']:8.0f}"
    if "nm" in e:
        row += f" | N:M kernel {e['nm']['b1_us_min']:6.2f} ({e['nm']['b1_us_med']:6.2f}) {e['nm']['b256_sps_max']:8.0f}"
        row += f" (max |diff| vs dense {e['nm_max_abs_diff']:.1e})"
    if k == 4:
        row += f" | auto chose N:M on {e['auto_nm_layers_b1']} layer(s) at batch 1, {e['auto_nm_layers_bn']} at 256"
    print(row)
EOF
