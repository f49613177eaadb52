"""Metric suites: how a task family's statistics become the metrics of a record.

A suite (:class:`unlearnbench.suites.base.Suite`) has one signature for every family:
``score(scorer, ctx)`` asks the family's scorer for everything the suite needs (for language
models: flattened requests to the scoring engine, length-sorted batches, one generation pass
per kind of prompt) and returns per-example scores; ``aggregate(per_example,
oracle_per_example, seed=)`` is pure: it turns per-example scores (of the model and of the
oracle) into the flat metrics of a record, with bootstrap CIs. Because ``aggregate`` needs no
model, the leaderboard can recompute every number from the per-example scores stored beside a
record. ``rows()`` names the metrics in display order with their lens and direction.

A task names its suite; a new suite is one module here (or in its family's package) with a
class registered by :func:`unlearnbench.registry.register_suite`.
"""

from __future__ import annotations

from unlearnbench.suites.common import MetricRow

# Bumped whenever a suite's statistics change, so cached reference scores are recomputed.
SUITE_VERSION = "3"  # 3: EM, ES, Min-K% and Min-K%++ on the text's own tokens; GradNorm's mean tensor norm


def get_suite(name: str):
    """The registered suite called ``name`` (an instance)."""
    from unlearnbench import registry

    return registry.get("suite", name).obj()


__all__ = ["MetricRow", "SUITE_VERSION", "get_suite"]
