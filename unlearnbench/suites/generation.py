"""The generation suite (class-conditional diffusion unlearning; SalUn's and SFD's
evaluation): UA on images generated for the forgotten class, the judge's accuracy on images
generated for the kept classes, a Fréchet distance and precision / recall of the judge's
features against real held-out images per kept class, and the sampling and unlearning times.

``score`` generates the task's seeded, fixed budget (``per_class`` images per class, the same
starting noise for every model) and keeps, per generated image, the judge's probabilities and
penultimate features, the real images' features, and a few images per class for the report's
sample grid. ``aggregate`` is pure over them, so the leaderboard recomputes every number.
The Fréchet distance is on the judge's features: FID-style, not Inception-FID.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from unlearnbench.metrics import generation as gm
from unlearnbench.metrics.classifier import avg_gap
from unlearnbench.registry import register_suite
from unlearnbench.suites.base import ScoreContext, Suite
from unlearnbench.suites.common import MetricRow, mean_metric

FEATURE_DECIMALS = 4
PR_K = 3
# the gap to the oracle ranks the board: forgetting (UA) and what the kept classes keep, with
# equal weight, in points (mean rank over UA and utility metrics let a model that forgets
# nothing rank second, on the strength of its untouched kept classes)
GAP_KEYS = ("ua", "kept_accuracy")


def rows() -> list[MetricRow]:
    return [
        MetricRow("ua", "higher", "behavior", "unlearning accuracy: % of images generated for the forgotten class the judge "
                  "does not call it"),
        MetricRow("forget_fd", "info", "behavior", "Fréchet distance (judge features) of the forgotten class's images to its "
                  "real images (higher = less like it)"),
        MetricRow("kept_accuracy", "higher", "utility", "% of images generated for the kept classes the judge recognises"),
        MetricRow("kept_fd", "lower", "utility", "mean over kept classes of the Fréchet distance (judge features, not "
                  "Inception) of generated to real images"),
        MetricRow("kept_precision", "higher", "utility", "improved precision of generated features (k=3), mean over kept classes"),
        MetricRow("kept_recall", "higher", "utility", "improved recall of generated features (k=3), mean over kept classes"),
        MetricRow("avg_gap", "lower", "behavior", "mean |UA, kept-class accuracy - the oracle's| (points): the ranking "
                  "criterion, as the classifiers' Avg. Gap"),
        MetricRow("sampling_s", "info", "utility", "seconds to generate the sampling budget (every class)"),
        MetricRow("rte", "lower", "utility", "seconds the method took to unlearn (not evaluation)"),
    ]


def class_seed(seed: int, label: int) -> int:
    """The sampling seed of class ``label`` in a run of seed ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(label)]).generate_state(1)[0])


def to_uint8(images) -> list:
    """Images in [-1, 1] as 0..255 integers (what the report draws)."""
    return np.clip(np.rint((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8).tolist()


def statistics(scorer, task, sampling, *, seed: int) -> dict[str, Any]:
    start = time.perf_counter()
    images, labels = [], []
    for c in range(task.num_classes):
        images.append(scorer.generate(np.full(sampling.per_class, c), seed=class_seed(seed, c), steps=sampling.steps,
                                      guidance=sampling.guidance, eta=sampling.eta))
        labels.append(np.full(sampling.per_class, c))
    sampling_s = time.perf_counter() - start
    images, labels = np.concatenate(images), np.concatenate(labels)
    probs, features = scorer.judge_outputs(images)
    _, real_features = scorer.judge_outputs(task.x_real)
    grid = [images[labels == c][: sampling.grid] for c in range(task.num_classes)]
    return {"images": grid, "labels": labels, "probs": probs, "features": features, "real_features": real_features,
            "real_labels": np.asarray(task.y_real), "sampling_s": sampling_s, "forget_class": task.forget_class}


def per_example(stats: dict[str, Any], rte_s: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "forget_class": int(stats["forget_class"]),
        "generated": {"labels": np.asarray(stats["labels"]).astype(int).tolist(),
                      "probs": np.round(stats["probs"], 6).tolist(),
                      "features": np.round(stats["features"], FEATURE_DECIMALS).tolist()},
        "real": {"labels": np.asarray(stats["real_labels"]).astype(int).tolist(),
                 "features": np.round(stats["real_features"], FEATURE_DECIMALS).tolist()},
        "samples": {"classes": list(range(len(stats["images"]))), "images": [to_uint8(g) for g in stats["images"]]},
        "sampling_s": float(stats["sampling_s"]),
    }
    if rte_s is not None:
        out["rte_s"] = float(rte_s)
    return out


def _recognition(per_example: dict) -> dict[str, float]:
    """UA and the kept classes' judge accuracy of a per-example tree (the oracle's, for the gap)."""
    k = int(per_example["forget_class"])
    gen = per_example["generated"]
    labels, probs = np.asarray(gen["labels"], dtype=int), np.asarray(gen["probs"], dtype=float)
    out = {}
    if (labels == k).any():
        out["ua"] = gm.unlearning_accuracy(probs[labels == k], k)
    if (labels != k).any():
        out["kept_accuracy"] = gm.judge_accuracy(probs[labels != k], labels[labels != k])
    return out


def aggregate(per_example: dict, oracle_per_example: dict | None, *, seed: int = 0,
              n_resamples: int = 1000) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Flat metrics from the judge's probabilities and features (pure: no model)."""
    k = int(per_example["forget_class"])
    gen, real = per_example["generated"], per_example["real"]
    labels, probs = np.asarray(gen["labels"], dtype=int), np.asarray(gen["probs"], dtype=float)
    features = np.asarray(gen["features"], dtype=float)
    real_labels, real_features = np.asarray(real["labels"], dtype=int), np.asarray(real["features"], dtype=float)
    metrics: dict[str, float] = {}
    ci: dict[str, list[float]] = {}
    forget = labels == k
    kept = ~forget
    if forget.any():
        metrics["ua"] = gm.unlearning_accuracy(probs[forget], k)
        mean_metric(metrics, ci, "ua", 100.0 * (probs[forget].argmax(1) != k), n_resamples=n_resamples, seed=seed)
        metrics["forget_fd"] = gm.frechet_distance(features[forget], real_features[real_labels == k])
    if kept.any():
        metrics["kept_accuracy"] = gm.judge_accuracy(probs[kept], labels[kept])
        mean_metric(metrics, ci, "kept_accuracy", 100.0 * (probs[kept].argmax(1) == labels[kept]),
                    n_resamples=n_resamples, seed=seed)
        fds, precisions, recalls = [], [], []
        for c in sorted(set(labels[kept].tolist())):
            fake, ref = features[labels == c], real_features[real_labels == c]
            fds.append(gm.frechet_distance(fake, ref))
            p, r = gm.precision_recall(ref, fake, k=PR_K)
            precisions.append(p)
            recalls.append(r)
        metrics["kept_fd"] = float(np.nanmean(fds))
        metrics["kept_precision"] = float(np.nanmean(precisions))
        metrics["kept_recall"] = float(np.nanmean(recalls))
    if oracle_per_example is not None and {"ua", "kept_accuracy"} <= set(metrics):
        oracle = _recognition(oracle_per_example)
        if set(GAP_KEYS) <= set(oracle):
            metrics["avg_gap"] = float(avg_gap(metrics, oracle, keys=GAP_KEYS))
    metrics["sampling_s"] = float(per_example["sampling_s"])
    if per_example.get("rte_s") is not None:
        metrics["rte"] = float(per_example["rte_s"])
    return metrics, ci


@register_suite("generation", summary="UA, kept-class judge accuracy, FD / precision / recall on judge features, times")
class GenerationSuite(Suite):
    name = "generation"
    # SalUn and SFD read forgetting (UA) together with what the kept classes keep (their
    # recognisability and FID); the board ranks by the gap to the oracle over UA and the kept
    # classes' accuracy, as the classifier family's Avg. Gap (FD and precision / recall shown beside)
    ranking = {"criteria": [("avg_gap", "lower")],
               "x": "kept_accuracy", "y": "ua",
               "source": "diffusion unlearning (SalUn, Fan et al., 2024; SFD, Chen et al., 2025): mean gap to the "
                         "oracle of UA on the forgotten class and the kept classes' judge accuracy"}

    rows = staticmethod(rows)
    aggregate = staticmethod(aggregate)

    def score(self, scorer, ctx: ScoreContext) -> dict:
        from unlearnbench.diffusion.world import sampling_of

        stats = statistics(scorer, ctx.task, sampling_of(ctx.task, ctx.options), seed=ctx.seed)
        return per_example(stats, rte_s=ctx.rte_s)

    def reference_key(self, ctx: ScoreContext) -> dict:
        from dataclasses import asdict

        from unlearnbench.diffusion.world import sampling_of

        return {"seed": ctx.seed, "sampling": asdict(sampling_of(ctx.task, ctx.options))}
