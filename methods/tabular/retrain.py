"""``retrain``: train from scratch on the retain split with the task's own recipe.

The gold standard of exact unlearning: a fresh ``build_regressor(data.model_config)``
initialised from the run seed (which differs from the seed the task trained its oracle with,
so retrain-vs-oracle measures seed noise, not identity), fitted by ``fit_regressor`` with
``data.train_config`` on the retain rows (target scale set from the retain targets). The model
it is given is ignored.
"""

from dataclasses import dataclass

from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.tabular.regression import fit_regressor


@register_method("retrain", summary="train from scratch on retain with the task's recipe (gold standard)")
class RegressionRetrain(Method):
    name = "retrain"
    needs = ("retain", "recipe")
    kinds = ("regression",)

    @dataclass(frozen=True)
    class Params:
        pass

    def unlearn(self, model, data, params, ctx):
        return fit_regressor(data.model_config, data.x_retain, data.y_retain, data.train_config, ctx.seed,
                             device=ctx.device, quiet=ctx.quiet, description="retraining (retrain)")
