"""What classifier and regression task families share: the task's spec, and the target and
oracle models they train with the task's recipe (cached) or read from ``--model`` /
``--oracle`` folders.

A family passes a :class:`ModelKit` (how its models are fitted, saved and loaded); the
target is trained on every training row (seed :data:`TARGET_SEED`), the oracle on the retain
rows (seed :data:`ORACLE_SEED`), both cached under ``cache_root()/<family>/<fingerprint>``
with one oracle folder per forget set (the fingerprint of :func:`world_key`, which names the
device type the recipe trained on where it is not the CPU). It also holds what both families
share to keep an unlearned model (``--save-model``) and read it back (``--unlearned``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

TARGET_SEED = 0
ORACLE_SEED = 1000  # apart from any run seed a user is likely to pick
RANDOM_FORGET_SEED = 0  # random-<p> forget sets are fixed: the same rows on every machine


@dataclass(frozen=True)
class ModelKit:
    """How one kind of model is fitted, saved and loaded."""

    fit: Callable[..., Any]  # fit(model_config, x, y, train_config, seed, *, device, quiet, description) -> model
    save: Callable[..., Any]  # save(model, model_config, folder)
    load: Callable[..., Any]  # load(folder) -> (model, config)
    fingerprint: Callable[..., str]  # fingerprint(folder)
    weights_name: str = "model.safetensors"


def random_forget_indices(n_train: int, percent: float, seed: int = RANDOM_FORGET_SEED) -> np.ndarray:
    """A seeded random ``percent``% of the training rows (at least one), sorted."""
    size = max(1, int(round(n_train * percent / 100)))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_train, size=size, replace=False)).astype(np.int64)


def indices_hash(indices) -> str:
    return hashlib.sha256(np.asarray(indices, dtype=np.int64).tobytes()).hexdigest()[:16]


def task_spec(name: str, family: str, version: str, variant: str, options: Sequence[tuple[str, Any]],
              forget_indices=None):
    """The spec of an array task; ``forget_indices`` (the indices of a ``--forget-indices`` file,
    sorted) are kept as they are, not the file's path: the run names what it forgot, and a
    record re-creates the task on any machine."""
    from unlearnbench.task import TaskSpec

    options = [("forget", variant), *options]
    if forget_indices is not None:
        options.append(("forget_indices", [int(i) for i in np.asarray(forget_indices).ravel()]))
    return TaskSpec(name, family, version, tuple(options))


def cached_model(kit: ModelKit, folder: Path, model_config: dict, x, y, train_config, seed: int, *,
                 device=None, quiet: bool = False, description: str = "training") -> Path:
    """Train (once, inside :func:`~unlearnbench.reproducible.reproducible_build`) and save a
    model under ``folder`` with its weights' fingerprint; later calls find it there."""
    from unlearnbench.cache import building, missing
    from unlearnbench.reproducible import reproducible_build, write_fingerprint

    folder = Path(folder)
    if missing(folder):
        with reproducible_build():
            model = kit.fit(model_config, x, y, train_config, seed, device=device, quiet=quiet, description=description)
        with building(folder) as tmp:
            kit.save(model, model_config, tmp)
            write_fingerprint(tmp)
    return folder


def device_kind(device) -> str | None:
    """What of the device a recipe trains on goes into a cache key: ``None`` for the CPU (and
    for no device, which trains where the model is built: the CPU), else its type (``cuda``,
    ``mps``): a GPU's kernels give other numbers than the CPU's, so a model trained there is
    another model. The index is left out (``cuda:0`` and ``cuda:1`` run the same kernels)."""
    if device is None:
        return None
    import torch

    kind = torch.device(device).type
    return None if kind == "cpu" else kind


def world_key(*, family: str, version: str, data_fingerprint: str, model_config: dict, train_config,
              device=None) -> dict[str, Any]:
    """What the cached target and oracles of a family's world depend on, with the build
    version (:data:`unlearnbench.reproducible.BUILD_VERSION`: worlds built by other code are
    not reused); on a device type other than the CPU the key names it (``"device": "cuda"``)."""
    from unlearnbench.reproducible import BUILD_VERSION

    key = {"family": family, "version": version, "data": data_fingerprint, "model": model_config,
           "train": asdict(train_config), "target_seed": TARGET_SEED, "oracle_seed": ORACLE_SEED,
           "build": BUILD_VERSION}
    kind = device_kind(device)
    if kind is not None:
        key["device"] = kind
    return key


def recipe_options(task_options: dict[str, Any], device: str | None) -> dict[str, Any]:
    """The task options with the run's ``--device`` (resolved: ``auto`` is ``cuda`` where a GPU
    is visible, else ``cpu``) as ``device``, where the task's recipe trains the target and
    oracle. A ``device`` task option given in Python wins over the run's."""
    from unlearnbench.lm.modeling import resolve_device

    options = dict(task_options)
    if options.get("device") is None:
        options["device"] = str(resolve_device(str(device or "auto")))
    return options


def model_loaders(kit: ModelKit, *, name: str, family: str, version: str, data_fingerprint: str,
                  model_config: dict, train_config, recipe_name: str, x_train, y_train,
                  model: str | None, oracle: str | None, device=None, quiet: bool = False):
    """``(load_target, oracle_for, root)``: the target loader, ``oracle_for(forget_indices)``
    giving the oracle loader of one forget set, and the family world's cache folder. (The
    target comes first because a worst-case forget set is selected with it.)"""
    from unlearnbench.cache import cache_root, fingerprint
    from unlearnbench.task import LoadedModel

    key = world_key(family=family, version=version, data_fingerprint=data_fingerprint, model_config=model_config,
                    train_config=train_config, device=device)
    root = cache_root() / family / fingerprint(key)
    source = f"recipe:{recipe_name}"

    def loaded(folder: Path, what: str):
        from unlearnbench.reproducible import model_fingerprint

        net, _ = kit.load(folder)
        return LoadedModel(net, None, what, model_fingerprint(folder, kit.fingerprint))

    def load_target():
        if model is not None:
            return loaded(Path(model).expanduser(), str(model))
        folder = cached_model(kit, root / "target", model_config, x_train, y_train, train_config, TARGET_SEED,
                              device=device, quiet=quiet, description=f"training target ({family})")
        return loaded(folder, source)

    def oracle_for(forget_indices):
        keep = np.ones(len(y_train), dtype=bool)
        keep[forget_indices] = False

        def load_oracle():
            if oracle is not None:
                return loaded(Path(oracle).expanduser(), str(oracle))
            folder = cached_model(kit, root / f"oracle-{indices_hash(forget_indices)}", model_config, x_train[keep],
                                  y_train[keep], train_config, ORACLE_SEED, device=device, quiet=quiet,
                                  description=f"training oracle ({name})")
            return loaded(folder, source)

        return load_oracle

    return load_target, oracle_for, root


def sources(recipe_name: str, model: str | None, oracle: str | None) -> dict[str, str]:
    return {"target_source": model or f"recipe:{recipe_name}", "oracle_source": oracle or f"recipe:{recipe_name}"}


# ------------------------------------------------------------- saved models and configs
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def train_config_from(options, cls: type, default=None, *, what: str):
    """A training config (frozen dataclass ``cls``): the config itself, the default, or one
    rebuilt from its JSON form (records store it); unknown keys are named."""
    from dataclasses import fields

    from unlearnbench.errors import UserError

    if options is None:
        return default or cls()
    if isinstance(options, cls):
        return options
    if not isinstance(options, dict):
        raise UserError(f"A {what} training config must be a {cls.__name__} or a dict, got {options!r}.")
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UserError(f"Unknown {what} training option(s) {', '.join(unknown)}; known: {', '.join(known)}.")
    return cls(**options)


def save_model(model, config: dict, folder, *, format_name: str) -> Path:
    """Write ``model.safetensors`` (the state dict, buffers included) and ``config.json``."""
    import json

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": format_name})
    (folder / CONFIG_NAME).write_text(json.dumps(dict(config), indent=2, sort_keys=True) + "\n")
    return folder


def read_model_config(folder, *, what: str, archs, writer: str) -> dict:
    """The ``config.json`` of a saved model folder, checked, without loading the weights."""
    import json

    from unlearnbench.errors import ModelSourceError

    folder = Path(folder).expanduser()
    missing = [name for name in (CONFIG_NAME, WEIGHTS_NAME) if not (folder / name).is_file()]
    if missing:
        raise ModelSourceError(f"{what.capitalize()} folder {str(folder)!r} lacks {', '.join(missing)}; it must hold "
                               f"{CONFIG_NAME} and {WEIGHTS_NAME} (written by {writer}).")
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except json.JSONDecodeError as exc:
        raise ModelSourceError(f"{folder / CONFIG_NAME}: not valid JSON ({exc}).") from None
    if not isinstance(config, dict) or config.get("arch") not in archs:
        raise ModelSourceError(f"{folder / CONFIG_NAME}: not a {what} config (needs arch, one of {', '.join(archs)}).")
    return config


def load_model(folder, build: Callable[[dict], Any], *, what: str, archs, writer: str):
    """``(model, config)`` from a saved folder; the model is on CPU, in eval mode."""
    from safetensors.torch import load_file

    from unlearnbench.errors import ModelSourceError

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelSourceError(f"{what.capitalize()} folder {str(folder)!r} does not exist. Pass a folder written by {writer}.")
    config = read_model_config(folder, what=what, archs=archs, writer=writer)
    try:
        model = build(config)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ModelSourceError(f"{folder / CONFIG_NAME}: not a {what} config ({exc}).") from None
    try:
        model.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
    except RuntimeError as exc:
        raise ModelSourceError(f"{folder / WEIGHTS_NAME} does not match the architecture in {CONFIG_NAME}: {exc}") from None
    model.eval()
    return model, config


def weights_fingerprint(folder) -> str:
    """Identity of a saved model: the content fingerprint of its weights file (its tensors, as
    :func:`unlearnbench.reproducible.write_fingerprint` stores it for a model the harness built),
    so that a saved copy of a target has the target's fingerprint."""
    from unlearnbench.reproducible import tensors_fingerprint
    from safetensors.torch import load_file

    tensors = load_file(str(Path(folder) / WEIGHTS_NAME))
    return tensors_fingerprint({f"{WEIGHTS_NAME}:{k}": v for k, v in tensors.items()})


# ------------------------------------------------ unlearned models kept by --save-model
# A saved unlearned model is plain data: safetensors weights and JSON, nothing that runs
# code when it is read (no pickle). One model is the folder ``--model`` takes
# (``model.safetensors`` + ``config.json``); an ensemble is a folder of such folders named by
# an ``ensemble.json`` (see :mod:`unlearnbench.vision.saved`).
ENSEMBLE_FILE = "ensemble.json"
SAVED_FILES = (WEIGHTS_NAME, CONFIG_NAME, ENSEMBLE_FILE,
               "diffusion_pytorch_model.safetensors", "unlearnbench.json")  # diffusers' layout (diffusion/saved.py)


def check_architecture(model, fresh, *, what: str) -> None:
    """A :class:`UserError` unless ``model``'s state dict has exactly the tensors (names and
    shapes) of ``fresh``, the model its config builds: what is saved with that config must
    load back into it."""
    from unlearnbench.errors import UserError

    have = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    if have != want:
        differ = sorted(set(have) ^ set(want)) or sorted(k for k in have if have[k] != want[k])
        raise UserError(f"--save-model: the unlearned {what} ({type(model).__name__}) is not the architecture of "
                        f"the task's config, so it cannot be saved in the {what} layout (differs in "
                        f"{', '.join(differ[:5])}{' ...' if len(differ) > 5 else ''}).")


def replace_folder(folder) -> Path:
    """Make ``folder`` ready to receive a saved model: created if absent, emptied if it holds
    only what a saved model holds (a run saved again: :data:`SAVED_FILES` and ``shard-<i>``
    folders); a folder holding anything else is refused rather than overwritten."""
    import re
    import shutil

    from unlearnbench.errors import UserError

    folder = Path(folder)
    if folder.exists():
        if not folder.is_dir():
            raise UserError(f"--save-model: {str(folder)!r} exists and is not a folder.")
        entries = list(folder.iterdir())
        foreign = [e.name for e in entries if e.name not in SAVED_FILES and not re.fullmatch(r"shard-\d+", e.name)]
        if foreign:
            raise UserError(f"--save-model: {str(folder)!r} holds files that are not a saved model "
                            f"({', '.join(sorted(foreign)[:3])}); it is left alone. Pass an empty or new folder.")
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def inside(folder, name, *, where: str) -> Path:
    """``folder / name`` for a relative ``name`` from a layout file, refused (a
    :class:`ModelSourceError` naming ``where``) when it is not a plain relative path that
    stays inside ``folder``: absolute, with ``..``, or a link out of the folder."""
    from pathlib import PurePosixPath, PureWindowsPath

    from unlearnbench.errors import ModelSourceError

    bad = (not isinstance(name, str) or not name.strip() or "\\" in name or "\x00" in name
           or PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive
           or any(part == ".." for part in PurePosixPath(name).parts))
    if not bad:
        root = Path(folder).resolve()
        path = (root / name).resolve()
        bad = path == root or not path.is_relative_to(root)
    if bad:
        raise ModelSourceError(f"{where}: {name!r} is not a path inside the saved folder; a layout file names its "
                               "parts by relative paths within it (no '..', no absolute paths, no links out).")
    return Path(folder) / name


def save_single(model, config: dict, folder, *, save: Callable[..., Any], build: Callable[[dict], Any],
                fingerprint: Callable[[Any], str], layout: str, what: str) -> dict[str, Any]:
    """Save one model with ``save(model, config, folder)`` after checking that ``config``
    builds its architecture; what the record says about it."""
    check_architecture(model, build(config), what=what)
    save(model, config, folder)
    return {"layout": layout, "fingerprint": fingerprint(folder)}


def unlearned_folder(source: str, *, kind: str, writer: str) -> Path:
    """The local folder of ``--unlearned`` for an array task, or a :class:`ModelSourceError`
    saying what to pass (these tasks read no hub ids)."""
    from unlearnbench.errors import ModelSourceError

    hint = f"Pass a folder written by --save-model (runs/<id>/model) or by {writer} (model.safetensors and config.json)."
    if str(source).startswith("hub:"):
        raise ModelSourceError(f"--unlearned {source}: {kind} tasks read a local folder, not a hub id. {hint}")
    folder = Path(str(source)).expanduser()
    if not folder.is_dir():
        raise ModelSourceError(f"--unlearned {source}: no such folder. {hint}")
    return folder


def read_layout_file(folder: Path, *, layout: str, version: int) -> dict:
    """The checked ``ensemble.json`` of a saved folder: a JSON object with ``layout`` and
    ``version`` as expected and a non-empty ``shards`` list."""
    import json

    from unlearnbench.errors import ModelSourceError

    path = folder / ENSEMBLE_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelSourceError(f"{path}: not a readable JSON file ({exc}).") from None
    expected = f'{{"layout": "{layout}", "version": {version}, "shards": ["shard-0", ...]}}'
    if not isinstance(doc, dict) or doc.get("layout") != layout:
        found = doc.get("layout") if isinstance(doc, dict) else None
        raise ModelSourceError(f"{path}: layout {found!r} is not one this task reads; expected {expected}.")
    if doc.get("version") != version:
        raise ModelSourceError(f"{path}: version {doc.get('version')!r}; this unlearnbench reads version {version}.")
    shards = doc.get("shards")
    if not isinstance(shards, list) or not shards:
        raise ModelSourceError(f"{path}: no \"shards\" list; expected {expected}.")
    return doc


def check_fits(model, x_sample, *, source: str, what: str) -> None:
    """A :class:`ModelSourceError` unless ``model`` takes the task's inputs (one row)."""
    import torch

    from unlearnbench.errors import ModelSourceError

    try:
        with torch.no_grad():
            model.eval()(torch.as_tensor(np.asarray(x_sample[:1]), dtype=torch.float32))
    except (RuntimeError, ValueError, IndexError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelSourceError(f"--unlearned {source}: the saved {what} does not take this task's inputs "
                               f"(shape {list(np.asarray(x_sample).shape[1:])}): {detail}") from None


# ----------------------------------------------------------------------- the optimiser loop
GRAD_CLIP = 5.0


def split_parameters(model, parameters=None) -> tuple[list, list]:
    """``(trained, frozen)``: what the optimiser updates (``parameters``, default every
    trainable parameter) and the trainable parameters it must leave exactly as they are."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    params = list(parameters) if parameters is not None else trainable
    chosen = {id(p) for p in params}
    return params, [p for p in trainable if id(p) not in chosen]


def optimise(model, params, frozen, optimizer, batches, loss_fn, *, total: int, description: str, quiet: bool,
             scheduler=None, autocast=None):
    """The step loop the classifier and regression recipes share: for each ``(xb, yb)`` of
    ``batches``, ``loss_fn(model, xb, yb)`` (under ``autocast``), a stop with
    :class:`TrainingDivergedError` on a non-finite loss, backward, clipping at
    :data:`GRAD_CLIP`, an optimiser (and scheduler) step, and a progress bar. ``frozen``
    parameters get no gradient while it runs and their flags back afterwards; the model ends
    in eval mode."""
    import contextlib
    import math

    import torch

    from unlearnbench.errors import TrainingDivergedError
    from unlearnbench.progress import progress_bar
    from unlearnbench.trajectory import step_done

    autocast = autocast or contextlib.nullcontext()
    for p in frozen:  # no gradients for what is not trained: faster, and no stale .grad left behind
        p.requires_grad_(False)
    model.train()
    step = 0
    try:
        with progress_bar(description, total=total, quiet=quiet) as advance:
            for xb, yb in batches:
                with autocast:
                    loss = loss_fn(model, xb, yb)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingDivergedError(description, step, value)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                step += 1
                step_done(model)  # --eval-every scores the model here (unlearnbench.trajectory)
                advance(1, loss=value)
    finally:
        for p in frozen:
            p.requires_grad_(True)
        model.eval()
    return model


# ------------------------------------------------------------------------ the families' base
FORGET_INDICES_HELP = "a forget-index file (from `unlearnbench forgetset`) replacing the task's built-in forget set"


def split_array_task(task, split: str):
    """The task scored on its validation or test rows (``split``): the forget, retain and test
    sets each keep the rows whose index (``train/<i>``, ``test/<i>``) hashes into the validation
    quarter, or the others (:func:`unlearnbench.family.validation_mask`). A method still sees
    the whole forget and retain sets (:func:`unlearnbench.family.unsliced`); the oracle is the
    task's own."""
    from dataclasses import replace

    from unlearnbench.family import FULL_TASK, SPLIT, unsliced, validation_mask

    name = task.spec.name
    f, r = np.asarray(task.forget_indices), np.asarray(task.retain_indices)
    side = (lambda m: m) if split == "validation" else (lambda m: ~m)
    f = f[side(validation_mask([f"train/{i}" for i in f], f"{name} forget"))]
    r = r[side(validation_mask([f"train/{i}" for i in r], f"{name} retain"))]
    t = np.nonzero(side(validation_mask([f"test/{i}" for i in range(len(task.y_test))], f"{name} test")))[0]
    rows = np.sort(np.concatenate([f, r]))
    spec = replace(task.spec, options=task.spec.options + ((SPLIT, split),))
    return replace(task, spec=spec, x_train=task.x_train[rows], y_train=task.y_train[rows],
                   forget_indices=np.searchsorted(rows, f).astype(np.int64), x_test=task.x_test[t],
                   y_test=task.y_test[t], extra={**task.extra, FULL_TASK: unsliced(task),
                                                 "split_rows": {"train": rows, "test": t}})


def describe_arrays(task) -> dict[str, Any]:
    """``unlearnbench show task`` for classifier and regression tasks."""
    return {"training rows": len(task.y_train), "forget rows": len(task.forget_indices),
            "retain rows": len(task.y_train) - len(task.forget_indices), "test rows": len(task.y_test),
            "features": list(np.asarray(task.x_train).shape[1:])}


def _index_file(path: str) -> dict:
    from unlearnbench.vision.classifier import read_index_file

    return read_index_file(path)


def forget_indices_option():
    """``--forget-indices FILE``, which every classifier and regression task takes: the file is
    read when the run is planned (a missing or malformed file fails before any work) and its
    content, not its path, goes to the task and into the run id."""
    from unlearnbench.family import Option

    return Option("forget_indices", FORGET_INDICES_HELP, type=_index_file, portable=True)


# ----------------------------------------------------------- the early stop of gradient ascent
# Shared by the classifier and regression ``ga`` (methods/vision/ga.py, methods/tabular/ga.py,
# which make their own checks): gradient ascent has no minimum, so it must not run away silently.
class StopAscent(Exception):
    """Raised from inside the loss to leave the shared training loop."""


class AscentGuard:
    """Counts the shared loop's steps, says when a whole-forget-set check is due (every
    ``check_every`` steps, by default about 4 times per epoch, and before the first step),
    and stops the loop with the reason recorded in ``ctx.info["ga_stopped"]`` and the log."""

    def __init__(self, ctx, n_rows: int, batch_size: int, check_every: int):
        self.ctx, self.step = ctx, 0
        self.per_epoch = math.ceil(n_rows / batch_size)
        self.every = check_every if check_every > 0 else math.ceil(self.per_epoch / 4)

    @property
    def due(self) -> bool:
        return self.step % self.every == 0

    def stop(self, reason: str):
        epoch = self.step / self.per_epoch
        self.ctx.info["ga_stopped"] = {"reason": reason, "step": self.step, "epoch": round(epoch, 3)}
        self.ctx.log(f"ga: stopped early at step {self.step} (epoch {epoch:.2f}): {reason}")
        raise StopAscent

    def run(self, train) -> None:
        """``train()`` until it ends or a check stops it."""
        try:
            train()
        except StopAscent:
            pass
