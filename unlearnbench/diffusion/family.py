"""The diffusion family: class-conditional image generators (digits, CIFAR-10).

Tasks hold training images by class and the forgotten class
(:class:`unlearnbench.diffusion.world.DiffusionTask`); a method gets
:class:`unlearnbench.diffusion.world.DiffusionData`; the generation suite
(:mod:`unlearnbench.suites.generation`) samples a seeded, fixed budget of images per class
through :class:`GenerationScorer` and lets the task's judge classify them. The run's
``--device`` is where the recipes train the target, oracle and judge; the sampling budget
of the task can be changed per run (``--samples-per-class``, ``--sampling-steps``,
``--guidance``; each changes the run id and the references' cache key).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unlearnbench.family import Family, Option
from unlearnbench.registry import register_family

class GenerationScorer:
    """What the generation suite samples through: the model, the world's config, the judge."""

    def __init__(self, model, task, judge, device):
        self.model, self.task, self.judge, self.device = model, task, judge, device

    def generate(self, labels, *, seed: int, steps: int, guidance: float, eta: float) -> np.ndarray:
        from unlearnbench.diffusion.model import generate

        return generate(self.model, labels, self.task.model_config, seed=seed, steps=steps, guidance=guidance, eta=eta)

    def judge_outputs(self, images) -> tuple[np.ndarray, np.ndarray]:
        from unlearnbench.diffusion.model import judge_outputs

        return judge_outputs(self.judge, images)


@register_family("diffusion", summary="class-conditional image generators (digits, CIFAR-10)")
class DiffusionFamily(Family):
    kind = "diffusion"
    description = "class-conditional diffusion models: images by class, scored by a judge on generated images"
    options = (
        Option("samples_per_class", "images generated per class (default: the task's budget)", type=int, task=False,
               in_run_id=True),
        Option("sampling_steps", "DDIM steps per image (default: the task's)", type=int, task=False, in_run_id=True),
        Option("guidance", "classifier-free guidance scale (default: the task's)", type=float, task=False,
               in_run_id=True),
    )

    def load_task(self, factory, *, data_dir, model, oracle, quiet, task_options, device="auto"):
        from unlearnbench.arraytasks import recipe_options

        return factory(data_dir=data_dir, model=model, oracle=oracle, quiet=quiet,
                       **recipe_options(task_options, device))

    def describe(self, task) -> dict[str, Any]:
        y = np.asarray(task.y_train)
        return {"train images": len(y), "forget images": int((y == task.forget_class).sum()),
                "real reference images": len(task.y_real), "classes": task.num_classes,
                "forget class": task.forget_class, "sampling": vars(task.sampling)}

    def load_models(self, task, *, device=None, options: dict | None = None):
        target, oracle = task.load_target(), task.load_oracle()
        for loaded in (target, oracle):
            loaded.model.to(device or "cpu").eval()
        return target, oracle

    def save_model(self, model, folder, *, task, target, artifacts: dict) -> dict[str, Any]:
        from unlearnbench.diffusion.saved import save_unlearned_diffusion

        return save_unlearned_diffusion(model, folder, task.model_config)

    def load_unlearned(self, source: str, task, target, *, device, options: dict):
        from unlearnbench.diffusion.saved import load_unlearned_diffusion
        from unlearnbench.task import LoadedModel

        model, fingerprint = load_unlearned_diffusion(source, task.model_config)
        return LoadedModel(model.to(device or "cpu").eval(), None, str(source), fingerprint)

    def method_data(self, task, forget_role: str, target) -> Any:
        from unlearnbench.diffusion.world import DiffusionData

        f = task.forget_mask
        return DiffusionData(x_forget=task.x_train[f], y_forget=task.y_train[f], x_retain=task.x_train[~f],
                             y_retain=task.y_train[~f], num_classes=task.num_classes, forget_class=task.forget_class,
                             model_config=task.model_config, train_config=task.train_config,
                             load_oracle=task.load_oracle)

    def scorer(self, model, target, task, device, *, quiet: bool, label: str):
        judge = task.load_judge().model.to(device or "cpu")
        return GenerationScorer(model, task, judge, device)

    def model_info(self, task) -> dict[str, Any]:
        return {"judge": task.extra.get("judge")}
