"""``ft``: fine-tune on the retain set (Warnecke et al., 2023; SalUn baseline), for regression.

A few epochs of the task's loss (MSE on standardised targets) on the retain rows only, Adam at
the recipe's learning rate (1e-3) with weight decay 1e-4: 10 epochs by default, a tenth of the
diabetes recipe's 100.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.tabular.recipes import AdamParams, adam_config
from unlearnbench.tabular.regression import train_regressor


@register_method("ft", summary="fine-tune on the retain set")
class RegressionFineTune(Method):
    name = "ft"
    needs = ("retain",)
    kinds = ("regression",)

    @dataclass(frozen=True)
    class Params(AdamParams):
        epochs: int = 10
        lr: float = 1e-3

    def unlearn(self, model, data, params, ctx):
        return train_regressor(
            model, data.x_retain, data.y_retain, adam_config(params), ctx.seed,
            device=ctx.device, quiet=ctx.quiet, description="unlearning (ft)",
        )
