"""The classifier suite (SalUn; Challenging Forgets): UA, RA, TA, MIA-Efficacy, the average
gap to the oracle (retrain), and the unlearning time.

``statistics`` needs only the model's class probabilities on the forget, retain and test
rows; everything else is a pure function of them, so the leaderboard can recompute it. For
class-wise forgetting, TA is on the test rows of the other classes and ``ta_forget_class``
is the accuracy on the forgotten class's test rows (what UA measures on training rows).
Accuracies are in percent, so ``avg_gap`` is in points, as the papers report it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unlearnbench.metrics import classifier as cm
from unlearnbench.suites.common import MetricRow
from unlearnbench.registry import register_suite
from unlearnbench.suites.base import ScoreContext, Suite

GAP_KEYS = ("ua", "ra", "ta", "mia_efficacy")
MIA_FEATURE = "confidence"


def rows() -> list[MetricRow]:
    return [
        MetricRow("ua", "oracle", "behavior", "unlearning accuracy: 100 x (1 - accuracy on the forget set)"),
        MetricRow("ta_forget_class", "oracle", "behavior", "test accuracy on the forgotten class (class-wise forgetting)"),
        MetricRow("mia_efficacy", "oracle", "privacy", "share of forget rows an SVC on confidence (or --mia-feature; retain vs test) calls non-member, x 100"),
        MetricRow("avg_gap", "lower", "behavior", "mean |UA, RA, TA, MIA-Efficacy - the oracle's| (points)"),
        MetricRow("ra", "higher", "utility", "accuracy on the retain set, x 100"),
        MetricRow("ta", "higher", "utility", "test accuracy (other classes only for class-wise forgetting), x 100"),
        MetricRow("rte", "lower", "utility", "run-time efficiency: seconds the method took to unlearn (not evaluation)"),
    ]


def statistics(model, task, *, device=None) -> dict[str, Any]:
    """Class probabilities of one model on the forget, retain and test rows."""
    from unlearnbench.vision.classifier import predict_proba

    retain = task.retain_indices
    return {
        "forget": {"probs": predict_proba(model, task.x_train[task.forget_indices], device=device),
                   "labels": np.asarray(task.y_train[task.forget_indices])},
        "retain": {"probs": predict_proba(model, task.x_train[retain], device=device),
                   "labels": np.asarray(task.y_train[retain])},
        "test": {"probs": predict_proba(model, task.x_test, device=device), "labels": np.asarray(task.y_test)},
        "forget_class": task.forget_class,
    }


def per_example(stats: dict[str, Any], rte_s: float | None = None, mia_feature: str = MIA_FEATURE) -> dict[str, Any]:
    out: dict[str, Any] = {split: {"probs": np.round(stats[split]["probs"], 6).tolist(),
                                   "labels": np.asarray(stats[split]["labels"]).tolist()}
                           for split in ("forget", "retain", "test")}
    out["forget_class"] = stats["forget_class"]
    out["mia_feature"] = mia_feature
    if rte_s is not None:
        out["rte_s"] = float(rte_s)
    return out


def _split(pe: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(pe[name]["probs"], dtype=float), np.asarray(pe[name]["labels"], dtype=np.int64)


def aggregate(per_example: dict, oracle_per_example: dict | None, *, seed: int = 0,
              n_resamples: int = 1000) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Flat metrics (percent) from the class probabilities (pure: no model)."""
    f_p, f_y = _split(per_example, "forget")
    r_p, r_y = _split(per_example, "retain")
    t_p, t_y = _split(per_example, "test")
    k = per_example.get("forget_class")
    metrics: dict[str, float] = {"ua": 100.0 * cm.unlearning_accuracy(f_p, f_y), "ra": 100.0 * cm.accuracy(r_p, r_y)}
    if k is None:
        metrics["ta"] = 100.0 * cm.accuracy(t_p, t_y)
    else:
        other, own = t_y != k, t_y == k
        metrics["ta"] = 100.0 * cm.accuracy(t_p[other], t_y[other])
        if own.any():
            metrics["ta_forget_class"] = 100.0 * cm.accuracy(t_p[own], t_y[own])
    feature = per_example.get("mia_feature", MIA_FEATURE)
    metrics["mia_efficacy"] = 100.0 * cm.mia_efficacy(r_p, r_y, t_p, t_y, f_p, f_y, feature=feature, seed=seed)
    if oracle_per_example is not None:  # the oracle's MIA-Efficacy with the same attack feature
        reference = aggregate({**oracle_per_example, "mia_feature": feature}, None, seed=seed)[0]
        metrics["avg_gap"] = float(cm.avg_gap(metrics, reference, keys=GAP_KEYS))
    if per_example.get("rte_s") is not None:
        metrics["rte"] = float(per_example["rte_s"])
    return metrics, {}


@register_suite("classifier", summary="UA, RA, TA, MIA-Efficacy, avg gap to retrain, RTE")
class ClassifierSuite(Suite):
    name = "classifier"

    rows = staticmethod(rows)
    aggregate = staticmethod(aggregate)

    def score(self, scorer, ctx: ScoreContext) -> dict:
        return per_example(statistics(scorer, ctx.task, device=ctx.device), rte_s=ctx.rte_s,
                           mia_feature=ctx.options.get("mia_feature") or MIA_FEATURE)

    def trajectory_rows(self) -> list[MetricRow]:
        # every metric but the unlearning time: one pass of class probabilities and the MIA's SVC
        return [row for row in rows() if row.name != "rte"]

    def trajectory_point(self, scorer, ctx: ScoreContext, oracle_per_example: dict | None) -> dict[str, float]:
        return aggregate(self.score(scorer, ctx), oracle_per_example, seed=ctx.seed)[0]

    def reference_key(self, ctx: ScoreContext) -> dict:
        feature = ctx.options.get("mia_feature") or MIA_FEATURE
        return {} if feature == MIA_FEATURE else {"mia_feature": feature}
