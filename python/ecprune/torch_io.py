"""nn.Sequential <-> MLP. Only the layout is translated; no arithmetic happens here.

Accepted: Linear (with or without bias), then at most one activation among ReLU, LeakyReLU,
ELU, ReLU6, Hardtanh, Tanh, Sigmoid, SiLU, Softplus (threshold 20), GELU (both forms),
Hardsigmoid, Hardswish, Identity; Flatten
before the first Linear; Dropout anywhere (an identity at inference; ecprune trains without
it); nested nn.Sequential. Anything else raises UnsupportedError naming the module."""
import numpy as np

from . import errors
from .model import MLP


def _num(v):
    """A parameter as the library reads it back exactly (float32, shortest repr)."""
    return repr(float(np.float32(v)))


def _act_of(mod, nn):
    """The activation's spelling ("elu:0.5"), None for a module that is no activation."""
    simple = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SiLU: "silu",
              nn.Hardsigmoid: "hardsigmoid", nn.Hardswish: "hardswish"}
    for cls, name in simple.items():
        if type(mod) is cls:
            return name
    if isinstance(mod, nn.LeakyReLU):
        return "leaky_relu:" + _num(mod.negative_slope)
    if isinstance(mod, nn.ELU):
        return "elu:" + _num(mod.alpha)
    if isinstance(mod, nn.Hardtanh):  # ReLU6 is a Hardtanh(0, 6)
        return "clip:%s:%s" % (_num(mod.min_val), _num(mod.max_val))
    if isinstance(mod, nn.Softplus):
        if mod.threshold != 20:
            raise errors.UnsupportedError("Softplus(beta=%g, threshold=%g): ecprune's softplus "
                                          "has threshold 20" % (mod.beta, mod.threshold))
        return "softplus:" + _num(mod.beta)
    if isinstance(mod, nn.GELU):
        return "gelu" if mod.approximate == "none" else "gelu_tanh"
    return None


def _leaves(module, nn):
    for child in module.children() if isinstance(module, nn.Sequential) else [module]:
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, nn)
        else:
            yield child


def from_torch(module):
    import torch
    from torch import nn
    if isinstance(module, MLP):
        return module
    if not isinstance(module, nn.Module):
        raise errors.ArgumentError("expected an nn.Sequential or an ecprune.MLP, got %s"
                                   % type(module).__name__)
    weights, biases, acts = [], [], []
    for i, mod in enumerate(_leaves(module, nn)):
        where = "module %d (%s)" % (i, type(mod).__name__)
        if isinstance(mod, nn.Linear):
            if len(acts) < len(weights):
                acts.append("identity")
            with torch.no_grad():
                weights.append(mod.weight.detach().cpu().numpy())
                biases.append(mod.bias.detach().cpu().numpy() if mod.bias is not None
                              else np.zeros(mod.out_features, dtype=np.float32))
            continue
        if isinstance(mod, (nn.Dropout, nn.Identity)):
            continue
        if isinstance(mod, nn.Flatten):
            if weights:
                raise errors.UnsupportedError("%s: Flatten is supported only before the first "
                                              "Linear" % where)
            continue
        act = _act_of(mod, nn)
        if act is None:
            raise errors.UnsupportedError("%s is not supported: ecprune takes Linear layers and "
                                          "ReLU, LeakyReLU, ELU, ReLU6, Hardtanh, Tanh, Sigmoid, "
                                          "SiLU, Softplus, GELU, Hardsigmoid, Hardswish, "
                                          "Identity, Dropout, Flatten" % where)
        if not weights:
            raise errors.UnsupportedError("%s: an activation before the first Linear" % where)
        if len(acts) == len(weights):
            raise errors.UnsupportedError("%s: a second activation after Linear %d"
                                          % (where, len(weights) - 1))
        acts.append(act)
    if not weights:
        raise errors.UnsupportedError("the module has no Linear layer")
    if len(acts) < len(weights):
        acts.append("identity")
    return MLP.from_weights(weights, biases, acts)


def _module_of(spelling, nn):
    """The torch module computing the activation ecprune spells `spelling`."""
    name, *p = spelling.split(":")
    p = [float(v) for v in p]
    simple = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU,
              "gelu": nn.GELU}
    if name in simple:
        return simple[name]()
    if name == "gelu_tanh":
        return nn.GELU(approximate="tanh")
    if name == "leaky_relu":
        return nn.LeakyReLU(*p)
    if name == "elu":
        return nn.ELU(*p)
    if name == "softplus":
        return nn.Softplus(*p)
    if name == "clip":
        return nn.ReLU6() if p == [0.0, 6.0] else nn.Hardtanh(*p)
    if name in ("hardsigmoid", "hardswish") and not p:
        return nn.Hardsigmoid() if name == "hardsigmoid" else nn.Hardswish()
    raise errors.UnsupportedError("activation %s has no torch module" % spelling)


def to_torch(m, masks=False):
    import torch
    from torch import nn
    layers = []
    for l, (w, b, a) in enumerate(zip(m.weights, m.biases, m.acts)):
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if a != "identity":
            layers.append(_module_of(a, nn))
    seq = nn.Sequential(*layers)
    if masks:
        import torch.nn.utils.prune as tprune
        lins = [x for x in seq if isinstance(x, nn.Linear)]
        for lin, mk in zip(lins, m.masks):
            tprune.custom_from_mask(lin, "weight", torch.from_numpy(~mk))
    return seq
