"""A one-line verdict on a run: how far it got from the original target towards the oracle on
forgetting, and how close it stayed to the oracle on utility. Pure (a record and its rows);
the CLI prints it under the table and the report shows it above the metrics."""

from __future__ import annotations

import math
from statistics import median

FORGETTING_LENSES = ("behavior", "privacy")
RANKED = ("higher", "lower", "oracle", "zero")  # directions that say what good is
LEGEND = "↑ higher is better · ↓ lower is better · ≈oracle closest to the oracle is best · →0 closest to 0 is best"


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def gap_closed(unlearned: float, original: float, oracle: float) -> float | None:
    """``1 - |unlearned - oracle| / |original - oracle|``: 1 where the run reached the oracle, 0
    where it stayed at the original, negative where it moved further away; None where the
    original already equals the oracle (nothing to close)."""
    gap = abs(original - oracle)
    if gap <= 1e-9 * max(1.0, abs(oracle)):
        return None
    return 1.0 - abs(unlearned - oracle) / gap


def verdict(metrics: dict, reference: dict, rows) -> str | None:
    """The verdict line, or None where the record has no reference rows to compare with."""
    original, oracle = reference.get("original") or {}, reference.get("oracle") or {}
    closed, drift = [], []
    for row in rows:
        if row.direction not in RANKED or row.count:
            continue
        u, g, o = (_number(d.get(row.name)) for d in (metrics, original, oracle))
        if u is None or o is None:
            continue
        if row.lens in FORGETTING_LENSES and g is not None:
            c = gap_closed(u, g, o)
            if c is not None:
                closed.append(c)
        elif row.lens == "utility" and row.direction in ("higher", "lower") and row.name != "rte":
            drift.append(abs(u - o) / max(abs(o), 1e-12))
    parts = []
    if closed:
        parts.append(f"forgetting: {100 * median(closed):.0f}% of the way from the original to the oracle "
                     f"(median of {len(closed)} behavior/privacy metrics where they differ)")
    if drift:
        parts.append(f"utility: within {100 * median(drift):.1f}% of the oracle (median of {len(drift)} metrics)")
    if not parts:
        return None
    line = "; ".join(parts)
    return line[0].upper() + line[1:] + "."
