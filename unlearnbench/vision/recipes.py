"""What classifier methods share: the SGD recipe of the unlearning papers, and the training set
with the forget samples relabelled at random (random labelling and SalUn)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearnbench.vision.classifier import ClassifierTrainConfig


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


def random_wrong_labels(y, num_classes: int, seed: int) -> np.ndarray:
    """A label for each sample, uniform over the ``num_classes - 1`` classes other than its own."""
    y = np.asarray(y, dtype=np.int64)
    if num_classes < 2:
        raise ValueError("random relabelling needs at least 2 classes")
    shift = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0x7A6E]).integers(1, num_classes, size=len(y))
    return (y + shift) % num_classes


def relabelled_training_set(data, seed: int, labels=None):
    """``(x, y)``: the retain set plus the forget set with random wrong labels, or with
    ``labels`` (one per forget row) when given (rows in no particular order; the training loop
    shuffles them together). Reuses ``x_train`` when the task provides it, so a large training
    set is not copied."""
    if data.x_train is not None and data.forget_indices is not None:
        y = np.array(data.y_train, dtype=np.int64, copy=True)
        rows = np.asarray(data.forget_indices)
        y[rows] = random_wrong_labels(y[rows], data.num_classes, seed) if labels is None else labels
        return data.x_train, y
    wrong = random_wrong_labels(data.y_forget, data.num_classes, seed) if labels is None else np.asarray(labels)
    x = np.concatenate([np.asarray(data.x_forget), np.asarray(data.x_retain)])
    return x, np.concatenate([wrong, np.asarray(data.y_retain, dtype=np.int64)])
