"""Exit 0 when two sweep CSVs have the same rows in the same order: every field equal except
the losses (within a relative tolerance) and the seconds; else print the first difference.
usage: same_csv.py A.csv B.csv RTOL"""
import csv
import sys

a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
rtol = float(sys.argv[3])
if len(a) != len(b) or not a:
    sys.exit(f"{len(b)} rows against {len(a)}")
for i, (x, y) in enumerate(zip(a, b)):
    for k in x:
        if k == "seconds":
            continue
        if k == "test_loss":
            u, v = float(x[k]), float(y[k])
            if abs(u - v) > rtol * max(abs(u), abs(v)):
                sys.exit(f"row {i + 2}: test_loss {v!r} vs {u!r}")
        elif x[k] != y[k]:
            sys.exit(f"row {i + 2}: {k} {y[k]!r} vs {x[k]!r}")
