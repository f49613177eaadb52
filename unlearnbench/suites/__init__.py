"""Metric suites: which statistics a task family needs and how metrics turn them into a record.

A suite has two halves. ``statistics(engine, splits)`` asks the scoring engine for everything
the suite needs in flattened requests (length-sorted batches, one generation pass per kind of
prompt) and returns per-example arrays. ``aggregate(per_example, oracle_per_example, seed=)``
is pure: it turns per-example scores (of the model and of the oracle) into the flat metrics of
a record, with bootstrap CIs. Because ``aggregate`` needs no model, the leaderboard can
recompute every number from the per-example scores stored beside a record. ``rows()`` names
the metrics in display order with their lens and direction.

A task names its suite; a new family adds a module here and one line to :data:`SUITES`.

:data:`LENSES` are the lenses that need the models themselves rather than per-example
statistics from the scoring engine (parametric: concept vectors and probes; robustness:
relearning and quantization attacks). Each has ``available(task)``, a ``context`` class,
``per_example(ctx, model, label)`` and a pure ``aggregate(per_example, references)``.
"""

from __future__ import annotations

from unlearnbench.suites import classifier, muse, parametric, regression, robustness, strong_privacy, tofu
from unlearnbench.suites.common import MetricRow

# Bumped whenever a suite's statistics change, so cached reference scores are recomputed.
SUITE_VERSION = "2"

SUITES = {"tofu": tofu.SUITE, "muse": muse.SUITE, "classifier": classifier.SUITE, "regression": regression.SUITE}
LENSES = {"parametric": parametric.LENS, "robustness": robustness.LENS,
          # classifiers; the runner runs it itself (it needs the method), the board recomputes it
          "privacy-strong": {"rows": strong_privacy.rows, "aggregate": strong_privacy.aggregate,
                             "version": strong_privacy.LENS_VERSION}}

__all__ = ["LENSES", "SUITES", "SUITE_VERSION", "MetricRow"]
