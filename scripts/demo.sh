#!/usr/bin/env bash
# The main job on the bundled default data (mnist): train, prune with EC, magnitude pruning and
# EC-guided reconstruction, compare, and draw the loss/accuracy-sparsity curves.
set -euo pipefail
build=${1:-build}
bin="$build/ecprune"
out=out/demo
mkdir -p "$out"
echo "== 1. train 784-300-100-10 relu on mnist (8,000 train / 2,000 test digits)"
"$bin" train --data mnist --arch 784-300-100-10 --act relu --epochs 20 --seed 1 -o "$out/dense.onnx"
echo
echo "== 2. prune 90% of the weights with elimination-compensation (one-shot, no fine-tuning)"
"$bin" prune "$out/dense.onnx" --data mnist --method ec --sparsity 0.9 -o "$out/ec90.onnx"
echo
echo "== 3. the same with magnitude pruning, for comparison"
"$bin" prune "$out/dense.onnx" --data mnist --method magnitude --sparsity 0.9 -o "$out/mag90.onnx"
echo
echo "== 4. reconstruction guided by EC (ec-obs): 95% one-shot, kept weights re-fitted too"
"$bin" prune "$out/dense.onnx" --data mnist --method ec-obs --sparsity 0.95 -o "$out/ecobs95.onnx"
echo
echo "== 5. iterative EC (5 steps, 1 fine-tuning epoch each) to 95%"
"$bin" prune "$out/dense.onnx" --data mnist --method ec --sparsity 0.95 --steps 5 \
    --finetune-epochs 1 -o "$out/ec95ft.onnx"
echo
echo "== 6. what the pruned model holds"
"$bin" info "$out/ec95ft.onnx"
echo
echo "== 7. sweep: every method x 6 sparsities (one seed), CSV + plot"
rm -f "$out/sweep.csv"
"$bin" sweep "$out/dense.onnx" --data mnist --seeds 1 --csv "$out/sweep.csv" \
    --plot "$out/sweep.png" --title "mnist 784-300-100-10, one-shot, no fine-tuning"
echo
echo "test loss at each sparsity (lower is better):"
/usr/bin/python3 - "$out/sweep.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
sps = sorted({float(r["sparsity"]) for r in rows if r["method"] != "dense"})
methods = []
for r in rows:
    if r["method"] != "dense" and r["method"] not in methods:
        methods.append(r["method"])
print("%-13s" % "method" + "".join("%9.2f" % s for s in sps))
for m in methods:
    v = {float(r["sparsity"]): float(r["test_loss"]) for r in rows if r["method"] == m}
    print("%-13s" % m + "".join("%9.3f" % v[s] for s in sps))
PY
echo
echo "demo done: models, sweep.csv and sweep.png are in $out/"
