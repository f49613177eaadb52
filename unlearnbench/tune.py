"""Fair hyperparameter selection: ``unlearnbench tune SPEC``.

A tune file is a sweep file (:mod:`unlearnbench.sweep`) with a ``[select]`` section::

    tasks = ["tofu-synth/forget10"]
    methods = ["ga", "npo", "simnpo"]
    seeds = [0]                       # the validation seeds
    [params."*"]
    lr = [1e-5, 3e-5, 1e-4, 3e-4]     # every method tries these 4 points
    [select]
    budget = 4                        # points per method: the same for every method
    seeds = [0, 1, 2]                 # the chosen point (and the default) on the test split
    defaults = true

1. **Validation.** Every point of every method runs with ``--split validation``: the method
   unlearns the task's whole forget set and is scored on the validation slices only, which the
   task's family defines (:meth:`unlearnbench.family.Family.split_task`; disjoint from the test
   slices by construction). Every method must have exactly ``budget`` points.
2. **Selection.** Per task and method, the points are ranked by the task family's ranking
   (:mod:`unlearnbench.leaderboard.ranking`: TOFU's forget quality and model utility, MUSE's
   four criteria, the classifiers' average gap to retrain, ...), on their means over the
   validation seeds; the best is chosen (ties: the first criterion, then the point's text).
   A point whose validation runs all failed is not eligible.
3. **Test.** The chosen point, and the method's defaults, run with ``--split test`` on the
   ``[select]`` seeds; the table shows mean ± std over seeds. The test numbers never choose
   anything.

Everything is one ``evaluate`` per job (run ids as usual, so a re-run skips finished jobs);
``tune.json`` in the output folder says what was tried, chosen and measured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from unlearnbench.errors import UserError
from unlearnbench.family import SPLIT
from unlearnbench.records import load_record
from unlearnbench.sweep import Job, SweepSpec, expand, jobs_of, run_sweep

SUMMARY_FILE = "tune.json"


@dataclass
class Choice:
    """One task and method: what was tried on the validation split and what was chosen."""

    task: str
    method: str
    tried: list[dict] = field(default_factory=list)  # {"params", "metrics" (means over seeds), "n", "rank"}
    chosen: dict | None = None  # the params (as --param spells them) of the best point
    criteria: tuple = ()


def split_spec(spec: SweepSpec, split: str) -> SweepSpec:
    return spec.model_copy(update={"options": {**spec.options, SPLIT: split}, "select": None})


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def validation_jobs(spec: SweepSpec, out: Path) -> list[Job]:
    """Every point on the validation split, after checking that every method has the budget."""
    if spec.select is None:
        raise UserError("a tune file needs a [select] section (budget = points per method; seeds = the test seeds).")
    if SPLIT in spec.options:
        raise UserError(f"options.{SPLIT}: tune chooses the split itself (validation, then test); leave it out.")
    runs = expand(split_spec(spec, "validation"), out)
    points: dict[tuple[str, str], set[str]] = {}
    for r in runs:
        points.setdefault((r.task, r.method), set()).add(_key(r.params))
    wrong = [f"{m} on {t} has {len(p)}" for (t, m), p in points.items() if len(p) != spec.select.budget]
    if wrong:
        raise UserError(f"select.budget = {spec.select.budget} points per method, the same for every method; "
                        f"{'; '.join(wrong)}. Give each method that many grid points (or samples).")
    return jobs_of(runs, spec)


def _records(jobs: list[Job]) -> list[tuple[Job, dict]]:
    out = []
    for job in jobs:
        try:
            record = load_record(job.record_path)
        except (OSError, ValueError):
            continue
        if record.get("status") == "succeeded":
            out.append((job, record))
    return out


def choose(jobs: list[Job]) -> list[Choice]:
    """Per task and method, the points ranked on their validation records (means over seeds)."""
    from unlearnbench.leaderboard.ranking import rank, ranking_for, suite_rows

    by_method: dict[tuple[str, str], dict[str, list]] = {}
    for job in jobs:  # every point, so that one whose runs all failed is still listed
        by_method.setdefault((job.spec.task, job.spec.method), {}).setdefault(_key(job.spec.params), [])
    for job, record in _records(jobs):
        by_method[(job.spec.task, job.spec.method)][_key(job.spec.params)].append(record)
    choices = []
    for (task, method), points in by_method.items():
        choice = Choice(task, method)
        pseudo = []
        for key, records in points.items():
            if not records:
                choice.tried.append({"params": json.loads(key), "metrics": {}, "n": 0, "rank": None})
                continue
            names = sorted({m for r in records for m, v in r["metrics"].items() if isinstance(v, (int, float))})
            means = {m: _mean([r["metrics"].get(m) for r in records]) for m in names}
            pseudo.append({"run_id": key, "metrics": means, "reference": records[0].get("reference", {}),
                           "suite": records[0]["task"].get("suite"), "n": len(records)})
        if pseudo:
            suite = pseudo[0]["suite"]
            present = {m for p in pseudo for m in p["metrics"]}
            ranking = ranking_for(suite, suite_rows(suite), present)
            choice.criteria = ranking.criteria
            for position, _, p in rank(pseudo, ranking):
                choice.tried.append({"params": json.loads(p["run_id"]), "metrics": p["metrics"], "n": p["n"],
                                     "rank": position})
            choice.chosen = json.loads(rank(pseudo, ranking)[0][2]["run_id"])
        choices.append(choice)
    return choices


def _mean(values) -> float | None:
    from unlearnbench.leaderboard.ranking import number

    xs = [x for x in (number(v) for v in values) if x is not None]
    return sum(xs) / len(xs) if xs else None


def test_jobs(spec: SweepSpec, choices: list[Choice], out: Path) -> dict[tuple[str, str, str], list[Job]]:
    """(task, method, "tuned" | "default") -> the jobs on the test split, one per select seed."""
    base = expand(split_spec(spec, "test").model_copy(update={"params": {}}), out)
    template = {(r.task, r.method): r for r in base}  # the method's run with no params, on the test split
    wanted: dict[tuple[str, str, str], list] = {}
    for c in choices:
        points = ([("tuned", c.chosen)] if c.chosen is not None else []) + ([("default", {})] if spec.select.defaults else [])
        for which, params in points:
            run = template[(c.task, c.method)]
            wanted[(c.task, c.method, which)] = [replace(run, params=dict(params), seed=s) for s in spec.select.seeds]
    planned = {j.run_id: j for j in jobs_of([r for rs in wanted.values() for r in rs], spec)}
    from unlearnbench.records import make_run_id
    from unlearnbench.runner import plan

    return {k: [planned[make_run_id(plan(r).config)] for r in rs] for k, rs in wanted.items()}


def tune(spec: SweepSpec, out: Path, executor, display=None) -> dict:
    """Validation runs, the choice, test runs; returns (and writes to ``tune.json``) the summary."""
    val = validation_jobs(spec, out)
    state = run_sweep(val, executor, display=display)
    choices = choose(val)
    tests = test_jobs(spec, choices, out)
    all_test = list({j.run_id: j for js in tests.values() for j in js}.values())
    state_test = run_sweep(all_test, executor, display=display)
    summary = summarise(spec, choices, tests)
    summary["jobs"] = {"validation": len(val), "test": len(all_test),
                       "failed": [list(f) for f in state.failures + state_test.failures]}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return summary


def summarise(spec: SweepSpec, choices: list[Choice], tests: dict) -> dict:
    from unlearnbench.leaderboard.seeds import spread

    rows = []
    for c in choices:
        for which in ("tuned", "default"):
            jobs = tests.get((c.task, c.method, which))
            if jobs is None:
                continue
            records = [r for _, r in _records(jobs)]
            names = [cr.metric for cr in c.criteria] or sorted({m for r in records for m in r["metrics"]})
            test = {}
            for m in names:
                s = spread([r["metrics"].get(m) for r in records])
                test[m] = None if s is None else {"mean": s.mean, "std": s.std, "n": s.n}
            rows.append({"task": c.task, "method": c.method, "which": which,
                         "params": c.chosen if which == "tuned" else {}, "seeds": sorted(r["seed"] for r in records),
                         "run_ids": [j.run_id for j in jobs], "test": test})
    return {"budget": spec.select.budget, "validation_seeds": spec.seeds, "test_seeds": spec.select.seeds,
            "choices": [{"task": c.task, "method": c.method, "chosen": c.chosen,
                         "criteria": [[cr.metric, cr.goal] for cr in c.criteria], "tried": c.tried} for c in choices],
            "rows": rows}


def _params_text(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "(defaults)"


def rich_tables(summary: dict) -> list:
    """What was tried on validation (ranked), and tuned vs default on the test split."""
    from rich.markup import escape
    from rich.table import Table

    tables = []
    for c in summary["choices"]:
        criteria = [m for m, _ in c["criteria"]]
        t = Table(title=f"{c['task']} · {c['method']} · validation split, {len(c['tried'])} points "
                        f"(mean rank on {', '.join(criteria) or 'nothing: every point failed'}; the first row is chosen, "
                        "a tie going to the first criterion)", title_justify="left")
        for col in ("#", "params", "n", *criteria):
            t.add_column(col, justify="left" if col == "params" else "right")
        for p in c["tried"]:
            t.add_row("-" if p["rank"] is None else str(p["rank"]), escape(_params_text(p["params"])), str(p["n"]),
                      *[_num(p["metrics"].get(m)) for m in criteria])
        tables.append(t)
    names = list(dict.fromkeys(m for r in summary["rows"] for m in r["test"]))
    t = Table(title=f"test split · mean ± std over seeds {summary['test_seeds']} · chosen on the validation split "
                    f"(budget {summary['budget']} points per method)", title_justify="left")
    for col in ("task", "method", "", "params", "n", *names):
        t.add_column(col, justify="left" if col in ("task", "method", "", "params") else "right")
    for r in summary["rows"]:
        cells = [("-" if s is None else (f"{s['mean']:.4g} ± {s['std']:.2g}" if s["n"] > 1 else f"{s['mean']:.4g}"))
                 for s in (r["test"].get(m) for m in names)]
        n = max((s["n"] for s in r["test"].values() if s), default=0)
        t.add_row(escape(r["task"]), escape(r["method"]), r["which"], escape(_params_text(r["params"])), str(n), *cells)
    tables.append(t)
    return tables


def _num(value) -> str:
    return "-" if value is None else f"{value:.4g}"
