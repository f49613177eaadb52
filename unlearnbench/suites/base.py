"""The suite protocol: one signature for every task family.

A suite turns what a family's scorer measures of one model into per-example scores
(:meth:`Suite.score`, which needs the model), and per-example scores into the flat metrics of
a record (:meth:`Suite.aggregate`, pure: the leaderboard recomputes every number from the
per-example scores stored beside a record). :meth:`Suite.rows` names the metrics in display
order with their lens and direction.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from unlearnbench.suites.common import MetricRow


@dataclass
class ScoreContext:
    """What a suite's scoring pass knows besides the model's scorer."""

    task: Any
    lenses: frozenset[str]  # the lenses this run measures (a suite skips the statistics of the others)
    seed: int = 0
    device: Any = None
    original: Any = None  # the original target model (a yardstick some statistics need)
    options: dict[str, Any] = field(default_factory=dict)  # the family's run options (e.g. an attacker feature)
    rte_s: float | None = None  # seconds the method took to unlearn (None for the references)


class Suite(abc.ABC):
    """Subclass, set ``name``, implement the three methods, and decorate with
    :func:`unlearnbench.registry.register_suite`; a task names its suite by ``name``."""

    name: str = ""
    # How the leaderboard ranks this suite's runs (a unlearnbench.leaderboard.ranking.Ranking or
    # a dict of its fields); None: the ranking registered for the suite's name, if any.
    ranking: Any = None

    @abc.abstractmethod
    def rows(self) -> list[MetricRow]:
        """The metrics in display order, with their lens and direction."""

    @abc.abstractmethod
    def score(self, scorer, ctx: ScoreContext) -> dict[str, Any]:
        """Per-example scores (JSON-able) of the model behind ``scorer`` (the family's)."""

    @abc.abstractmethod
    def aggregate(self, per_example: dict, oracle_per_example: dict | None, *,
                  seed: int = 0) -> tuple[dict[str, float], dict[str, list[float]]]:
        """Flat metrics and their CIs (pure: no model)."""

    def trajectory_rows(self) -> list[MetricRow]:
        """The cheap metrics ``--eval-every N`` measures every N optimisation steps (in display
        order); empty: the suite has none, and a run refuses the option."""
        return []

    def trajectory_point(self, scorer, ctx: ScoreContext, oracle_per_example: dict | None) -> dict[str, float]:
        """Those metrics of the model behind ``scorer`` now (``oracle_per_example``: the
        oracle's per-example scores from :meth:`score`)."""
        raise NotImplementedError(f"the {self.name} suite measures no trajectory")

    def lenses(self) -> tuple[str, ...]:
        """The lenses this suite's rows belong to (measured in its one scoring pass)."""
        return tuple(dict.fromkeys(r.lens for r in self.rows()))

    def reference_key(self, ctx: ScoreContext) -> dict[str, Any]:
        """What besides the task, the model and the suite version changes the references'
        per-example scores (it goes into their cache key)."""
        return {}


class LanguageModelSuite(Suite):
    """A language-model suite: ``statistics(engine, splits, privacy=)`` asks the scoring engine
    for everything (the privacy lens's attacks only when the run measures it) and
    ``per_example(stats)`` keeps the JSON-able scores; subclasses set both as static methods."""

    statistics: Any = None
    per_example: Any = None

    def score(self, scorer, ctx: ScoreContext) -> dict[str, Any]:
        return self.per_example(self.statistics(scorer, ctx.task.splits, privacy="privacy" in ctx.lenses))

    def reference_key(self, ctx: ScoreContext) -> dict[str, Any]:
        return {} if "privacy" in ctx.lenses else {"privacy": False}  # runs with privacy keep their old keys
