"""``bs``: boundary shrink (Chen et al., CVPR 2023, "Boundary Unlearning").

For each forget sample ``x`` with label ``y``, its FGSM neighbour
``x' = x + eps * sign(grad_x CE(f0(x), y))`` is taken on the (already normalised) input with
the ORIGINAL model ``f0`` (a frozen copy, in eval mode; no clamping to an image range). The
sample's new label is ``f0``'s prediction on ``x'`` (the nearest other class across the
decision boundary); if that is still ``y``, the next most likely class. The model is then
trained with cross-entropy towards these labels on the forget set only. The original model is
frozen, so the labels are computed once, before training; the result is the same as the
reference's per-batch recomputation.

The reference uses eps = 0.1, SGD (momentum 0.9) at lr 1e-5 for 10 epochs on a whole
CIFAR-10 class (~800 steps); a small forget set gives ~100x fewer steps, so for a small model
the default is 5 epochs at lr 1e-3 (momentum 0.9, weight decay 5e-4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.vision.classifier import train_classifier
from unlearnbench.vision.recipes import SGDParams, sgd_config


def neighbour_labels(model: torch.nn.Module, x, y, eps: float, *, device=None, batch_size: int = 256) -> np.ndarray:
    """For each sample, ``model``'s label for its FGSM neighbour at ``eps``, never the true label
    (the runner-up class where the top one is the true label). ``model`` is not changed."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    out = []
    try:
        for start in range(0, len(xt), batch_size):
            xb = xt[start : start + batch_size].to(device).requires_grad_(True)
            yb = yt[start : start + batch_size].to(device)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(xb), yb), xb)
            with torch.no_grad():
                logits = model(xb + eps * grad.sign())
                top2 = logits.topk(2, dim=1).indices
                out.append(torch.where(top2[:, 0] == yb, top2[:, 1], top2[:, 0]).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, dtype=np.int64)


@register_method("bs", summary="boundary shrink: train forget samples towards their FGSM neighbour's class")
class BoundaryShrink(Method):
    name = "bs"
    needs = ("forget",)
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params(SGDParams):
        epochs: int = 5
        lr: float = 1e-3
        eps: float = 0.1  # FGSM step on the normalised input


    def unlearn(self, model, data, params, ctx):
        model.to(ctx.device)
        labels = neighbour_labels(model, data.x_forget, data.y_forget, params.eps, device=ctx.device)
        return train_classifier(model, data.x_forget, labels, sgd_config(params), ctx.seed, device=ctx.device,
                                quiet=ctx.quiet, description="unlearning (bs)")
