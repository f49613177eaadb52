"""``rl``: random labelling for a class-conditional DDPM (SalUn's generation variant without
the mask; Fan et al., ICLR 2024): the forgotten class's prediction on noised forget images is
pulled to the model's own prediction for a random kept class, beside DDPM's loss on retain
images (``alpha``); see :mod:`unlearnbench.diffusion.recipes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.diffusion.model import train_steps
from unlearnbench.diffusion.recipes import DiffusionParams, relabel_step_loss
from unlearnbench.method import Method
from unlearnbench.registry import register_method


@register_method("rl", summary="random labelling: forget-class prompts follow other classes' scores")
class DiffusionRandomLabel(Method):
    name = "rl"
    needs = ("forget", "retain")
    kinds = ("diffusion",)

    @dataclass(frozen=True)
    class Params(DiffusionParams):
        alpha: float = 1.0  # weight of the retain denoising loss

    def unlearn(self, model, data, params, ctx):
        model.to(ctx.device)
        return train_steps(model, relabel_step_loss(model, data, params.batch_size, params.alpha), steps=params.steps,
                           lr=params.lr, seed=ctx.seed, description="unlearning (rl)", quiet=ctx.quiet)
