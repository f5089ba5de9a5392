#!/usr/bin/env python3
"""PyTorch CPU peer of `ecprune bench-infer`: the same model, inputs and thread count.

usage: torch_infer.py DIR --threads T --batches 1,256 [--seconds S]
DIR holds manifest.txt ("n_layers", then per layer "n_in n_out act"), W<l>.f32 (n_out x n_in),
b<l>.f32 and x.f32 (N x n_in), all raw little-endian float32, written by the C tool.
Prints one JSON line: {"batch1_us": median latency, "batch256_sps": samples/s, ...}.
"""
import json
import sys
import time

import numpy as np
import torch

ACTS = {"identity": torch.nn.Identity, "relu": torch.nn.ReLU, "leaky_relu": torch.nn.LeakyReLU,
        "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "softplus": torch.nn.Softplus,
        "gelu": torch.nn.GELU}


def load(d):
    lines = open(f"{d}/manifest.txt").read().split("\n")
    n = int(lines[0])
    mods = []
    for l in range(n):
        ni, no, act = lines[1 + l].split()
        lin = torch.nn.Linear(int(ni), int(no))
        w = np.fromfile(f"{d}/W{l}.f32", dtype="<f4").reshape(int(no), int(ni))
        b = np.fromfile(f"{d}/b{l}.f32", dtype="<f4")
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        mods += [lin, ACTS[act]()]
    x = np.fromfile(f"{d}/x.f32", dtype="<f4").reshape(-1, int(lines[1].split()[0]))
    return torch.nn.Sequential(*mods).eval(), torch.from_numpy(x)


def main():
    d = sys.argv[1]
    args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    torch.set_num_threads(int(args.get("--threads", "1")))
    secs = float(args.get("--seconds", "0.5"))
    model, x = load(d)
    out = {"torch_version": torch.__version__}
    with torch.inference_mode():
        for b in [int(v) for v in args.get("--batches", "1,256").split(",")]:
            xb = [x[(i * b) % max(1, len(x) - b + 1):][:b].contiguous() for i in range(16)]
            for i in range(5):
                model(xb[i % 16])
            times, t_end, i = [], time.perf_counter() + secs, 0
            while time.perf_counter() < t_end or len(times) < 5:
                t0 = time.perf_counter()
                model(xb[i % 16])
                times.append(time.perf_counter() - t0)
                i += 1
            med = float(np.median(times))
            if b == 1:
                out["batch1_us"] = med * 1e6
            else:
                out[f"batch{b}_sps"] = b / med
    print(json.dumps(out))


if __name__ == "__main__":
    main()
