"""``ft``: fine-tune on the retain set (Warnecke et al., 2023; SalUn baseline).

A few epochs of cross-entropy on the retain set only; the forget set is never seen and fades
through catastrophic forgetting. Hyperparameters follow SalUn's FT (SGD, momentum 0.9, weight
decay 5e-4, 10 epochs, lr in [0.01, 0.1] for ResNet-18 on CIFAR-10), scaled to a small model
trained for ~30 epochs: 5 epochs at a constant lr of 0.01 (a fifth of the default training lr,
so fine-tuning nudges rather than retrains).

Regression: a few epochs of the task's loss (MSE on standardised targets) on the retain rows,
Adam at the recipe's learning rate (1e-3) with weight decay 1e-4: 10 epochs by default, a tenth
of the diabetes recipe's 100.

This module also holds the small pieces every classifier method shares (:class:`SGDParams`,
:func:`sgd_config`) and their regression counterparts (:class:`AdamParams`, :func:`adam_config`).
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.classifier import ClassifierTrainConfig, train_classifier
from unlearnbench.method import Method
from unlearnbench.registry import register_method


@dataclass(frozen=True)
class SGDParams:
    """Optimiser settings shared by the classifier methods (SGD, constant lr, as in the papers)."""

    epochs: int = 5
    lr: float = 0.01
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 5e-4


def sgd_config(params: SGDParams, **overrides) -> ClassifierTrainConfig:
    """The shared training loop's config for a method's hyperparameters."""
    values = dict(
        epochs=params.epochs, batch_size=params.batch_size, lr=params.lr, momentum=params.momentum,
        weight_decay=params.weight_decay, optimizer="sgd", schedule="constant",
    )
    values.update(overrides)
    return ClassifierTrainConfig(**values)


@dataclass(frozen=True)
class AdamParams:
    """Optimiser settings shared by the regression methods (Adam, constant lr, as the task recipes)."""

    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 32
    weight_decay: float = 1e-4


def adam_config(params: AdamParams, **overrides):
    """The shared regression training loop's config (a ``RegressionTrainConfig``) for a method's
    hyperparameters."""
    from unlearnbench.regression import RegressionTrainConfig

    values = dict(epochs=params.epochs, batch_size=params.batch_size, lr=params.lr,
                  weight_decay=params.weight_decay, optimizer="adam")
    values.update(overrides)
    return RegressionTrainConfig(**values)


@register_method("ft", summary="fine-tune on the retain set (classifiers, regression)")
class FineTune(Method):
    name = "ft"
    needs = ("retain",)
    kinds = ("classifier", "regression")

    @dataclass(frozen=True)
    class ClassifierParams(SGDParams):
        epochs: int = 5
        lr: float = 0.01

    Params = ClassifierParams

    @dataclass(frozen=True)
    class RegressionParams(AdamParams):
        epochs: int = 10
        lr: float = 1e-3

    def unlearn_classifier(self, model, data, params, ctx):
        return train_classifier(
            model, data.x_retain, data.y_retain, sgd_config(params), ctx.seed,
            device=ctx.device, quiet=ctx.quiet, description="unlearning (ft)",
        )

    def unlearn_regressor(self, model, data, params, ctx):
        from unlearnbench.regression import train_regressor

        return train_regressor(
            model, data.x_retain, data.y_retain, adam_config(params), ctx.seed,
            device=ctx.device, quiet=ctx.quiet, description="unlearning (ft)",
        )
