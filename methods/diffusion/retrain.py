"""``retrain``: train a fresh DDPM on the retain classes with the task's own recipe.

Exact unlearning: ``fit_diffusion(data.model_config, ...)`` initialised from the run seed
(the oracle was trained with another seed, so retrain-vs-oracle measures seed noise) and
trained with ``data.train_config`` on the retain images. The model it is given is ignored.
"""

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
        pass

    def unlearn(self, model, data, params, ctx):
        return fit_diffusion(data.model_config, data.x_retain, data.y_retain, data.train_config, ctx.seed,
                             device=ctx.device, quiet=ctx.quiet, description="retraining (retrain)")
