"""What the leaderboard page and the run report share: number formatting, the jinja2
environment their templates (``unlearnbench/report/templates/``) render in, and the layout of
a small deterministic SVG scatter (no plotting library, so the committed board is
byte-for-byte reproducible on any machine)."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from unlearnbench.leaderboard.ranking import GOAL_WORDS, number


def fmt(value: Any) -> str:
    """Numbers as the boards show them: 4 decimals, or 3 significant digits in e-notation."""
    v = number(value)
    if v is None:
        return "–"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4):
        return f"{v:.3e}"
    return f"{v:.4f}"


def params_text(params: dict) -> str:
    def one(v):
        return format(v, "g") if isinstance(v, float) else json.dumps(v) if not isinstance(v, str) else v

    return ", ".join(f"{k}={one(v)}" for k, v in (params or {}).items())


def data_v(value: Any) -> str:
    """What the sorting script sorts a number cell by: the full-precision number, or empty."""
    v = number(value)
    return "" if v is None else repr(v)


def _escaped(value: Any) -> Any:
    # markupsafe writes ' and " as &#39; and &#34;, html.escape as &#x27; and &quot;: the same
    # HTML, other bytes. The committed boards were written with html.escape, so every value is
    # escaped that way before autoescaping sees it (which leaves the Markup as it is).
    return value if hasattr(value, "__html__") else Markup(html.escape(str(value), quote=True))


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The environment of the page templates: autoescape on for every template, and
    undefined names are errors, not empty strings."""
    env = Environment(loader=PackageLoader("unlearnbench.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, finalize=_escaped, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(fmt=fmt, data_v=data_v, pyrepr=repr, spec=format)
    return env


def render(template: str, **context: Any) -> str:
    """Render one of the page templates (``page.html.j2`` and the pages that extend it)."""
    return environment().get_template(template).render(**context)


def _axis(values: list[float], log: bool) -> tuple[float, float, bool]:
    if log:
        positive = [v for v in values if v > 0]
        if not positive:
            log = False
        else:
            lo, hi = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
            return float(lo), float(max(hi, lo + 1)), True
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    pad = (hi - lo) * 0.08
    return lo - pad, hi + pad, False


def _ticks(lo: float, hi: float, log: bool) -> list[tuple[float, str]]:
    if log:
        step = max(1, int(math.ceil((hi - lo) / 6)))
        return [(float(e), f"1e{e}") for e in range(int(lo), int(hi) + 1, step)]
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    ticks = []
    t = first
    while t <= hi + 1e-12:
        ticks.append((t, f"{t:.4g}"))
        t += step
    return ticks


COLORS = {"run": "#2b6cb0", "original": "#c53030", "oracle": "#2f855a"}


@dataclass(frozen=True)
class ScatterPoint:
    label: str
    x: float  # pixels
    y: float
    kind: str  # run | original | oracle
    color: str


@dataclass(frozen=True)
class Frame:
    """A small SVG plot's size and plotting area, in pixels."""

    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int


@dataclass(frozen=True)
class Scatter(Frame):
    """What ``scatter.svg.j2`` draws: the frame, the ticks and the points, in pixels."""

    x_label: str
    y_label: str
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    points: list[ScatterPoint]


def scatter_layout(points: list[tuple[str, float | None, float | None, str]], x_label: str, y_label: str,
                   log_x: bool = False, log_y: bool = False) -> Scatter | None:
    """The layout of a small deterministic SVG scatter. ``points``: (label, x, y, kind) with kind
    one of ``run``, ``original``, ``oracle``. Points with a missing coordinate are left out;
    None when none is left."""
    pts = [(lab, number(x), number(y), kind) for lab, x, y, kind in points]
    pts = [p for p in pts if p[1] is not None and p[2] is not None
           and (not log_x or p[1] > 0) and (not log_y or p[2] > 0)]
    if not pts:
        return None
    w, h, ml, mr, mt, mb = 560, 360, 70, 150, 20, 50
    xlo, xhi, log_x = _axis([p[1] for p in pts], log_x)
    ylo, yhi, log_y = _axis([p[2] for p in pts], log_y)

    def sx(v):
        v = math.log10(v) if log_x else v
        return ml + (v - xlo) / (xhi - xlo) * (w - ml - mr)

    def sy(v):
        v = math.log10(v) if log_y else v
        return h - mb - (v - ylo) / (yhi - ylo) * (h - mt - mb)

    # ticks are placed on the (log10 when log) axis values themselves, hence not through sx / sy
    x_ticks = [(ml + (t - xlo) / (xhi - xlo) * (w - ml - mr), label) for t, label in _ticks(xlo, xhi, log_x)]
    y_ticks = [(h - mb - (t - ylo) / (yhi - ylo) * (h - mt - mb), label) for t, label in _ticks(ylo, yhi, log_y)]
    return Scatter(w, h, ml, mt, w - mr, h - mb, x_label, y_label, x_ticks, y_ticks,
                   [ScatterPoint(lab, sx(x), sy(y), kind, COLORS.get(kind, COLORS["run"])) for lab, x, y, kind in pts])


def axis_label(metric: str, goal: str, log: bool) -> str:
    return f"{metric}{' (log scale)' if log else ''} — {GOAL_WORDS.get(goal, '')}".rstrip(" —")




@dataclass(frozen=True)
class LinePanel(Frame):
    """What ``trajectory.svg.j2`` draws for one metric over unlearning steps: the frame, the
    ticks, the points (pixels, with their step and value), the reference levels (original,
    oracle) and the reported point."""

    metric: str
    y_label: str
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    points: list[tuple[float, float, str]]  # x, y, "step s: value"
    levels: list[tuple[float, str, str]]  # y, label, color
    reported: tuple[float, float] | None


def line_layout(metric: str, steps: list[int], values: list[Any], levels: dict[str, Any], reported_step: int | None,
                log: bool = False) -> LinePanel | None:
    """The layout of one small deterministic SVG line chart of ``metric`` against ``steps``
    (missing values are left out; None when none is left). ``levels``: horizontal reference
    lines by kind (``original``, ``oracle``); ``log``: a log10 value axis when every value is > 0."""
    pts = [(int(s), number(v)) for s, v in zip(steps, values) if number(v) is not None]
    lines = {kind: number(v) for kind, v in levels.items() if number(v) is not None}
    if not pts:
        return None
    log = log and all(v > 0 for _, v in pts) and all(v > 0 for v in lines.values())
    w, h, ml, mr, mt, mb = 320, 200, 62, 12, 22, 38
    xlo, xhi = min(s for s, _ in pts), max(s for s, _ in pts)
    xhi = xhi if xhi > xlo else xlo + 1
    ylo, yhi, log = _axis([v for _, v in pts] + list(lines.values()), log)

    def sx(s):
        return ml + (s - xlo) / (xhi - xlo) * (w - ml - mr)

    def sy(v):
        v = math.log10(v) if log else v
        return h - mb - (v - ylo) / (yhi - ylo) * (h - mt - mb)

    x_ticks = [(sx(t), label) for t, label in _ticks(float(xlo), float(xhi), False) if float(t).is_integer()]
    y_ticks = [(h - mb - (t - ylo) / (yhi - ylo) * (h - mt - mb), label) for t, label in _ticks(ylo, yhi, log)]
    points = [(sx(s), sy(v), f"step {s}: {fmt(v)}") for s, v in pts]
    reported = next(((x, y) for (s, _), (x, y, _) in zip(pts, points) if s == reported_step), None)
    return LinePanel(w, h, ml, mt, w - mr, h - mb, metric, f"{metric}{' (log scale)' if log else ''}", x_ticks, y_ticks,
                     points, [(sy(v), kind, COLORS.get(kind, COLORS["run"])) for kind, v in lines.items()], reported)
