"""nn.Sequential -> MLP -> nn.Sequential is exact, and the library's forward agrees with
torch's for every supported activation."""
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

import ecprune

ACTS = [nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.GELU, nn.Identity, nn.SiLU,
        partial(nn.LeakyReLU, 0.2), partial(nn.ELU, 0.7), nn.ReLU6, partial(nn.Hardtanh, -2.0, 1.5),
        partial(nn.GELU, approximate="tanh"), partial(nn.Softplus, beta=2.0), nn.Hardsigmoid,
        nn.Hardswish]


def make(act, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(7, 12), act(), nn.Linear(12, 9), act(), nn.Linear(9, 4))


@pytest.mark.parametrize("act", ACTS, ids=lambda a: repr(a()))
def test_round_trip(act):
    seq = make(act)
    m = ecprune.MLP.from_torch(seq)
    want = "identity" if act is nn.Identity else ecprune.MLP.from_torch(
        nn.Sequential(nn.Linear(1, 1), act())).acts[0]
    assert m.acts == [want, want, "identity"]
    assert m.sizes == [7, 12, 9, 4]
    back = m.to_torch()
    x = torch.randn(64, 7) * 3
    with torch.no_grad():
        y0, y1 = seq(x), back(x)
    assert torch.max(torch.abs(y0 - y1)).item() <= 1e-6
    assert act is nn.Identity or repr(back[1]) == repr(seq[1])  # same module, same parameters
    src = [p for p in seq if isinstance(p, nn.Linear)]
    dst = [p for p in back if isinstance(p, nn.Linear)]
    for a, b in zip(src, dst):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    # The library's own forward (dense and sparse engines) against torch's float64 forward.
    with torch.no_grad():
        ref = seq.double()(x.double()).numpy()
    for engine in ("dense", "sparse"):
        y = m.predict(x.numpy(), engine=engine)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_structure_variants():
    torch.manual_seed(1)
    seq = nn.Sequential(nn.Flatten(), nn.Linear(6, 5, bias=False), nn.ReLU(), nn.Dropout(0.2),
                        nn.Sequential(nn.Linear(5, 3)))
    seq.eval()
    m = ecprune.MLP.from_torch(seq)
    assert m.sizes == [6, 5, 3] and m.acts == ["relu", "identity"]
    np.testing.assert_array_equal(m.biases[0], np.zeros(5, np.float32))
    x = torch.randn(10, 2, 3)
    with torch.no_grad():
        ref = seq(x).numpy()
    np.testing.assert_allclose(m.predict(x.reshape(10, 6).numpy()), ref, rtol=1e-6, atol=1e-6)


def test_masks_round_trip():
    seq = make(nn.Tanh)
    with torch.no_grad():
        seq[0].weight[0, :3] = 0
    m = ecprune.MLP.from_torch(seq)
    assert m.masks[0][0, :3].all() and not m.masks[0][0, 3:].any()
    back = m.to_torch(masks=True)
    assert torch.equal(back[0].weight_mask[0, :3], torch.zeros(3))
    assert back[0].weight_mask.sum().item() == 12 * 7 - 3


def test_save_load(tmp_path):
    m = ecprune.MLP([5, 8, 2], ["gelu", "sigmoid"], seed=4)
    m.save(tmp_path / "m.onnx")
    m2 = ecprune.MLP.load(str(tmp_path / "m.onnx"))
    assert m2.sizes == m.sizes and m2.acts == m.acts
    for a, b in zip(m.weights + m.biases, m2.weights + m2.biases):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("storage", ["dense", "sparse"])
@pytest.mark.parametrize("external", [False, True])
def test_save_storage(tmp_path, storage, external):
    m = ecprune.MLP([30, 40, 3], "relu", seed=4)
    m.weights[0][:, 3:] = 0  # 90 % zeros: sparse storage pays for layer 0 only
    m.mask_from_zeros()
    path = tmp_path / "m.onnx"
    m.save(path, storage=storage, external_data=external)
    assert (tmp_path / "m.onnx.data").exists() == external
    m2 = ecprune.MLP.load(str(path))
    for a, b in zip(m.weights + m.biases + m.masks, m2.weights + m2.biases + m2.masks):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        m.save(path, storage="csr")
