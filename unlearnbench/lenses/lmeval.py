"""The lm-eval lens: general ability (and hazardous knowledge) through lm-evaluation-harness.

``--lens +lm-eval`` runs lm-eval's own evaluator (``simple_evaluate`` with
``HFLM(pretrained=model, tokenizer=tok, batch_size=...)``) on the unlearned model, the original
target and the oracle (the references cached like every lens's). The tasks are lm-eval's:
``--lm-eval-tasks mmlu,arc_easy,...`` from its registry (their data come from the hub), or,
by default, the multiple-choice tasks a task ships for offline use (``task.lm_eval``: YAML +
JSONL read through ``TaskManager(include_path=..., include_defaults=False)``; the synthetic
TOFU world ships its world-facts and real-author questions). ``--lm-eval-limit N`` scores the
first N questions of each task; ``--lm-eval-batch-size`` is passed to HFLM.

The metrics are lm-eval's numbers, not reimplemented: ``lm_eval_<task>_<metric>`` with a CI of
1.96 x lm-eval's own stderr; the lm-eval version and the tasks' versions go into the record's
provenance (``provenance.lenses``).
"""

from __future__ import annotations

import re
from typing import Any

from unlearnbench.family import Option
from unlearnbench.lm import lmeval
from unlearnbench.lenses.base import LanguageModelLens, LensContext
from unlearnbench.registry import register_lens
from unlearnbench.suites.common import MetricRow

LENS_VERSION = "1"
PREFIX = "lm_eval_"


def _tasks(task, options: dict) -> tuple[tuple[str, ...], bool]:
    """(task names, whether they are the task's own offline ones)."""
    named = options.get("lm_eval_tasks")
    if named:
        return tuple(t.strip() for t in str(named).split(",") if t.strip()), False
    own = (task.lm_eval or {}).get("tasks") if getattr(task, "lm_eval", None) else None
    return tuple(own or ()), True


def _name(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def metric_name(task_name: str, metric: str) -> str:
    return f"{PREFIX}{_name(task_name)}_{_name(metric)}"


@register_lens("lm-eval")
class LmEval(LanguageModelLens):
    name = "lm-eval"
    description = "lm-evaluation-harness tasks (MMLU, ARC, WMDP, ... or the task's own offline ones), lm-eval's numbers"
    order = 95
    version = LENS_VERSION
    options = (
        Option("lm_eval_tasks", "comma-separated lm-eval tasks (default: the task's own offline tasks)",
               task=False, in_run_id=True),
        Option("lm_eval_limit", "score only the first N questions of each lm-eval task", type=int, task=False,
               in_run_id=True),
        Option("lm_eval_batch_size", "HFLM's batch size", type=int, default=16, task=False),
    )

    def check(self, task, options: dict) -> str | None:
        if not _tasks(task, options)[0]:
            return (f"task {task.spec.name!r} ships no offline lm-eval tasks; name lm-eval's tasks with "
                    "--lm-eval-tasks (e.g. mmlu,arc_easy)")
        return None

    def reference_key(self, task) -> dict[str, Any]:
        return {"lm_eval": getattr(task, "lm_eval", None)}

    def per_example(self, ctx: LensContext, model, which: str) -> dict[str, Any]:
        names, own = _tasks(ctx.task, ctx.options)
        out = lmeval.evaluate(model, ctx.tokenizer, names, device=ctx.device,
                              include_path=ctx.task.lm_eval["include_path"] if own else None, include_defaults=not own,
                              batch_size=int(ctx.options.get("lm_eval_batch_size") or 16),
                              limit=ctx.options.get("lm_eval_limit"), seed=ctx.seed)
        results = {task: {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                   for task, values in out["results"].items()}
        higher = {task: dict(values) for task, values in (out.get("higher_is_better") or {}).items()}
        return {"results": results, "higher_is_better": higher, "versions": dict(out.get("versions") or {}),
                "n_samples": {t: v.get("effective") for t, v in (out.get("n-samples") or {}).items()},
                "lm_eval_version": out.get("lm_eval_version")}

    def aggregate(self, per_example: dict, references: dict | None = None, *,
                  seed: int = 0) -> tuple[dict[str, float], dict[str, list[float]]]:
        """lm-eval's numbers as they are: ``<metric>,<filter>`` becomes
        ``lm_eval_<task>_<metric>`` (the filter ``none`` dropped), its CI 1.96 x the stderr
        lm-eval reports beside it."""
        metrics, ci = {}, {}
        for task, values in per_example["results"].items():
            for key, value in values.items():
                metric, comma, filt = key.partition(",")
                if not comma or metric.endswith("_stderr"):  # not a metric (e.g. sample_len, a count)
                    continue
                name = metric_name(task, metric if filt in ("", "none") else f"{metric}_{filt}")
                metrics[name] = float(value)
                stderr = values.get(f"{metric}_stderr,{filt}" if filt else f"{metric}_stderr")
                if isinstance(stderr, (int, float)):
                    ci[name] = [float(value) - 1.96 * float(stderr), float(value) + 1.96 * float(stderr)]
        return metrics, ci

    def rows_for(self, scores: dict) -> list[MetricRow]:
        """One row per lm-eval task and metric measured (known once the lens has run)."""
        rows = []
        for task, values in scores["results"].items():
            higher = scores.get("higher_is_better", {}).get(task, {})
            for key in values:
                metric, comma, filt = key.partition(",")
                if not comma or metric.endswith("_stderr"):
                    continue
                direction = "higher" if higher.get(metric, True) else "lower"
                rows.append(MetricRow(metric_name(task, metric if filt in ("", "none") else f"{metric}_{filt}"),
                                      direction, "lm-eval", f"lm-eval {task}: {metric}"))
        return rows

    def provenance(self, scores: dict) -> dict[str, Any]:
        return {"lm_eval_version": scores.get("lm_eval_version"), "task_versions": scores.get("versions", {})}
