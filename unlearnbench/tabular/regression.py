"""Tabular-regression plumbing shared by regression tasks, methods and the regression suite.

The architecture (an MLP), the one training loop every regression recipe and method uses
(a method is a loss plus hyperparameters), prediction, saving and loading in safetensors,
and the task assembly the regression families share (forget sets ``random-<p>`` and
``range-<lo>-<hi>``, the cached target and oracle).

Arrays: features are float32 ``[N, D]`` (already standardised by the task), targets float
``[N]`` in the task's original units; numpy arrays and torch tensors are both accepted.

Target scale. An :class:`MLPRegressor` carries the mean and standard deviation of the
targets it was fitted on as buffers (``y_mean``, ``y_std``; saved with the weights). Its
network predicts *standardised* targets and ``forward`` maps them back, so ``model(x)``
and :func:`predict` are always in original units (what the metrics read), while the
default loss (:func:`standardised_mse_loss`) is the MSE on standardised targets: the
gradients do not depend on the units of the target (diabetes progression is in the
hundreds; a user's table may be in millions), so one learning rate fits every task. A
method that writes its own loss should compare ``model.standardised(x)`` with
``model.standardise(y)`` for the same reason.
"""

from __future__ import annotations

import math
import re
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
from unlearnbench.vision.classifier import _epoch_seed, _model_device, check_forget_indices, forget_indices_of
from unlearnbench.errors import DataError, ModelSourceError, UserError

FORMAT_NAME = "unlearnbench-regressor"


# ------------------------------------------------------------------------------ architecture


class MLPRegressor(nn.Module):
    """A multilayer perceptron: ``Linear -> ReLU`` per hidden width, then a final
    ``Linear`` (``head``) to one output.

    The network predicts the standardised target; ``forward`` returns
    ``standardised(x) * y_std + y_mean``, a ``[N]`` tensor in the target's original units.
    ``y_mean`` / ``y_std`` are buffers (0 and 1 until :meth:`set_target_scale`), saved and
    loaded with the weights and never trained.
    """

    def __init__(self, in_features: int, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        if int(in_features) < 1:
            raise ValueError(f"MLPRegressor needs at least one input feature, got in_features={in_features}.")
        layers: list[nn.Module] = []
        width = int(in_features)
        for h in hidden:
            if int(h) < 1:
                raise ValueError(f"MLPRegressor hidden widths must be positive, got {list(hidden)}.")
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            width = int(h)
        self.in_features = int(in_features)
        self.hidden = tuple(int(h) for h in hidden)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)
        self.register_buffer("y_mean", torch.zeros((), dtype=torch.float32))
        self.register_buffer("y_std", torch.ones((), dtype=torch.float32))

    @torch.no_grad()
    def set_target_scale(self, y) -> MLPRegressor:
        """Set ``y_mean`` / ``y_std`` from targets ``y`` (a constant target keeps std 1)."""
        yt = torch.as_tensor(np.asarray(y, dtype=np.float64) if not isinstance(y, torch.Tensor) else y,
                             dtype=torch.float64)
        if yt.numel() == 0:
            raise ValueError("set_target_scale needs at least one target value.")
        mean = yt.mean()
        std = yt.std(unbiased=False) if yt.numel() > 1 else torch.zeros((), dtype=torch.float64)
        self.y_mean.fill_(float(mean))
        self.y_std.fill_(float(std) if float(std) > 0 else 1.0)
        return self

    def standardise(self, y: torch.Tensor) -> torch.Tensor:
        """Targets in original units -> the standardised scale the network predicts."""
        return (y - self.y_mean) / self.y_std

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every hidden layer (after its ReLU), first to last."""
        out = []
        for layer in self.body:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                out.append(x)
        return out

    def standardised(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions on the standardised scale, ``[N]``."""
        return self.head(self.body(x)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardised(x) * self.y_std + self.y_mean


ARCHS = ("mlp",)


def build_regressor(config: dict, *, seed: int | None = None) -> MLPRegressor:
    """The network ``config`` describes: ``{"arch": "mlp", "in_features": D, "hidden": [64, 64]}``
    (``hidden`` optional). With ``seed``, the initial weights depend on it only (the global
    RNG is left alone). ``y_mean`` / ``y_std`` start at 0 and 1."""
    arch = config.get("arch")
    if arch not in ARCHS:
        raise ValueError(f"Unknown regressor arch {arch!r}; known: {', '.join(ARCHS)}.")
    if "in_features" not in config:
        raise ValueError(f"Regressor config {config!r} lacks in_features.")
    unknown = sorted(set(config) - {"arch", "in_features", "hidden"})
    if unknown:
        raise ValueError(f"Regressor config has unknown key(s) {', '.join(unknown)}; known: arch, in_features, hidden.")
    hidden = config.get("hidden", (64, 64))
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
        raise ValueError(f"Regressor config hidden must be a list of widths, got {hidden!r}.")
    if seed is None:
        return MLPRegressor(int(config["in_features"]), tuple(hidden))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPRegressor(int(config["in_features"]), tuple(hidden))


# ------------------------------------------------------------------------------ training


@dataclass(frozen=True)
class RegressionTrainConfig:
    """A regression training recipe: ``epochs`` over shuffled mini-batches, Adam (or SGD
    with momentum 0.9) at a constant learning rate with L2 weight decay."""

    epochs: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adam"  # or "sgd"


OPTIMIZERS = ("adam", "sgd")
SGD_MOMENTUM = 0.9


def regression_train_config(options: RegressionTrainConfig | dict | None,
                            default: RegressionTrainConfig | None = None) -> RegressionTrainConfig:
    """The config itself, the default, or one rebuilt from its JSON form (records store it)."""
    return train_config_from(options, RegressionTrainConfig, default, what="regression")


def _check_config(config: RegressionTrainConfig) -> None:
    if config.optimizer not in OPTIMIZERS:
        raise UserError(f"Regression training optimizer {config.optimizer!r} is not known; "
                        f"use one of {', '.join(OPTIMIZERS)}.")
    if config.epochs < 0 or config.batch_size < 1:
        raise UserError(f"Regression training needs epochs >= 0 and batch_size >= 1, got {config}.")


def _as_tensors(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y, dtype=torch.float32)
    if xt.dim() != 2:
        raise ValueError(f"Regression features must be [N, D], got shape {tuple(xt.shape)}.")
    yt = yt.reshape(-1)
    if len(xt) != len(yt):
        raise ValueError(f"{len(xt)} feature rows but {len(yt)} targets.")
    return xt, yt


def iterate_batches(x, y, batch_size: int, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled mini-batches ``(x, y)`` as float32 tensors (on the device ``x`` is on); the
    order depends only on ``seed`` and ``epoch``. The last batch may be smaller."""
    xt, yt = _as_tensors(x, y)
    order = np.random.default_rng(_epoch_seed(seed, epoch)).permutation(len(xt))
    index = torch.as_tensor(order, device=xt.device)
    for start in range(0, len(order), batch_size):
        rows = index[start : start + batch_size]
        yield xt[rows], yt[rows.to(yt.device)]


def standardised_mse_loss(model: MLPRegressor, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """The default loss: MSE between the network's standardised prediction and the
    standardised target (``model.y_mean`` / ``model.y_std``)."""
    return F.mse_loss(model.standardised(xb), model.standardise(yb))


def train_regressor(
    model: nn.Module,
    x,
    y,
    config: RegressionTrainConfig,
    seed: int,
    *,
    loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    parameters: Sequence[nn.Parameter] | None = None,
    device: str | torch.device | None = None,
    quiet: bool = False,
    description: str = "training",
) -> nn.Module:
    """Train ``model`` in place on ``(x, y)`` and return it (in eval mode).

    Adam with L2 weight decay (or SGD with momentum 0.9) at a constant learning rate,
    gradient-norm clipping at 5, mini-batches in an order seeded by ``seed`` and the epoch,
    float32 throughout (no autocast: regression targets need the precision).
    ``loss_fn(model, xb, yb)`` (``yb`` in original units) defaults to
    :func:`standardised_mse_loss`; ``parameters`` restricts what the optimiser updates (the
    others keep their values exactly). The target scale buffers are not touched here. On
    CPU the same seed gives bit-identical weights. A non-finite loss stops training with
    :class:`TrainingDivergedError`.
    """
    _check_config(config)
    loss_fn = loss_fn or standardised_mse_loss
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    xt, yt = _as_tensors(x, y)
    if len(xt) == 0:
        raise ValueError(f"{description}: no training examples.")
    xt, yt = xt.to(device), yt.to(device)

    params, frozen = split_parameters(model, parameters)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=SGD_MOMENTUM, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    total = config.epochs * math.ceil(len(xt) / config.batch_size)
    batches = (batch for epoch in range(config.epochs) for batch in iterate_batches(xt, yt, config.batch_size, seed, epoch))
    return optimise(model, params, frozen, optimizer, batches, loss_fn, total=total, description=description, quiet=quiet)


def fit_regressor(model_config: dict, x, y, train_config: RegressionTrainConfig, seed: int, *,
                  device: str | torch.device | None = None, quiet: bool = False,
                  description: str = "training") -> MLPRegressor:
    """A fresh model of ``model_config`` (initialised from ``seed``, target scale set from
    ``y``) trained on ``(x, y)``: how tasks train their target and oracle, and what
    ``retrain``-style methods call."""
    model = build_regressor(model_config, seed=seed)
    model.set_target_scale(y)
    return train_regressor(model, x, y, train_config, seed, device=device, quiet=quiet, description=description)


@torch.no_grad()
def predict(model: nn.Module, x, *, batch_size: int = 1024, device: str | torch.device | None = None) -> np.ndarray:
    """Predictions ``[N]`` (float64, original units), in eval mode."""
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    try:
        xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
        out = [model(xt[start : start + batch_size].to(device)).reshape(-1).double().cpu().numpy()
               for start in range(0, len(xt), batch_size)]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float64)
    finally:
        model.train(was_training)


# ------------------------------------------------------------------------------ save / load


def save_regressor(model: nn.Module, config: dict, folder) -> Path:
    """Write ``model.safetensors`` (the state dict, buffers included) and ``config.json``."""
    return save_model(model, config, folder, format_name=FORMAT_NAME)


def read_regressor_config(folder) -> dict:
    """The ``config.json`` of a regressor folder, checked, without loading the weights."""
    return read_model_config(folder, what="regressor", archs=ARCHS, writer="save_regressor")


def load_regressor(folder) -> tuple[MLPRegressor, dict]:
    """``(model, config)`` from a :func:`save_regressor` folder; the model is on CPU, in eval mode."""
    return load_model(folder, build_regressor, what="regressor", archs=ARCHS, writer="save_regressor")


def regressor_fingerprint(folder) -> str:
    """Identity of a saved regressor: the hash of its weights file."""
    return weights_fingerprint(folder)


# ------------------------------------------------------------------------------ task assembly
# What every regression family (diabetes, a user's table) shares: the forget-set variants
# (random-<p>, range-<lo>-<hi>), the cached target and oracle, and the RegressionTask.

_NUMBER = r"-?\d+(?:\.\d+)?"
_VARIANT = re.compile(rf"^(?:random-(?P<p>\d+(?:\.\d+)?)|range-(?P<lo>{_NUMBER})-(?P<hi>{_NUMBER}))$")


@dataclass
class RegressionArrays:
    """A family's arrays: standardised float32 features ``[N, D]`` and float32 targets ``[N]``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    target_name: str
    fingerprint: str  # identifies the data (version and content)


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def parse_forget_spec(spec: str) -> tuple[str, tuple]:
    """``"random-10"`` -> ``("random", (10,))`` (percent); ``"range-25-100"`` ->
    ``("range", (25, 100))`` (inclusive bounds on the target; negative bounds as ``range--5-5``)."""
    match = _VARIANT.match(str(spec).strip())
    if match is None:
        raise UserError(f"Unknown regression forget set {spec!r}; use random-<percent> (e.g. random-10) or "
                        "range-<lo>-<hi> (e.g. range-25-100: the training rows whose target lies in [lo, hi]).")
    if match.group("p") is not None:
        percent = _number(match.group("p"))
        if not 0 < percent < 100:
            raise UserError(f"Forget set {spec!r}: the percentage must be between 0 and 100 (exclusive), got {percent}.")
        return "random", (percent,)
    lo, hi = _number(match.group("lo")), _number(match.group("hi"))
    if lo > hi:
        raise UserError(f"Forget set {spec!r}: the range's lower bound {lo} is above its upper bound {hi}.")
    return "range", (lo, hi)


def range_forget_indices(y_train, lo: float, hi: float, *, target_name: str = "target") -> np.ndarray:
    """The training rows whose target lies in ``[lo, hi]``; an empty range is a
    :class:`DataError` naming the range and the target's span."""
    y = np.asarray(y_train, dtype=np.float64)
    indices = np.nonzero((y >= lo) & (y <= hi))[0].astype(np.int64)
    if len(indices) == 0:
        raise DataError(f"Forget range [{lo}, {hi}] holds no training row: the target {target_name!r} spans "
                        f"{y.min():g} to {y.max():g} in the training set. Pick a range inside it.")
    return indices


def make_regression_task(
    *,
    name: str,
    family: str,
    version: str,
    variant: str,
    data: RegressionArrays,
    model_config: dict,
    train_config: RegressionTrainConfig,
    recipe_name: str,
    options: Sequence[tuple[str, Any]] = (),
    forget_indices: str | None = None,
    model: str | None = None,
    oracle: str | None = None,
    device=None,
    quiet: bool = False,
):
    """A :class:`~unlearnbench.task.RegressionTask` for one forget set of a family.

    ``variant`` is ``random-<p>`` or ``range-<lo>-<hi>``; ``forget_indices`` (a forget-index
    file, :func:`unlearnbench.vision.classifier.write_forget_indices`) replaces it. ``model`` /
    ``oracle`` are :func:`save_regressor` folders; otherwise the task's recipe trains the
    target (every training row, seed 0) and the oracle (the retain rows, seed 1000) once,
    cached under ``cache_root()/<family>/<fingerprint>``.
    """
    from unlearnbench.arraytasks import ModelKit, indices_hash, model_loaders, sources, task_spec
    from unlearnbench.cache import fingerprint
    from unlearnbench.lm.modeling import resolve_device
    from unlearnbench.task import RegressionTask

    strategy, values = parse_forget_spec(variant)
    n_train = len(data.y_train)
    device = resolve_device(str(device)) if device is not None else None
    if model is not None:
        model_config = read_regressor_config(model)
        if int(model_config.get("in_features", -1)) != data.x_train.shape[1]:
            raise ModelSourceError(f"Regressor {model!r} takes {model_config.get('in_features')} features; "
                                   f"{name} has {data.x_train.shape[1]}.")
    kit = ModelKit(fit=fit_regressor, save=save_regressor, load=load_regressor, fingerprint=regressor_fingerprint,
                   weights_name=WEIGHTS_NAME)
    load_target, oracle_for, root = model_loaders(
        kit, name=name, family=family, version=version, data_fingerprint=data.fingerprint, model_config=model_config,
        train_config=train_config, recipe_name=recipe_name, x_train=data.x_train, y_train=data.y_train,
        model=model, oracle=oracle, device=device, quiet=quiet)

    if forget_indices is not None:
        indices = forget_indices_of(forget_indices, n_train, task=name, data=data.fingerprint)
    elif strategy == "random":
        indices = random_forget_indices(n_train, values[0])
        indices = check_forget_indices(indices, n_train, f"{name}: the forget set ({values[0]}% at random)")
    else:
        lo, hi = values
        indices = range_forget_indices(data.y_train, lo, hi, target_name=data.target_name)
        indices = check_forget_indices(indices, n_train,
                                       f"{name}: the forget set ({data.target_name!r} in [{lo}, {hi}])")
    forget_hash = indices_hash(indices)
    spec = task_spec(name, family, version, variant, options, indices if forget_indices is not None else None)

    return RegressionTask(
        spec=spec,
        x_train=data.x_train,
        y_train=data.y_train,
        x_test=data.x_test,
        y_test=data.y_test,
        forget_indices=indices,
        model_config=model_config,
        train_config=train_config,
        load_target=load_target,
        load_oracle=oracle_for(indices),
        data_fingerprint=fingerprint({"data": data.fingerprint, "forget": forget_hash}),
        feature_names=tuple(data.feature_names),
        target_name=data.target_name,
        extra={"strategy": strategy, "size": values[0] if strategy == "random" else list(values),
               "recipe": recipe_name, "cache_dir": str(root), "data": data.fingerprint,
               "forget_indices_file": str(forget_indices) if isinstance(forget_indices, (str, Path)) else None,
               **sources(recipe_name, model, oracle)},
    )
