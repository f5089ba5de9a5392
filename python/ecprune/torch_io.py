"""nn.Sequential <-> MLP. Only the layout is translated; no arithmetic happens here.

Accepted: Linear (with or without bias), then at most one activation among ReLU, LeakyReLU
(slope 0.01), Tanh, Sigmoid, Softplus (beta 1, threshold 20), GELU (exact), Identity; Flatten
before the first Linear; Dropout anywhere (an identity at inference; ecprune trains without
it); nested nn.Sequential. Anything else raises UnsupportedError naming the module."""
import numpy as np

from . import errors
from .model import MLP


def _act_of(mod, nn):
    if isinstance(mod, nn.ReLU):
        return "relu"
    if isinstance(mod, nn.Tanh):
        return "tanh"
    if isinstance(mod, nn.Sigmoid):
        return "sigmoid"
    if isinstance(mod, nn.LeakyReLU):
        if mod.negative_slope != 0.01:
            raise errors.UnsupportedError("LeakyReLU(negative_slope=%g): ecprune's leaky_relu has "
                                          "slope 0.01" % mod.negative_slope)
        return "leaky_relu"
    if isinstance(mod, nn.Softplus):
        if mod.beta != 1 or mod.threshold != 20:
            raise errors.UnsupportedError("Softplus(beta=%g, threshold=%g): ecprune's softplus "
                                          "is beta 1, threshold 20" % (mod.beta, mod.threshold))
        return "softplus"
    if isinstance(mod, nn.GELU):
        if mod.approximate != "none":
            raise errors.UnsupportedError("GELU(approximate='%s'): ecprune's gelu is the exact "
                                          "(erf) form" % mod.approximate)
        return "gelu"
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
                                          "ReLU, LeakyReLU, Tanh, Sigmoid, Softplus, GELU, "
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


_MODULES = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "leaky_relu": "LeakyReLU",
            "softplus": "Softplus", "gelu": "GELU"}


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
            layers.append(getattr(nn, _MODULES[a])())
    seq = nn.Sequential(*layers)
    if masks:
        import torch.nn.utils.prune as tprune
        lins = [x for x in seq if isinstance(x, nn.Linear)]
        for lin, mk in zip(lins, m.masks):
            tprune.custom_from_mask(lin, "weight", torch.from_numpy(~mk))
    return seq
