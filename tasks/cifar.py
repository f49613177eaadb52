"""Classifier unlearning on CIFAR-10 and CIFAR-100 (the SalUn / Challenging Forgets setting).

``cifar10/class-<k>`` and ``cifar100/class-<k>``: forget every training image of class ``k``.
``cifar10/random-<p>``, ``cifar100/random-<p>``: a fixed random ``p``% of the training images.
``cifar10/worst-<p>``, ``cifar100/worst-<p>``: the ``p``% hardest to unlearn
(:mod:`unlearnbench.vision.forgetsets`), or a forget-index file (``forget_indices=PATH``).

Data: the hub datasets ``uoft-cs/cifar10`` and ``uoft-cs/cifar100``, or ``--data-dir``
with the same layout: ``train-00000-of-00001.parquet`` and ``test-00000-of-00001.parquet``
(any number of shards) in ``plain_text/`` (CIFAR-10 on the hub), ``cifar100/`` (CIFAR-100
on the hub) or directly in the folder; column ``img`` (``{"bytes": PNG}``) and ``label``
(CIFAR-10) or ``fine_label`` (CIFAR-100). Images are decoded once (PIL) and cached;
they are normalised per channel with the usual CIFAR means and standard deviations.

Model: a CIFAR-style ResNet-18 (:func:`unlearnbench.vision.classifier.resnet18_cifar`) trained by
the task's recipe (target: every training row, seed 0; oracle: the retain rows, seed 1000;
on the run's ``--device``: ``auto``, the default, is a GPU where one is visible), or
``--model`` / ``--oracle`` (``save_classifier`` folders). Options: ``forget_indices=PATH``,
``train=`` (a ``ClassifierTrainConfig`` or its dict), ``width=`` (ResNet width, 64 by
default), ``device=`` (what ``--device`` sets).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from unlearnbench.vision.classifier import ClassifierArrays, ClassifierTrainConfig, classifier_train_config, make_classifier_task
from unlearnbench.registry import register_task
from unlearnbench.task import ClassifierTask, hub_snapshot
from unlearnbench.vision.cifardata import DATASETS, decoded, layout_folder

FAMILY_VERSION = "1"
DATA_VERSION = "1"  # PNG -> RGB uint8 (unlearnbench.vision.cifardata), normalised per channel with DATASETS' constants
DEFAULT_WIDTH = 64
# The usual recipe for a CIFAR ResNet-18 (SGD 0.1, momentum 0.9, weight decay 5e-4, cosine,
# random crop + flip), shortened from 182/200 epochs to 40.
DEFAULT_TRAIN = ClassifierTrainConfig(epochs=40, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4,
                                      optimizer="sgd", schedule="cosine", augment="crop_flip")
CLASSES = tuple(range(10))
PERCENTS = (1, 5, 10)


def _normalise(images: np.ndarray, mean, std) -> np.ndarray:
    x = images.astype(np.float32)
    x /= 255.0
    x -= np.asarray(mean, dtype=np.float32)
    x /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def cifar_arrays(folder, family: str) -> ClassifierArrays:
    """Normalised ``[N, 3, H, W]`` train and test arrays from a folder in hub layout."""
    from unlearnbench.cache import fingerprint

    _, _, _, num_classes, mean, std = DATASETS[family]
    splits, content = decoded(layout_folder(Path(folder), family), family)
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    return ClassifierArrays(x_train=_normalise(x_train, mean, std), y_train=y_train, x_test=_normalise(x_test, mean, std),
                            y_test=y_test, num_classes=num_classes,
                            fingerprint=fingerprint({family: DATA_VERSION, "content": content}))


def make_cifar_task(family: str, variant: str, *, data_dir: str | None = None, model: str | None = None,
                    oracle: str | None = None, quiet: bool = False, forget_indices: str | None = None,
                    train: ClassifierTrainConfig | dict | None = None, width: int | None = None,
                    device: str | None = None, **_) -> ClassifierTask:
    repo, sub, *_ = DATASETS[family]
    if data_dir is None:
        folder = hub_snapshot(repo, [f"{sub}/*.parquet"], offline_variant="digits/...")
    else:
        folder = Path(data_dir)
    data = cifar_arrays(folder, family)
    train_config = classifier_train_config(train, DEFAULT_TRAIN)
    model_config = {"arch": "resnet18", "num_classes": data.num_classes, "in_channels": 3,
                    "image_size": int(data.x_train.shape[-1]), "width": int(width or DEFAULT_WIDTH)}
    options = []
    if train is not None:
        options.append(("train", asdict(train_config)))
    if width is not None:
        options.append(("width", int(width)))
    return make_classifier_task(
        name=f"{family}/{variant}", family=family, version=FAMILY_VERSION, variant=variant, data=data,
        model_config=model_config, train_config=train_config, recipe_name=f"{family}-resnet18", options=options,
        forget_indices=forget_indices, model=model, oracle=oracle, device=device or "auto", quiet=quiet,
    )


for _family, (_repo, *_rest) in DATASETS.items():
    _variants = [f"class-{k}" for k in CLASSES] + [f"{s}-{p}" for s in ("random", "worst") for p in PERCENTS]
    for _variant in _variants:
        _strategy, _, _value = _variant.partition("-")
        _what = {"class": f"every training image of class {_value}", "random": f"a fixed random {_value}%",
                 "worst": f"the worst-case {_value}% (hardest to unlearn)"}[_strategy]
        register_task(f"{_family}/{_variant}", suite="classifier", summary=f"{_family.upper()} ({_repo} or --data-dir), forget {_what}",
                      kind="classifier", modes="-")(
            lambda _f=_family, _v=_variant, **kw: make_cifar_task(_f, _v, **kw)
        )
