"""``rl``: random labels (Golatkar et al., 2020; Hayase et al.; SalUn's RL baseline).

Every forget sample gets a label drawn uniformly at random from the classes it does NOT
belong to (drawn once, seeded by the run seed), and the model is trained with cross-entropy
on those relabelled forget samples shuffled together with the (correctly labelled) retain
set. Hyperparameters follow SalUn's RL (SGD, momentum 0.9, weight decay 5e-4, 10 epochs, lr in
[0.01, 0.1] for ResNet-18 on CIFAR-10), scaled to a small model trained for ~30 epochs:
5 epochs at a constant lr of 0.01.
"""

from __future__ import annotations

from dataclasses import dataclass

from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.vision.classifier import train_classifier
from unlearnbench.vision.recipes import SGDParams, relabelled_training_set, sgd_config


@register_method("rl", summary="random wrong labels on the forget set, trained with the retain set")
class RandomLabel(Method):
    name = "rl"
    needs = ("forget", "retain")
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params(SGDParams):
        epochs: int = 5
        lr: float = 0.01

    def unlearn(self, model, data, params, ctx):
        x, y = relabelled_training_set(data, ctx.seed)
        return train_classifier(model, x, y, sgd_config(params), ctx.seed, device=ctx.device, quiet=ctx.quiet,
                                description="unlearning (rl)")
