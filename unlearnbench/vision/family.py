"""The classifier family: image classifiers on digits, CIFAR-10 and CIFAR-100.

Tasks hold arrays and forget indices (:class:`unlearnbench.task.ClassifierTask`); a method gets
:class:`unlearnbench.method.ClassifierData`; the suite scores a model by its class
probabilities on the forget, retain and test rows. The run's ``--device`` is where a task's
recipe trains its target and oracle; ``--save-model`` / ``--unlearned`` write and read the
layouts of :mod:`unlearnbench.vision.saved` (one classifier, or a SISA ensemble).
"""

from __future__ import annotations

from typing import Any

from unlearnbench.arraytasks import describe_arrays, forget_indices_option, recipe_options
from unlearnbench.family import Family, Option, split_option, unsliced
from unlearnbench.registry import register_family


def _mia_features() -> tuple[str, ...]:
    from unlearnbench.metrics.classifier import MIA_FEATURES

    return tuple(MIA_FEATURES)


@register_family("classifier", summary="image classifiers (digits, CIFAR-10/100)")
class ClassifierFamily(Family):
    kind = "classifier"
    description = "image classifiers: arrays and forget indices, scored by class probabilities"
    options = (
        forget_indices_option(),
        split_option(),
        Option("mia_feature", "the MIA-Efficacy attacker's feature", default="confidence", task=False,
               choices=_mia_features, in_run_id=True),
    )
    commands = ("unlearnbench.vision.commands:forgetset",)

    def load_task(self, factory, *, data_dir, model, oracle, quiet, task_options, device="auto"):
        return factory(data_dir=data_dir, model=model, oracle=oracle, quiet=quiet,
                       **recipe_options(task_options, device))

    def split_task(self, task, split: str):
        from unlearnbench.arraytasks import split_array_task

        return split_array_task(task, split)

    def describe(self, task) -> dict[str, Any]:
        return describe_arrays(task) | {"classes": task.num_classes, "forget class": task.forget_class}

    def save_model(self, model, folder, *, task, target, artifacts: dict) -> dict[str, Any]:
        from unlearnbench.vision.saved import save_unlearned_classifier

        return save_unlearned_classifier(model, folder, task.model_config)

    def load_unlearned(self, source: str, task, target, *, device, options: dict):
        from unlearnbench.task import LoadedModel
        from unlearnbench.vision.saved import load_unlearned_classifier

        model, _, fingerprint = load_unlearned_classifier(source, num_classes=task.num_classes,
                                                          x_sample=task.x_train[:1])
        return LoadedModel(model.to(device).eval(), None, str(source), fingerprint)

    def method_data(self, task, forget_role: str, target) -> Any:
        task = unsliced(task)  # on a split run too, the method unlearns the whole forget set
        from unlearnbench.method import ClassifierData

        f, r = task.forget_indices, task.retain_indices
        return ClassifierData(
            x_forget=task.x_train[f], y_forget=task.y_train[f], x_retain=task.x_train[r], y_retain=task.y_train[r],
            num_classes=task.num_classes, model_config=task.model_config, train_config=task.train_config,
            x_train=task.x_train, y_train=task.y_train, forget_indices=f, forget_class=task.forget_class)
