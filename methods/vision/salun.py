"""``salun``: saliency unlearning (Fan et al., ICLR 2024, "SalUn").

1. Saliency mask: the gradient of the forget-set cross-entropy (summed over the forget set,
   model in eval mode) is taken for every parameter; the top ``mask_ratio`` fraction of all
   entries by ``|grad|``, ranked globally over all parameters, is salient.
2. Random labelling (as ``rl``: forget samples relabelled to a random wrong class, shuffled
   with the retain set; cross-entropy), updating ONLY the salient entries.

The other entries stay bit-identical. Gradient hooks multiply every gradient by the mask;
SGD runs with weight_decay=0 and the weight decay is added inside the hook, masked
(``(g + wd * theta) * mask``), so neither decay nor momentum (whose buffer for an unmasked
entry stays exactly 0) moves an unmasked entry; tensors with no salient entry are left out of
the optimiser. The hooks are removed before the model is returned. (A published
implementation let weight decay move the "frozen" weights.) Buffers (BatchNorm running
statistics) are not parameters and do follow the training data.

SalUn's defaults for ResNet-18 / CIFAR-10: mask ratio 0.5, RL for 10 epochs with SGD
(momentum 0.9, weight decay 5e-4) at lr in [0.01, 0.1]; scaled to a small model trained for
~30 epochs: 5 epochs at lr 0.01.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.vision.classifier import train_classifier
from unlearnbench.vision.recipes import SGDParams, relabelled_training_set, sgd_config


def saliency_mask(model: torch.nn.Module, x, y, ratio: float, *, device=None, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """``{name: bool mask}`` for every parameter: the top ``ratio`` fraction of all entries by
    ``|d CE(forget) / d theta|`` (exactly ``round(ratio * n)`` entries). ``model`` is not changed."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {ratio}")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for _, p in named]
    was_training = model.training
    model.eval()
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    try:
        for start in range(0, len(xt), batch_size):
            xb, yb = xt[start : start + batch_size].to(device), yt[start : start + batch_size].to(device)
            loss = F.cross_entropy(model(xb), yb, reduction="sum")
            for acc, g in zip(grads, torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)):
                if g is not None:
                    acc += g
    finally:
        model.train(was_training)
    flat = torch.cat([g.abs().flatten() for g in grads])
    k = int(round(ratio * flat.numel()))
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        chosen[torch.topk(flat, k, sorted=False).indices] = True
    masks, start = {}, 0
    for (name, p), g in zip(named, grads):
        masks[name] = chosen[start : start + g.numel()].view_as(p)
        start += g.numel()
    return masks


@register_method("salun", summary="saliency-masked random labelling")
class SalUn(Method):
    name = "salun"
    needs = ("forget", "retain")
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params(SGDParams):
        epochs: int = 5
        lr: float = 0.01
        mask_ratio: float = 0.5  # fraction of all weights (by |forget gradient|) that may change


    def unlearn(self, model, data, params, ctx):
        model.to(ctx.device)
        masks = saliency_mask(model, data.x_forget, data.y_forget, params.mask_ratio, device=ctx.device)
        wd = params.weight_decay
        trained, handles = [], []
        for name, p in model.named_parameters():
            mask = masks.get(name)
            if mask is None or not bool(mask.any()):
                continue  # nothing salient here: not even handed to the optimiser
            m = mask.to(p.dtype)
            trained.append(p)
            handles.append(p.register_hook(lambda g, p=p, m=m: (g + wd * p.detach()) * m))
        total = sum(int(m.numel()) for m in masks.values())
        ctx.info["salun_masked_fraction"] = (sum(int(m.sum()) for m in masks.values()) / total) if total else 0.0
        if not trained:
            return model.eval()
        x, y = relabelled_training_set(data, ctx.seed)
        try:
            train_classifier(model, x, y, sgd_config(params, weight_decay=0.0), ctx.seed, parameters=trained,
                             device=ctx.device, quiet=ctx.quiet, description="unlearning (salun)")
        finally:
            for h in handles:
                h.remove()
        return model.eval()
