#!/usr/bin/env python3
"""Writes crafted hostile files (deep nesting, millions of empty entries, long chains, a
gzip bomb) into OUT_DIR (raw protobuf, no onnx
package needed): python3 hostile_files.py OUT_DIR"""
import gzip
import os
import struct
import sys


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(num, payload):  # length-delimited
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def intf(num, v):
    return varint(num << 3) + varint(v)


def model(graph):
    return intf(1, 7) + field(7, graph) + field(8, intf(2, 13))


def node(op, ins, outs):
    return field(1, b"".join(field(1, i.encode()) for i in ins) +
                 b"".join(field(2, o.encode()) for o in outs) + field(4, op.encode()))


def tensor(name, dims, values):
    return (b"".join(intf(1, d) for d in dims) + intf(2, 1) +
            field(4, struct.pack(f"<{len(values)}f", *values)) + field(8, name.encode()))


def value_info(name):
    return field(1, name.encode())


out = sys.argv[1]
os.makedirs(out, exist_ok=True)

# A graph input whose TypeProto nests sequence types 6,000 levels deep (42 KB).
t = b""
for _ in range(6000):
    t = field(4, field(1, t))
open(f"{out}/deep_type.onnx", "wb").write(model(field(11, value_info("x") + field(2, t))))

# 10 million empty initializers: 20 MB.
open(f"{out}/empty_inits.onnx", "wb").write(model(b"\x2a\x00" * 10_000_000))

# 40,000 graph inputs that are initializers, beside a one-layer model (0.78 MB).
g = node("Gemm", ["x", "W"], ["y"]) + field(5, tensor("W", [3, 2], [1] * 6))
g += field(11, value_info("x")) + field(12, value_info("y"))
for i in range(40000):
    g += field(5, field(8, f"w{i}".encode()) + intf(2, 1)) + field(11, value_info(f"w{i}"))
open(f"{out}/inputs_40k.onnx", "wb").write(model(g))

# 40,000 chained Identity nodes before a Gemm.
g = b"".join(node("Identity", [f"v{i}" if i else "x"], [f"v{i + 1}"]) for i in range(40000))
g += node("Gemm", ["v40000", "W"], ["y"]) + field(5, tensor("W", [3, 2], [1] * 6))
g += field(11, value_info("x")) + field(12, value_info("y"))
open(f"{out}/identity_40k.onnx", "wb").write(model(g))

# A 64 MB model with a 2^22-wide hidden layer: 3 -> 4194304 -> 1.
h = 1 << 22
g = node("Gemm", ["x", "W0"], ["h"]) + node("Gemm", ["h", "W1"], ["y"])
g += field(5, intf(1, 3) + intf(1, h) + intf(2, 1) + field(9, bytes(12 * h)) + field(8, b"W0"))
g += field(5, intf(1, h) + intf(1, 1) + intf(2, 1) + field(9, bytes(4 * h)) + field(8, b"W1"))
g += field(11, value_info("x")) + field(12, value_info("y"))
open(f"{out}/wide_2e22.onnx", "wb").write(model(g))

# An IDX directory whose gzipped images (about 260 KB) inflate to 270 MB of pixels.
bomb = f"{out}/bomb"
os.makedirs(bomb, exist_ok=True)
n = 344_000
hdr = bytes([0, 0, 8, 3]) + struct.pack(">III", n, 28, 28)
with gzip.open(f"{bomb}/train-images-idx3-ubyte.gz", "wb", compresslevel=9) as f:
    f.write(hdr)
    chunk = bytes(28 * 28 * 1000)
    for _ in range(n // 1000):
        f.write(chunk)
lab = bytes([0, 0, 8, 1]) + struct.pack(">I", n) + bytes(n)
with gzip.open(f"{bomb}/train-labels-idx1-ubyte.gz", "wb", compresslevel=9) as f:
    f.write(lab)
for s in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
    os.link(f"{bomb}/{s.replace('t10k', 'train')}", f"{bomb}/{s}")
