"""``ga``: gradient ascent on the forget set (Jang et al., 2023), for regression.

Loss ``-MSE(forget)`` on standardised targets (the task's training loss, negated), Adam at lr
1e-3 (the recipe's), 5 epochs over the forget rows. Squared error grows without bound, so the
ascent stops, reporting ``ga_stopped`` (reason, step, epoch) in ``info`` and the log, when

- the MSE on the whole forget set exceeds ``max_ratio`` (5) times the MSE on the retain set
  of the model BEFORE unlearning (a fixed yardstick: the current retain loss grows with the
  ascent too), checked every ``check_every`` steps (by default about 4 times per epoch) and
  before the first step, or
- a forget batch's MSE exceeds ``max_loss`` (100 on the standardised scale: errors of ten
  target standard deviations), checked at every step.

Both are on the standardised scale, so the thresholds do not depend on the target's units.
The retain rows are read only for that yardstick.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from unlearnbench.arraytasks import AscentGuard
from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.tabular.recipes import AdamParams, adam_config
from unlearnbench.tabular.regression import standardised_mse_loss, train_regressor


@register_method("ga", summary="gradient ascent on the forget set")
class RegressionGradientAscent(Method):
    name = "ga"
    needs = ("forget",)
    kinds = ("regression",)

    @dataclass(frozen=True)
    class Params(AdamParams):
        epochs: int = 5
        lr: float = 1e-3
        max_ratio: float = 5.0  # stop when forget MSE > max_ratio x the retain MSE before unlearning
        max_loss: float = 100.0  # stop when a forget batch's MSE exceeds this (standardised targets)
        check_every: int = 0  # steps between forget-loss checks; 0: about 4 times per epoch

    def unlearn(self, model, data, params, ctx):
        model.to(ctx.device)
        y_forget = np.asarray(data.y_forget, dtype=np.float32)
        xf = torch.as_tensor(np.asarray(data.x_forget, dtype=np.float32), device=ctx.device)
        yf = torch.as_tensor(y_forget, device=ctx.device)
        with torch.no_grad():
            model.eval()
            xr = torch.as_tensor(np.asarray(data.x_retain, dtype=np.float32), device=ctx.device)
            yr = torch.as_tensor(np.asarray(data.y_retain, dtype=np.float32), device=ctx.device)
            retain_loss = float(standardised_mse_loss(model, xr, yr))
        bound = params.max_ratio * retain_loss
        guard = AscentGuard(ctx, len(y_forget), params.batch_size, params.check_every)

        def loss_fn(m, xb, yb):
            if guard.due:
                with torch.no_grad():
                    forget_loss = float(standardised_mse_loss(m, xf, yf))
                if math.isfinite(forget_loss) and forget_loss > bound:
                    guard.stop(f"forget loss {forget_loss:.3g} exceeded max_ratio={params.max_ratio:g} x retain loss "
                               f"{retain_loss:.3g}")
            mse = standardised_mse_loss(m, xb, yb)
            value = float(mse.detach())
            if math.isfinite(value) and value > params.max_loss:
                guard.stop(f"forget batch loss {value:.3g} exceeded max_loss={params.max_loss:g}")
            guard.step += 1
            return -mse

        guard.run(lambda: train_regressor(model, data.x_forget, y_forget, adam_config(params), ctx.seed,
                                          loss_fn=loss_fn, device=ctx.device, quiet=ctx.quiet,
                                          description="unlearning (ga)"))
        return model.eval()
