#!/usr/bin/env bash
# Draws u(x, t) of the diffusion-sorption problem at several times for two initial values c0
# into docs/diffsorp.png (gnuplot, pngcairo). Usage: scripts/plot_diffsorp.sh [BUILD] [OUT.png]
set -euo pipefail
build=${1:-build}
out=${2:-docs/diffsorp.png}
exe="$build/ecprune"
[[ -x "$exe" ]] || { echo "plot_diffsorp.sh: $exe not found (run make first)" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot_diffsorp.sh: gnuplot not found" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# 6 saved times: t = 0, 100, ..., 500; blocks are ordered c0-major (index = 6*j + k).
"$exe" datagen diffsorp --profiles "$tmp/profiles.dat" --c0-list 0.01,0.2 --times 6 --cells 256
mkdir -p "$(dirname "$out")"

gnuplot <<GP
set terminal pngcairo size 1100,460 font ",11"
set output "$out"
set multiplot layout 1,2 title "Diffusion-sorption (Freundlich): u(x, t), left u = 1, outflow at x = 1"
set xlabel "x"
set ylabel "u"
set yrange [0:1.05]
set grid
set key top right
times = "0 100 200 300 400 500"
do for [j=0:1] {
    c0 = (j == 0) ? "0.01" : "0.2"
    set title sprintf("c_0 = %s", c0)
    plot for [k=0:5] "$tmp/profiles.dat" index (6*j + k) using 3:4 with lines lw 2 \
         title sprintf("t = %s", word(times, k + 1))
}
unset multiplot
GP
echo "wrote $out"
