"""What every suite shares: the row that describes a metric, a mean with its bootstrap CI, and
the context the model lenses (parametric, robustness) work in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unlearnbench.metrics.stats import bootstrap_ci


@dataclass(frozen=True)
class MetricRow:
    name: str
    direction: str  # "higher" | "lower" | "oracle" (closest to the oracle is best) | "zero" | "info"
    lens: str  # behavior | privacy | parametric | robustness | utility
    description: str


def mean_metric(metrics: dict, ci: dict, name: str, values, *, statistic=np.mean, n_resamples: int = 1000,
                seed: int = 0) -> None:
    """``metrics[name] = statistic(values)`` and its 95% percentile-bootstrap interval."""
    values = np.asarray(values, dtype=float)
    metrics[name] = float(statistic(values))
    ci[name] = list(bootstrap_ci(values, statistic=statistic, n_resamples=n_resamples, seed=seed))


@dataclass
class LensContext:
    """What a model lens needs beyond the model it measures: the task's data, the tokenizer,
    the device and the original target; ``cache`` keeps what one run computes once (located
    concept vectors, the original's quantization codes, ...)."""

    task: Any
    tokenizer: Any
    device: Any
    original: Any
    quiet: bool = True
    seed: int = 0
    cache: dict = field(default_factory=dict)

    def engine(self, model, label: str):
        from unlearnbench.scoring import ScoringEngine

        return ScoringEngine(model, self.tokenizer, self.task.prompt_format, self.device, quiet=self.quiet, label=label)
