"""The regression family: MLP regressors on scikit-learn's diabetes data or your own table.

Tasks hold arrays and forget indices (:class:`unlearnbench.task.RegressionTask`); a method gets
:class:`unlearnbench.method.RegressionData`; the suite scores a model by its predictions on
the forget, retain and test rows (and, with the robustness lens, by how fast it relearns).
The run's ``--device`` is where a task's recipe trains its target and oracle;
``--save-model`` writes the unlearned regressor as the folder ``--model`` takes
(``model.safetensors`` + ``config.json``, layout ``unlearnbench-regressor``) and
``--unlearned PATH`` reads such a folder back.
"""

from __future__ import annotations

from typing import Any

from unlearnbench.arraytasks import describe_arrays, forget_indices_option, recipe_options
from unlearnbench.family import Family, Option, split_option, unsliced
from unlearnbench.registry import register_family

OWN_TABLE = ("tabular-regression",)  # the task that reads the user's table


@register_family("regression", summary="tabular regression (diabetes, your own table)")
class RegressionFamily(Family):
    kind = "regression"
    description = "tabular regression: arrays and forget indices, scored by predictions"
    options = (
        forget_indices_option(),
        split_option(),
        Option("data_file", "your table (.csv or .parquet)", tasks=OWN_TABLE),
        Option("target", "the column to predict", tasks=OWN_TABLE),
        Option("forget", "random-<p> (default random-10) or range-<lo>-<hi> (rows whose target is in [lo, hi])",
               tasks=OWN_TABLE),
    )

    def load_task(self, factory, *, data_dir, model, oracle, quiet, task_options, device="auto"):
        return factory(data_dir=data_dir, model=model, oracle=oracle, quiet=quiet,
                       **recipe_options(task_options, device))

    def split_task(self, task, split: str):
        from unlearnbench.arraytasks import split_array_task

        return split_array_task(task, split)

    def describe(self, task) -> dict[str, Any]:
        return describe_arrays(task)

    def save_model(self, model, folder, *, task, target, artifacts: dict) -> dict[str, Any]:
        from unlearnbench.arraytasks import replace_folder, save_single
        from unlearnbench.tabular.regression import FORMAT_NAME, build_regressor, regressor_fingerprint, save_regressor

        return save_single(model, task.model_config, replace_folder(folder), save=save_regressor,
                           build=build_regressor, fingerprint=regressor_fingerprint, layout=FORMAT_NAME,
                           what="regressor")

    def load_unlearned(self, source: str, task, target, *, device, options: dict):
        from unlearnbench.arraytasks import CONFIG_NAME, ENSEMBLE_FILE, WEIGHTS_NAME, check_fits, unlearned_folder
        from unlearnbench.errors import ModelSourceError
        from unlearnbench.tabular.regression import load_regressor, regressor_fingerprint
        from unlearnbench.task import LoadedModel

        folder = unlearned_folder(source, kind="regression", writer="save_regressor")
        if not ((folder / CONFIG_NAME).is_file() or (folder / WEIGHTS_NAME).is_file()):
            what = (f"{ENSEMBLE_FILE} (an ensemble; regression tasks read one model)"
                    if (folder / ENSEMBLE_FILE).is_file() else f"neither {CONFIG_NAME} nor {WEIGHTS_NAME}")
            raise ModelSourceError(f"--unlearned {source}: {str(folder)!r} holds {what}. Pass a folder written by "
                                   "--save-model (runs/<id>/model) or by save_regressor (model.safetensors and "
                                   "config.json).")
        model, config = load_regressor(folder)
        if int(config.get("in_features", -1)) != task.x_train.shape[1]:
            raise ModelSourceError(f"--unlearned {source}: the saved regressor takes {config.get('in_features')} "
                                   f"features; the task has {task.x_train.shape[1]}.")
        check_fits(model, task.x_train[:1], source=source, what="regressor")
        return LoadedModel(model.to(device).eval(), None, str(source), regressor_fingerprint(folder))

    def method_data(self, task, forget_role: str, target) -> Any:
        task = unsliced(task)  # on a split run too, the method unlearns the whole forget set
        from unlearnbench.method import RegressionData

        f, r = task.forget_indices, task.retain_indices
        return RegressionData(x_forget=task.x_train[f], y_forget=task.y_train[f], x_retain=task.x_train[r],
                              y_retain=task.y_train[r], model_config=task.model_config, train_config=task.train_config)
