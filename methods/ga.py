"""``ga``: gradient ascent on the forget set (Jang et al., 2023; TOFU baseline).

Loss ``-CE(forget)``. Unbounded: it drives the model to gibberish if run long enough, which
is why the retain-regularised variants exist.

Classifiers: SalUn's GA baseline uses SGD (momentum 0.9, weight decay 5e-4) for 5 epochs at
lr in [1e-5, 1e-3] on ResNet-18 / CIFAR-10. A small GroupNorm CNN on a small forget set (3
batches per epoch on digits) takes far fewer steps and barely moves at those rates, so the
default is 5 epochs at lr 0.02 (under half the training lr). On digits/class-3 that lowers
forget accuracy to ~0.8; at 0.025 it reaches 0 (and costs ~5 points of retain accuracy); at
0.1 only the early stop below keeps the model from collapsing: GA is very lr-sensitive and
must not run away silently. So it stops early, and says so in the run's ``info`` (``ga_stopped``: reason, step, epoch) and log, when

- the accuracy on the whole forget set reaches 0 (checked every ``check_every`` steps,
  by default about 4 times per epoch, and before the first step), or
- the loss explodes: the cross-entropy of a forget batch exceeds ``max_loss`` nats (for 10
  classes chance is 2.3; 20 means the true class gets ~1e-9 probability).

A non-finite loss still fails the run (:class:`~unlearnbench.errors.TrainingDivergedError`).

Regression: loss ``-MSE(forget)`` on standardised targets (the task's training loss, negated),
Adam at lr 1e-3 (the recipe's), 5 epochs over the forget rows. Squared error grows without
bound, so the ascent is bounded the same way: it stops, reporting ``ga_stopped`` (reason, step,
epoch) in ``info`` and the log, when

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
from torch.nn import functional as F

from unlearnbench.classifier import predict_proba, train_classifier
from unlearnbench.lm import answer_nll
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.methods.ft import AdamParams, SGDParams, adam_config, sgd_config
from unlearnbench.registry import register_method


class _StopEarly(Exception):
    """Raised from inside the loss to leave the shared training loop."""


class _Guard:
    """Counts the shared loop's steps, says when a whole-forget-set check is due (every
    ``check_every`` steps, by default about 4 times per epoch, and before the first step),
    and stops the loop with the reason recorded in ``ctx.info["ga_stopped"]`` and the log."""

    def __init__(self, ctx, n_rows: int, batch_size: int, check_every: int):
        self.ctx, self.step = ctx, 0
        self.per_epoch = math.ceil(n_rows / batch_size)
        self.every = check_every if check_every > 0 else math.ceil(self.per_epoch / 4)

    @property
    def due(self) -> bool:
        return self.step % self.every == 0

    def stop(self, reason: str):
        epoch = self.step / self.per_epoch
        self.ctx.info["ga_stopped"] = {"reason": reason, "step": self.step, "epoch": round(epoch, 3)}
        self.ctx.log(f"ga: stopped early at step {self.step} (epoch {epoch:.2f}): {reason}")
        raise _StopEarly

    def run(self, train) -> None:
        """``train()`` until it ends or a check stops it."""
        try:
            train()
        except _StopEarly:
            pass


@register_method("ga", summary="gradient ascent on the forget set")
class GradientAscent(LossMethod):
    name = "ga"
    needs = ("forget",)
    kinds = ("language_model", "classifier", "regression")

    @dataclass(frozen=True)
    class Params(LLMParams):
        pass

    @dataclass(frozen=True)
    class ClassifierParams(SGDParams):
        epochs: int = 5
        lr: float = 0.02
        max_loss: float = 20.0  # stop when a forget batch's CE exceeds this (nats)
        check_every: int = 0  # steps between forget-accuracy checks; 0: about 4 times per epoch

    @dataclass(frozen=True)
    class RegressionParams(AdamParams):
        epochs: int = 5
        lr: float = 1e-3
        max_ratio: float = 5.0  # stop when forget MSE > max_ratio x the retain MSE before unlearning
        max_loss: float = 100.0  # stop when a forget batch's MSE exceeds this (standardised targets)
        check_every: int = 0  # steps between forget-loss checks; 0: about 4 times per epoch

    def loss(self, model, forget, retain, reference, params):
        return -answer_nll(model, forget)

    def unlearn_classifier(self, model, data, params, ctx):
        x, y = data.x_forget, np.asarray(data.y_forget)
        guard = _Guard(ctx, len(y), params.batch_size, params.check_every)

        def loss_fn(m, xb, yb):
            if guard.due:
                accuracy = float((predict_proba(m, x, device=ctx.device).argmax(1) == y).mean())
                if accuracy == 0.0:
                    guard.stop("forget accuracy reached 0")
            ce = F.cross_entropy(m(xb), yb)
            value = float(ce.detach())
            if math.isfinite(value) and value > params.max_loss:
                guard.stop(f"forget loss {value:.3g} exceeded max_loss={params.max_loss:g}")
            guard.step += 1
            return -ce

        guard.run(lambda: train_classifier(model, x, y, sgd_config(params), ctx.seed, loss_fn=loss_fn,
                                           device=ctx.device, quiet=ctx.quiet, description="unlearning (ga)"))
        return model.eval()

    def unlearn_regressor(self, model, data, params, ctx):
        from unlearnbench.regression import standardised_mse_loss, train_regressor

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
        guard = _Guard(ctx, len(y_forget), params.batch_size, params.check_every)

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
