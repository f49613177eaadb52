"""``retrain``: a DDPM trained from scratch on the retain classes with the task's own recipe.

Exact unlearning. By default it is the task's oracle, which the world already trained with
that recipe on the retain images (seed 1000) and cached, so a run takes seconds rather than
the minutes of the training (its cost is the oracle's training time in the world build);
retrain-vs-oracle is then identity. ``fresh=true`` trains a new one instead,
``fit_diffusion(data.model_config, ...)`` initialised from the run seed (retrain-vs-oracle
then measures seed noise). The model it is given is ignored.
"""

import copy
from dataclasses import dataclass

from unlearnbench.diffusion.model import fit_diffusion
from unlearnbench.method import Method
from unlearnbench.registry import register_method


@register_method("retrain", summary="train from scratch on retain with the task's recipe (gold standard)")
class DiffusionRetrain(Method):
    name = "retrain"
    needs = ("retain", "recipe")
    kinds = ("diffusion",)

    @dataclass(frozen=True)
    class Params:
        fresh: bool = False  # train a new model from the run seed rather than read the task's oracle

    def unlearn(self, model, data, params, ctx):
        if not params.fresh and data.load_oracle is not None:
            ctx.info["retrain_source"] = "the task's oracle (the recipe on the retain images, cached)"
            return copy.deepcopy(data.load_oracle().model).to(ctx.device)
        ctx.info["retrain_source"] = f"trained from scratch (seed {ctx.seed})"
        return fit_diffusion(data.model_config, data.x_retain, data.y_retain, data.train_config, ctx.seed,
                             device=ctx.device, quiet=ctx.quiet, description="retraining (retrain)")
