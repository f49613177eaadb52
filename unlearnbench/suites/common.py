"""What every suite shares: the row that describes a metric, and a mean with its bootstrap CI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearnbench.metrics.stats import bootstrap_ci


@dataclass(frozen=True)
class MetricRow:
    name: str
    direction: str  # "higher" | "lower" | "oracle" (closest to the oracle is best) | "zero" | "info"
    lens: str  # behavior | privacy | parametric | robustness | utility
    description: str
    count: bool = False  # a count (e.g. examples in a test), shown beside the table rather than as a metric


def mean_metric(metrics: dict, ci: dict, name: str, values, *, statistic=np.mean, n_resamples: int = 1000,
                seed: int = 0) -> None:
    """``metrics[name] = statistic(values)`` and its 95% percentile-bootstrap interval."""
    values = np.asarray(values, dtype=float)
    metrics[name] = float(statistic(values))
    ci[name] = list(bootstrap_ci(values, statistic=statistic, n_resamples=n_resamples, seed=seed))


def truncate(tokenizer, text: str, n_tokens: int) -> str:
    """``text`` cut to its first ``n_tokens`` tokens (unchanged when shorter)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= n_tokens else tokenizer.decode(ids[:n_tokens], skip_special_tokens=True)
