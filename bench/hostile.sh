#!/usr/bin/env bash
# Crafted hostile files against this build and, optionally, another ecprune
# binary (an older build) in the same run: CPU time, peak RSS and the first line of the
# answer. Never run the older binary on wide_2e22.onnx: it asks the kernel for 16 GiB.
#   bench/hostile.sh BUILD [OTHER_ECPRUNE]
set -uo pipefail
build=${1:-build}
other=${2:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 bench/hostile_files.py "$dir"
/usr/bin/python3 - "$dir" <<'PY'
import numpy as np, sys
d = sys.argv[1]
x = np.zeros((256, 3), np.float32); y = np.zeros((256, 1), np.float32)
for s in ("train", "test"):
    np.save(f"{d}/{s}_x.npy", x); np.save(f"{d}/{s}_y.npy", y)
PY
"$build/ecprune" train --data "$dir" --arch 3-4-1 --epochs 1 -o "$dir/small.onnx" >/dev/null
ls -l "$dir"/*.onnx "$dir"/bomb/*images* | awk '{printf "%12s  %s\n", $5, $9}'
run() { # label binary args...; CPU seconds (user + system), not wall time: the machine is shared
    local label=$1 bin=$2
    shift 2
    /usr/bin/time -f "%M %U %S" -o "$dir/rss" timeout 300 "$bin" "$@" >"$dir/out" 2>"$dir/err"
    local rc=$?
    read -r rss usr sys < <(tail -1 "$dir/rss")
    printf '%-6s %-18s exit %3d  %7.2f s CPU  %6.0f MB  %s\n' "$label" \
        "$(basename "${@: -1}")" $rc "$(echo "$usr + $sys" | bc)" "$((rss / 1024))" \
        "$(head -c 120 "$dir/err" | head -1 | sed "s|$dir/||g")"
}
for f in deep_type empty_inits inputs_40k identity_40k wide_2e22; do
    args=(info "$dir/$f.onnx")
    [[ $f == wide_2e22 ]] && args=(eval "$dir/$f.onnx" --data "$dir")
    run this "$build/ecprune" "${args[@]}"
    [[ -n "$other" && $f != wide_2e22 ]] && run other "$other" "${args[@]}"
done
run this "$build/ecprune" eval "$dir/small.onnx" --data "$dir/bomb"
[[ -n "$other" ]] && run other "$other" eval "$dir/small.onnx" --data "$dir/bomb"
run this "$build/ecprune" train --data "$dir" --arch 3-16777216-1 -o "$dir/t.onnx"
exit 0
