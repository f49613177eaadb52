"""``blindspot``: blindspot unlearning (Tarun et al., ICML 2023, "Deep Regression Unlearning").

1. A proxy ("blindspot") model: a fresh ``build_regressor(data.model_config)`` (initialised
   from the run seed, target scale from the retain targets) trained briefly on the retain rows
   only -- ``proxy_epochs`` (5) epochs of the task's recipe -- so it has never seen the forget
   rows and knows the retain data only roughly.
2. One epoch (``epochs``) over all training rows (retain and forget, shuffled together), Adam
   at lr 1e-3, where each batch's loss is::

       loss = c * L_forget + (1 - c) * L_retain,   c = (forget rows in the batch) / (batch size)

       L_retain = mean |f(x) - y| / s                               over the batch's retain rows
       L_forget = mean |f(x) - g(x)| / s                             over the batch's forget rows
                + at_beta * sum_l mean_{i,j} (a_l(x)_ij - b_l(x)_ij)^2

   with ``f`` the model being unlearned, ``g`` the (frozen) proxy, ``s = f.y_std`` (both
   errors on the model's standardised scale, so the loss does not depend on the target's
   units), and ``a_l`` / ``b_l`` the attention maps of hidden layer ``l`` of the model /
   the proxy (a term is 0 where the batch has no row of its kind). The hidden layers'
   outputs are captured with forward hooks (every activation module, e.g. each ReLU of the
   MLP).

Attention transfer (Zagoruyko & Komodakis, 2017): the attention map of an activation ``A`` is
``normalize(A^2)``, each row scaled to unit L2 norm. For a convolutional map ``[B, C, H, W]``
(the reference) the squares are first averaged over the channels; an MLP's hidden vector
``[B, H]`` has no channel axis, so its units play the role of the positions and the map is
``normalize(A^2)`` over them (the reference's formula, which averages over axis 1, would reduce
a hidden vector to one number whose normalisation is always 1).

Reference code: github.com/ayushkumartarun/deep-regression-unlearning, ``unlearn.py``
(``attention``, ``forget_loss`` with ``AT_beta = 50``, ``fit_one_forget_cycle``: L1 losses,
Adam, the batch's forget share as weight). Differences: errors divided by the model's target
standard deviation (see above); the proxy's output is compared in original units.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.tabular.recipes import AdamParams, adam_config

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Tanh, nn.Sigmoid)


def hidden_layers(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are the hidden layers: every activation module (in order);
    failing that, every ``nn.Linear`` but the last (the output layer)."""
    found = [m for m in model.modules() if isinstance(m, _ACTIVATIONS)]
    if found:
        return found
    return [m for m in model.modules() if isinstance(m, nn.Linear)][:-1]


def attention_map(a: torch.Tensor) -> torch.Tensor:
    """``normalize(A^2)`` per row (channel-averaged first for maps with more than 2 axes)."""
    a = a.pow(2)
    if a.dim() > 2:
        a = a.mean(1)
    return F.normalize(a.reshape(a.size(0), -1), dim=1)


def attention_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the two attention maps."""
    return (attention_map(a) - attention_map(b)).pow(2).mean()


class _Capture:
    """Forward hooks that collect the outputs of ``modules`` at each call."""

    def __init__(self, modules):
        self.outputs: list[torch.Tensor] = []
        self.handles = [m.register_forward_hook(lambda _m, _i, out: self.outputs.append(out)) for m in modules]

    def take(self) -> list[torch.Tensor]:
        out, self.outputs = self.outputs, []
        return out

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


@register_method("blindspot",
                 summary="blindspot: forget rows pulled towards a briefly trained retain-only proxy")
class Blindspot(Method):
    name = "blindspot"
    needs = ("forget", "retain", "recipe")
    kinds = ("regression",)

    @dataclass(frozen=True)
    class Params(AdamParams):
        epochs: int = 1
        lr: float = 1e-3
        weight_decay: float = 0.0  # the reference's Adam has none
        proxy_epochs: int = 5  # epochs of the task's recipe for the proxy (retain rows only)
        at_beta: float = 50.0  # weight of the attention-transfer distance (the reference's AT_beta)


    def unlearn(self, model, data, params, ctx):
        from unlearnbench.tabular.regression import fit_regressor, train_regressor

        proxy = fit_regressor(data.model_config, data.x_retain, data.y_retain,
                              replace(data.train_config, epochs=params.proxy_epochs), ctx.seed,
                              device=ctx.device, quiet=ctx.quiet, description="blindspot proxy (retain only)")
        proxy.eval()
        for p in proxy.parameters():
            p.requires_grad_(False)

        x_retain = np.asarray(data.x_retain, dtype=np.float32)
        x_forget = np.asarray(data.x_forget, dtype=np.float32)
        n_features = x_retain.shape[1]
        # The forget flag rides along as an extra feature column, so the shared loop shuffles it with its row.
        x = np.concatenate([
            np.concatenate([x_retain, np.zeros((len(x_retain), 1), np.float32)], axis=1),
            np.concatenate([x_forget, np.ones((len(x_forget), 1), np.float32)], axis=1),
        ])
        y = np.concatenate([np.asarray(data.y_retain, dtype=np.float32).reshape(-1),
                            np.asarray(data.y_forget, dtype=np.float32).reshape(-1)])

        model.to(ctx.device)
        model_hooks, proxy_hooks = _Capture(hidden_layers(model)), _Capture(hidden_layers(proxy))

        def loss_fn(m, xb, yb):
            features, forget = xb[:, :n_features], xb[:, n_features] > 0.5
            model_hooks.take()
            out = m(features)
            acts = model_hooks.take()
            scale = m.y_std
            coeff = forget.float().mean()
            zero = out.sum() * 0.0
            retain_loss = ((out[~forget] - yb[~forget]).abs() / scale).mean() if (~forget).any() else zero
            forget_loss = zero
            if forget.any():
                with torch.no_grad():
                    proxy_hooks.take()
                    proxy_out = proxy(features[forget])
                    proxy_acts = proxy_hooks.take()
                forget_loss = ((out[forget] - proxy_out).abs() / scale).mean()
                if params.at_beta > 0:
                    for a, b in zip(acts, proxy_acts):
                        forget_loss = forget_loss + params.at_beta * attention_distance(a[forget], b)
            return coeff * forget_loss + (1 - coeff) * retain_loss

        try:
            train_regressor(model, x, y, adam_config(params), ctx.seed, loss_fn=loss_fn, device=ctx.device,
                            quiet=ctx.quiet, description="unlearning (blindspot)")
        finally:
            model_hooks.remove()
            proxy_hooks.remove()
        return model.eval()
