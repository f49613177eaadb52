"""A diffusion task and what a diffusion method is given; the worlds' shared builder.

A world trains three models with its recipes, each once and cached under
``cache_root()/<family>/<fingerprint>`` (:func:`unlearnbench.arraytasks.model_loaders`): the
target (a class-conditional DDPM on every training image, seed 0), the oracle (on every
class but the forgotten one, seed 1000) and the judge (a classifier on the training images,
which reads generated images: UA, kept-class accuracy and the features of the Fréchet
distance and precision / recall).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from unlearnbench.task import LoadedModel, TaskSpec


@dataclass(frozen=True)
class Sampling:
    """The seeded, fixed sampling budget of a task: ``per_class`` images per class, DDIM with
    ``steps`` steps, ``eta`` and classifier-free guidance ``guidance``."""

    per_class: int = 64
    steps: int = 20
    guidance: float = 2.0
    eta: float = 0.0
    grid: int = 8  # images per class kept for the report's sample grid


@dataclass(frozen=True)
class DiffusionWorld:
    """Everything a diffusion world's recipes are: the UNet's config and training recipe, the
    judge's config and recipe, the sampling budget (a task module's defaults; tests pass a
    tiny one as the task option ``world``)."""

    model_config: dict
    train: Any  # DiffusionTrainConfig
    judge_config: dict
    judge_train: Any  # ClassifierTrainConfig
    sampling: Sampling

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model_config, "train": asdict(self.train), "judge": self.judge_config,
                "judge_train": asdict(self.judge_train), "sampling": asdict(self.sampling)}


SAMPLING_OPTIONS = {"samples_per_class": "per_class", "sampling_steps": "steps", "guidance": "guidance"}


def sampling_of(task, options: dict) -> Sampling:
    """The task's sampling budget with the run's overrides (the family's options)."""
    from dataclasses import replace

    changes = {field: options[name] for name, field in SAMPLING_OPTIONS.items() if options.get(name) is not None}
    return replace(task.sampling, **changes)


@dataclass
class DiffusionTask:
    """A class-wise diffusion unlearning task: training images ``x_train`` (float32 ``[N, C,
    H, W]`` in [-1, 1]) and labels, real held-out images per class (``x_real`` / ``y_real``:
    the Fréchet distance's reference), the forgotten class, the architecture and recipe."""

    spec: TaskSpec
    x_train: Any
    y_train: Any
    x_real: Any
    y_real: Any
    forget_class: int
    num_classes: int
    model_config: dict
    train_config: Any  # unlearnbench.diffusion.model.DiffusionTrainConfig
    sampling: Sampling
    load_target: Callable[[], LoadedModel]
    load_oracle: Callable[[], LoadedModel]
    load_judge: Callable[[], LoadedModel]
    data_fingerprint: str = ""
    suite: str = "generation"
    extra: dict[str, Any] = field(default_factory=dict)

    kind = "diffusion"

    @property
    def fingerprint(self) -> str:
        blob = json.dumps({"spec": self.spec.to_json(), "data": self.data_fingerprint}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def forget_mask(self) -> np.ndarray:
        return np.asarray(self.y_train) == self.forget_class


@dataclass
class DiffusionData:
    """What a diffusion method sees: the forget images (every training image of the forgotten
    class, float32 in [-1, 1]) and the retain images with their labels, the class count and
    forgotten class, the architecture and recipe (``retrain``), and the null class index of
    classifier-free guidance."""

    x_forget: Any
    y_forget: Any
    x_retain: Any
    y_retain: Any
    num_classes: int
    forget_class: int
    model_config: dict
    train_config: Any

    @property
    def null_class(self) -> int:
        return self.num_classes

    @property
    def kept_classes(self) -> list[int]:
        return [c for c in range(self.num_classes) if c != self.forget_class]


def make_diffusion_task(*, name: str, family: str, version: str, forget_class: int, x_train, y_train, x_real, y_real,
                        num_classes: int, data_fingerprint: str, world: DiffusionWorld, recipe_name: str,
                        options: Sequence[tuple[str, Any]] = (), model: str | None = None,
                        oracle: str | None = None, device=None, quiet: bool = False) -> DiffusionTask:
    """The task of forgetting ``forget_class``: the target, oracle and judge loaders (trained
    with the recipes and cached, or ``--model`` / ``--oracle`` folders of
    :func:`unlearnbench.diffusion.model.save_diffusion`)."""
    from unlearnbench.arraytasks import ModelKit, cached_model, model_loaders, sources, task_spec
    from unlearnbench.cache import fingerprint
    from unlearnbench.reproducible import model_fingerprint
    from unlearnbench.diffusion.model import diffusion_kit
    from unlearnbench.errors import UserError
    from unlearnbench.lm.modeling import resolve_device
    from unlearnbench.vision.classifier import classifier_fingerprint, fit_classifier, load_classifier, save_classifier

    model_config, train_config, sampling = dict(world.model_config), world.train, world.sampling
    judge_config, judge_train = dict(world.judge_config), world.judge_train
    if not 0 <= forget_class < num_classes:
        raise UserError(f"{name}: class {forget_class} does not exist; classes are 0..{num_classes - 1}.")
    device = resolve_device(str(device)) if device is not None else None
    spec = task_spec(name, family, version, f"class-{forget_class}", options, None)
    load_target, oracle_for, root = model_loaders(
        diffusion_kit(), name=name, family=family, version=version, data_fingerprint=data_fingerprint,
        model_config=model_config, train_config=train_config, recipe_name=recipe_name, x_train=x_train,
        y_train=y_train, model=model, oracle=oracle, device=device, quiet=quiet)
    forget = np.nonzero(np.asarray(y_train) == forget_class)[0]
    judge_kit = ModelKit(fit=fit_classifier, save=save_classifier, load=load_classifier,
                         fingerprint=classifier_fingerprint)
    judge_key = fingerprint({"judge": judge_config, "train": asdict(judge_train), "data": data_fingerprint})

    loaded: list[LoadedModel] = []  # the judge is loaded once per task

    def load_judge() -> LoadedModel:
        if loaded:
            return loaded[0]
        folder = cached_model(judge_kit, root / f"judge-{judge_key}", judge_config, x_train, y_train, judge_train, 0,
                              device=device, quiet=quiet, description=f"training judge ({family})")
        net, _ = judge_kit.load(folder)
        loaded.append(LoadedModel(net.to(device or "cpu").eval(), None, f"recipe:{recipe_name}-judge",
                                  model_fingerprint(folder, judge_kit.fingerprint)))
        return loaded[0]

    return DiffusionTask(
        spec=spec, x_train=x_train, y_train=y_train, x_real=x_real, y_real=y_real, forget_class=forget_class,
        num_classes=num_classes, model_config=model_config, train_config=train_config, sampling=sampling,
        load_target=load_target, load_oracle=oracle_for(forget), load_judge=load_judge,
        data_fingerprint=fingerprint({"data": data_fingerprint, "forget": forget_class, "judge": judge_key,
                                      "sampling": asdict(sampling)}),
        extra={"recipe": recipe_name, "cache_dir": str(root), "judge": judge_config, **sources(recipe_name, model, oracle)})
