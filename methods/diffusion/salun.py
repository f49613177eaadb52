"""``salun``: saliency unlearning for a class-conditional DDPM (Fan et al., ICLR 2024, SalUn).

1. Weight saliency: the gradient of DDPM's loss on the forget images (their class), summed
   over them; the top ``mask_ratio`` of all parameter entries by ``|grad|`` (ranked
   globally) are salient.
2. Random labelling (as ``rl``) updating the salient entries only: gradients are masked and,
   after every step, the other entries are restored to their exact values, so they stay
   bit-identical (Adam's state and weight decay cannot move them).

SalUn's generation setting (DDPM on CIFAR-10): mask ratio 0.5, RL with ``alpha`` = 1e-3 ...
1 on the retain loss for 1,000 steps at lr 1e-4; scaled here to the small digits model.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.diffusion.model import train_steps
from unlearnbench.diffusion.recipes import DiffusionParams, relabel_step_loss, saliency_masks
from unlearnbench.method import Method
from unlearnbench.registry import register_method


@register_method("salun", summary="saliency-masked random labelling")
class DiffusionSalUn(Method):
    name = "salun"
    needs = ("forget", "retain")
    kinds = ("diffusion",)

    @dataclass(frozen=True)
    class Params(DiffusionParams):
        alpha: float = 1.0  # weight of the retain denoising loss
        mask_ratio: float = 0.5  # fraction of all weights (by |forget gradient|) that may change

    def unlearn(self, model, data, params, ctx):
        model.to(ctx.device)
        masks = saliency_masks(model, data, params.mask_ratio, seed=ctx.seed)
        total = sum(int(m.numel()) for m in masks.values())
        ctx.info["salun_masked_fraction"] = sum(int(m.sum()) for m in masks.values()) / total if total else 0.0
        return train_steps(model, relabel_step_loss(model, data, params.batch_size, params.alpha), steps=params.steps,
                           lr=params.lr, seed=ctx.seed, grad_masks=masks, description="unlearning (salun)",
                           quiet=ctx.quiet)
