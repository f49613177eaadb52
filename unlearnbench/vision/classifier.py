"""Image-classifier plumbing shared by classifier tasks, methods and the classifier suite.

The architectures (a small conv net for 8x8 digits, a CIFAR-style ResNet-18), the one
training loop every classifier recipe and method uses (a method is a loss plus
hyperparameters), prediction, saving and loading in safetensors, and the versioned
forget-index files that replace a task's built-in forget set.

Arrays: images are float32 ``[N, C, H, W]`` (already normalised), labels int64 ``[N]``;
numpy arrays and torch tensors are both accepted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from unlearnbench.arraytasks import (  # noqa: F401  (random_forget_indices: re-exported for task families)
    WEIGHTS_NAME, load_model, optimise, random_forget_indices, read_model_config, save_model,
    split_parameters, train_config_from, weights_fingerprint,
)
from unlearnbench.errors import DataError, ModelSourceError, UserError

FORMAT_NAME = "unlearnbench-classifier"
INDEX_FILE_VERSION = 1


# ------------------------------------------------------------------------------ architectures


def _groups(channels: int) -> int:
    return 8 if channels % 8 == 0 else 1


class SmallCNN(nn.Module):
    """Two 3x3 conv layers (GroupNorm, ReLU, 2x2 max-pool each) and a linear head ``fc``.

    GroupNorm instead of BatchNorm so that what the model says about one example never
    depends on which other examples share its batch (membership-inference statistics are
    per example).
    """

    def __init__(self, num_classes: int, in_channels: int = 1, image_size: int = 8, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.GroupNorm(_groups(width), width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.GroupNorm(_groups(2 * width), 2 * width),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        if side < 1:
            raise ValueError(f"SmallCNN needs images of at least 4x4 pixels, got image_size={image_size}.")
        self.fc = nn.Linear(2 * width * side * side, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


class ShardEnsemble(nn.Module):
    """SISA's model (``methods/vision/sisa.py``): averages the shard models' class probabilities; its logits are the log of the average."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.shards = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = torch.stack([F.log_softmax(m(x), dim=-1) for m in self.shards])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.shards))


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(_groups(channels), channels)
    raise ValueError(f"Unknown norm {kind!r}; known: batch, group.")


class BasicBlock(nn.Module):
    """The ResNet basic block (He et al., 2016): two 3x3 convs and an identity shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, norm: str = "batch"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = _norm(norm, planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), _norm(norm, planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCIFAR(nn.Module):
    """ResNet for 32x32 images: 3x3 stem without max-pool, four stages, global average pool
    and a linear head ``fc`` (the variant SalUn and most unlearning papers train)."""

    def __init__(self, num_classes: int, in_channels: int = 3, blocks: Sequence[int] = (2, 2, 2, 2),
                 width: int = 64, norm: str = "batch"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = _norm(norm, width)
        planes, layers = width, []
        for i, n in enumerate(blocks):
            out = width * 2**i
            stage = []
            for j in range(n):
                stage.append(BasicBlock(planes, out, stride=(2 if i > 0 and j == 0 else 1), norm=norm))
                planes = out
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def resnet18_cifar(num_classes: int, in_channels: int = 3, *, width: int = 64, norm: str = "batch") -> ResNetCIFAR:
    """CIFAR-style ResNet-18: BasicBlocks [2, 2, 2, 2], 11M parameters at width 64."""
    return ResNetCIFAR(num_classes, in_channels, (2, 2, 2, 2), width=width, norm=norm)


# arch -> (constructor, options besides num_classes / in_channels / image_size)
_ARCHS: dict[str, tuple[Callable[..., nn.Module], tuple[str, ...]]] = {
    "small_cnn": (lambda num_classes, in_channels, image_size, **kw: SmallCNN(num_classes, in_channels, image_size, **kw),
                  ("width",)),
    "resnet18": (lambda num_classes, in_channels, image_size, **kw: resnet18_cifar(num_classes, in_channels, **kw),
                 ("width", "norm")),
}


def build_classifier(config: dict, *, seed: int | None = None) -> nn.Module:
    """The architecture ``config`` describes: ``{"arch", "num_classes", "in_channels",
    "image_size", ...}`` plus the arch's own options (``width``; ``norm`` for resnet18).
    With ``seed``, the initial weights depend on it only (the global RNG is left alone)."""
    arch = config.get("arch")
    if arch not in _ARCHS:
        raise ValueError(f"Unknown classifier arch {arch!r}; known: {', '.join(_ARCHS)}.")
    make, extra = _ARCHS[arch]
    missing = [k for k in ("num_classes",) if k not in config]
    if missing:
        raise ValueError(f"Classifier config {config!r} lacks {', '.join(missing)}.")
    unknown = sorted(set(config) - {"arch", "num_classes", "in_channels", "image_size", *extra})
    if unknown:
        raise ValueError(f"Classifier config has unknown key(s) {', '.join(unknown)} for arch {arch!r}; "
                         f"known: num_classes, in_channels, image_size, {', '.join(extra)}.")
    kwargs = {k: config[k] for k in extra if k in config}
    args = (int(config["num_classes"]), int(config.get("in_channels", 1 if arch == "small_cnn" else 3)),
            int(config.get("image_size", 8 if arch == "small_cnn" else 32)))
    if seed is None:
        return make(*args, **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return make(*args, **kwargs)


# ------------------------------------------------------------------------------ training


@dataclass(frozen=True)
class ClassifierTrainConfig:
    """A classifier training recipe. ``augment="crop_flip"`` adds the usual CIFAR
    augmentation (random 32x32 crop of the 4-pixel zero-padded image, horizontal flip)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    optimizer: str = "sgd"  # or "adam"
    schedule: str = "cosine"  # or "constant"
    augment: str = "none"  # or "crop_flip"


OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")
AUGMENTS = ("none", "crop_flip")


def classifier_train_config(options: ClassifierTrainConfig | dict | None,
                            default: ClassifierTrainConfig | None = None) -> ClassifierTrainConfig:
    """The config itself, the default, or one rebuilt from its JSON form (records store it)."""
    return train_config_from(options, ClassifierTrainConfig, default, what="classifier")


def _check_config(config: ClassifierTrainConfig) -> None:
    for name, value, known in (("optimizer", config.optimizer, OPTIMIZERS), ("schedule", config.schedule, SCHEDULES),
                               ("augment", config.augment, AUGMENTS)):
        if value not in known:
            raise UserError(f"Classifier training {name} {value!r} is not known; use one of {', '.join(known)}.")
    if config.epochs < 0 or config.batch_size < 1:
        raise UserError(f"Classifier training needs epochs >= 0 and batch_size >= 1, got {config}.")


def _as_tensors(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y, dtype=torch.int64)
    if len(xt) != len(yt):
        raise ValueError(f"{len(xt)} images but {len(yt)} labels.")
    return xt, yt


def _epoch_seed(seed: int, epoch: int) -> list[int]:
    return [int(seed) & 0xFFFFFFFF, int(epoch), 0x5EED]


def iterate_batches(x, y, batch_size: int, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled mini-batches ``(x, y)`` as tensors (on the device ``x`` is on); the order
    depends only on ``seed`` and ``epoch``. The last batch may be smaller."""
    xt, yt = _as_tensors(x, y)
    order = np.random.default_rng(_epoch_seed(seed, epoch)).permutation(len(xt))
    index = torch.as_tensor(order, device=xt.device)
    for start in range(0, len(order), batch_size):
        rows = index[start : start + batch_size]
        yield xt[rows], yt[rows.to(yt.device)]


def _crop_flip(xb: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop of the zero-padded image and a random horizontal flip, per example."""
    n, _, h, w = xb.shape
    padded = F.pad(xb, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(xb.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).to(xb.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(xb.device)
    rows = dy[:, None] + torch.arange(h, device=xb.device)[None, :]  # [n, h]
    cols = dx[:, None] + torch.arange(w, device=xb.device)[None, :]  # [n, w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=xb.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # [n, h, w, c]
    return out.permute(0, 3, 1, 2).contiguous()


def cross_entropy_loss(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(xb), yb)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def train_classifier(
    model: nn.Module,
    x,
    y,
    config: ClassifierTrainConfig,
    seed: int,
    *,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    parameters: Sequence[nn.Parameter] | None = None,
    device: str | torch.device | None = None,
    quiet: bool = False,
    description: str = "training",
) -> nn.Module:
    """Train ``model`` in place on ``(x, y)`` and return it (in eval mode).

    SGD with momentum and weight decay (or Adam with L2 weight decay), a cosine (per step,
    down to zero) or constant learning rate, gradient-norm clipping at 5, mini-batches in an
    order seeded by ``seed`` and the epoch. ``loss_fn(model, xb, yb)`` defaults to
    cross-entropy; ``parameters`` restricts what the optimiser updates (the others keep
    their values exactly). On CPU the same seed gives bit-identical weights. A non-finite
    loss stops training with :class:`TrainingDivergedError`.
    """
    _check_config(config)
    loss_fn = loss_fn or cross_entropy_loss
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    xt, yt = _as_tensors(x, y)
    if len(xt) == 0:
        raise ValueError(f"{description}: no training examples.")
    xt, yt = xt.to(device), yt.to(device)

    params, frozen = split_parameters(model, parameters)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(xt) / config.batch_size)
    total = config.epochs * steps_per_epoch

    def lr_factor(step: int) -> float:
        if config.schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, total))))

    def batches():
        for epoch in range(config.epochs):
            generator = torch.Generator().manual_seed(int(np.random.SeedSequence(_epoch_seed(seed, epoch)).generate_state(1)[0]))
            for xb, yb in iterate_batches(xt, yt, config.batch_size, seed, epoch):
                yield (_crop_flip(xb, generator) if config.augment == "crop_flip" else xb), yb

    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    return optimise(model, params, frozen, optimizer, batches(), loss_fn, total=total, description=description,
                    quiet=quiet, scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor), autocast=autocast)


@torch.no_grad()
def predict_proba(model: nn.Module, x, *, batch_size: int = 512, device: str | torch.device | None = None) -> np.ndarray:
    """Class probabilities ``[N, K]`` (float64 softmax of the logits), in eval mode."""
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    try:
        xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
        out = []
        for start in range(0, len(xt), batch_size):
            logits = model(xt[start : start + batch_size].to(device)).double()
            out.append(torch.softmax(logits, dim=-1).cpu().numpy())
        if not out:
            n_classes = _n_outputs(model)
            return np.zeros((0, n_classes), dtype=np.float64)
        return np.concatenate(out)
    finally:
        model.train(was_training)


def _n_outputs(model: nn.Module) -> int:
    fc = getattr(model, "fc", None)
    return int(fc.out_features) if isinstance(fc, nn.Linear) else 0


def fit_classifier(model_config: dict, x, y, train_config: ClassifierTrainConfig, seed: int, *,
                   device: str | torch.device | None = None, quiet: bool = False,
                   description: str = "training") -> nn.Module:
    """A fresh model of ``model_config`` (initialised from ``seed``) trained on ``(x, y)``:
    how tasks train their target and oracle, and what ``retrain``-style methods call."""
    model = build_classifier(model_config, seed=seed)
    return train_classifier(model, x, y, train_config, seed, device=device, quiet=quiet, description=description)


# ------------------------------------------------------------------------------ save / load


def save_classifier(model: nn.Module, config: dict, folder) -> Path:
    """Write ``model.safetensors`` (the state dict, buffers included) and ``config.json``."""
    return save_model(model, config, folder, format_name=FORMAT_NAME)


def load_classifier(folder) -> tuple[nn.Module, dict]:
    """``(model, config)`` from a :func:`save_classifier` folder; the model is on CPU, in eval mode."""
    return load_model(folder, build_classifier, what="classifier", archs=_ARCHS, writer="save_classifier")


def classifier_fingerprint(folder) -> str:
    """Identity of a saved classifier: the hash of its weights file."""
    return weights_fingerprint(folder)


def read_classifier_config(folder) -> dict:
    """The ``config.json`` of a classifier folder, checked, without loading the weights."""
    return read_model_config(folder, what="classifier", archs=_ARCHS, writer="save_classifier")


# ------------------------------------------------------------------------------ forget-index files


def _listing(values, limit: int = 5) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" (and {len(values) - limit} more)" if len(values) > limit else "")


def check_forget_indices(raw, n_train: int, where: str) -> np.ndarray:
    """Sorted int64 indices, or a :class:`DataError` (naming ``where``) when they are not a
    usable forget set: empty, not integers, out of range, repeated, or every training row."""
    raw = list(raw.tolist() if isinstance(raw, np.ndarray) else raw)
    if not raw:
        raise DataError(f"{where} lists no indices; a forget set needs at least one training row.")
    not_int = [v for v in raw if isinstance(v, bool) or not isinstance(v, (int, np.integer))]
    if not_int:
        raise DataError(f"{where}: indices must be integers; found {_listing(repr(v) for v in not_int)}.")
    bad = [int(v) for v in raw if not 0 <= int(v) < n_train]  # in Python ints: 2**63 does not fit an int64
    if bad:
        raise DataError(f"{where}: {len(bad)} index(es) out of range: {_listing(bad)}. "
                        f"The training set has {n_train} rows, so valid indices are 0..{n_train - 1}.")
    indices = np.asarray(raw, dtype=np.int64)
    values, counts = np.unique(indices, return_counts=True)
    duplicates = values[counts > 1]
    if len(duplicates):
        raise DataError(f"{where} lists duplicate indices: {_listing(duplicates.tolist())}. "
                        "Each training row may appear once.")
    if len(values) == n_train:
        raise DataError(f"{where} lists every one of the {n_train} training rows; forgetting 100% leaves nothing "
                        "to retain (and no oracle to train). Forget fewer rows.")
    return values  # np.unique sorts


def read_index_file(path) -> dict[str, Any]:
    """A forget-index file's content: ``{"indices": [...], "task": ..., "data": ...}`` (what the
    run records and hashes: the indices and what they were selected for, never the file's path).

    The file is JSON: ``{"version": 1, "task": ..., "strategy": ..., "size": ...,
    "data": <the training set's fingerprint>, "indices": [...]}`` (``data`` in files written
    since it was added)."""
    path = Path(path).expanduser()
    where = f"Forget-index file {str(path)!r}"
    expected = '{"version": 1, "task": ..., "strategy": ..., "size": ..., "indices": [...]}'
    if not path.is_file():
        raise DataError(f"{where} does not exist.")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{where} is not valid JSON ({exc}). Expected {expected}.") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("indices"), list):
        raise DataError(f"{where} has no \"indices\" list. Expected {expected}.")
    version = doc.get("version", INDEX_FILE_VERSION)
    if version != INDEX_FILE_VERSION:
        raise DataError(f"{where} has version {version!r}; this unlearnbench reads version {INDEX_FILE_VERSION}.")
    return {"indices": doc["indices"], **{k: doc[k] for k in ("task", "data") if isinstance(doc.get(k), str)}}


def forget_indices_of(value, n_train: int, *, task: str, data: str | None = None) -> np.ndarray:
    """The sorted forget indices a task is given: a forget-index file (its path), its content
    (:func:`read_index_file`), or a plain list of indices (a record's ``task.options``). A file
    made for another training set is refused: another task family, or (for files that name
    it) another data fingerprint."""
    where = "The forget indices"
    if isinstance(value, (str, Path)):
        where = f"Forget-index file {str(Path(value).expanduser())!r}"
        value = read_index_file(value)
    if isinstance(value, dict):
        made_for, fp = value.get("task"), value.get("data")
        if made_for is not None and made_for.split("/")[0] != task.split("/")[0]:
            raise DataError(f"{where} was made for {made_for!r}; its indices point into another training set than "
                            f"{task!r}'s. Select a forget set for this task (unlearnbench forgetset --task {task} ...).")
        if fp is not None and data is not None and fp != data:
            raise DataError(f"{where} was made for {made_for or 'a task'} on other data (training set {fp[:12]}, "
                            f"this task's is {data[:12]}). Select a forget set for this task's data.")
        value = value.get("indices")
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise DataError(f"{where}: expected a forget-index file or a list of training-row indices, "
                        f"not a {type(value).__name__}.")
    return check_forget_indices(value, n_train, where)


def read_forget_indices(path, n_train: int) -> np.ndarray:
    """The sorted int64 training-row indices of a forget-index file (see :func:`read_index_file`).
    Every index must be a distinct row of the training set, and the forget set may be neither
    empty nor the whole training set."""
    where = f"Forget-index file {str(Path(path).expanduser())!r}"
    return check_forget_indices(read_index_file(path)["indices"], n_train, where)


def write_forget_indices(path, indices, *, task: str, strategy: str, size, cost_s: float | None = None,
                         data: str | None = None) -> Path:
    """Write a forget-index file (sorted indices) that :func:`read_forget_indices` reads;
    ``data`` is the fingerprint of the training set the indices point into."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"version": INDEX_FILE_VERSION, "task": task, "strategy": strategy, "size": size}
    if data is not None:
        doc["data"] = data
    if cost_s is not None:
        doc["cost_s"] = float(cost_s)
    doc["indices"] = sorted(int(i) for i in np.asarray(indices).ravel())
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ------------------------------------------------------------------------------ task assembly
# What every classifier task family (digits, CIFAR, ...) shares: the forget-set variants
# (class-<k>, random-<p>, worst-<p>), the cached target and oracle, and the ClassifierTask.

VARIANT_STRATEGIES = ("class", "random", "worst")
WORST_CASE_SEED = 0
FORGET_SET_FILE = "forget-indices.json"  # in a cached worst-case forget set's folder


@dataclass
class ClassifierArrays:
    """A family's arrays: normalised float32 images ``[N, C, H, W]`` and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    fingerprint: str  # identifies the data (version and content)


def parse_variant(variant: str) -> tuple[str, int]:
    """``"class-3"`` -> ``("class", 3)``; ``"random-10"`` -> ``("random", 10)`` (percent)."""
    strategy, _, value = variant.partition("-")
    if strategy not in VARIANT_STRATEGIES or not value.isdigit():
        raise UserError(f"Unknown forget-set variant {variant!r}; use class-<k>, random-<percent> or worst-<percent>.")
    return strategy, int(value)


def class_forget_indices(y_train, k: int) -> np.ndarray:
    """Every training row of class ``k``."""
    return np.nonzero(np.asarray(y_train) == k)[0].astype(np.int64)


def worst_case_forget_file(name: str, family: str, target, data: ClassifierArrays, percent: int, *,
                           device=None, quiet: bool = False) -> Path:
    """The forget-index file of the worst-case ``percent``% for ``target`` (a LoadedModel),
    selected once by :func:`unlearnbench.vision.forgetsets.select` and cached by the target's
    fingerprint, the data and the size; the file records what the selection cost."""
    from unlearnbench.cache import building, cache_root, fingerprint, missing

    from unlearnbench.vision.forgetsets import select

    key = {"target": target.fingerprint, "data": data.fingerprint, "strategy": "worst", "percent": percent,
           "seed": WORST_CASE_SEED}
    folder = cache_root() / family / "forget-sets" / f"worst-{percent}-{fingerprint(key)}"
    if missing(folder):
        model = target.model.to(device) if device is not None else target.model
        indices, info = select("worst", model=model, x=data.x_train, y=data.y_train, size_fraction=percent / 100,
                               seed=WORST_CASE_SEED, quiet=quiet, device=device)
        with building(folder) as tmp:
            write_forget_indices(tmp / FORGET_SET_FILE, indices, task=name, strategy="worst", size=percent,
                                 cost_s=info.get("wall_seconds"), data=data.fingerprint)
    return folder / FORGET_SET_FILE


def make_classifier_task(
    *,
    name: str,
    family: str,
    version: str,
    variant: str,
    data: ClassifierArrays,
    model_config: dict,
    train_config: ClassifierTrainConfig,
    recipe_name: str,
    options: Sequence[tuple[str, Any]] = (),
    forget_indices: str | None = None,
    model: str | None = None,
    oracle: str | None = None,
    device=None,
    quiet: bool = False,
):
    """A :class:`~unlearnbench.task.ClassifierTask` for one forget-set variant of a family.

    ``forget_indices`` (a forget-index file) replaces the variant's built-in forget set.
    ``model`` / ``oracle`` are :func:`save_classifier` folders; otherwise the task's recipe
    trains the target (every training row, seed 0) and the oracle (the retain rows, seed
    1000) once, cached under ``cache_root()/<family>/<fingerprint>``.
    """
    from unlearnbench.arraytasks import ModelKit, indices_hash, model_loaders, sources, task_spec
    from unlearnbench.cache import fingerprint
    from unlearnbench.lm.modeling import resolve_device
    from unlearnbench.task import ClassifierTask

    strategy, value = parse_variant(variant)
    n_train = len(data.y_train)
    device = resolve_device(str(device)) if device is not None else None
    if model is not None:
        model_config = read_classifier_config(model)
        if int(model_config.get("num_classes", -1)) != data.num_classes:
            raise ModelSourceError(f"Classifier {model!r} has {model_config.get('num_classes')} outputs; "
                                   f"{name} has {data.num_classes} classes.")
    kit = ModelKit(fit=fit_classifier, save=save_classifier, load=load_classifier, fingerprint=classifier_fingerprint,
                   weights_name=WEIGHTS_NAME)
    load_target, oracle_for, root = model_loaders(
        kit, name=name, family=family, version=version, data_fingerprint=data.fingerprint, model_config=model_config,
        train_config=train_config, recipe_name=recipe_name, x_train=data.x_train, y_train=data.y_train,
        model=model, oracle=oracle, device=device, quiet=quiet)

    forget_class: int | None = None
    indices_file = forget_indices if isinstance(forget_indices, (str, Path)) else None
    if forget_indices is not None:
        indices = forget_indices_of(forget_indices, n_train, task=name, data=data.fingerprint)
    elif strategy == "class":
        if not 0 <= value < data.num_classes:
            raise UserError(f"{name}: class {value} does not exist; classes are 0..{data.num_classes - 1}.")
        indices = class_forget_indices(data.y_train, value)
        indices = check_forget_indices(indices, n_train, f"{name}: the forget set (class {value})")
    elif strategy == "random":
        indices = random_forget_indices(n_train, value)
        indices = check_forget_indices(indices, n_train, f"{name}: the forget set ({value}% at random)")
    else:
        indices_file = worst_case_forget_file(name, family, load_target(), data, value, device=device, quiet=quiet)
        indices = read_forget_indices(indices_file, n_train)
    spec = task_spec(name, family, version, variant, options, indices if forget_indices is not None else None)
    if strategy == "class" and np.array_equal(indices, class_forget_indices(data.y_train, value)):
        forget_class = value
    forget_hash = indices_hash(indices)

    return ClassifierTask(
        spec=spec,
        x_train=data.x_train,
        y_train=data.y_train,
        x_test=data.x_test,
        y_test=data.y_test,
        forget_indices=indices,
        num_classes=data.num_classes,
        model_config=model_config,
        train_config=train_config,
        load_target=load_target,
        load_oracle=oracle_for(indices),
        data_fingerprint=fingerprint({"data": data.fingerprint, "forget": forget_hash}),
        forget_class=forget_class,
        extra={"strategy": strategy, "size": value, "recipe": recipe_name, "cache_dir": str(root), "data": data.fingerprint,
               "forget_indices_file": str(indices_file) if indices_file is not None else None,
               **sources(recipe_name, model, oracle)},
    )
