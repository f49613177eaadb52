"""The regression family: MLP regressors on scikit-learn's diabetes data or your own table.

Tasks hold arrays and forget indices (:class:`unlearnbench.task.RegressionTask`); a method gets
:class:`unlearnbench.method.RegressionData`; the suite scores a model by its predictions on
the forget, retain and test rows (and, with the robustness lens, by how fast it relearns).
"""

from __future__ import annotations

from typing import Any

from unlearnbench.arraytasks import describe_arrays, forget_indices_option
from unlearnbench.family import Family, Option
from unlearnbench.registry import register_family

OWN_TABLE = ("tabular-regression",)  # the task that reads the user's table


@register_family("regression", summary="tabular regression (diabetes, your own table)")
class RegressionFamily(Family):
    kind = "regression"
    description = "tabular regression: arrays and forget indices, scored by predictions"
    options = (
        forget_indices_option(),
        Option("data_file", "your table (.csv or .parquet)", tasks=OWN_TABLE),
        Option("target", "the column to predict", tasks=OWN_TABLE),
        Option("forget", "random-<p> (default random-10) or range-<lo>-<hi> (rows whose target is in [lo, hi])",
               tasks=OWN_TABLE),
    )

    def describe(self, task) -> dict[str, Any]:
        return describe_arrays(task)

    def method_data(self, task, forget_role: str, target) -> Any:
        from unlearnbench.method import RegressionData

        f, r = task.forget_indices, task.retain_indices
        return RegressionData(x_forget=task.x_train[f], y_forget=task.y_train[f], x_retain=task.x_train[r],
                              y_retain=task.y_train[r], model_config=task.model_config, train_config=task.train_config)
