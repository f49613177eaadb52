"""``retrain``: train from scratch on the retain split with the task's own recipe.

The gold standard of exact unlearning. Seeded by the run seed, which differs from the seed the
task trained its oracle with, so retrain-vs-oracle measures seed noise, not identity.
"""

from dataclasses import dataclass

from unlearnbench.errors import UserError
from unlearnbench.method import Method
from unlearnbench.registry import register_method


@register_method("retrain", summary="train from scratch on retain with the task's recipe (gold standard)")
class Retrain(Method):
    name = "retrain"
    needs = ("retain", "recipe")
    kinds = ("language_model",)

    @dataclass(frozen=True)
    class Params:
        pass

    def unlearn(self, model, data, params, ctx):
        if ctx.recipe is None:
            raise UserError(
                f"Task {ctx.task_name!r} has no training recipe, so 'retrain' cannot train a model from scratch. "
                "Use a synthetic task (e.g. tofu-synth/forget10), or evaluate your own retrained model with "
                "--method original --model <folder>."
            )
        return ctx.recipe.train(data.retain, ctx.seed, quiet=ctx.quiet, description="retraining (retrain)",
                                device=ctx.device)
