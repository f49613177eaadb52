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

import numpy as np

from unlearnbench.classifier import train_classifier
from unlearnbench.method import Method
from unlearnbench.methods.ft import SGDParams, sgd_config
from unlearnbench.registry import register_method


def random_wrong_labels(y, num_classes: int, seed: int) -> np.ndarray:
    """A label for each sample, uniform over the ``num_classes - 1`` classes other than its own."""
    y = np.asarray(y, dtype=np.int64)
    if num_classes < 2:
        raise ValueError("random relabelling needs at least 2 classes")
    shift = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x7A6E]).integers(1, num_classes, size=len(y))
    return (y + shift) % num_classes


def relabelled_training_set(data, seed: int):
    """``(x, y)``: the retain set plus the forget set with random wrong labels (rows in no
    particular order; the training loop shuffles them together). Reuses ``x_train`` when the
    task provides it, so a large training set is not copied."""
    if data.x_train is not None and data.forget_indices is not None:
        y = np.array(data.y_train, dtype=np.int64, copy=True)
        rows = np.asarray(data.forget_indices)
        y[rows] = random_wrong_labels(y[rows], data.num_classes, seed)
        return data.x_train, y
    wrong = random_wrong_labels(data.y_forget, data.num_classes, seed)
    x = np.concatenate([np.asarray(data.x_forget), np.asarray(data.x_retain)])
    return x, np.concatenate([wrong, np.asarray(data.y_retain, dtype=np.int64)])


@register_method("rl", summary="random wrong labels on the forget set, trained with the retain set (classifiers)")
class RandomLabel(Method):
    name = "rl"
    needs = ("forget", "retain")
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class ClassifierParams(SGDParams):
        epochs: int = 5
        lr: float = 0.01

    Params = ClassifierParams

    def unlearn_classifier(self, model, data, params, ctx):
        x, y = relabelled_training_set(data, ctx.seed)
        return train_classifier(model, x, y, sgd_config(params), ctx.seed, device=ctx.device, quiet=ctx.quiet,
                                description="unlearning (rl)")
