"""``gaussian``: Gaussian amnesiac learning (Tarun et al., ICML 2023, "Deep Regression Unlearning").

The regression analogue of random labelling (amnesiac unlearning): every forget row's target
is replaced by a draw from ``N(mean_y, sd_y)``, the mean and (population) standard deviation
of the TRAINING targets (retain and forget rows together, i.e. the targets the model was
fitted on), and the model is trained for one epoch on all the training rows -- the retain rows
with their own targets, the forget rows with the random ones -- with the task's loss (MSE on
standardised targets) and Adam at the recipe's lr (1e-3). The draws come from the run seed
(``np.random.default_rng(seed)``), once, before training. The run's ``info`` records the
mean and sd (``gaussian``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.tabular.recipes import AdamParams, adam_config


def gaussian_targets(y_train, n: int, seed: int) -> tuple[np.ndarray, float, float]:
    """``n`` float32 draws from ``N(mean, sd)`` of ``y_train`` (population sd), with that mean and sd."""
    y = np.asarray(y_train, dtype=np.float64).reshape(-1)
    if y.size == 0:
        raise ValueError("gaussian_targets needs at least one training target.")
    mean, sd = float(y.mean()), float(y.std())
    draws = np.random.default_rng(seed).normal(mean, sd, size=int(n))
    return draws.astype(np.float32), mean, sd


@register_method("gaussian",
                 summary="Gaussian amnesiac: random N(mean_y, sd_y) forget targets, one epoch on all rows")
class GaussianAmnesiac(Method):
    name = "gaussian"
    needs = ("forget", "retain")
    kinds = ("regression",)

    @dataclass(frozen=True)
    class Params(AdamParams):
        epochs: int = 1
        lr: float = 1e-3


    def unlearn(self, model, data, params, ctx):
        from unlearnbench.tabular.regression import train_regressor

        y_forget = np.asarray(data.y_forget, dtype=np.float32).reshape(-1)
        y_retain = np.asarray(data.y_retain, dtype=np.float32).reshape(-1)
        relabelled, mean, sd = gaussian_targets(np.concatenate([y_retain, y_forget]), len(y_forget), ctx.seed)
        ctx.info["gaussian"] = {"mean": round(mean, 6), "sd": round(sd, 6)}
        x = np.concatenate([np.asarray(data.x_retain, dtype=np.float32), np.asarray(data.x_forget, dtype=np.float32)])
        y = np.concatenate([y_retain, relabelled])
        return train_regressor(model, x, y, adam_config(params), ctx.seed, device=ctx.device, quiet=ctx.quiet,
                               description="unlearning (gaussian)")
