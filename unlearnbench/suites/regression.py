"""The regression suite (Tarun et al., 2023, "Deep Regression Unlearning"): errors on the
retain, forget and test rows, the Wasserstein-1 gap of the forget-set predictions to the
oracle's, a loss-based membership attack, and the anamnesis index.

``statistics`` needs the model (predictions, and the relearning run behind the anamnesis
index: on a copy, never the model itself); ``aggregate`` is pure over the per-example
predictions and relearning step counts, so the leaderboard can recompute it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unlearnbench.suites.common import MetricRow
from unlearnbench.registry import register_suite
from unlearnbench.suites.base import ScoreContext, Suite

AIN_TOLERANCE = 0.05  # relearned once the forget loss is within 5% of the original's
AIN_MAX_STEPS = 500
AIN_LR = 1e-3
AIN_BATCH = 16


def rows() -> list[MetricRow]:
    return [
        MetricRow("l1_forget", "oracle", "behavior", "mean absolute error on the forget rows (original units)"),
        MetricRow("w1_to_retrain", "lower", "behavior", "Wasserstein-1 distance of the forget-set predictions to the oracle's"),
        MetricRow("regression_mia", "oracle", "privacy", "share of forget rows a loss-based attacker (retain vs test) calls members"),
        MetricRow("ain", "oracle", "robustness", "anamnesis index: relearning steps back to the original's forget loss, / the oracle's"),
        MetricRow("l1_retain", "lower", "utility", "mean absolute error on the retain rows"),
        MetricRow("l1_test", "lower", "utility", "mean absolute error on the test rows"),
        MetricRow("mse_test", "lower", "utility", "mean squared error on the test rows"),
        MetricRow("rte", "lower", "utility", "seconds the method took to unlearn (not evaluation)"),
    ]


def statistics(model, task, *, original=None, device=None, seed: int = 0, relearn: bool = True) -> dict[str, Any]:
    """Predictions on the forget, retain and test rows, and (``relearn``: the robustness lens)
    the relearning step count behind the anamnesis index."""
    from unlearnbench.tabular.anamnesis import relearn_steps
    from unlearnbench.metrics import regression as rm
    from unlearnbench.tabular.regression import predict

    f, r = task.forget_indices, task.retain_indices
    out: dict[str, Any] = {
        "forget": {"pred": predict(model, task.x_train[f]), "y": np.asarray(task.y_train[f])},
        "retain": {"pred": predict(model, task.x_train[r]), "y": np.asarray(task.y_train[r])},
        "test": {"pred": predict(model, task.x_test), "y": np.asarray(task.y_test)},
    }
    if not relearn:
        return out
    reference = original if original is not None else model
    original_loss = float(rm.mse(predict(reference, task.x_train[f]), task.y_train[f]))
    out["relearn_steps"] = int(relearn_steps(model, task.x_train[f], task.y_train[f], original_loss, lr=AIN_LR,
                                             batch_size=AIN_BATCH, max_steps=AIN_MAX_STEPS, seed=seed))
    return out


def per_example(stats: dict[str, Any], rte_s: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {split: {"pred": np.asarray(stats[split]["pred"], dtype=float).tolist(),
                                   "y": np.asarray(stats[split]["y"], dtype=float).tolist()}
                           for split in ("forget", "retain", "test")}
    if "relearn_steps" in stats:
        out["relearn_steps"] = int(stats["relearn_steps"])
    if rte_s is not None:
        out["rte_s"] = float(rte_s)
    return out


def _split(pe: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(pe[name]["pred"], dtype=float), np.asarray(pe[name]["y"], dtype=float)


def aggregate(per_example: dict, oracle_per_example: dict | None, *, seed: int = 0,
              n_resamples: int = 1000) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Flat metrics from the predictions (pure: no model)."""
    from unlearnbench.metrics import regression as rm

    f_p, f_y = _split(per_example, "forget")
    r_p, r_y = _split(per_example, "retain")
    t_p, t_y = _split(per_example, "test")
    metrics = {"l1_retain": float(rm.l1(r_p, r_y)), "l1_forget": float(rm.l1(f_p, f_y)),
               "l1_test": float(rm.l1(t_p, t_y)), "mse_test": float(rm.mse(t_p, t_y))}
    losses = {name: (p - y) ** 2 for name, (p, y) in (("retain", (r_p, r_y)), ("test", (t_p, t_y)), ("forget", (f_p, f_y)))}
    metrics["regression_mia"] = float(rm.regression_mia(losses["retain"], losses["test"], losses["forget"], seed=seed))
    if oracle_per_example is not None:
        metrics["w1_to_retrain"] = float(rm.w1_to_retrain(f_p, _split(oracle_per_example, "forget")[0]))
        if "relearn_steps" in per_example and "relearn_steps" in oracle_per_example:
            metrics["ain"] = float(rm.anamnesis_index(per_example["relearn_steps"], oracle_per_example["relearn_steps"]))
    if per_example.get("rte_s") is not None:
        metrics["rte"] = float(per_example["rte_s"])
    return metrics, {}


@register_suite("regression", summary="L1 errors, W1 to retrain, regression MIA, anamnesis index, RTE")
class RegressionSuite(Suite):
    name = "regression"

    rows = staticmethod(rows)
    aggregate = staticmethod(aggregate)

    def score(self, scorer, ctx: ScoreContext) -> dict:
        # the anamnesis index (robustness lens) relearns towards the original's forget loss
        stats = statistics(scorer, ctx.task, original=ctx.original, device=ctx.device, seed=ctx.seed,
                           relearn="robustness" in ctx.lenses)
        return per_example(stats, rte_s=ctx.rte_s)

    def trajectory_rows(self) -> list[MetricRow]:
        # the predictions' metrics; not the anamnesis index (a relearning run) nor the unlearning time
        return [row for row in rows() if row.name not in ("ain", "rte")]

    def trajectory_point(self, scorer, ctx: ScoreContext, oracle_per_example: dict | None) -> dict[str, float]:
        stats = statistics(scorer, ctx.task, device=ctx.device, seed=ctx.seed, relearn=False)
        return aggregate(per_example(stats), oracle_per_example, seed=ctx.seed)[0]

    def reference_key(self, ctx: ScoreContext) -> dict:
        return {"seed": ctx.seed, "relearn": "robustness" in ctx.lenses}  # the relearning run is seeded
