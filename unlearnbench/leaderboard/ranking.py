"""Rankings per task family, as the literature defines them: declarative, keyed by suite name.

:data:`RANKINGS` says which metrics rank a family and in which direction (TOFU: forget quality
and model utility; MUSE: its four criteria; classifiers: the average gap to retrain; regression:
the gap to retrain); several criteria are combined by mean rank (1 = best on a criterion).
A suite may declare its own ranking as its ``ranking`` attribute (a :class:`Ranking` or a dict
``{"criteria": [(metric, goal), ...], "x": ..., "y": ..., "source": ...}``); a suite with neither
is ranked by its rows' directions. A new family therefore plugs in by adding its suite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

GOALS = ("higher", "lower", "zero", "oracle")
GOAL_ARROWS = {"higher": "↑", "lower": "↓", "zero": "→0", "oracle": "≈oracle", "info": ""}
GOAL_WORDS = {"higher": "higher is better", "lower": "lower is better", "zero": "closest to 0 is best",
              "oracle": "closest to the oracle is best", "info": "for information"}


@dataclass(frozen=True)
class Criterion:
    metric: str
    goal: str  # one of GOALS
    # a bound past which the goal gains nothing (WMDP: accuracy below chance is no better than
    # chance); values beyond it rank as the bound itself
    floor: float | None = None


@dataclass(frozen=True)
class Ranking:
    """How the literature ranks a task family: criteria combined by mean rank, plus the axes
    of the forget-vs-utility scatter (``x`` utility, ``y`` forgetting)."""

    criteria: tuple[Criterion, ...]
    x: str | None = None
    y: str | None = None
    log_x: bool = False
    log_y: bool = False
    source: str = ""


RANKINGS: dict[str, Ranking] = {
    "tofu": Ranking(
        (Criterion("forget_quality", "higher"), Criterion("model_utility", "higher")),
        x="model_utility", y="forget_quality", log_y=True,
        source="TOFU (Maini et al., 2024): forget quality read together with model utility",
    ),
    "muse": Ranking(
        (Criterion("verbmem_forget", "lower"), Criterion("knowmem_forget", "lower"),
         Criterion("privleak", "zero"), Criterion("knowmem_retain", "higher")),
        x="knowmem_retain", y="knowmem_forget",
        source="MUSE (Shi et al., 2024): no verbatim memorisation, no knowledge memorisation, "
               "no privacy leakage (PrivLeak near 0), utility preserved",
    ),
    "classifier": Ranking(
        (Criterion("avg_gap", "lower"),), x="ta", y="ua",
        source="classifier unlearning (e.g. SalUn, Fan et al., 2024): average gap to retrain over "
               "forget / retain / test accuracy and MIA efficacy",
    ),
    "regression": Ranking(
        (Criterion("w1_to_retrain", "lower"),), x="l1_test", y="l1_forget",
        source="regression unlearning (Tarun et al., 2023): Wasserstein-1 gap of the unlearned model's "
               "forget-set predictions to retrain's",
    ),
}


def _suite(suite_name: str):
    """The registered suite (an instance), or None for a name this unlearnbench does not know."""
    from unlearnbench import registry

    entry = registry.entries("suite").get(suite_name)
    return entry.obj() if entry else None


def suite_rows(suite_name: str) -> list:
    suite = _suite(suite_name)
    return list(suite.rows()) if suite else []


def ranking_for(suite_name: str, rows: list, present: set[str]) -> Ranking:
    """The suite's own ranking, else :data:`RANKINGS`, else one by the rows' directions.
    Criteria whose metric no record carries are dropped."""
    declared = getattr(_suite(suite_name), "ranking", None)
    if isinstance(declared, dict):
        declared = Ranking(tuple(Criterion(*c) for c in declared.get("criteria", ())),
                           **{k: v for k, v in declared.items() if k != "criteria"})
    base = declared or RANKINGS.get(suite_name)
    criteria = tuple(c for c in (base.criteria if base else ()) if c.metric in present)
    if not criteria:
        criteria = tuple(Criterion(r.name, r.direction) for r in rows if r.direction in GOALS and r.name in present)
    lens = {r.name: r.lens for r in rows}
    x = base.x if base and base.x in present else next(
        (r.name for r in rows if r.lens == "utility" and r.direction == "higher" and r.name in present), None)
    y = base.y if base and base.y in present else next(
        (c.metric for c in criteria if lens.get(c.metric) in ("behavior", "privacy") and c.metric != x), None)
    return Ranking(criteria, x=x, y=y, log_x=bool(base and base.log_x and x == base.x),
                   log_y=bool(base and base.log_y and y == base.y),
                   source=base.source if base else "mean rank over the suite's metrics with a direction")


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def criterion_key(criterion: Criterion, metrics: dict, oracle: dict) -> float | None:
    """A number where lower is better, or None when the metric is missing."""
    value = number(metrics.get(criterion.metric))
    if value is None:
        return None
    if criterion.floor is not None:
        value = max(value, criterion.floor) if criterion.goal == "lower" else min(value, criterion.floor)
    if criterion.goal == "higher":
        return -value
    if criterion.goal == "zero":
        return abs(value)
    if criterion.goal == "oracle":
        target = number(oracle.get(criterion.metric))
        return None if target is None else abs(value - target)
    return value


def _average_ranks(keys: list[float | None]) -> list[float]:
    """1 = best; ties share their mean rank; missing values rank after every present one."""
    order = sorted(range(len(keys)), key=lambda i: (keys[i] is None, keys[i] if keys[i] is not None else 0.0))
    ranks = [0.0] * len(keys)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and keys[order[j + 1]] == keys[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def rank(records: list[dict], ranking: Ranking) -> list[tuple[int, float | None, dict]]:
    """(rank, mean rank, record), best first; ties broken by the first criterion, then run id."""
    if not records:
        return []
    if not ranking.criteria:
        return [(i + 1, None, r) for i, r in enumerate(sorted(records, key=lambda r: r["run_id"]))]
    per_criterion = [
        _average_ranks([criterion_key(c, r.get("metrics", {}), r.get("reference", {}).get("oracle", {})) for r in records])
        for c in ranking.criteria
    ]
    scores = [sum(col[i] for col in per_criterion) / len(per_criterion) for i in range(len(records))]
    order = sorted(range(len(records)), key=lambda i: (scores[i], per_criterion[0][i], records[i]["run_id"]))
    out, previous, shown = [], None, 0
    for position, i in enumerate(order, start=1):
        if scores[i] != previous:
            shown, previous = position, scores[i]
        out.append((shown, scores[i], records[i]))
    return out




def rank_tiers(records: list[dict], ranking: Ranking, tier) -> list[tuple[int, float | None, dict]]:
    """:func:`rank` within each tier (``tier(record)``: 0 first), the tiers one after the other
    with positions running on: a record of a later tier never ranks above one of an earlier
    tier (verified runs above those whose scores were only recomputed)."""
    out: list[tuple[int, float | None, dict]] = []
    for level in sorted({tier(r) for r in records}):
        offset = len(out)
        out += [(position + offset, score, r) for position, score, r in rank([r for r in records if tier(r) == level], ranking)]
    return out
