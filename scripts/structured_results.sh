#!/usr/bin/env bash
# Neuron pruning results: mnist and fashion 784-300-100-10 (the models of `make results`,
# retrained here with the same seeded recipe when missing), 25 / 50 / 75 % of the hidden neurons
# removed, one-shot and with 1 fine-tuning epoch, every criterion with 3 seeds (calibration
# sample, random scores, fine-tuning order); the bias-only and refit variants one-shot. Then 2:4 patterns on mnist (ec, magnitude, wanda),
# and writes out/structured/*.csv, docs/structured-*.png and the tables of docs/STRUCTURED.md
# (printed on stdout by scripts/structured_md.py). Resumable: rows already in the CSV are kept.
set -euo pipefail
build=${1:-build}
bin="$build/ecprune"
work=out/structured
mkdir -p "$work" docs
SEEDS=${SEEDS:-3}
csv="$work/neurons.csv"
[[ -f "$csv" ]] || echo "data,ft,method,scope,sparsity,seed,accuracy,loss,arch" >"$csv"

model() { # name data epochs
    local f="$work/$1.onnx"
    [[ -f "$f" ]] || "$bin" train --data "$2" --arch 784-300-100-10 --act relu --epochs "$3" \
        --batch 128 --seed 1 -o "$f"
}

field() { # json key -> value (numbers and plain strings)
    sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1" | head -1
}

run() { # data ft NAME scope S seed; NAME = METHOD[:SENSITIVITY][+COMPENSATION]
    local data=$1 ft=$2 name=$3 scope=$4 sp=$5 seed=$6
    grep -q "^$data,$ft,$name,$scope,$sp,$seed," "$csv" && return 0
    local base=${name%%+*} opts=()
    [[ $name == *+* ]] && opts+=(--compensation "${name#*+}")
    [[ $base == *:* ]] && opts+=(--sensitivity "${base#*:}")
    local j
    j=$("$bin" prune "$work/$data.onnx" --structure neuron --data "$data" --method "${base%%:*}" \
        "${opts[@]}" --scope "$scope" --sparsity "$sp" --seed "$seed" \
        --finetune-epochs "$ft" --json -o "$work/tmp.onnx")
    # "after" is the second accuracy/loss in the JSON
    local acc loss arch
    acc=$(grep -o '"accuracy":[0-9.]*' <<<"$j" | sed -n 2p | cut -d: -f2)
    loss=$(grep -o '"loss":[0-9.e+-]*' <<<"$j" | sed -n 2p | cut -d: -f2)
    arch=$(field "$j" arch_after)
    echo "$data,$ft,$name,$scope,$sp,$seed,$acc,$loss,$arch" >>"$csv"
}

model mnist mnist 20
model fashion fashion 10
# one-shot on both data sets first, then the fine-tuned runs (the slow part)
for ft in 0 1; do
    for data in mnist fashion; do
        run "$data" 0 ec layer 0 1 # the unpruned model
        for sp in 0.25 0.5 0.75; do
            for seed in $(seq 1 "$SEEDS"); do
                # ec: the default (loss sensitivity, least-squares refit); ec+bias and
                # ec:output+bias: bias compensation only (the latter the paper's output
                # sensitivity); the baselines as published, and one-shot with the refit too
                for m in ec ec+bias mean-replacement l2 l2-incoming random; do
                    # l2 and l2-incoming do not depend on the seed without fine-tuning
                    [[ $ft == 0 && $seed != 1 && $m == l2* ]] && continue
                    run "$data" "$ft" "$m" layer "$sp" "$seed"
                done
                run "$data" "$ft" ec global "$sp" "$seed"
                [[ $ft == 0 ]] || continue
                for m in ec:output+bias mean-replacement+refit l2-incoming+refit random+refit; do
                    [[ $seed != 1 && $m == l2* ]] && continue
                    run "$data" "$ft" "$m" layer "$sp" "$seed"
                done
            done
        done
        echo "== $data, $ft fine-tuning epoch(s): done" >&2
    done
done

# 2:4 on mnist, one-shot: accuracy by method
nm="$work/nm.csv"
[[ -f "$nm" ]] || echo "method,seed,accuracy,loss" >"$nm"
for m in ec ec:loss magnitude wanda magnitude-bc; do
    for seed in $(seq 1 "$SEEDS"); do
        grep -q "^$m,$seed," "$nm" && continue
        sens=output
        [[ $m == ec:loss ]] && sens=loss
        j=$("$bin" prune "$work/mnist.onnx" --data mnist --method "${m%%:*}" --pattern 2:4 \
            --sensitivity "$sens" --seed "$seed" --json -o "$work/mnist_24.onnx")
        acc=$(grep -o '"accuracy":[0-9.]*' <<<"$j" | sed -n 2p | cut -d: -f2)
        loss=$(grep -o '"loss":[0-9.e+-]*' <<<"$j" | sed -n 2p | cut -d: -f2)
        echo "$m,$seed,$acc,$loss" >>"$nm"
    done
done
/usr/bin/python3 scripts/structured_md.py "$work" docs
