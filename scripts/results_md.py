"""Writes docs/RESULTS.md from the sweep CSVs of scripts/results.sh: tables of mean test loss
(and accuracy) over seeds, the best method per sparsity, and statements computed from the rows.
Every statement is a comparison of numbers printed beside it; a word such as "collapsed" is
used only where the numbers show it (accuracy at chance and loss at that of uniform outputs).

usage: results_md.py WORK_DIR OUT.md SECONDS"""
import csv
import math
import os
import sys
from collections import defaultdict

# name, title, number of classes (0 = regression)
SCEN = [("mnist", "mnist, 784-300-100-10 relu (20 epochs)", 10),
        ("fashion", "Fashion-MNIST, 784-300-100-10 relu (10 epochs)", 10)] + [
    ("diffsorp_nu%s" % nu, "diffusion-sorption surrogate, noise %s, 3-64-64-64-1 tanh" % nu, 0)
    for nu in ("0", "0.01", "0.05", "0.1")]
BASELINES = ("magnitude", "gradient", "random", "taylor", "obd", "wanda")
SMALL = "small-dense"  # a dense network of the pruned one's size, trained from scratch
# "collapsed": accuracy within this many points of chance (1/K) and cross-entropy within this
# fraction of ln K, the loss of uniform outputs.
CHANCE_POINTS = 0.05
LNK_FRACTION = 0.10


def load(path):
    """-> methods (in CSV order), sparsities, {(method, s): (loss, acc|None, n)}, dense row."""
    rows = list(csv.DictReader(open(path)))
    dense = [r for r in rows if r["method"] == "dense"]
    agg = defaultdict(list)
    methods = []
    for r in rows:
        if r["method"] == "dense":
            continue
        if r["method"] not in methods:
            methods.append(r["method"])
        acc = float(r["test_accuracy"]) if r["test_accuracy"] else None
        agg[(r["method"], float(r["sparsity"]))].append((float(r["test_loss"]), acc))
    if SMALL in methods:  # the baseline goes below the pruning methods it is read against
        methods = [m for m in methods if m != SMALL] + [SMALL]
    sps = sorted({k[1] for k in agg})
    mean = {k: (sum(v[0] for v in vs) / len(vs),
                None if vs[0][1] is None else sum(v[1] for v in vs) / len(vs), len(vs))
            for k, vs in agg.items()}
    return methods, sps, mean, dense[0] if dense else None


def table(methods, sps, mean, col, fmt):
    lines = ["| method | " + " | ".join("%.2f" % s for s in sps) + " |",
             "|---|" + "---|" * len(sps)]
    best = {s: min((mean[(mm, s)][0] if col == 0 else -mean[(mm, s)][1])
                   for mm in methods if (mm, s) in mean) for s in sps}
    for m in methods:
        cells = []
        for s in sps:
            v = mean.get((m, s))
            if v is None:
                cells.append("–")
                continue
            x = v[col]
            c = fmt % (x if col == 0 else 100 * x)
            if (x if col == 0 else -x) == best[s]:
                c = "**" + c + "**"
            cells.append(c)
        lines.append("| %s | %s |" % (m, " | ".join(cells)))
    return "\n".join(lines)


def collapsed(loss, acc, k):
    """Accuracy at chance and cross-entropy at ln K: the outputs carry no information."""
    if not k or acc is None:
        return False
    return acc <= 1.0 / k + CHANCE_POINTS and abs(loss - math.log(k)) <= LNK_FRACTION * math.log(k)


def fmt_list(xs):
    return ", ".join("%.2f" % s for s in xs)


def ec_vs_baselines(methods, sps, mean):
    out = []
    for base in BASELINES:
        if base not in methods:
            continue
        both = [s for s in sps if ("ec", s) in mean and (base, s) in mean]
        if not both:
            continue
        lose = [s for s in both if mean[("ec", s)][0] >= mean[(base, s)][0]]
        where = "every sparsity" if len(both) == len(sps) else \
            "every sparsity where both ran (%s)" % fmt_list(both)
        if not lose:
            out.append("EC's test loss is below %s's at %s." % (base, where))
        else:
            out.append("EC's test loss is *not* below %s's at %s." % (
                base, ", ".join("%.2f (%.4g vs %.4g)" % (s, mean[("ec", s)][0], mean[(base, s)][0])
                                for s in lose)))
    return out


def loss_vs_accuracy(sps, mean, k):
    """Where EC's loss is above random's but its accuracy higher: say so, and say that a
    network has collapsed only for the one whose numbers show it."""
    out = []
    for s in sps:
        e, r = mean.get(("ec", s)), mean.get(("random", s))
        if not e or not r or e[1] is None or r[1] is None:
            continue
        if not (e[0] > r[0] and e[1] > r[1]):
            continue
        t = ("At %.2f EC's test loss is above random's (%.4g vs %.4g) while its accuracy is "
             "higher (%.1f %% vs %.1f %%)." % (s, e[0], r[0], 100 * e[1], 100 * r[1]))
        for name, v in (("EC", e), ("random pruning", r)):
            if collapsed(v[0], v[1], k):
                t += (" %s has collapsed there: accuracy %.1f %% against chance %.1f %%, loss "
                      "%.4g against ln %d = %.2f, the loss of uniform outputs." % (
                          name[0].upper() + name[1:], 100 * v[1], 100.0 / k, v[0], k,
                          math.log(k)))
        if k and e[0] > math.log(k):
            t += (" EC's loss is above ln %d = %.2f: its wrong answers cost more than uniform "
                  "outputs would." % (k, math.log(k)))
        out.append(t)
    return out


def within_dense(sps, mean, dense_acc):
    ok = [s for s in sps if ("ec", s) in mean and mean[("ec", s)][1] is not None and
          mean[("ec", s)][1] >= dense_acc - 0.01]
    prefix = []
    for s in sps:
        if s not in ok:
            break
        prefix.append(s)
    t = "Iterative EC with fine-tuning is within 1 point of the dense accuracy (%.2f %%) " % (
        100 * dense_acc)
    if not ok:
        return t + "at none of the sparsities."
    if prefix:
        t += "at every sparsity up to %.2f" % prefix[-1]
    rest = [s for s in ok if s not in prefix]
    if rest:
        t += ("%sat %s" % (" and again " if prefix else "", fmt_list(rest)))
    return t + "."


def small_dense_statement(methods, sps, mean):
    """From which sparsity on the best pruned network beats the dense network of its size."""
    pruners = [m for m in methods if m != SMALL]
    if SMALL not in methods or not pruners:
        return []
    beat, cmp = [], []
    for s in sps:
        if (SMALL, s) not in mean:
            continue
        cand = [(mean[(m, s)][0], m) for m in pruners if (m, s) in mean]
        if not cand:
            continue
        bl, bm = min(cand)
        sd = mean[(SMALL, s)][0]
        cmp.append((s, bm, bl, sd))
        if bl < sd:
            beat.append(s)
    if not cmp:
        return []
    detail = "; ".join("%.2f: %s %.4g vs %.4g" % c for c in cmp)
    if not beat:
        return ["No pruned network has a lower test loss than the dense network of the same "
                "size trained from scratch, at any sparsity (best pruned vs small-dense: %s)."
                % detail]
    tail = [c[0] for c in cmp if c[0] >= beat[0]]
    if tail == beat:
        if beat[0] == cmp[0][0]:
            head = "At every sparsity"
        else:
            head = "From sparsity %.2f on" % beat[0]
        return ["%s the best pruned network has a lower test loss than the dense network of "
                "the same size trained from scratch (best pruned vs small-dense: %s)." % (
                    head, detail)]
    return ["The best pruned network has a lower test loss than the dense network of the same "
            "size trained from scratch at %s only (best pruned vs small-dense: %s)." % (
                fmt_list(beat), detail)]


def reconstruction_statement(methods, sps, mean, at_least=0.8):
    """ec-obs against the published SparseGPT recipe, EC, and plain obs, from sparsity 0.8."""
    if "ec-obs" not in methods:
        return []
    out = []
    for other in ("sparsegpt", "ec", "obs"):
        both = [s for s in sps if s >= at_least and ("ec-obs", s) in mean and (other, s) in mean]
        if not both:
            continue
        lose = [s for s in both if mean[("ec-obs", s)][0] >= mean[(other, s)][0]]
        if not lose:
            out.append("ec-obs's test loss is below %s's at every sparsity from %.2f (%s)." % (
                other, at_least, "; ".join("%.2f: %.4g vs %.4g" % (
                    s, mean[("ec-obs", s)][0], mean[(other, s)][0]) for s in both)))
        else:
            out.append("ec-obs's test loss is *not* below %s's at %s." % (
                other, ", ".join("%.2f (%.4g vs %.4g)" % (
                    s, mean[("ec-obs", s)][0], mean[(other, s)][0]) for s in lose)))
    return out


def statements(title, sname, sched, methods, sps, mean, dense, k):
    """The computed sentences of one table, as a list of lines."""
    pruners = [m for m in methods if m != SMALL]
    best = {}
    for s in sps:
        cand = [(mean[(m, s)][0], m) for m in pruners if (m, s) in mean]
        if cand:
            best[s] = min(cand)[1]
    out = ["**%s, %s.** Lowest test loss among pruning methods: %s." % (
        title, sname, ", ".join("%.2f → %s" % (s, best[s]) for s in sps if s in best))]
    if "ec" in methods:
        out += ec_vs_baselines(methods, sps, mean)
        if "random" in methods:
            out += loss_vs_accuracy(sps, mean, k)
        if dense and dense["test_accuracy"] and sched == "iter":
            out.append(within_dense(sps, mean, float(dense["test_accuracy"])))
    out += reconstruction_statement(methods, sps, mean)
    out += small_dense_statement(methods, sps, mean)
    return out


def main(argv):
    work, out, seconds = argv[1], argv[2], int(argv[3])
    md = ["# Results", "",
          "Generated by `make results` (scripts/results.sh; %d s on this 2-core machine, from "
          "scratch). Every number is the mean over the seeds of the test loss (cross-entropy for "
          "classification, MSE for diffusion–sorption) after pruning; bold = best at that "
          "sparsity. Plots: test loss (log) and accuracy vs sparsity, mean over seeds with the "
          "min–max band, dense model dashed. One-shot = statistics once, no fine-tuning; "
          "iterative = 5 steps on the cubic schedule, statistics recomputed on the masked model, "
          "1 fine-tuning epoch (Adam 1e-3) after each step. `ec:loss` is EC with the loss "
          "(Gauss–Newton) sensitivity; `ec` uses the output sensitivity. ec-exact (the "
          "non-linear oracle) is run one-shot on the diffusion–sorption network only, with 256 "
          "calibration samples (the other methods use 2,000). `sparsegpt` is SparseGPT's "
          "published recipe (OBS reconstruction, the same sparsity in every layer, the mask "
          "chosen per 128 columns); `obs` is the same reconstruction with EC's per-layer "
          "allocation, a finer mask choice, the fit aimed at the original network's outputs "
          "and an exact final re-fit; `ec-obs` adds EC's sensitivity weighting "
          "(docs/METHOD.md). `small-dense` is not a pruning "
          "method: it is a dense network of the same depth whose hidden widths are the "
          "original's scaled by one factor so that its weights + biases do not exceed the "
          "pruned network's non-zero weights + biases, trained from scratch with the original's "
          "epochs, batch and optimiser (the same trainings serve both tables of a scenario)."
          % seconds, ""]
    summary = ["## What the data show", ""]
    for key, title, k in SCEN:
        for sched, sname in (("oneshot", "one-shot, no fine-tuning"),
                             ("iter", "iterative T=5, fine-tuned")):
            path = os.path.join(work, "%s-%s.csv" % (key, sched))
            if not os.path.exists(path):
                continue
            methods, sps, mean, dense = load(path)
            md += ["## %s — %s" % (title, sname), ""]
            if dense:
                da = dense["test_accuracy"]
                md += ["Dense model: test loss %.5g%s." % (
                    float(dense["test_loss"]),
                    (", accuracy %.2f %%" % (100 * float(da))) if da else ""), ""]
            md += ["![%s %s](%s-%s.png)" % (key, sched, key, sched), "",
                   "Test loss:", "", table(methods, sps, mean, 0, "%.4g"), ""]
            if any(v[1] is not None for v in mean.values()):
                md += ["Test accuracy (%):", "", table(methods, sps, mean, 1, "%.2f"), ""]
            summary += statements(title, sname, sched, methods, sps, mean, dense, k) + [""]
    # the computed statements first, then the tables they come from
    head, body = md[:4], md[4:]
    # the structured-pruning section comes from scripts/structured_results.sh: carried over
    tail = ""
    if os.path.exists(out):
        old = open(out).read()
        at = old.find("\n## Structured pruning")
        tail = old[at:] if at >= 0 else ""
    open(out + ".tmp", "w").write("\n".join(head + summary + body + [""]) + tail)
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main(sys.argv)
