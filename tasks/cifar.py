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

import hashlib
import io
from dataclasses import asdict
from pathlib import Path

import numpy as np

from unlearnbench.vision.classifier import ClassifierArrays, ClassifierTrainConfig, classifier_train_config, make_classifier_task
from unlearnbench.data import split_files
from unlearnbench.errors import DataError
from unlearnbench.registry import register_task
from unlearnbench.task import ClassifierTask, hub_snapshot

FAMILY_VERSION = "1"
DATA_VERSION = "1"  # PNG -> RGB uint8, normalised per channel with the constants below
DEFAULT_WIDTH = 64
# The usual recipe for a CIFAR ResNet-18 (SGD 0.1, momentum 0.9, weight decay 5e-4, cosine,
# random crop + flip), shortened from 182/200 epochs to 40.
DEFAULT_TRAIN = ClassifierTrainConfig(epochs=40, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4,
                                      optimizer="sgd", schedule="cosine", augment="crop_flip")
SPLITS = ("train", "test")
IMAGE_COLUMN = "img"
DATASETS = {
    # family -> hub repo, hub subfolder, label column, classes, per-channel mean and std
    "cifar10": ("uoft-cs/cifar10", "plain_text", "label", 10,
                (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ("uoft-cs/cifar100", "cifar100", "fine_label", 100,
                 (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
CLASSES = tuple(range(10))
PERCENTS = (1, 5, 10)


def _parquet_shards(folder: Path, split: str) -> list[Path]:
    return [p for p in split_files(folder, split) if p.suffix == ".parquet"]


def _layout_folder(folder: Path, family: str) -> Path:
    """The folder that holds the split shards: the hub's subfolder or the folder itself."""
    _, sub, label, *_ = DATASETS[family]
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"Data folder {str(folder)!r} does not exist.")
    candidates = [folder / sub, folder / "plain_text", folder / family, folder / "data", folder]
    for candidate in candidates:
        if candidate.is_dir() and any(_parquet_shards(candidate, s) for s in SPLITS):
            missing = [s for s in SPLITS if not _parquet_shards(candidate, s)]
            if missing:
                raise DataError(
                    f"Data folder {str(candidate)!r} is missing split(s) {', '.join(missing)}: expected "
                    f"{missing[0]}-00000-of-00001.parquet (or {missing[0]}.parquet). {_layout_hint(family)}"
                )
            return candidate
    raise DataError(f"Data folder {str(folder)!r} has no train or test parquet shards. {_layout_hint(family)}")


def _layout_hint(family: str) -> str:
    _, sub, label, *_ = DATASETS[family]
    return (f"The {family} layout (as on the hub) is {sub}/train-00000-of-00001.parquet and "
            f"{sub}/test-00000-of-00001.parquet (or the same files directly in the folder), with columns "
            f"{IMAGE_COLUMN} ({{'bytes': PNG}}) and {label}.")


def _content_hash(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def _decode_split(files: list[Path], split: str, family: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``[N, H, W, 3]`` images and int64 labels of one split."""
    import pyarrow.parquet as pq
    from PIL import Image

    _, _, label_column, num_classes, *_ = DATASETS[family]
    images, labels = [], []
    for path in files:
        names = pq.read_schema(path).names
        absent = [c for c in (IMAGE_COLUMN, label_column) if c not in names]
        if absent:
            raise DataError(f"{path}: split {split!r} lacks column(s) {', '.join(absent)} (has: {', '.join(names)}). "
                            f"{_layout_hint(family)}")
        table = pq.read_table(path, columns=[IMAGE_COLUMN, label_column]).to_pydict()
        for row, (cell, label) in enumerate(zip(table[IMAGE_COLUMN], table[label_column])):
            blob = cell.get("bytes") if isinstance(cell, dict) else cell
            if not isinstance(blob, (bytes, bytearray)):
                raise DataError(f"{path}: row {row} of split {split!r} has no image bytes in column {IMAGE_COLUMN!r}.")
            try:
                image = np.asarray(Image.open(io.BytesIO(blob)).convert("RGB"), dtype=np.uint8)
            except Exception as exc:  # PIL raises several kinds for a broken image
                raise DataError(f"{path}: row {row} of split {split!r} is not a readable image ({exc}).") from None
            if images and image.shape != images[0].shape:
                raise DataError(f"{path}: row {row} of split {split!r} is {image.shape[1]}x{image.shape[0]} pixels; "
                                f"the first image is {images[0].shape[1]}x{images[0].shape[0]}. All images must "
                                "have one size.")
            if label is None or not 0 <= int(label) < num_classes:
                raise DataError(f"{path}: row {row} of split {split!r} has label {label!r}; {family} labels are "
                                f"0..{num_classes - 1}.")
            images.append(image)
            labels.append(int(label))
    if not images:
        raise DataError(f"Split {split!r} ({', '.join(str(f) for f in files)}) is empty.")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _decoded(folder: Path, family: str) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """Decoded uint8 splits (cached under the user cache by the content hash of the shards)."""
    from unlearnbench.cache import building, cache_root

    shards = {s: _parquet_shards(folder, s) for s in SPLITS}
    content = _content_hash([p for s in SPLITS for p in shards[s]])
    cached = cache_root() / family / "data" / f"{DATA_VERSION}-{content}"
    if not (cached / "arrays.npz").is_file():
        decoded = {s: _decode_split(shards[s], s, family) for s in SPLITS}
        with building(cached) as tmp:
            np.savez(tmp / "arrays.npz", **{f"{k}_{s}": v for s, (x, y) in decoded.items() for k, v in (("x", x), ("y", y))})
    with np.load(cached / "arrays.npz") as arrays:
        return {s: (arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in SPLITS}, content


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
    splits, content = _decoded(_layout_folder(Path(folder), family), family)
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
