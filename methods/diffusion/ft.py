"""``ft``: fine-tune the DDPM on the retain classes only (SalUn's FT baseline for generation).

DDPM's loss on retain images with their labels; the forgotten class is never seen and its
conditional score fades, if at all, through catastrophic forgetting of the class embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.diffusion.model import train_steps
from unlearnbench.diffusion.recipes import DiffusionParams, retain_step_loss
from unlearnbench.method import Method
from unlearnbench.registry import register_method


@register_method("ft", summary="fine-tune on the retain set")
class DiffusionFineTune(Method):
    name = "ft"
    needs = ("retain",)
    kinds = ("diffusion",)

    @dataclass(frozen=True)
    class Params(DiffusionParams):
        pass

    def unlearn(self, model, data, params, ctx):
        model.to(ctx.device)
        return train_steps(model, retain_step_loss(model, data, params.batch_size), steps=params.steps, lr=params.lr,
                           seed=ctx.seed, description="unlearning (ft)", quiet=ctx.quiet)
