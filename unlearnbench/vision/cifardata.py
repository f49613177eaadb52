"""CIFAR-10 and CIFAR-100 as uint8 arrays, from the hub's parquet layout (or the same files
in a local folder): what the CIFAR classifier tasks and the CIFAR-10 diffusion task share.

The layout: ``train-00000-of-00001.parquet`` and ``test-00000-of-00001.parquet`` (any number
of shards) in ``plain_text/`` (CIFAR-10 on the hub), ``cifar100/`` (CIFAR-100 on the hub) or
directly in the folder; column ``img`` (``{"bytes": PNG}``) and ``label`` (CIFAR-10) or
``fine_label`` (CIFAR-100). Images are decoded once (PIL) and cached by the shards' content.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from unlearnbench.data import split_files
from unlearnbench.errors import DataError

DATA_VERSION = "1"  # PNG -> RGB uint8
SPLITS = ("train", "test")
IMAGE_COLUMN = "img"
DATASETS = {
    # family -> hub repo, hub subfolder, label column, classes, per-channel mean and std
    "cifar10": ("uoft-cs/cifar10", "plain_text", "label", 10,
                (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ("uoft-cs/cifar100", "cifar100", "fine_label", 100,
                 (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def parquet_shards(folder: Path, split: str) -> list[Path]:
    return [p for p in split_files(folder, split) if p.suffix == ".parquet"]


def layout_folder(folder: Path, family: str) -> Path:
    """The folder that holds the split shards: the hub's subfolder or the folder itself."""
    _, sub, label, *_ = DATASETS[family]
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"Data folder {str(folder)!r} does not exist.")
    candidates = [folder / sub, folder / "plain_text", folder / family, folder / "data", folder]
    for candidate in candidates:
        if candidate.is_dir() and any(parquet_shards(candidate, s) for s in SPLITS):
            missing = [s for s in SPLITS if not parquet_shards(candidate, s)]
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


def decoded(folder: Path, family: str) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """Decoded uint8 splits (cached under the user cache by the content hash of the shards)."""
    from unlearnbench.cache import building, cache_root, missing

    shards = {s: parquet_shards(folder, s) for s in SPLITS}
    content = _content_hash([p for s in SPLITS for p in shards[s]])
    cached = cache_root() / family / "data" / f"{DATA_VERSION}-{content}"
    if missing(cached):
        splits = {s: _decode_split(shards[s], s, family) for s in SPLITS}
        with building(cached) as tmp:
            np.savez(tmp / "arrays.npz", **{f"{k}_{s}": v for s, (x, y) in splits.items() for k, v in (("x", x), ("y", y))})
    with np.load(cached / "arrays.npz") as arrays:
        return {s: (arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in SPLITS}, content
