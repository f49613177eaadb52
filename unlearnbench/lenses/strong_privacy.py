"""The strong privacy tier for classifiers (``--lens privacy-strong``): U-LiRA-style and the
NeurIPS 2023 unlearning challenge's forgetting score.

N models are retrained from scratch on the retain set (seeds 2000..2000+N-1, cached: they
depend only on the task) and N unlearned models are made by running the method N times
from the target with seeds 0..N-1. For every forget example, the challenge's confidence
statistic ``c = log p_y - log sum_{j != y} p_j`` of the N unlearned models is tested
against that of the N retrained models: the best threshold test gives an epsilon
(:func:`unlearnbench.metrics.classifier.epsilon_from_scores`), the epsilons are bucketed into
the forgetting score F in [0, 1], and the final score is ``F x (RA_u / RA_r) x (TA_u / TA_r)``
with accuracies averaged over the models. Even two sets of retrained models do not reach
F = 1 (the estimate is noisy with few models: about 0.2-0.25 for identical distributions),
so read F against the ``retrain`` method's value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unlearnbench.metrics import classifier as cm
from unlearnbench.family import Option
from unlearnbench.lenses.base import Lens, LensContext
from unlearnbench.registry import register_lens
from unlearnbench.suites.common import MetricRow

LENS_VERSION = "1"
DEFAULT_MODELS = 32
RETRAIN_SEED = 2000


def rows() -> list[MetricRow]:
    return [
        MetricRow("forgetting_score", "higher", "privacy", "NeurIPS 2023 challenge F: bucketed per-example epsilon, unlearned vs retrained models"),
        MetricRow("challenge_score", "higher", "privacy", "F x RA_u/RA_r x TA_u/TA_r (the challenge's final score)"),
        MetricRow("strong_privacy_models", "info", "privacy", "models per side (unlearned and retrained)", count=True),
        MetricRow("median_epsilon", "lower", "privacy", "median per-example epsilon (0: indistinguishable from retraining)"),
    ]


def _model_stats(model, task, device) -> dict[str, Any]:
    from unlearnbench.vision.classifier import predict_proba

    forget = predict_proba(model, task.x_train[task.forget_indices], device=device)
    retain = predict_proba(model, task.x_train[task.retain_indices], device=device)
    test = predict_proba(model, task.x_test, device=device)
    labels = np.asarray(task.y_train[task.forget_indices])
    return {"score": cm.logit_confidence(forget, labels).tolist(),
            "ra": cm.accuracy(retain, task.y_train[task.retain_indices]),
            "ta": cm.accuracy(test, task.y_test)}


def retrained_stats(task, n_models: int, *, device=None, quiet: bool = False) -> list[dict]:
    """Statistics of N models retrained on the retain set, each cached by task and seed."""
    from unlearnbench.cache import building, cache_root, fingerprint, missing
    from unlearnbench.vision.classifier import fit_classifier, load_classifier, save_classifier
    from unlearnbench.progress import progress_bar

    root = cache_root() / "strong-privacy" / fingerprint({"task": task.fingerprint, "model": task.model_config,
                                                          "train": repr(task.train_config)})
    out = []
    with progress_bar(f"retrained models ({n_models})", total=n_models, quiet=quiet) as advance:
        for i in range(n_models):
            folder = root / f"retrained-{RETRAIN_SEED + i}"
            if missing(folder):
                model = fit_classifier(task.model_config, task.x_train[task.retain_indices],
                                       task.y_train[task.retain_indices], task.train_config, RETRAIN_SEED + i,
                                       device=device, quiet=True, description=f"retraining {i + 1}/{n_models}")
                with building(folder) as tmp:
                    save_classifier(model, task.model_config, tmp)
            model, _ = load_classifier(folder)
            out.append(_model_stats(model, task, device))
            advance(1)
    return out


def unlearned_stats(task, target_model, unlearn, n_models: int, *, device=None, quiet: bool = False) -> list[dict]:
    """Statistics of N unlearned models: ``unlearn(target, seed)`` (which returns a changed copy)
    for seeds 0..N-1."""
    from unlearnbench.progress import progress_bar

    out = []
    with progress_bar(f"unlearned models ({n_models})", total=n_models, quiet=quiet) as advance:
        for seed in range(n_models):
            out.append(_model_stats(unlearn(target_model, seed), task, device))
            advance(1)
    return out


def per_example(unlearned: list[dict], retrained: list[dict]) -> dict:
    return {"unlearned": unlearned, "retrained": retrained}


def aggregate(per_example: dict, references: dict | None = None, *, seed: int = 0) -> tuple[dict, dict]:
    """F, the final score and the median epsilon from the two sets of model statistics (pure)."""
    unlearned, retrained = per_example["unlearned"], per_example["retrained"]
    u = np.asarray([m["score"] for m in unlearned], dtype=float)  # [models, forget examples]
    r = np.asarray([m["score"] for m in retrained], dtype=float)
    eps = cm.per_example_epsilons(u, r)
    n = min(len(unlearned), len(retrained))
    f = float(cm.forgetting_score(eps, n_models=n))
    mean = lambda models, key: float(np.mean([m[key] for m in models]))  # noqa: E731
    final = float(cm.challenge_final_score(f, mean(unlearned, "ra"), mean(retrained, "ra"),
                                           mean(unlearned, "ta"), mean(retrained, "ta")))
    return {"forgetting_score": f, "challenge_score": final, "strong_privacy_models": float(n),
            "median_epsilon": float(np.median(eps))}, {}


@register_lens("privacy-strong")
class StrongPrivacy(Lens):
    """Runs the method again N times (``ctx.unlearn``); no reference rows (the N retrained
    models are its reference)."""

    name = "privacy-strong"
    description = "N retrained vs N unlearned models, the NeurIPS 2023 challenge's forgetting score"
    order = 25
    kinds = ("classifier",)
    version = LENS_VERSION
    references = False
    options = (Option("strong_models", "models per side (unlearned and retrained)", type=int, default=DEFAULT_MODELS,
                      task=False),)

    rows = staticmethod(rows)
    aggregate = staticmethod(aggregate)

    def per_example(self, ctx: LensContext, model, which: str) -> dict:
        n = int(ctx.options.get("strong_models") or DEFAULT_MODELS)
        retrained = retrained_stats(ctx.task, n, device=ctx.device, quiet=not ctx.progress)
        unlearned = unlearned_stats(ctx.task, ctx.original, ctx.unlearn, n, device=ctx.device, quiet=not ctx.progress)
        return per_example(unlearned, retrained)