"""Runs that differ only by seed, read together: their spread, ranks that the spread does not
separate, and whether a task separates forgetting from noise at all.

- :func:`spread`: mean, standard deviation (n - 1), n and a percentile bootstrap CI of the mean
  over seeds (the seeds resampled with replacement; Efron & Tibshirani, 1993, ch. 13).
- :func:`seed_groups`: the runs of one board grouped by (method, parameters); each group's
  metrics as spreads.
- :func:`rank_groups`: groups ranked like runs (:mod:`unlearnbench.leaderboard.ranking`: mean
  rank over the criteria, on the groups' means); two groups are separated when some criterion
  separates them (their mean ± std intervals do not overlap); a group's rank is 1 + the groups
  above it that are separated from it, and it is shown as a tie (``=k``) when a group above is not.
- :func:`signal_check`: with several seeds of ``retrain``, a task shows "no signal" when the
  original target lies within retrain's seed spread on the ranking's forgetting criterion (as
  close to the oracle as the farthest retrain seed, or closer): the criterion cannot tell a
  model that forgot from one that did not.

Pure functions of records (dicts as stored); the boards and ``unlearnbench report`` call them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from unlearnbench.leaderboard.ranking import Criterion, Ranking, _average_ranks, criterion_key, number

N_BOOTSTRAP = 2000
RETRAIN = "retrain"


@dataclass(frozen=True)
class Spread:
    mean: float
    std: float  # sample standard deviation (n - 1); 0 for one seed
    n: int
    ci: tuple[float, float] | None  # 95% bootstrap CI of the mean over seeds; None for one seed

    def text(self, fmt=lambda v: f"{v:.4g}") -> str:
        return f"{fmt(self.mean)} ± {fmt(self.std)}" if self.n > 1 else fmt(self.mean)


def spread(values, *, seed: int = 0, n_boot: int = N_BOOTSTRAP, level: float = 0.95) -> Spread | None:
    """The spread of one metric over seeds (missing values left out); None when none is left."""
    x = np.asarray([v for v in (number(v) for v in values) if v is not None], dtype=float)
    if x.size == 0:
        return None
    if x.size == 1:
        return Spread(float(x[0]), 0.0, 1, None)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    # equal values have no spread: np.std of them can be a rounding residue (1e-16), not 0
    std = 0.0 if np.all(x == x[0]) else float(x.std(ddof=1))
    return Spread(float(x.mean()), std, int(x.size), (float(low), float(high)))


@dataclass
class SeedGroup:
    """The runs of one method with one set of parameters, over seeds."""

    method: str
    params: dict
    records: list[dict]
    metrics: dict[str, Spread] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return sorted(r.get("seed", 0) for r in self.records)

    @property
    def n(self) -> int:
        return len(self.records)


def _identity(record: dict) -> str:
    method = record.get("method", {})
    return json.dumps([method.get("name"), method.get("params") or {}], sort_keys=True, default=str)


def seed_groups(records: list[dict]) -> list[SeedGroup]:
    """Records of one task (one fingerprint and mode) grouped by method and parameters; a run
    repeated with the same seed counts once (the first by run id)."""
    groups: dict[str, SeedGroup] = {}
    for r in sorted(records, key=lambda r: r.get("run_id", "")):
        g = groups.setdefault(_identity(r), SeedGroup(r["method"]["name"], dict(r["method"].get("params") or {}), []))
        if r.get("seed") not in {x.get("seed") for x in g.records}:
            g.records.append(r)
    for g in groups.values():
        names = dict.fromkeys(m for r in g.records for m in r.get("metrics", {}))
        g.metrics = {m: s for m in names if (s := spread([r.get("metrics", {}).get(m) for r in g.records])) is not None}
    return sorted(groups.values(), key=lambda g: (g.method, json.dumps(g.params, sort_keys=True, default=str)))


def has_seeds(groups: list[SeedGroup]) -> bool:
    return any(g.n > 1 for g in groups)


def _oracle(group: SeedGroup) -> dict:
    return group.records[0].get("reference", {}).get("oracle", {})


def _interval(group: SeedGroup, c: Criterion) -> tuple[float, float] | None:
    """The criterion's key (lower is better) over the group's seeds, as mean ± std of the keys."""
    keys = [criterion_key(c, r.get("metrics", {}), r.get("reference", {}).get("oracle", {})) for r in group.records]
    s = spread(keys)
    return None if s is None else (s.mean - s.std, s.mean + s.std)


def _separated(a: SeedGroup, b: SeedGroup, ranking: Ranking) -> bool:
    for c in ranking.criteria:
        ia, ib = _interval(a, c), _interval(b, c)
        if ia is None or ib is None or ia[1] < ib[0] or ib[1] < ia[0]:
            return True
    return False


def rank_groups(groups: list[SeedGroup], ranking: Ranking) -> list[tuple[int, float | None, SeedGroup, bool]]:
    """(rank, mean rank, group, tied), best first. The criteria are read on the groups' means;
    the rank counts the groups above that the spread separates from this one (monotone down the
    list); ``tied``: some group above is not separated from it."""
    if not groups:
        return []
    if not ranking.criteria:
        return [(i + 1, None, g, False) for i, g in enumerate(groups)]
    means = [{m: s.mean for m, s in g.metrics.items()} for g in groups]
    per_criterion = [_average_ranks([criterion_key(c, means[i], _oracle(g)) for i, g in enumerate(groups)])
                     for c in ranking.criteria]
    scores = [sum(col[i] for col in per_criterion) / len(per_criterion) for i in range(len(groups))]
    order = sorted(range(len(groups)), key=lambda i: (scores[i], per_criterion[0][i], groups[i].method))
    out: list[tuple[int, float | None, SeedGroup, bool]] = []
    for position, i in enumerate(order, start=1):
        # 1 + the groups ranked above that the spread separates from this one (and that score
        # better), never better than the rank above: a group is not tied with the first of a
        # chain of overlaps it does not itself overlap
        above = [groups[j] for j in order[:position - 1] if scores[j] != scores[i]]
        rank = 1 + sum(_separated(g, groups[i], ranking) for g in above)
        rank = max(rank, out[-1][0]) if out else rank
        out.append((rank, scores[i], groups[i], rank < position))
    return out


@dataclass(frozen=True)
class Signal:
    """Whether the forgetting criterion separates retrain (over its seeds) from the original."""

    criterion: str
    original: float  # the original's value of the criterion's metric
    retrain: Spread  # retrain's values over seeds
    retrain_range: tuple[float, float]
    no_signal: bool

    def text(self) -> str:
        low, high = self.retrain_range
        if self.no_signal:
            return (f"no signal: on {self.criterion} the original target ({self.original:.4g}) lies within retrain's "
                    f"seed spread ({low:.4g} to {high:.4g} over {self.retrain.n} seeds)")
        return (f"signal: on {self.criterion} the original target ({self.original:.4g}) lies outside retrain's seed "
                f"spread ({low:.4g} to {high:.4g} over {self.retrain.n} seeds)")


def forgetting_criterion(ranking: Ranking) -> Criterion | None:
    """The criterion that measures forgetting: the forget axis of the board's scatter where it
    is a criterion, else the first criterion."""
    for c in ranking.criteria:
        if c.metric == ranking.y:
            return c
    return ranking.criteria[0] if ranking.criteria else None


def signal_check(records: list[dict], ranking: Ranking) -> Signal | None:
    """None unless retrain ran with at least two seeds and the original's value is known."""
    c = forgetting_criterion(ranking)
    if c is None:
        return None
    retrain = [g for g in seed_groups([r for r in records if r["method"]["name"] == RETRAIN]) if g.n > 1]
    if not retrain:
        return None
    group = max(retrain, key=lambda g: g.n)
    reference = group.records[0].get("reference", {})
    original = number(reference.get("original", {}).get(c.metric))
    original_key = criterion_key(c, reference.get("original", {}), reference.get("oracle", {}))
    keys = [criterion_key(c, r.get("metrics", {}), r.get("reference", {}).get("oracle", {})) for r in group.records]
    keys = [k for k in keys if k is not None]
    values = [v for v in (number(r.get("metrics", {}).get(c.metric)) for r in group.records) if v is not None]
    if original is None or original_key is None or len(keys) < 2:
        return None
    # lower keys are better: the original is "within" when it is no worse than retrain's worst seed
    return Signal(c.metric, original, spread(values), (min(values), max(values)), original_key <= max(keys))


# ---------------------------------------------------------------------------- on the boards
@dataclass
class SeedBoard:
    """What a board shows over seeds: the ranked groups on the ranking's criteria, and the
    task's signal check."""

    criteria: tuple[Criterion, ...]
    ranked: list[tuple[int, float | None, SeedGroup, bool]]
    signal: Signal | None

    def cells(self, group: SeedGroup, fmt) -> list[str]:
        out = []
        for c in self.criteria:
            s = group.metrics.get(c.metric)
            out.append("-" if s is None else s.text(fmt) + (f" [{fmt(s.ci[0])}, {fmt(s.ci[1])}]" if s.ci else ""))
        return out


def seed_board(records: list[dict], ranking: Ranking) -> SeedBoard | None:
    """None when no run of the board has another seed of itself (nothing to aggregate) and
    there is no signal check to show."""
    groups = seed_groups(records)
    signal = signal_check(records, ranking)
    if not has_seeds(groups) and signal is None:
        return None
    return SeedBoard(ranking.criteria, rank_groups(groups, ranking), signal)


SEED_NOTE = ("Over seeds: runs that differ only by seed, as mean ± std [95% bootstrap CI over seeds]; "
             "a rank is 1 + the methods above that the spread separates from it (mean ± std apart on some "
             "criterion), and = marks one that a method above is not separated from.")


def markdown_lines(board: SeedBoard, fmt, params_text, md) -> list[str]:
    header = ["#", "method", "params", "n", "seeds"] + [c.metric for c in board.criteria]
    lines = [SEED_NOTE, "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" if h in ("method", "params", "seeds") else "---:" for h in header) + "|"]
    for position, _, g, tied in board.ranked:
        cells = [f"={position}" if tied else str(position), md(g.method), md(params_text(g.params)), str(g.n),
                 ",".join(map(str, g.seeds))] + board.cells(g, fmt)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if board.signal is not None:
        lines += [("**" + board.signal.text() + "**") if board.signal.no_signal else board.signal.text(), ""]
    return lines


def rich_seed_table(board: SeedBoard, title: str, fmt, params_text):
    from rich.table import Table

    table = Table(title=f"{title} · over seeds (mean ± std [95% CI]; = tied)", title_justify="left",
                  caption=board.signal.text() if board.signal else None, caption_justify="left")
    for col, justify in (("#", "right"), ("method", "left"), ("n", "right")):
        table.add_column(col, justify=justify)
    for c in board.criteria:
        table.add_column(c.metric, justify="right")
    table.add_column("params", overflow="fold")
    for position, _, g, tied in board.ranked:
        table.add_row(f"={position}" if tied else str(position), g.method, str(g.n), *board.cells(g, fmt),
                      params_text(g.params))
    return table


def seed_view(board: SeedBoard | None, fmt, params_text) -> dict | None:
    """What the HTML board shows of it."""
    if board is None:
        return None
    return {"note": SEED_NOTE, "criteria": [c.metric for c in board.criteria],
            "rows": [{"rank": f"={p}" if tied else str(p), "method": g.method, "params": params_text(g.params),
                      "n": g.n, "seeds": ",".join(map(str, g.seeds)), "cells": board.cells(g, fmt)}
                     for p, _, g, tied in board.ranked],
            "signal": board.signal.text() if board.signal else None,
            "no_signal": bool(board.signal and board.signal.no_signal)}
