"""What the leaderboard page and the run report share: number formatting, CSS, the sorting
script, HTML escaping and a small deterministic SVG scatter (no plotting library, so the
committed board is byte-for-byte reproducible on any machine)."""

from __future__ import annotations

import html
import json
import math
from typing import Any

from unlearnbench.ranking import GOAL_WORDS, number


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


PAGE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 2rem;color:#1d2733;background:#fff}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #d8dee6;padding-bottom:.2rem}
h3{font-size:1.05rem;margin-top:1.4rem}p.meta,p.note{color:#56606b;font-size:.9rem;margin:.3rem 0}
code{background:#f2f4f7;padding:0 .25rem;border-radius:3px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}
th,td{border-bottom:1px solid #e4e8ee;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f6f8fa;position:sticky;top:0}
th.sortable{cursor:pointer;user-select:none}th.sortable:hover{background:#e9eef5}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
td.text,th.text{text-align:left}td.params{max-width:22rem;overflow:hidden;text-overflow:ellipsis;color:#56606b}
tbody.references td{background:#fbf7ea;font-style:italic}tr.lens td{background:#eef2f7;font-weight:600;text-align:left;font-style:normal}
th.criterion{background:#e3edf9}
figure{margin:1rem 0}figcaption{color:#56606b;font-size:.85rem}
img.plot{max-width:100%;border:1px solid #e4e8ee}
svg text{font-family:system-ui,sans-serif}
"""

SORT_JS = """
(function(){
  function key(cell){var v=cell.getAttribute('data-v');if(v===null){return cell.textContent.trim().toLowerCase();}
    return v===''?null:parseFloat(v);}
  document.querySelectorAll('table.sortable-table').forEach(function(table){
    var heads=table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads,function(th,col){
      th.classList.add('sortable');th.setAttribute('tabindex','0');th.title=(th.title?th.title+' — ':'')+'click to sort';
      function sort(){
        var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
        Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
        th.setAttribute('aria-sort',dir===1?'ascending':'descending');
        var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(a,b){var x=key(a.cells[col]),y=key(b.cells[col]);
          if(x===null&&y===null){return 0;}if(x===null){return 1;}if(y===null){return -1;}
          return (x<y?-1:x>y?1:0)*dir;});
        rows.forEach(function(r){body.appendChild(r);});
      }
      th.addEventListener('click',sort);
      th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();sort();}});
    });
  });
})();
"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def num_cell(value: Any, cls: str = "") -> str:
    v = number(value)
    data = "" if v is None else repr(v)
    return f'<td data-v="{data}"{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}>{fmt(value)}</td>'


def rank_cell(score: float | None) -> str:
    return "<td></td>" if score is None else f'<td data-v="{score!r}">{score:g}</td>'


def page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{esc(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n{body}\n"
            f"<script>{SORT_JS}</script>\n</body>\n</html>\n")


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


def scatter_svg(points: list[tuple[str, float | None, float | None, str]], x_label: str, y_label: str,
                log_x: bool = False, log_y: bool = False) -> str:
    """A small deterministic SVG scatter. ``points``: (label, x, y, kind) with kind one of
    ``run``, ``original``, ``oracle``. Points with a missing coordinate are left out."""
    pts = [(lab, number(x), number(y), kind) for lab, x, y, kind in points]
    pts = [p for p in pts if p[1] is not None and p[2] is not None
           and (not log_x or p[1] > 0) and (not log_y or p[2] > 0)]
    if not pts:
        return ""
    w, h, ml, mr, mt, mb = 560, 360, 70, 150, 20, 50
    xlo, xhi, log_x = _axis([p[1] for p in pts], log_x)
    ylo, yhi, log_y = _axis([p[2] for p in pts], log_y)

    def sx(v):
        v = math.log10(v) if log_x else v
        return ml + (v - xlo) / (xhi - xlo) * (w - ml - mr)

    def sy(v):
        v = math.log10(v) if log_y else v
        return h - mb - (v - ylo) / (yhi - ylo) * (h - mt - mb)

    parts = [f'<svg class="scatter" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             f'role="img" aria-label="{esc(y_label)} against {esc(x_label)}">',
             f'<rect x="{ml}" y="{mt}" width="{w - ml - mr}" height="{h - mt - mb}" fill="#fbfcfd" stroke="#c9d1db"/>']
    for t, label in _ticks(xlo, xhi, log_x):
        x = ml + (t - xlo) / (xhi - xlo) * (w - ml - mr)
        parts.append(f'<line x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{h - mb}" stroke="#eceff3"/>'
                     f'<text x="{x:.1f}" y="{h - mb + 16}" font-size="11" text-anchor="middle">{esc(label)}</text>')
    for t, label in _ticks(ylo, yhi, log_y):
        y = h - mb - (t - ylo) / (yhi - ylo) * (h - mt - mb)
        parts.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{w - mr}" y2="{y:.1f}" stroke="#eceff3"/>'
                     f'<text x="{ml - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{esc(label)}</text>')
    parts.append(f'<text x="{(ml + w - mr) / 2:.1f}" y="{h - 12}" font-size="12" text-anchor="middle">{esc(x_label)}</text>'
                 f'<text x="16" y="{(mt + h - mb) / 2:.1f}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 16 {(mt + h - mb) / 2:.1f})">{esc(y_label)}</text>')
    colors = {"run": "#2b6cb0", "original": "#c53030", "oracle": "#2f855a"}
    for lab, x, y, kind in pts:
        cx, cy = sx(x), sy(y)
        c = colors.get(kind, "#2b6cb0")
        if kind == "run":
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{c}" fill-opacity="0.8"><title>{esc(lab)}</title></circle>')
        else:
            parts.append(f'<rect x="{cx - 5:.1f}" y="{cy - 5:.1f}" width="10" height="10" fill="{c}"><title>{esc(lab)}</title></rect>')
        parts.append(f'<text x="{cx + 8:.1f}" y="{cy - 6:.1f}" font-size="11" fill="{c}">{esc(lab)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def axis_label(metric: str, goal: str, log: bool) -> str:
    return f"{metric}{' (log scale)' if log else ''} — {GOAL_WORDS.get(goal, '')}".rstrip(" —")


