#!/usr/bin/env bash
# make results: trains the three scenario models of the EC paper (seeded), sweeps every method
# one-shot (no fine-tuning) and iteratively (T = 5, one fine-tuning epoch per step) over
# sparsities 0.5 ... 0.98 with 3 seeds, beside small-dense (a dense network of each pruned
# model's size trained from scratch the way the model was), and regenerates docs/RESULTS.md and
# its plots.
# Sweeps are resumable: rerunning continues where an interrupted run stopped. RESET=1 starts over.
set -euo pipefail
build=${1:-build}
bin="$build/ecprune"
work=out/results
docs=docs
mkdir -p "$work" "$docs"
[[ "${RESET:-0}" == 1 ]] && rm -f "$work"/*.csv
SP=0.5,0.7,0.8,0.9,0.95,0.98
ALL=ec,ec:loss,magnitude,magnitude-bc,gradient,taylor,obd,wanda,random,small-dense
# Reconstruction: the published SparseGPT recipe, OBS at EC's allocation, and ec-obs; one-shot
# is where they matter (no fine-tuning to repair), so the iterative tables carry ec-obs only.
ONESHOT=$ALL,sparsegpt,obs,ec-obs
ITER=$ALL,ec-obs
SEEDS=${SEEDS:-3}

model() { # name data arch act epochs batch
    local f="$work/$1.onnx"
    if [[ ! -f "$f" ]]; then
        echo "== train $1"
        "$bin" train --data "$2" --arch "$3" --act "$4" --epochs "$5" --batch "$6" --seed 1 -o "$f"
    fi
}

# small-dense rows do not depend on the pruning schedule (schedule "-"): the iterative sweep
# takes the one-shot sweep's trainings instead of repeating them.
share_small_dense() { # from.csv to.csv
    [[ -f "$2" ]] || head -n 1 "$1" > "$2"
    grep -q '^small-dense,' "$2" || grep '^small-dense,' "$1" >> "$2" || true
}

sweep() { # name data methods title [extra...]
    local name=$1 data=$2 methods=$3 title=$4; shift 4
    if [[ "$name" == *-iter ]]; then
        share_small_dense "$work/${name%-iter}-oneshot.csv" "$work/$name.csv"
    fi
    echo "== sweep $name ($title)"
    "$bin" sweep "$work/${name%%-*}.onnx" --data "$data" --methods "$methods" --sparsities $SP \
        --seeds "$SEEDS" --csv "$work/$name.csv" --plot "$docs/$name.png" --title "$title" "$@"
}

t0=$(date +%s)
model mnist mnist 784-300-100-10 relu 20 128
model fashion fashion 784-300-100-10 relu 10 128
for nu in 0 0.01 0.05 0.1; do
    model "diffsorp_nu$nu" "diffsorp:$nu" 3-64-64-64-1 tanh 50 64
done

# --epochs/--batch: small-dense's training if a model file predates its recorded settings
# (the values of model() above; a recorded model uses its own)
sweep mnist-oneshot mnist "$ONESHOT" "mnist 784-300-100-10 relu: one-shot, no fine-tuning" \
    --epochs 20 --batch 128
sweep mnist-iter mnist "$ITER" "mnist: iterative T=5, 1 fine-tuning epoch per step" \
    --steps 5 --finetune-epochs 1 --epochs 20 --batch 128
sweep fashion-oneshot fashion "$ONESHOT" "fashion 784-300-100-10 relu: one-shot, no fine-tuning" \
    --epochs 10 --batch 128
sweep fashion-iter fashion "$ITER" "fashion: iterative T=5, 1 fine-tuning epoch per step" \
    --steps 5 --finetune-epochs 1 --epochs 10 --batch 128
for nu in 0 0.01 0.05 0.1; do
    sweep "diffsorp_nu$nu-oneshot" "diffsorp:$nu" "$ONESHOT" \
        "diffsorp (noise $nu) 3-64-64-64-1 tanh: one-shot, no fine-tuning" --epochs 50 --batch 64
    # The oracle, one-shot only and on 256 calibration samples: its score pass costs
    # weights x samples x network (about 20 s here); same CSV, so it lands in the same table.
    sweep "diffsorp_nu$nu-oneshot" "diffsorp:$nu" ec-exact \
        "diffsorp (noise $nu) 3-64-64-64-1 tanh: one-shot, no fine-tuning" --calib 256
    sweep "diffsorp_nu$nu-iter" "diffsorp:$nu" "$ITER" \
        "diffsorp (noise $nu): iterative T=5, 1 fine-tuning epoch per step" \
        --steps 5 --finetune-epochs 1 --epochs 50 --batch 64
done
t1=$(date +%s)
/usr/bin/python3 scripts/results_md.py "$work" "$docs/RESULTS.md" "$((t1 - t0))"
echo "wrote $docs/RESULTS.md ($((t1 - t0)) s)"
