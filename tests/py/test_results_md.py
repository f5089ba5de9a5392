#!/usr/bin/env python3
"""The generator of docs/RESULTS.md (scripts/results_md.py) on small hand-made sweep tables:
every sentence it writes must be true of the numbers beside it. "Collapsed" only where
accuracy is at chance and the loss at ln K; otherwise the comparison is stated plainly."""
import importlib.util
import math
import os
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "results_md", os.path.join(HERE, "..", "..", "scripts", "results_md.py"))
rm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rm)

HEADER = "method,sparsity,seed,schedule,test_loss,test_accuracy,seconds,arch\n"


def write_csv(path, rows, dense=(0.2, 0.95)):
    """rows: (method, sparsity, loss, acc|None), one seed each."""
    with open(path, "w") as f:
        f.write(HEADER)
        f.write("dense,0,0,-,%g,%s,0,4-8-3\n" % (dense[0], "" if dense[1] is None else dense[1]))
        for m, s, loss, acc in rows:
            f.write("%s,%g,1,oneshot,%g,%s,0.1,4-8-3\n" % (m, s, loss, "" if acc is None else acc))


def stmts(tmp_path, rows, k=10, sched="oneshot", dense=(0.2, 0.95)):
    p = os.path.join(str(tmp_path), "t.csv")
    write_csv(p, rows, dense)
    methods, sps, mean, d = rm.load(p)
    return rm.statements("T", "S", sched, methods, sps, mean, d, k)


def the(lines, word):
    hits = [l for l in lines if word in l]
    assert len(hits) == 1, (word, lines)
    return hits[0]


def test_fine_tuned_regularisation_is_not_collapse(tmp_path):
    # the 50 % fine-tuned case: EC 94.7 % / 0.239 against random 94.3 % / 0.186
    out = stmts(tmp_path, [("ec", 0.5, 0.239, 0.947), ("random", 0.5, 0.186, 0.943)])
    t = the(out, "above random's")
    assert "(0.239 vs 0.186)" in t and "(94.7 % vs 94.3 %)" in t
    assert "collapse" not in " ".join(out)
    assert "ln 10" not in " ".join(out)


def test_random_collapsed_ec_not(tmp_path):
    out = stmts(tmp_path, [("ec", 0.98, 3.188, 0.191), ("random", 0.98, 2.304, 0.109)])
    t = the(out, "above random's")
    assert "Random pruning has collapsed there" in t
    assert "EC has collapsed" not in t  # 19.1 % is well above chance, 3.19 far from ln 10
    assert "above ln 10 = 2.30" in t


def test_both_collapsed(tmp_path):
    out = stmts(tmp_path, [("ec", 0.98, 2.35, 0.12), ("random", 0.98, 2.31, 0.10)])
    t = the(out, "above random's")
    assert "EC has collapsed there" in t and "Random pruning has collapsed there" in t
    assert "above ln 10" in t  # 2.35 > 2.3026


def test_collapsed_rule():
    ln10 = math.log(10)
    assert rm.collapsed(ln10, 0.10, 10)
    assert rm.collapsed(1.05 * ln10, 0.14, 10)
    assert not rm.collapsed(ln10, 0.30, 10)        # accuracy far from chance
    assert not rm.collapsed(1.5 * ln10, 0.10, 10)  # confidently wrong, not uniform
    assert not rm.collapsed(ln10, None, 0)         # regression: no chance level


def test_ec_vs_baseline_sentences(tmp_path):
    out = stmts(tmp_path, [("ec", 0.5, 0.1, 0.9), ("ec", 0.9, 0.3, 0.8),
                           ("magnitude", 0.5, 0.2, 0.9), ("magnitude", 0.9, 0.25, 0.8)])
    assert the(out, "magnitude's") == "EC's test loss is *not* below magnitude's at 0.90 (0.3 vs 0.25)."


def test_within_dense_states_gaps():
    mean = {("ec", 0.5): (0.2, 0.95, 1), ("ec", 0.7): (0.3, 0.90, 1), ("ec", 0.9): (0.2, 0.945, 1)}
    t = rm.within_dense([0.5, 0.7, 0.9], mean, 0.95)
    assert "every sparsity up to 0.50" in t and "again at 0.90" in t
    mean[("ec", 0.5)] = (0.3, 0.5, 1)
    assert "up to" not in rm.within_dense([0.5, 0.7, 0.9], mean, 0.95)


def test_small_dense_from_sparsity(tmp_path):
    rows = [("ec", 0.5, 0.30, 0.9), ("ec", 0.9, 0.30, 0.9), ("ec", 0.95, 0.5, 0.8),
            ("magnitude", 0.5, 0.25, 0.9), ("magnitude", 0.9, 0.35, 0.9),
            ("magnitude", 0.95, 0.6, 0.8),
            ("small-dense", 0.5, 0.20, 0.9), ("small-dense", 0.9, 0.4, 0.9),
            ("small-dense", 0.95, 0.7, 0.7)]
    out = stmts(tmp_path, rows)
    t = the(out, "small-dense:")
    assert t.startswith("From sparsity 0.90 on the best pruned network has a lower test loss")
    assert "0.50: magnitude 0.25 vs 0.2" in t and "0.90: ec 0.3 vs 0.4" in t
    # small-dense is not a pruning method: never "lowest among pruning methods"
    assert "→ small-dense" not in out[0]


def test_small_dense_never_and_always_and_gaps(tmp_path):
    never = stmts(tmp_path, [("ec", 0.5, 0.3, 0.9), ("small-dense", 0.5, 0.2, 0.9),
                             ("ec", 0.9, 0.5, 0.9), ("small-dense", 0.9, 0.4, 0.9)])
    assert the(never, "small-dense:").startswith("No pruned network has a lower test loss")
    always = stmts(tmp_path, [("ec", 0.5, 0.1, 0.9), ("small-dense", 0.5, 0.2, 0.9),
                              ("ec", 0.9, 0.3, 0.9), ("small-dense", 0.9, 0.4, 0.9)])
    assert the(always, "small-dense:").startswith("At every sparsity the best pruned")
    gaps = stmts(tmp_path, [("ec", 0.5, 0.1, 0.9), ("small-dense", 0.5, 0.2, 0.9),
                            ("ec", 0.7, 0.5, 0.9), ("small-dense", 0.7, 0.4, 0.9),
                            ("ec", 0.9, 0.3, 0.9), ("small-dense", 0.9, 0.4, 0.9)])
    assert "at 0.50, 0.90 only" in the(gaps, "small-dense:")


def test_whole_document(tmp_path):
    work = str(tmp_path)
    write_csv(os.path.join(work, "mnist-iter.csv"),  # shared small-dense rows come first
              [("small-dense", 0.5, 0.25, 0.94), ("ec", 0.5, 0.239, 0.947),
               ("random", 0.5, 0.186, 0.943)], dense=(0.2, 0.95))
    write_csv(os.path.join(work, "diffsorp_nu0-oneshot.csv"),
              [("ec", 0.5, 1e-4, None), ("random", 0.5, 1e-2, None),
               ("small-dense", 0.5, 1e-3, None)], dense=(5e-5, None))
    out = os.path.join(work, "R.md")
    rm.main(["x", work, out, "7"])
    doc = open(out).read()
    assert "7 s on this 2-core machine" in doc
    assert "collapse" not in doc
    assert "| small-dense | 0.25 |" in doc and "| small-dense | 0.001 |" in doc
    assert "At 0.50 EC's test loss is above random's (0.239 vs 0.186)" in doc
    assert "Test accuracy" in doc
    assert doc.index("| random |") < doc.index("| small-dense |")
    assert not os.path.exists(out + ".tmp")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))


def test_reconstruction_below_everywhere_and_exceptions(tmp_path):
    rows = [("ec-obs", 0.8, 0.21, 0.94), ("ec-obs", 0.9, 0.25, 0.93), ("ec-obs", 0.5, 0.30, 0.9),
            ("sparsegpt", 0.8, 0.30, 0.9), ("sparsegpt", 0.9, 0.90, 0.7),
            ("sparsegpt", 0.5, 0.20, 0.95),  # below 0.8: not part of the claim
            ("ec", 0.8, 0.20, 0.95), ("ec", 0.9, 0.60, 0.8)]
    lines = stmts(tmp_path, rows)
    sg = the(lines, "sparsegpt's")
    assert "is below sparsegpt's at every sparsity from 0.80" in sg
    assert "0.80: 0.21 vs 0.3" in sg and "0.90: 0.25 vs 0.9" in sg
    ec = the(lines, "below ec's")
    assert "*not* below ec's at 0.80 (0.21 vs 0.2)" in ec
    assert "0.90" not in ec
