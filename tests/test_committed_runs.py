"""Every run on the committed leaderboard recomputes, through today's suites and lenses, to
the numbers it was submitted with (metrics, CIs, reference rows and steps) to 12 significant
digits (only the last bits may move, where a library sums in another order than the code it
replaced), so a change to the code that moves a published number cannot land unnoticed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from unlearnbench.records import PER_EXAMPLE_FILE, RECORD_FILE, _json_safe

BOARD = Path(__file__).resolve().parent.parent / "leaderboards"
RUNS = sorted(p.parent for p in BOARD.glob(f"*/*/{RECORD_FILE}"))


def _same(recorded, recomputed) -> bool:
    """Equal after the JSON round trip a record goes through (NaN and infinities are null)."""
    again = json.loads(json.dumps(_json_safe(recomputed)))
    if isinstance(recorded, list):
        return len(recorded) == len(again) and all(_same(a, b) for a, b in zip(recorded, again))
    if isinstance(recorded, float) and isinstance(again, (int, float)) and not isinstance(again, bool):
        return math.isnan(again) if math.isnan(recorded) else math.isclose(recorded, again, rel_tol=1e-12, abs_tol=1e-300)
    return recorded == again


def _differences(recorded: dict, recomputed: dict, where: str) -> list[str]:
    return [f"{where}.{k}: {v!r} recorded, {recomputed.get(k, 'missing')!r} recomputed"
            for k, v in recorded.items() if k not in recomputed or not _same(v, recomputed[k])]


def test_the_board_has_runs_of_every_task_kind():
    suites = {json.loads((run / RECORD_FILE).read_text())["task"]["suite"] for run in RUNS}
    assert {"tofu", "muse", "classifier", "regression", "generation"} <= suites


@pytest.mark.parametrize("run", RUNS, ids=[p.name for p in RUNS])
def test_a_committed_run_recomputes_to_identical_numbers(run):
    from unlearnbench.lenses import get_lens
    from unlearnbench.suites import get_suite

    record = json.loads((run / RECORD_FILE).read_text())
    per_example = json.loads((run / PER_EXAMPLE_FILE).read_text())
    suite, seed = get_suite(record["task"]["suite"]), record["seed"]
    metrics, ci = suite.aggregate(per_example["unlearned"], per_example["oracle"], seed=seed)
    reference = {which: suite.aggregate(per_example[which], per_example["oracle"], seed=seed)[0]
                 for which in ("original", "oracle")}
    for name, scores in (per_example.get("lenses") or {}).items():
        lens = get_lens(name)
        m, c = lens.aggregate(scores["unlearned"], scores)
        metrics.update(m)
        ci.update(c)
        for which in reference:
            if which in scores:
                reference[which].update(lens.aggregate(scores[which], scores)[0])
    problems = _differences(record["metrics"], metrics, "metrics") + _differences(record["ci"], ci, "ci")
    for which in ("original", "oracle"):
        problems += _differences(record["reference"][which], reference[which], f"reference.{which}")
    for i, (step, scores) in enumerate(zip(record.get("steps") or [], per_example.get("steps") or [])):
        m, c = suite.aggregate(scores, per_example["oracle"], seed=seed)
        problems += _differences(step["metrics"], m, f"steps[{i}].metrics") + _differences(step["ci"], c, f"steps[{i}].ci")
    assert not problems, "\n".join(problems)
