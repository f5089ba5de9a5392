#!/usr/bin/env bash
# Prints the linker version script of libecprune.so: the functions declared in the installed
# headers are global, everything else (internals, protobuf-c's onnx__* code) is local.
# usage: scripts/exports.sh CC HEADER...
set -euo pipefail
cc=$1; shift
# The preprocessor drops the comments; a public function is an ecp_ name followed by '('.
names=$(cat "$@" | "$cc" -E -P -Iinclude -x c - | grep -oE '\becp_[a-z0-9_]+ *\(' |
        tr -d ' (' | sort -u)
[[ -n "$names" ]] || { echo "exports.sh: no function found in $*" >&2; exit 1; }
echo "{"
echo "  global:"
for n in $names; do echo "    $n;"; done
echo "  local: *;"
echo "};"
