"""``ft``: fine-tune on the retain set (Warnecke et al., 2023; SalUn baseline), for classifiers.

A few epochs of cross-entropy on the retain set only; the forget set is never seen and fades
through catastrophic forgetting. Hyperparameters follow SalUn's FT (SGD, momentum 0.9, weight
decay 5e-4, 10 epochs, lr in [0.01, 0.1] for ResNet-18 on CIFAR-10), scaled to a small model
trained for ~30 epochs: 5 epochs at a constant lr of 0.01 (a fifth of the default training lr,
so fine-tuning nudges rather than retrains).
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.vision.classifier import train_classifier
from unlearnbench.vision.recipes import SGDParams, sgd_config


@register_method("ft", summary="fine-tune on the retain set")
class ClassifierFineTune(Method):
    name = "ft"
    needs = ("retain",)
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params(SGDParams):
        epochs: int = 5
        lr: float = 0.01

    def unlearn(self, model, data, params, ctx):
        return train_classifier(
            model, data.x_retain, data.y_retain, sgd_config(params), ctx.seed,
            device=ctx.device, quiet=ctx.quiet, description="unlearning (ft)",
        )
