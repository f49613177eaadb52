"""The relearning run behind the anamnesis index (AIN) of regression unlearning.

:func:`relearn_steps` fine-tunes a COPY of a model on the forget rows, one mini-batch step
at a time, until its forget loss is back within 5% of the original model's forget loss, and
returns the number of steps. The AIN itself is the pure ratio
:func:`unlearnbench.metrics.regression.anamnesis_index` of two such counts (unlearned
model over retrained model).

The models passed in are never modified: the reference code (Tarun et al., 2023,
``metrics.py``, ``relearn_time``) fine-tunes them in place, so whatever is measured after
the AIN there is measured on relearned models.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from unlearnbench.metrics.regression import AIN_TOLERANCE

__all__ = ["forget_loss", "relearn_steps"]


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def forget_loss(model: nn.Module, x, y, *, device=None) -> float:
    """The loss :func:`relearn_steps` compares: the mean squared error of ``model``'s
    predictions in ORIGINAL target units, ``(1/N) sum_i (f(x_i) - y_i)^2`` (as
    :func:`unlearnbench.metrics.regression.mse` of :func:`unlearnbench.tabular.regression.predict`).
    Pass the original model's value as ``original_forget_loss``."""
    from unlearnbench.metrics.regression import mse
    from unlearnbench.tabular.regression import predict

    return mse(predict(model, x, device=device), np.asarray(y, dtype=np.float64))


def relearn_steps(
    model: nn.Module,
    x_forget,
    y_forget,
    original_forget_loss: float,
    *,
    lr: float = 1e-3,
    batch_size: int = 16,
    max_steps: int = 500,
    seed: int = 0,
    tolerance: float = AIN_TOLERANCE,
    device=None,
) -> int:
    """Steps of relearning on the forget rows until the forget loss is within ``tolerance``
    (5%) of ``original_forget_loss``; ``max_steps + 1`` if it never gets there.

    Procedure, on a deep copy of ``model`` (``model`` itself, its weights, buffers, mode
    and device, are left exactly as they were):

    1. ``L = forget_loss(copy, x_forget, y_forget)`` (MSE in original units, see
       :func:`forget_loss`); if ``L <= (1 + tolerance) * original_forget_loss``, return 0.
    2. Otherwise take optimiser steps one at a time -- Adam at a constant ``lr`` (no
       weight decay, no clipping, as the reference), the task's training loss (MSE on
       standardised targets, :func:`unlearnbench.tabular.regression.standardised_mse_loss`) on
       shuffled mini-batches of ``batch_size`` forget rows (order from ``seed`` and the
       epoch, :func:`unlearnbench.tabular.regression.iterate_batches`; epochs repeat as needed) --
       and after step ``k`` re-measure ``L`` on the WHOLE forget set; return ``k`` as soon
       as it is within the band.
    3. After ``max_steps`` steps without getting there, return ``max_steps + 1`` (the
       budget plus one: "more than the budget"; see
       :func:`unlearnbench.metrics.regression.anamnesis_index`).

    A non-finite loss during relearning (a model that gradient ascent left far out) never
    satisfies the band, so such a run ends at the budget: ``max_steps + 1``.

    Reference: Tarun et al. (2023), "Deep Regression Unlearning", Sec. 5 (anamnesis index,
    alpha = 5%); code ``metrics.py``, ``relearn_time`` (Adam, checks the forget loss after
    every step). Differences from the reference: it relearns in place, at most 10 epochs,
    with its L1 training loss, and checks only after a step (so its count is never 0); here
    a copy, a step budget, the task's own training loss, and a check before the first step.
    """
    from unlearnbench.tabular.regression import iterate_batches, standardised_mse_loss

    target = float(original_forget_loss)
    if not math.isfinite(target) or target < 0:
        raise ValueError(f"original_forget_loss must be a finite loss >= 0, got {original_forget_loss!r}.")
    if isinstance(max_steps, bool) or int(max_steps) != max_steps or max_steps < 0:
        raise ValueError(f"max_steps must be a whole number >= 0, got {max_steps!r}.")
    if int(batch_size) < 1 or not (lr > 0):
        raise ValueError(f"relearn_steps needs batch_size >= 1 and lr > 0, got batch_size={batch_size!r}, lr={lr!r}.")
    if not (tolerance >= 0):
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}.")
    max_steps = int(max_steps)
    bound = (1.0 + tolerance) * target
    device = torch.device(device) if device is not None else _model_device(model)

    work = copy.deepcopy(model).to(device)
    x = torch.as_tensor(np.asarray(x_forget, dtype=np.float32), device=device)
    y = torch.as_tensor(np.asarray(y_forget, dtype=np.float32).reshape(-1), device=device)
    y64 = y.double()

    @torch.no_grad()
    def within() -> bool:
        work.eval()
        value = float(((work(x).reshape(-1).double() - y64) ** 2).mean())
        return value <= bound  # False for NaN

    if within():
        return 0
    optimizer = torch.optim.Adam([p for p in work.parameters() if p.requires_grad], lr=lr)
    step, epoch = 0, 0
    while step < max_steps:
        for xb, yb in iterate_batches(x, y, int(batch_size), seed, epoch):
            work.train()
            loss = standardised_mse_loss(work, xb, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if within():
                return step
            if step >= max_steps:
                break
        epoch += 1
    return max_steps + 1
