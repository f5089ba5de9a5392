#!/usr/bin/env python3
"""Train a torch MLP, prune it to 90 % sparsity with ecprune (elimination-compensation) and with
torch.nn.utils.prune.global_unstructured (L1 magnitude), and compare test accuracies.

    make python && PYTHONPATH=build/python /usr/bin/python3 examples/prune_torch.py

Data: the MNIST digits bundled by `make setup` (8,000 train / 2,000 test), opened by ecprune.
"""
import copy
import time

import torch
import torch.nn.utils.prune as tprune
from torch import nn

import ecprune

SPARSITY = 0.9
torch.manual_seed(0)

# 1. Data as numpy arrays (ecprune opens the CLI's named datasets too).
x_train, y_train, x_test, y_test = ecprune.load_data("mnist")
xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
xe, ye = torch.from_numpy(x_test), torch.from_numpy(y_test).long()

# 2. An ordinary torch model and training loop.
model = nn.Sequential(nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                      nn.Linear(100, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(8):
    for i in torch.randperm(len(xt)).split(128):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xt[i]), yt[i]).backward()
        opt.step()


def accuracy(m):
    with torch.no_grad():
        return (m(xe).argmax(1) == ye).float().mean().item()


print("dense:                         accuracy %.2f %%" % (100 * accuracy(model)))

# 3. ecprune: one call, computed in C; the result is a new nn.Sequential with torch masks.
t0 = time.perf_counter()
pruned, report = ecprune.prune(model, x_train, y_train, method="ec", sparsity=SPARSITY,
                               masks=True, test=(x_test, y_test))
t_ec = time.perf_counter() - t0
print(report)

# 4. The torch baseline on a copy of the same model: global L1 magnitude, no compensation.
baseline = copy.deepcopy(model)
params = [(m, "weight") for m in baseline if isinstance(m, nn.Linear)]
t0 = time.perf_counter()
tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=SPARSITY)
t_l1 = time.perf_counter() - t0

print("ecprune ec, %.0f %%:              accuracy %.2f %%  (%.3f s)"
      % (100 * SPARSITY, 100 * accuracy(pruned), t_ec))
print("torch global L1, %.0f %%:         accuracy %.2f %%  (%.3f s)"
      % (100 * SPARSITY, 100 * accuracy(baseline), t_l1))
