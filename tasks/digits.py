"""Classifier unlearning on scikit-learn's bundled digits (offline, seconds on a CPU).

``digits/class-<k>``: forget every training image of digit ``k`` (class-wise forgetting).
``digits/random-<p>``: forget a fixed random ``p``% of the training images (seed 0).
``digits/worst-<p>``: forget the ``p``% that are hardest to unlearn (Fan et al., 2024,
"Challenging Forgets"), selected by :mod:`unlearnbench.vision.forgetsets`.

The data: the 1,797 8x8 images of ``sklearn.datasets.load_digits``, scaled to [0, 1] and
normalised by the training mean and standard deviation, ``[N, 1, 8, 8]``, split 80/20
(stratified, seed 0). The target (:class:`~unlearnbench.vision.classifier.SmallCNN`, every
training row, seed 0) and the oracle (the retain rows, seed 1000) are trained here with
the task's recipe (about 3 s of CPU each) and cached. Options: ``forget_indices=PATH``
(a forget-index file that replaces the built-in forget set), ``train=`` (a
``ClassifierTrainConfig`` or its dict), ``width=`` (the SmallCNN width), ``device=`` (where
the recipe trains: the run's ``--device``; ``auto``, the default, is a GPU where one is visible,
else the CPU; a model trained on another device type than the CPU is cached apart).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from functools import lru_cache

import numpy as np

from unlearnbench.vision.classifier import ClassifierArrays, ClassifierTrainConfig, classifier_train_config, make_classifier_task
from unlearnbench.errors import DataError
from unlearnbench.registry import register_task
from unlearnbench.task import ClassifierTask

FAMILY = "digits"
FAMILY_VERSION = "1"
DATA_VERSION = "1"  # load_digits / 16, stratified 80/20 split (seed 0), train mean/std normalisation
SPLIT_SEED = 0
TEST_FRACTION = 0.2
DEFAULT_WIDTH = 32
# 30 epochs of SGD on 1,437 rows: 98% test accuracy (100% train) in about 3 s of one CPU core.
DEFAULT_TRAIN = ClassifierTrainConfig(epochs=30, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4,
                                      optimizer="sgd", schedule="cosine")
CLASSES = tuple(range(10))
PERCENTS = (1, 5, 10, 20, 50)


@lru_cache(maxsize=1)
def _digits_arrays() -> ClassifierArrays:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from unlearnbench.cache import fingerprint

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(labels)), test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                                   stratify=labels)
    train, test = np.sort(train), np.sort(test)
    mean, std = images[train].mean(), images[train].std()
    x = ((images - mean) / std).astype(np.float32)
    content = hashlib.sha256(x.tobytes() + labels.tobytes() + train.tobytes()).hexdigest()[:16]
    return ClassifierArrays(x_train=x[train], y_train=labels[train], x_test=x[test], y_test=labels[test],
                            num_classes=10, fingerprint=fingerprint({"digits": DATA_VERSION, "content": content}))


def digits_arrays() -> ClassifierArrays:
    """The digits train/test arrays: a fresh copy each call (a task's arrays are its own)."""
    base = _digits_arrays()
    return replace(base, x_train=base.x_train.copy(), y_train=base.y_train.copy(), x_test=base.x_test.copy(),
                   y_test=base.y_test.copy())


def make_digits_task(variant: str, *, data_dir: str | None = None, model: str | None = None,
                     oracle: str | None = None, quiet: bool = False, forget_indices: str | None = None,
                     train: ClassifierTrainConfig | dict | None = None, width: int | None = None,
                     device: str | None = None, **_) -> ClassifierTask:
    if data_dir is not None:
        raise DataError("digits uses scikit-learn's bundled data; --data-dir is for tasks read from the hub "
                        "(cifar10/..., cifar100/...).")
    train_config = classifier_train_config(train, DEFAULT_TRAIN)
    model_config = {"arch": "small_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8,
                    "width": int(width or DEFAULT_WIDTH)}
    options = []
    if train is not None:
        options.append(("train", asdict(train_config)))
    if width is not None:
        options.append(("width", int(width)))
    return make_classifier_task(
        name=f"{FAMILY}/{variant}", family=FAMILY, version=FAMILY_VERSION, variant=variant, data=digits_arrays(),
        model_config=model_config, train_config=train_config, recipe_name="digits-small-cnn", options=options,
        forget_indices=forget_indices, model=model, oracle=oracle, device=device or "auto", quiet=quiet,
    )


for _k in CLASSES:
    register_task(f"digits/class-{_k}", suite="classifier", summary=f"sklearn digits, forget every training image of class {_k}",
                  kind="classifier", modes="-")(lambda _v=f"class-{_k}", **kw: make_digits_task(_v, **kw))
for _p in PERCENTS:
    register_task(f"digits/random-{_p}", suite="classifier", summary=f"sklearn digits, forget a fixed random {_p}% of training images",
                  kind="classifier", modes="-")(lambda _v=f"random-{_p}", **kw: make_digits_task(_v, **kw))
for _p in PERCENTS:
    register_task(f"digits/worst-{_p}", suite="classifier", summary=f"sklearn digits, forget the worst-case {_p}% (hardest to unlearn)",
                  kind="classifier", modes="-")(lambda _v=f"worst-{_p}", **kw: make_digits_task(_v, **kw))
