"""``l1sparse``: fine-tune on retain with an l1 sparsity penalty (Jia et al., 2023, "Model
sparsity can simplify machine unlearning").

Loss ``CE(retain) + alpha_t * ||theta||_1`` over every parameter, where
``alpha_t = alpha * (1 - t / epochs)`` in epoch ``t = 0 .. epochs-1``: strongest at the start,
decaying linearly towards 0 (the reference code's schedule). The reference runs 10 epochs of
SGD (momentum 0.9, weight decay 5e-4) at lr 0.01 with alpha = 5e-4 on ResNet-18 / CIFAR-10
(~1,800 steps). What the penalty does to a weight is the total shrinkage
``lr * sum_t alpha_t`` over the steps, so for a small problem with ~20x fewer steps (digits:
5 epochs of ~20 batches at lr 0.01) alpha is scaled up by the same factor: alpha = 1e-2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.vision.classifier import train_classifier
from unlearnbench.vision.recipes import SGDParams, sgd_config


def l1_norm(model: torch.nn.Module) -> torch.Tensor:
    """``||theta||_1`` over every trainable parameter."""
    return sum(p.abs().sum() for p in model.parameters() if p.requires_grad)


def alpha_at(alpha: float, epoch: int, epochs: int) -> float:
    """The linearly decaying penalty weight of epoch ``epoch`` (0-based)."""
    return alpha * (1.0 - epoch / max(1, epochs))


@register_method("l1sparse", summary="fine-tune on retain with a decaying l1 sparsity penalty")
class L1Sparse(Method):
    name = "l1sparse"
    needs = ("retain",)
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params(SGDParams):
        epochs: int = 5
        lr: float = 0.01
        alpha: float = 1e-2  # initial l1 weight, decays linearly to 0 over the epochs


    def unlearn(self, model, data, params, ctx):
        steps_per_epoch = math.ceil(len(data.y_retain) / params.batch_size)
        step = [0]

        def loss_fn(m, xb, yb):
            weight = alpha_at(params.alpha, step[0] // steps_per_epoch, params.epochs)
            step[0] += 1
            return F.cross_entropy(m(xb), yb) + weight * l1_norm(m)

        return train_classifier(model, data.x_retain, data.y_retain, sgd_config(params), ctx.seed, loss_fn=loss_fn,
                                device=ctx.device, quiet=ctx.quiet, description="unlearning (l1sparse)")
