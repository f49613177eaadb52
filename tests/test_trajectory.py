"""Trajectories (``--eval-every N``): the model scored every N optimisation steps, recorded,
reported and drawn. The last point is the reported model (checked against a run without a
trajectory, which scores the same model through the full suite), the number of points is
1 + ceil(steps / N), and a point in the middle is the model a shorter run ends with."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import stats

from unlearnbench.errors import UserError
from unlearnbench.records import RECORD_FILE, RunRecord
from unlearnbench.runner import RunSpec, plan, run
from unlearnbench.trajectory import expected_points

FAST = {"train": {"epochs": 3}}  # digits: a target of 3 epochs


def digits(tmp_path, method="ft", params=None, **fields):
    return run(RunSpec(task="digits/random-10", method=method, params={"epochs": "2"} if params is None else params, out=tmp_path / "runs",
                       quiet=True, task_options=dict(FAST), **fields))


def _steps(record) -> list[int]:
    return [p.step for p in record.trajectory.points]


@pytest.fixture(scope="module")
def digits_pair(tmp_path_factory):
    """ft on digits for 2 epochs, without and with a trajectory every 5 steps, and for 1 epoch."""
    tmp = tmp_path_factory.mktemp("digits-trajectory")
    return digits(tmp), digits(tmp, eval_every=5), digits(tmp, params={"epochs": "1"})


def test_digits_points_at_step_0_every_n_steps_and_the_last(digits_pair):
    plain, traced, _ = digits_pair
    trajectory = traced.record.trajectory
    from unlearnbench.runner import load_task

    task = load_task(RunSpec(task="digits/random-10", task_options=dict(FAST)))
    per_epoch = math.ceil((len(task.y_train) - len(task.forget_indices)) / 64)  # ft trains on the retain rows
    assert trajectory.steps == 2 * per_epoch
    assert len(trajectory.points) == 1 + math.ceil(trajectory.steps / 5) == expected_points(trajectory.steps, 5)
    assert _steps(traced.record) == [*range(0, trajectory.steps, 5), trajectory.steps]
    assert trajectory.reported == "last" and trajectory.reported_step == trajectory.steps
    assert plain.record.trajectory is None and "trajectory" not in plain.record.to_json()


def test_digits_last_point_is_the_reported_model(digits_pair):
    plain, traced, _ = digits_pair
    last = traced.record.trajectory.points[-1].metrics
    assert set(last) == {"ua", "ra", "ta", "mia_efficacy", "avg_gap"}
    for name, value in last.items():  # the run without a trajectory scored the same weights through the suite
        assert value == pytest.approx(plain.record.metrics[name], abs=1e-9), name
        assert value == pytest.approx(traced.record.metrics[name], abs=1e-9), name


def test_digits_a_middle_point_is_what_a_shorter_run_ends_with(digits_pair):
    # ft's learning rate is constant and its batches are drawn per epoch: 2 epochs pass through
    # the 1-epoch model, so the trajectory's point at that step is the shorter run's result
    _, traced, short = digits_pair
    one_epoch = traced.record.trajectory.steps // 2
    traced_every_epoch = digits(short.run_dir.parent.parent, eval_every=one_epoch)
    point = {p.step: p.metrics for p in traced_every_epoch.record.trajectory.points}[one_epoch]
    for name in ("ua", "ra", "ta"):
        assert point[name] == pytest.approx(short.record.metrics[name], abs=1e-9), name


def test_step_0_is_the_original_target(digits_pair):
    _, traced, _ = digits_pair
    first = traced.record.trajectory.points[0]
    assert first.step == 0
    for name in ("ua", "ra", "ta"):
        assert first.metrics[name] == pytest.approx(traced.record.reference["original"][name], abs=1e-9), name


def test_a_trajectory_does_not_change_the_training(digits_pair):
    plain, traced, _ = digits_pair
    assert traced.record.metrics["ra"] == plain.record.metrics["ra"]
    assert traced.record.run_id != plain.record.run_id  # a run with a trajectory is a run of its own
    assert "trajectory_s" in traced.record.timing and "trajectory_s" not in plain.record.timing


def test_the_trajectory_reads_back_from_the_record_file(digits_pair):
    _, traced, _ = digits_pair
    data = json.loads((traced.run_dir / RECORD_FILE).read_text())
    again = RunRecord.from_json(data)
    assert again.trajectory == traced.record.trajectory
    assert data["trajectory"]["points"][0]["step"] == 0


def test_a_record_without_a_trajectory_still_loads(digits_pair):
    plain, _, _ = digits_pair
    data = json.loads((plain.run_dir / RECORD_FILE).read_text())
    assert "trajectory" not in data
    assert RunRecord.from_json(data).trajectory is None


def test_a_method_that_stops_early_ends_its_trajectory_where_it_stopped(tmp_path):
    # ga stops once the forget accuracy is 0 or the loss explodes: the last point is that step
    result = digits(tmp_path, method="ga", params={"lr": "0.1"}, eval_every=4)
    trajectory = result.record.trajectory
    stopped = result.record.method["info"].get("ga_stopped")
    if stopped is not None:
        assert trajectory.steps == stopped["step"]
    assert len(trajectory.points) == expected_points(trajectory.steps, 4)
    assert trajectory.points[-1].metrics["ua"] == pytest.approx(result.record.metrics["ua"], abs=1e-9)


def test_a_method_that_does_not_train_the_model_it_is_given_has_no_curve(tmp_path):
    result = digits(tmp_path, method="original", params={}, eval_every=3)
    trajectory = result.record.trajectory
    assert trajectory.steps == 0 and trajectory.points == [] and "no optimisation step" in trajectory.note


# ------------------------------------------------------------------------- language models
@pytest.fixture(scope="module")
def lm_pair(tiny_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm-trajectory")

    def one(**fields):
        return run(RunSpec(task="tofu-synth/forget10", method="npo", params={"epochs": "2", "batch_size": "4"},
                           out=out, quiet=True, task_options={"synth": tiny_synth}, **fields))

    return one(), one(eval_every=3)


def test_lm_points_and_the_last_is_the_reported_model(lm_pair, tiny_task):
    plain, traced = lm_pair
    trajectory = traced.record.trajectory
    assert trajectory.steps == 2 * math.ceil(len(tiny_task.splits["forget"]) / 4)
    assert len(trajectory.points) == 1 + math.ceil(trajectory.steps / 3)
    assert _steps(traced.record) == [*range(0, trajectory.steps, 3), trajectory.steps]
    last = trajectory.points[-1].metrics
    shared = [n for n in last if n in plain.record.metrics]
    assert {"forget_quality", "forget_probability", "forget_truth_ratio", "retain_probability"} <= set(shared)
    for name in shared:
        assert last[name] == pytest.approx(plain.record.metrics[name], rel=1e-6, abs=1e-9), name


def test_lm_utility_proxy_is_model_utility_without_rouge(lm_pair):
    plain, traced = lm_pair
    m = plain.record.metrics
    parts = [m[f"{split}_{name}"] for split in ("retain", "real_authors", "world_facts")
             for name in ("probability", "truth_ratio")]
    expected = stats.hmean(parts) if min(parts) > 0 else 0.0
    assert traced.record.trajectory.points[-1].metrics["model_utility_teacher_forced"] == pytest.approx(expected, rel=1e-6)


def test_lm_step_0_is_the_original_target(lm_pair):
    _, traced = lm_pair
    first = traced.record.trajectory.points[0].metrics
    for name in ("forget_probability", "retain_truth_ratio", "forget_quality"):
        assert first[name] == pytest.approx(traced.record.reference["original"][name], rel=1e-6, abs=1e-12), name


# ------------------------------------------------------------------------------ regression
def test_regression_trajectory_ends_at_the_reported_model(tmp_path):
    def one(**fields):
        return run(RunSpec(task="diabetes/random-10", method="ft", out=tmp_path, quiet=True,
                           task_options={"train": {"epochs": 20}}, lenses=("behavior", "privacy", "utility"), **fields))

    plain, traced = one(), one(eval_every=2)
    last = traced.record.trajectory.points[-1].metrics
    assert {"w1_to_retrain", "l1_forget", "l1_test"} <= set(last) and "ain" not in last
    for name, value in last.items():
        assert value == pytest.approx(plain.record.metrics[name], abs=1e-9), name
    assert len(traced.record.trajectory.points) == expected_points(traced.record.trajectory.steps, 2)


# -------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("fields, words", [
    ({"eval_every": 0}, "whole number of optimisation steps >= 1"),
    ({"eval_every": 2, "task": "muse-synth/news", "method": "npo"}, "the muse suite has no metrics cheap enough"),
    ({"eval_every": 2, "task": "muse-synth/news", "method": "npo", "mode": "sustainability"}, "--mode standard"),
    ({"eval_every": 2.5}, "whole number"),
])
def test_bad_eval_every_is_refused_before_any_model_loads(fields, words):
    spec = RunSpec(**{"task": "digits/random-10", "method": "ft", **fields})
    with pytest.raises(UserError) as info:
        plan(spec)
    if words:
        assert words in str(info.value)


def test_the_sweep_file_passes_eval_every_to_every_job(tmp_path):
    from unlearnbench.sweep import expand, load_spec

    path = tmp_path / "sweep.toml"
    path.write_text('tasks = ["digits/random-10"]\nmethods = ["ft", "rl"]\neval_every = 5\n')
    assert [r.eval_every for r in expand(load_spec(path), tmp_path)] == [5, 5]
    path.write_text('tasks = ["digits/random-10"]\nmethods = ["ft"]\neval_every = 0\n')
    with pytest.raises(UserError):
        load_spec(path)


# ---------------------------------------------------------------------- terminal and report
def test_the_terminal_shows_a_small_table(digits_pair):
    from rich.console import Console

    from unlearnbench.cli.app import trajectory_table

    _, traced, _ = digits_pair
    console = Console(record=True, width=200)
    console.print(trajectory_table(traced.record.trajectory))
    text = console.export_text()
    assert "every 5 steps" in text and "reported: last" in text
    assert re.search(rf"^\s*│?\s*{traced.record.trajectory.steps}\s", text, re.M)


def _svgs(html: str) -> dict[str, str]:
    return dict(re.findall(r'<svg class="trajectory" data-metric="([^"]*)".*?>(.*?)</svg>', html, re.S))


def test_the_report_draws_each_metric_of_the_trajectory(digits_pair, tmp_path):
    from unlearnbench.report.runs import write_report

    _, traced, _ = digits_pair
    html = write_report([traced.run_dir], tmp_path / "report.html").read_text()
    svgs = _svgs(html)
    trajectory = traced.record.trajectory
    assert set(svgs) == set(trajectory.points[-1].metrics)
    body = svgs["ra"]
    assert body.count('class="point"') == len(trajectory.points) and body.count('class="reported"') == 1
    xy = [tuple(map(float, p.split(","))) for p in re.search(r'class="curve"[^>]*points="([^"]*)"', body).group(1).split()]
    assert len(xy) == len(trajectory.points)
    assert [x for x, _ in xy] == sorted(x for x, _ in xy)  # steps left to right
    values = [p.metrics["ra"] for p in trajectory.points]
    # a higher value is drawn higher up (smaller y), for every pair of points
    assert all((va - vb) * (ya - yb) <= 1e-9 for (_, ya), va in zip(xy, values) for (_, yb), vb in zip(xy, values))
    assert body.count('class="level"') == 2  # the original's and the oracle's values


def test_the_report_escapes_what_the_trajectory_says(digits_pair, tmp_path):
    from _tiny_runs import copy_run

    from unlearnbench.report.runs import write_report

    _, traced, _ = digits_pair
    evil = '<img src=x onerror="alert(1)">'

    def edit(record):
        for point in record["trajectory"]["points"]:
            point["metrics"][evil] = point["metrics"]["ra"]
        record["trajectory"]["reported"] = evil

    html = write_report([copy_run(traced.run_dir, tmp_path / "run", record=edit)], tmp_path / "report.html").read_text()
    assert evil not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_the_report_of_a_run_without_points_says_why(tmp_path):
    from unlearnbench.report.runs import write_report

    result = digits(tmp_path, method="original", params={}, eval_every=3)
    html = write_report([result.run_dir], tmp_path / "report.html").read_text()
    assert "no optimisation step" in html and not _svgs(html)


def test_the_layout_places_values_on_a_log_axis():
    from unlearnbench.report.htmlpage import line_layout

    panel = line_layout("forget_quality", [0, 5, 10], [1e-6, 1e-3, 1.0], {"oracle": 1.0}, 10, log=True)
    ys = [y for _, y, _ in panel.points]
    assert panel.y_label.endswith("(log scale)")
    assert ys[0] - ys[1] == pytest.approx(ys[1] - ys[2])  # equal ratios, equal distances
    assert panel.reported == panel.points[-1][:2] and np.isclose(panel.levels[0][0], ys[-1])


def test_a_run_that_diverges_keeps_the_points_it_reached(tmp_path):
    # ga at a huge learning rate on the regression task: the loss becomes non-finite
    result = run(RunSpec(task="diabetes/random-10", method="ga", params={"lr": "1e30", "epochs": "50", "max_loss": "1e300"}, out=tmp_path,
                         quiet=True, task_options={"train": {"epochs": 20}}, lenses=("behavior", "utility"), eval_every=1))
    assert result.record.status == "failed"
    trajectory = result.record.trajectory
    assert trajectory.points[0].step == 0 and trajectory.reported_step is None and "did not finish" in trajectory.note
    assert [p.step for p in trajectory.points] == list(range(len(trajectory.points)))
    assert all(p.metrics or p.error for p in trajectory.points)
