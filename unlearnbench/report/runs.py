"""A run as pictures: one self-contained HTML page (inline CSS, plots as embedded PNG), from the
jinja2 template ``templates/report.html.j2``.

For each run: the metric table by lens with the original target and the oracle as reference
columns; the distributions of the per-example truth ratios (or confidences) of the unlearned
model against the oracle's; ROC curves of the membership attacks when the per-example scores
hold them; the relearning curve (and metrics over unlearning steps) when the record has them;
the trajectory (``--eval-every``) as small inline SVG line charts, one per metric.
For several runs of one task: the forget-vs-utility trade-off.

Everything is driven by the record, its suite's rows and the per-example scores, so a new task
family is reported without touching this module. The readers of attack scores and curves are
tolerant: they look for the layouts described on :func:`attack_scores` and :func:`curves`, and
skip a plot (saying so) when nothing fits.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from unlearnbench.errors import UserError
from unlearnbench.report.htmlpage import line_layout, params_text, render
from unlearnbench.leaderboard.ranking import GOAL_ARROWS, GOAL_WORDS, number, ranking_for, suite_rows
from unlearnbench.records import PER_EXAMPLE_FILE, RECORD_FILE
from unlearnbench.verdict import LEGEND, verdict

REPORT_FILE = "report.html"
DISTRIBUTION_KEYS = ("truth_ratio", "confidence", "probability", "abs_error")  # first one present per split is drawn
MAX_PANELS = 4
MODELS = (("unlearned", "#2b6cb0"), ("oracle", "#2f855a"), ("original", "#c53030"))
MEMBER_KEYS = ("member", "members", "forget", "in", "train")
NONMEMBER_KEYS = ("nonmember", "non_member", "non-member", "nonmembers", "non_members", "holdout", "out", "test")
NOT_ATTACKS = {"nll", "text", "texts", "label", "labels", "is_member", "index", "ids"}
X_KEYS = ("step", "steps", "epoch", "epochs", "n_steps", "request", "requests", "n_forget", "round", "x")


@dataclass
class Run:
    path: Path
    record: dict
    per_example: dict | None

    @property
    def suite(self) -> str:
        return self.record.get("task", {}).get("suite", "")

    @property
    def title(self) -> str:
        r = self.record
        return f"{r.get('task', {}).get('name', '?')} · {r.get('method', {}).get('name', '?')} · seed {r.get('seed', '?')}"


def load_run(path: Path) -> Run:
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    record_path = folder / RECORD_FILE if path.is_dir() else path
    if not record_path.is_file():
        raise UserError(f"{path} is not a run folder: there is no {RECORD_FILE} in it. Pass runs/<run_id>.")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{record_path} is not valid JSON ({exc}).") from None
    per_example = None
    if (folder / PER_EXAMPLE_FILE).is_file():
        try:
            per_example = json.loads((folder / PER_EXAMPLE_FILE).read_text(encoding="utf-8"))
        except ValueError:
            per_example = None
    return Run(folder, record, per_example if isinstance(per_example, dict) else None)


# -------------------------------------------------------------------------- reading data


def _array(values: Any) -> np.ndarray | None:
    """A 1-D float array of a list of numbers (null -> NaN), or None if it is not one."""
    if not isinstance(values, list) or not values:
        return None
    if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
        return None
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _pick(d: dict, keys: Iterable[str]) -> Any:
    return next((d[k] for k in keys if k in d), None)


def find_privacy(per_model: Any) -> dict | None:
    """The ``privacy`` entry of one model's per-example scores, at the top or inside a split."""
    if not isinstance(per_model, dict):
        return None
    if isinstance(per_model.get("privacy"), dict):
        return per_model["privacy"]
    return next((v["privacy"] for v in per_model.values() if isinstance(v, dict) and isinstance(v.get("privacy"), dict)), None)


def attack_scores(privacy: dict | None, oracle_privacy: dict | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """attack -> (member scores, non-member scores), read from any of these layouts:

    - group first: ``{"forget": {attack: [...], "nll": [...]}, "holdout": {...}}`` (members /
      non-members may also be called member(s) / in / train and nonmember(s) / out / test);
      with ``nll`` in both this and the oracle's entry, the reference attack
      ``-(nll - nll_oracle)`` is added;
    - attack first: ``{attack: {"member": [...], "nonmember": [...]}}``;
    - labelled: ``{attack: {"scores": [...], "labels": [1, 0, ...]}}`` (1 = member);
    optionally wrapped in ``{"attacks": ...}``.
    """
    if not isinstance(privacy, dict):
        return {}
    p = privacy["attacks"] if isinstance(privacy.get("attacks"), dict) else privacy
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    members, nonmembers = _pick(p, MEMBER_KEYS), _pick(p, NONMEMBER_KEYS)
    if isinstance(members, dict) and isinstance(nonmembers, dict):
        for attack, values in members.items():
            m, n = _array(values), _array(nonmembers.get(attack))
            if attack not in NOT_ATTACKS and m is not None and n is not None:
                out[attack] = (m, n)
        if "reference" not in out and isinstance(oracle_privacy, dict):
            om, on = _pick(oracle_privacy, MEMBER_KEYS), _pick(oracle_privacy, NONMEMBER_KEYS)
            if isinstance(om, dict) and isinstance(on, dict):
                pairs = [(_array(members.get("nll")), _array(om.get("nll"))), (_array(nonmembers.get("nll")), _array(on.get("nll")))]
                if all(a is not None and b is not None and a.shape == b.shape for a, b in pairs):
                    out["reference"] = tuple(-(a - b) for a, b in pairs)
        return out
    for attack, entry in p.items():
        if not isinstance(entry, dict) or attack in NOT_ATTACKS:
            continue
        m, n = _array(_pick(entry, MEMBER_KEYS)), _array(_pick(entry, NONMEMBER_KEYS))
        if m is not None and n is not None:
            out[attack] = (m, n)
            continue
        scores, labels = _array(entry.get("scores")), _array(_pick(entry, ("labels", "is_member")))
        if scores is not None and labels is not None and scores.shape == labels.shape:
            out[attack] = (scores[labels == 1], scores[labels == 0])
    return out


def roc(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(false-positive rates, true-positive rates, AUC); higher score = member."""
    from sklearn.metrics import roc_auc_score, roc_curve

    m, n = members[np.isfinite(members)], nonmembers[np.isfinite(nonmembers)]
    labels = np.r_[np.ones(len(m)), np.zeros(len(n))]
    scores = np.r_[m, n]
    fpr, tpr, _ = roc_curve(labels, scores)
    return fpr, tpr, float(roc_auc_score(labels, scores))


def _numeric_items(d: dict) -> dict[str, float]:
    flat = {}
    for k, v in d.items():
        if isinstance(v, dict) and k == "metrics":
            flat.update({kk: float(vv) for kk, vv in v.items() if number(vv) is not None})
        elif number(v) is not None:
            flat[k] = float(v)
    return flat


def curve_series(obj: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (x, y) from a list of points (``[{"step": 0, "forget_quality": ...}, ...]``,
    values possibly under ``metrics``) or from columns (``{"step": [...], name: [...]}``)."""
    if isinstance(obj, list) and obj and all(isinstance(p, dict) for p in obj):
        flats = [_numeric_items(p) for p in obj]
        x_key = next((k for k in X_KEYS if all(k in f for f in flats)), None)
        xs = np.array([f[x_key] for f in flats]) if x_key else np.arange(len(flats), dtype=float)
        names = [k for k in dict.fromkeys(k for f in flats for k in f) if k != x_key]
        return {k: (xs, np.array([f.get(k, np.nan) for f in flats], dtype=float)) for k in names}
    if isinstance(obj, dict):
        if isinstance(obj.get("curve"), (list, dict)):
            return curve_series(obj["curve"])
        columns = {k: _array(v) for k, v in obj.items()}
        columns |= {k: _array(v) for k, v in (obj.get("metrics") or {}).items()} if isinstance(obj.get("metrics"), dict) else {}
        columns = {k: v for k, v in columns.items() if v is not None}
        x_key = next((k for k in X_KEYS if k in columns), None)
        if x_key is None:
            return {}
        xs = columns.pop(x_key)
        return {k: (xs, v) for k, v in columns.items() if v.shape == xs.shape}
    return {}


def _lens_relearning(run: Run) -> dict | None:
    """The robustness lens's relearning attack as columns: the forget probability of the
    measured half after each step, for the unlearned model, the original and the oracle."""
    from unlearnbench.lenses.robustness import RELEARN_STEPS

    scores = ((run.per_example or {}).get("lenses") or {}).get("robustness")
    if not isinstance(scores, dict):
        return None
    columns: dict[str, list] = {"step": list(RELEARN_STEPS)}
    for which, label in (("unlearned", "unlearned"), ("original", "original target"), ("oracle", "oracle (control)")):
        curve = (scores.get(which) or {}).get("relearn")
        if isinstance(curve, list) and len(curve) == len(RELEARN_STEPS):
            columns[f"forget probability, {label}"] = [float(np.mean(step)) for step in curve]
    return columns if len(columns) > 1 else None


def curves(run: Run) -> list[tuple[str, str, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """(title, x label, series) for the relearning curve and the metrics over unlearning steps,
    when the record or its per-example scores hold them."""
    found = []
    unlearned = (run.per_example or {}).get("unlearned") if run.per_example else None
    robustness = run.record.get("robustness") if isinstance(run.record.get("robustness"), dict) else {}
    for source in (_lens_relearning(run), run.record.get("relearning"), robustness.get("relearning"),
                   unlearned.get("relearning") if isinstance(unlearned, dict) else None):
        series = curve_series(source) if source is not None else {}
        if series:
            found.append(("Relearning: the forgotten knowledge coming back under fine-tuning on forget data", "relearning step", series))
            break
    steps = run.record.get("steps")
    if isinstance(steps, list) and steps:
        series = curve_series(steps)
        rows = suite_rows(run.suite)
        ranking = ranking_for(run.suite, rows, set(run.record.get("metrics", {})))
        keep = [c.metric for c in ranking.criteria if c.metric in series] or list(series)[:6]
        if keep:
            found.append(("Metrics over successive unlearning steps", "step", {k: series[k] for k in keep}))
    return found


def _trajectory_rows(suite_name: str) -> list:
    """The suite's trajectory rows (empty for a suite this unlearnbench does not know)."""
    from unlearnbench import registry

    entry = registry.entries("suite").get(suite_name)
    return list(entry.obj().trajectory_rows()) if entry else []


def trajectory_view(run: Run) -> dict[str, Any] | None:
    """What the report draws of a record's trajectory (``--eval-every``): one line chart per
    metric (the suite's order first), with the original's and the oracle's values as dashed
    levels and the reported point circled; None when the record has no trajectory."""
    trajectory = run.record.get("trajectory")
    if not isinstance(trajectory, dict):
        return None
    points = [p for p in trajectory.get("points") or [] if isinstance(p, dict) and isinstance(p.get("metrics"), dict)]
    steps = [p.get("step") for p in points]
    view = {"every": trajectory.get("every"), "reported": trajectory.get("reported"), "n": len(points),
            "steps": trajectory.get("steps"), "note": trajectory.get("note"), "panels": []}
    if not points or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
        return view
    rows = {row.name: row for row in _trajectory_rows(run.suite)}
    names = [n for n in rows if any(n in p["metrics"] for p in points)]
    names += [n for n in dict.fromkeys(k for p in points for k in p["metrics"]) if n not in rows]
    ranking = ranking_for(run.suite, suite_rows(run.suite), set(run.record.get("metrics") or {}))
    reference = run.record.get("reference") or {}
    for name in names:
        levels = {which: (reference.get(which) or {}).get(name) for which in ("original", "oracle")}
        panel = line_layout(name, steps, [p["metrics"].get(name) for p in points], levels,
                            trajectory.get("reported_step"), log=ranking.log_y and name == ranking.y)
        if panel is not None:
            view["panels"].append((panel, rows[name].description if name in rows else ""))
    return view


# -------------------------------------------------------------------------------- plots


def _figure(n_panels: int, width: float = 4.2, height: float = 3.2):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_panels, height), dpi=100, layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, axes


@dataclass(frozen=True)
class Plot:
    """A figure as the page embeds it: the alt text and the base64 of the PNG."""

    alt: str
    png: str


def _png(fig, alt: str) -> Plot:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # no version stamp: same bytes on every run
    return Plot(alt, base64.b64encode(buf.getvalue()).decode("ascii"))


def _derived(scores: Any, key: str) -> np.ndarray | None:
    """A per-example value stored directly, or derived from what classifier and regression
    suites store: ``confidence`` = p_y from ``probs`` and ``labels``; ``abs_error`` =
    |pred - y|."""
    if not isinstance(scores, dict):
        return None
    direct = _array(scores.get(key))
    if direct is not None:
        return direct
    if key == "confidence" and "probs" in scores and "labels" in scores:
        probs, labels = np.asarray(scores["probs"], dtype=float), np.asarray(scores["labels"], dtype=int)
        if probs.ndim == 2 and len(probs) == len(labels):
            return probs[np.arange(len(labels)), labels]
    if key == "abs_error" and "pred" in scores and "y" in scores:
        pred, y = _array(scores["pred"]), _array(scores["y"])
        if pred is not None and y is not None and pred.shape == y.shape:
            return np.abs(pred - y)
    return None


def _distribution_panels(run: Run) -> list[tuple[str, str]]:
    pe = run.per_example or {}
    unlearned = pe.get("unlearned") if isinstance(pe.get("unlearned"), dict) else {}
    panels = []
    for split, scores in unlearned.items():
        if not isinstance(scores, dict) or split == "privacy":
            continue
        key = next((k for k in DISTRIBUTION_KEYS if _derived(scores, k) is not None), None)
        if key:
            panels.append((split, key))
    return panels[:MAX_PANELS]


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def distributions_plot(run: Run) -> Plot | None:
    panels = _distribution_panels(run)
    if not panels:
        return None
    fig, axes = _figure(len(panels))
    for ax, (split, key) in zip(axes, panels):
        series = {}
        for model, _ in MODELS:
            arr = _derived(_get(run.per_example, model, split), key)
            if arr is not None:
                series[model] = arr[np.isfinite(arr)]
        log = key == "truth_ratio" and all(len(v) and (v > 0).all() for v in series.values())
        if log:
            series = {m: np.log10(v) for m, v in series.items()}
        values = np.concatenate([v for v in series.values() if len(v)]) if series else np.array([])
        if not len(values):
            continue
        bins = np.histogram_bin_edges(values, bins=min(30, max(5, int(math.sqrt(len(values))))))
        for model, color in MODELS:
            if model in series and len(series[model]):
                ax.hist(series[model], bins=bins, histtype="step", linewidth=1.8, color=color, density=True,
                        label=f"{model} (n={len(series[model])})")
        ax.set_title(f"{split}: {key}", fontsize=10)
        ax.set_xlabel(f"log10 {key}" if log else key)
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    return _png(fig, f"per-example {', '.join(k for _, k in panels)} distributions of the unlearned model vs the oracle")


def roc_plot(run: Run) -> Plot | None:
    pe = run.per_example or {}
    oracle_privacy = find_privacy(pe.get("oracle"))
    per_model = {model: attack_scores(find_privacy(pe.get(model)), oracle_privacy) for model, _ in MODELS}
    attacks = list(per_model["unlearned"])
    if not attacks:
        return None
    recorded = {"unlearned": run.record.get("metrics", {}), **(run.record.get("reference") or {})}
    fig, axes = _grid(len(attacks))
    for ax, attack in zip(axes, attacks):
        for model, color in MODELS:
            pair = per_model[model].get(attack)
            if pair is None or not len(pair[0]) or not len(pair[1]):
                continue
            fpr, tpr, auc = roc(*pair)
            target = number((recorded.get(model) or {}).get(f"mia_{attack}_auc"))
            if target is not None and abs((1 - auc) - target) < abs(auc - target):
                fpr, tpr, auc = roc(-pair[0], -pair[1])  # the record scores the other orientation
            ax.plot(fpr, tpr, color=color, linewidth=1.6, label=f"{model} AUC {auc:.3f}")
        ax.plot([0, 1], [0, 1], color="#999", linestyle=":", linewidth=1)
        ax.set_title(f"{attack}", fontsize=10)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="lower right")
    for ax in axes[len(attacks):]:
        ax.set_visible(False)
    return _png(fig, f"ROC curves of the membership attacks ({', '.join(attacks)})")


def _mosaic(samples: Any) -> tuple[np.ndarray, list] | None:
    """One image of a model's sample grid: ``samples = {"classes": [...], "images": [per class:
    [image, ...]]}`` with images ``[C, H, W]`` of 0..255 integers; a row per class."""
    if not isinstance(samples, dict) or not isinstance(samples.get("images"), list) or not samples["images"]:
        return None
    try:
        rows = [np.asarray(row, dtype=np.uint8) for row in samples["images"]]
    except (TypeError, ValueError):
        return None
    if any(r.ndim != 4 for r in rows) or len({r.shape[1:] for r in rows}) != 1:
        return None
    n = max(len(r) for r in rows)
    c, h, w = rows[0].shape[1:]
    pad = 1
    out = np.full((len(rows) * (h + pad), n * (w + pad), c), 255, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            out[i * (h + pad):i * (h + pad) + h, j * (w + pad):j * (w + pad) + w] = image.transpose(1, 2, 0)
    classes = samples.get("classes") if isinstance(samples.get("classes"), list) else list(range(len(rows)))
    return (out[..., 0] if c == 1 else out), classes


def samples_plot(run: Run) -> Plot | None:
    """The generated samples per class of the original, the oracle and the unlearned model (a
    generation suite's ``samples``), side by side."""
    pe = run.per_example or {}
    panels = [(model, _mosaic((pe.get(model) or {}).get("samples") if isinstance(pe.get(model), dict) else None))
              for model in ("original", "oracle", "unlearned")]
    panels = [(model, m) for model, m in panels if m is not None]
    if not panels:
        return None
    fig, axes = _figure(len(panels), width=3.4, height=3.8)
    forget = (pe.get("unlearned") or {}).get("forget_class") if isinstance(pe.get("unlearned"), dict) else None
    for ax, (model, (image, classes)) in zip(axes, panels):
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
        step = image.shape[0] / max(1, len(classes))
        ax.set_yticks([step * (i + 0.5) for i in range(len(classes))])
        ax.set_yticklabels([f"{c}{' (forgotten)' if c == forget else ''}" for c in classes], fontsize=7)
        ax.set_xticks([])
        ax.set_title(model, fontsize=10)
    return _png(fig, f"generated samples per class: {', '.join(m for m, _ in panels)}")


def _grid(n: int):
    from matplotlib.figure import Figure

    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.6 * cols, 3.4 * rows), dpi=100, layout="constrained")
    return fig, list(fig.subplots(rows, cols, squeeze=False).ravel())


def curve_plot(title: str, x_label: str, series: dict[str, tuple[np.ndarray, np.ndarray]]) -> Plot:
    fig, axes = _figure(1, width=6, height=3.4)
    ax = axes[0]
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.5, label=name)
    ax.set_xlabel(x_label)
    ax.set_ylabel("value")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig, title)


def tradeoff_plot(runs: list[Run]) -> Plot | None:
    """Forget vs utility for several runs of one task, with the reference points."""
    suite = runs[0].suite
    rows = suite_rows(suite)
    present = {m for r in runs for m in r.record.get("metrics", {})}
    ranking = ranking_for(suite, rows, present)
    x, y = ranking.x, ranking.y
    if not (x and y):
        return None
    goals = {r.name: r.direction for r in rows} | {c.metric: c.goal for c in ranking.criteria}
    fig, axes = _figure(1, width=6.5, height=4.4)
    ax = axes[0]
    for r in runs:
        m = r.record.get("metrics", {})
        if number(m.get(x)) is None or number(m.get(y)) is None:
            continue
        ax.scatter([m[x]], [m[y]], color="#2b6cb0", s=36, zorder=3)
        ax.annotate(f"{r.record['method']['name']} s{r.record.get('seed')}", (m[x], m[y]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ref = runs[0].record.get("reference") or {}
    for which, color in (("original", "#c53030"), ("oracle", "#2f855a")):
        m = ref.get(which) or {}
        if number(m.get(x)) is not None and number(m.get(y)) is not None:
            ax.scatter([m[x]], [m[y]], color=color, marker="s", s=48, zorder=3, label=which)
    if ranking.log_y and all((number(r.record.get("metrics", {}).get(y)) or 0) > 0 for r in runs):
        ax.set_yscale("log")
    ax.set_xlabel(f"{x} ({GOAL_WORDS.get(goals.get(x, 'info'), '')})")
    ax.set_ylabel(f"{y} ({GOAL_WORDS.get(goals.get(y, 'info'), '')})")
    ax.set_title(f"Forget vs utility: {runs[0].record['task']['name']}", fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig, f"forget vs utility trade-off of {len(runs)} runs")


# ------------------------------------------------------------------------------- tables


def _metric_groups(run: Run) -> list[tuple[str, list[dict[str, Any]]]]:
    """The rows of the metric table, grouped by lens (the suite's order within each)."""
    record = run.record
    metrics = record.get("metrics") or {}
    ci = record.get("ci") or {}
    ref = record.get("reference") or {}
    rows = [(r.name, r.direction, r.lens, r.description) for r in suite_rows(run.suite) if r.name in metrics]
    known = {r[0] for r in rows}
    rows += [(name, "info", "other", "") for name in metrics if name not in known]
    lenses = list(dict.fromkeys(r[2] for r in rows))
    rows.sort(key=lambda r: lenses.index(r[2]))

    def row(name: str, direction: str, description: str) -> dict[str, Any]:
        interval = ci.get(name)
        return {"name": name, "description": description, "goal": GOAL_WORDS.get(direction, direction),
                "arrow": GOAL_ARROWS.get(direction, direction), "unlearned": metrics.get(name),
                "original": (ref.get("original") or {}).get(name), "oracle": (ref.get("oracle") or {}).get(name),
                "ci": interval if isinstance(interval, list) and len(interval) == 2 else None}

    return [(lens, [row(name, direction, description) for name, direction, _, description in group])
            for lens, group in itertools.groupby(rows, key=lambda r: r[2])]


def _verdict(run: Run) -> str | None:
    """The run's one-line verdict (see :mod:`unlearnbench.verdict`) over its suite's and its
    model lenses' rows."""
    from unlearnbench.lenses import all_lenses

    rows = list(suite_rows(run.suite)) + [row for lens in all_lenses().values() for row in lens.rows()]
    record = run.record
    return verdict(record.get("metrics") or {}, record.get("reference") or {}, rows)


def _run_view(run: Run, index: int) -> dict[str, Any]:
    """What ``report.html.j2`` shows of one run (the plots drawn here)."""
    r = run.record
    prov = r.get("provenance") or {}
    view = {"index": index, "title": run.title, "status": r.get("status"), "run_id": r.get("run_id"),
            "params": params_text((r.get("method") or {}).get("params")),
            "version": (prov.get("packages") or {}).get("unlearnbench") or "?",
            "sha": str(prov.get("git_sha") or "?")[:12],
            "dirty": {True: " (uncommitted changes)", False: "", None: " (state unknown)"}.get(prov.get("git_dirty"), ""),
            "device": prov.get("device", "?"), "error": r.get("error"), "metric_groups": _metric_groups(run),
            "has_per_example": run.per_example is not None, "distributions": None, "roc": None, "samples": None,
            "verdict": _verdict(run)}
    if run.per_example is not None:
        view["distributions"] = distributions_plot(run)
        view["roc"] = roc_plot(run)
        view["samples"] = samples_plot(run)
    view["curves"] = [(title, curve_plot(title, x_label, series)) for title, x_label, series in curves(run)]
    view["trajectory"] = trajectory_view(run)
    return view


def _seed_view(runs: list[Run]) -> dict | None:
    """Runs of one task that differ only by seed, aggregated as on the board (and its signal check)."""
    from unlearnbench.leaderboard.seeds import seed_board, seed_view
    from unlearnbench.report.htmlpage import fmt

    if len(runs) < 2:
        return None
    records = [r.record for r in runs]
    present = {m for r in records for m in r.get("metrics", {})}
    return seed_view(seed_board(records, ranking_for(runs[0].suite, suite_rows(runs[0].suite), present)), fmt,
                     params_text)


def render_report(runs: list[Run]) -> str:
    by_task: dict[str, list[Run]] = {}
    for run in runs:
        by_task.setdefault(run.record.get("task", {}).get("name", "?"), []).append(run)
    heading = runs[0].title if len(runs) == 1 else f"{len(runs)} runs"
    tradeoffs, seed_tables = [], []
    for task, group in by_task.items():
        ok = [r for r in group if r.record.get("status") == "succeeded"]
        plot = tradeoff_plot(ok) if len(ok) > 1 else None
        if plot:
            tradeoffs.append((task, plot))
        view = _seed_view(ok)
        if view:
            seed_tables.append((task, view))
    return render("report.html.j2", title=f"unlearnbench report: {heading}", heading=heading, tradeoffs=tradeoffs,
                  seed_tables=seed_tables,
                  runs=[_run_view(run, i) for i, run in enumerate(runs)], per_example_file=PER_EXAMPLE_FILE,
                  legend=LEGEND)


def write_report(run_dirs: Iterable[Path], out: Path) -> Path:
    """Render the report of one or more run folders to ``out``; returns ``out``."""
    runs = [load_run(Path(p)) for p in run_dirs]
    if not runs:
        raise UserError("No run folders given: pass one or more runs/<run_id>.")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render_report(runs), encoding="utf-8")
    tmp.replace(out)
    return out
