#!/usr/bin/env python3
"""Tables and plots of scripts/structured_results.sh: reads WORK/neurons.csv and WORK/nm.csv,
prints the markdown tables of docs/STRUCTURED.md on stdout and draws DOCS/structured-DATA.png
(test accuracy against the fraction of hidden neurons removed, one-shot and fine-tuned) with
gnuplot. usage: structured_md.py WORK DOCS"""
import csv
import os
import statistics
import subprocess
import sys
from collections import defaultdict

METHODS = [("ec", "layer", "ec (default: loss, refit)"), ("ec+bias", "layer", "ec, bias only"),
           ("ec:output+bias", "layer", "ec, output sens., bias only"),
           ("ec", "global", "ec, global"),
           ("mean-replacement", "layer", "mean-replacement"), ("l2", "layer", "l2"),
           ("l2-incoming", "layer", "l2-incoming"), ("random", "layer", "random"),
           ("mean-replacement+refit", "layer", "mean-replacement + refit"),
           ("l2-incoming+refit", "layer", "l2-incoming + refit"),
           ("random+refit", "layer", "random + refit")]
SPARS = ["0.25", "0.5", "0.75"]


def stats(v):
    if not v:
        return None
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0), len(v)


def fmt(s, best):
    if s is None:
        return "–"
    m, sd, n = s
    txt = f"{100 * m:.2f} ± {100 * sd:.2f}" if n > 1 else f"{100 * m:.2f}"
    return f"**{txt}**" if best else txt


def main(work, docs):
    acc = defaultdict(list)
    base = {}
    arch = {}
    seen = set()
    for r in csv.DictReader(open(os.path.join(work, "neurons.csv"))):
        run = tuple(r[k] for k in ("data", "ft", "method", "scope", "sparsity", "seed"))
        if run in seen:  # a resumed run may have repeated a row
            continue
        seen.add(run)
        if r["sparsity"] == "0":
            base[r["data"]] = float(r["accuracy"])
            continue
        key = (r["data"], r["ft"], r["method"], r["scope"], r["sparsity"])
        acc[key].append(float(r["accuracy"]))
        arch[key] = r["arch"]
    for data in ("mnist", "fashion"):
        if data not in base:
            continue
        print(f"\n### {data}: test accuracy (%), unpruned {100 * base[data]:.2f} %\n")
        print("| criterion | " + " | ".join(f"−{int(float(s) * 100)} % one-shot" for s in SPARS)
              + " | " + " | ".join(f"−{int(float(s) * 100)} % + 1 epoch" for s in SPARS) + " |")
        print("|---" * (1 + 2 * len(SPARS)) + "|")
        cells = {}
        for ft in ("0", "1"):
            for s in SPARS:
                col = {lab: stats(acc.get((data, ft, m, sc, s), [])) for m, sc, lab in METHODS}
                top = max((v[0] for v in col.values() if v), default=None)
                for lab, v in col.items():
                    cells[(lab, ft, s)] = fmt(v, v is not None and v[0] == top)
        for _, _, lab in METHODS:
            print(f"| {lab} | " + " | ".join(cells[(lab, ft, s)] for ft in ("0", "1")
                                               for s in SPARS) + " |")
        archs = [arch.get((data, "0", "ec", "global", s), "?") for s in SPARS]
        print(f"\nWidths: per layer (`--scope layer`) 784-225-75-10, 784-150-50-10, 784-75-25-10; "
              f"ec global (one-shot, seed 1 run) chose {', '.join(archs)}.")
        plot(work, docs, data, acc, base[data])
    nm = os.path.join(work, "nm.csv")
    if os.path.exists(nm):
        by = defaultdict(list)
        for r in csv.DictReader(open(nm)):
            by[r["method"]].append(float(r["accuracy"]))
        print("\n### 2:4 on mnist, one-shot: test accuracy (%)\n")
        print("| method | accuracy |\n|---|---|")
        for m, v in by.items():
            print(f"| {m} | {fmt(stats(v), False)} |")


def plot(work, docs, data, acc, base):
    dat = os.path.join(work, f"{data}.dat")
    with open(dat, "w") as f:
        for ft in ("0", "1"):
            for m, sc, lab in METHODS:
                f.write(f'# "{lab}" ft={ft}\n0 {100 * base:.3f} 0\n')
                for s in SPARS:
                    v = stats(acc.get((data, ft, m, sc, s), []))
                    if v:
                        f.write(f"{float(s) * 100:g} {100 * v[0]:.3f} {100 * v[1]:.3f}\n")
                f.write("\n\n")
    n = len(METHODS)
    plots = []
    for ft in (0, 1):
        parts = [f"'{dat}' index {ft * n + k} using 1:2:3 with yerrorlines title '{lab}'"
                 for k, (_, _, lab) in enumerate(METHODS)]
        plots.append(parts)
    title = {0: "one-shot", 1: "+ 1 fine-tuning epoch"}
    script = f"""set terminal pngcairo size 1200,480 font ",10"
set output '{os.path.join(docs, f"structured-{data}.png")}'
set multiplot layout 1,2 title "{data} 784-300-100-10: hidden neurons removed (3 seeds)"
set xlabel "hidden neurons removed (%)"; set ylabel "test accuracy (%)"; set key bottom left
set xrange [-2:77]; set grid
"""
    for ft in (0, 1):
        script += f'set title "{title[ft]}"\nplot ' + ", \\\n  ".join(plots[ft]) + "\n"
    script += "unset multiplot\n"
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
