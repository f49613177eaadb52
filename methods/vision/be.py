"""``be``: boundary expand (Chen et al., CVPR 2023, "Boundary Unlearning").

The head ``model.fc`` is widened by one shadow class (the ``K`` existing rows copied, the new
row initialised like a fresh ``nn.Linear`` row from the run seed). The widened model is trained
with cross-entropy: forget samples towards the shadow class, shuffled with retain samples
towards their own labels (``retain_per_forget`` retain samples per forget sample, drawn
without replacement from the run seed; 0 trains on the forget set alone, as the reference
does). The shadow neuron is then REMOVED: the returned model's head has the original ``K``
outputs, so it is evaluated K-way (one reference implementation evaluates with the shadow
class still there, which flatters forgetting).

The reference trains 10 epochs of SGD (momentum 0.9) at lr 1e-5 on a whole CIFAR-10 class
(~800 steps); a small forget set gives ~100x fewer steps, so for a small model the default is
5 epochs at lr 1e-3 (momentum 0.9, weight decay 5e-4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.vision.classifier import train_classifier
from unlearnbench.vision.recipes import SGDParams, sgd_config


def widen_head(model: nn.Module, seed: int) -> None:
    """Replace ``model.fc`` (``K`` outputs) by one with ``K + 1``: the old rows and a fresh one."""
    old: nn.Linear = model.fc
    new = nn.Linear(old.in_features, old.out_features + 1, bias=old.bias is not None).to(old.weight.device, old.weight.dtype)
    g = torch.Generator().manual_seed(int(seed) & 0xFFFFFFFF)
    bound = 1.0 / math.sqrt(old.in_features)  # nn.Linear's default initialisation range
    with torch.no_grad():
        new.weight[:-1] = old.weight
        new.weight[-1] = ((torch.rand(old.in_features, generator=g) * 2 - 1) * bound).to(new.weight)
        if old.bias is not None:
            new.bias[:-1] = old.bias
            new.bias[-1] = float((torch.rand(1, generator=g) * 2 - 1) * bound)
    model.fc = new


def drop_shadow(model: nn.Module) -> None:
    """Remove the last output of ``model.fc`` (the shadow class)."""
    wide: nn.Linear = model.fc
    head = nn.Linear(wide.in_features, wide.out_features - 1, bias=wide.bias is not None).to(wide.weight.device, wide.weight.dtype)
    with torch.no_grad():
        head.weight.copy_(wide.weight[:-1])
        if wide.bias is not None:
            head.bias.copy_(wide.bias[:-1])
    model.fc = head


@register_method("be", summary="boundary expand: a shadow class absorbs the forget set, then is removed")
class BoundaryExpand(Method):
    name = "be"
    needs = ("forget", "retain")
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params(SGDParams):
        epochs: int = 5
        lr: float = 1e-3
        retain_per_forget: float = 1.0  # retain samples mixed in per forget sample; 0 = forget set only


    def unlearn(self, model, data, params, ctx):
        k = int(model.fc.out_features)  # the shadow class's index (= num_classes)
        x_forget = np.asarray(data.x_forget, dtype=np.float32)
        xs, ys = [x_forget], [np.full(len(x_forget), k, dtype=np.int64)]  # class k = the shadow class
        n_retain = min(len(data.y_retain), int(round(params.retain_per_forget * len(x_forget))))
        if n_retain > 0:
            rows = np.sort(np.random.default_rng([int(ctx.seed) & 0xFFFFFFFF, 0xBE]).choice(len(data.y_retain), n_retain, replace=False))
            xs.append(np.asarray(data.x_retain, dtype=np.float32)[rows])
            ys.append(np.asarray(data.y_retain, dtype=np.int64)[rows])
        model.to(ctx.device)
        widen_head(model, ctx.seed)
        try:
            train_classifier(model, np.concatenate(xs), np.concatenate(ys), sgd_config(params), ctx.seed,
                             device=ctx.device, quiet=ctx.quiet, description="unlearning (be)")
        finally:
            drop_shadow(model)
        return model.eval()
