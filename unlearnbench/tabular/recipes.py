"""What regression methods share: the Adam recipe of the task's own training."""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.tabular.regression import RegressionTrainConfig


@dataclass(frozen=True)
class AdamParams:
    """Optimiser settings shared by the regression methods (Adam, constant lr, as the task recipes)."""

    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 32
    weight_decay: float = 1e-4


def adam_config(params: AdamParams, **overrides) -> RegressionTrainConfig:
    """The shared regression training loop's config for a method's hyperparameters."""
    values = dict(epochs=params.epochs, batch_size=params.batch_size, lr=params.lr,
                  weight_decay=params.weight_decay, optimizer="adam")
    values.update(overrides)
    return RegressionTrainConfig(**values)
