"""Sweeps: the file, its jobs, resuming, failures, and the executors agreeing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from unlearnbench.errors import UserError
from unlearnbench.records import load_record
from unlearnbench.sweep import LocalExecutor, SweepState, load_spec, parse_spec, plan_jobs, run_sweep

SMALLEST = """\
tasks = ["digits/random-10"]
methods = ["ft", "rl"]
seeds = [0, 1]
[params.rl]
lr = [0.005, 0.01]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def _statuses(out: Path) -> dict[str, str]:
    return {p.parent.name: load_record(p)["status"] for p in sorted(out.glob("*/record.json"))}


@pytest.fixture(scope="module")
def digits_ready():
    """The digits world built (and its references scored) before a sweep starts."""
    from unlearnbench.runner import prepare

    prepare("digits/random-10", quiet=True)


def test_the_smallest_sweep_file_gives_six_jobs_with_the_run_ids_evaluate_gives(tmp_path):
    from unlearnbench.records import make_run_id
    from unlearnbench.runner import RunSpec, plan

    jobs = plan_jobs(load_spec(_write(tmp_path, SMALLEST)), tmp_path / "runs")
    got = sorted((j.spec.method, tuple(j.spec.params.items()), j.spec.seed) for j in jobs)
    assert got == sorted([("ft", (), 0), ("ft", (), 1)] +
                         [("rl", (("lr", lr),), s) for lr in ("0.005", "0.01") for s in (0, 1)])
    assert len({j.run_id for j in jobs}) == 6
    # the same run as `unlearnbench evaluate --task digits/random-10 --method rl --param lr=0.01 --seed 1`
    cli = make_run_id(plan(RunSpec(task="digits/random-10", method="rl", params={"lr": "0.01"}, seed=1)).config)
    assert cli in {j.run_id for j in jobs}


@pytest.mark.parametrize("text, says", [
    ('tasks = ["digits/random-10"]\nmethods = ["ft"]\nseed = [0]\n', "seed"),
    ('tasks = []\nmethods = ["ft"]\n', "tasks"),
    ('tasks = ["digits/random-10"]\nmethods = ["ft"]\n[params.rl]\nlr = [0.1]\n', "'rl'"),
    ('tasks = ["digits/random-10"]\nmethods = ["ft"]\n[params.ft]\nlr = {log_uniform = [0.0, 1.0]}\n', "low > 0"),
    ('tasks = ["digits/random-10"]\nmethods = ["ft"]\n[params.ft]\nlr = []\n', "empty list"),
])
def test_a_malformed_sweep_file_is_refused_saying_where(tmp_path, text, says):
    with pytest.raises(UserError, match=says):
        load_spec(_write(tmp_path, text))


def test_unknown_methods_and_parameters_are_all_reported_before_anything_runs(tmp_path):
    spec = parse_spec({"tasks": ["digits/random-10"], "methods": ["ft", "nosuch"], "params": {"ft": {"lrr": [1.0]}}})
    with pytest.raises(UserError) as err:
        plan_jobs(spec, tmp_path)
    assert "nosuch" in str(err.value) and "lrr" in str(err.value)
    assert not list(tmp_path.iterdir())


def test_drawn_parameters_are_reproducible_within_bounds_and_crossed_with_the_grid(tmp_path):
    data = {"tasks": ["digits/random-10"], "methods": ["rl"], "seeds": [0, 1], "samples": 3,
            "params": {"rl": {"lr": {"log_uniform": [1e-4, 1e-2]}, "epochs": [1, 2]}}}
    jobs = plan_jobs(parse_spec(data), tmp_path)
    assert len(jobs) == 3 * 2 * 2
    lrs = sorted({float(j.spec.params["lr"]) for j in jobs})
    assert len(lrs) == 3 and all(1e-4 <= lr <= 1e-2 for lr in lrs)
    assert [j.run_id for j in plan_jobs(parse_spec(data), tmp_path)] == [j.run_id for j in jobs]
    other = plan_jobs(parse_spec(data | {"sample_seed": 1}), tmp_path)
    assert {float(j.spec.params["lr"]) for j in other}.isdisjoint(lrs)


def test_star_params_reach_only_the_methods_that_take_them(tmp_path):
    spec = parse_spec({"tasks": ["digits/random-10"], "methods": ["ft", "iu"], "params": {"*": {"lr": 0.02}}})
    jobs = {j.spec.method: j.spec.params for j in plan_jobs(spec, tmp_path)}
    assert jobs["ft"] == {"lr": "0.02"}
    assert "lr" not in jobs["iu"]


def test_the_eta_is_the_mean_job_time_times_the_jobs_left_over_the_workers():
    state = SweepState(total=10, skipped=2, done=3, failed=1, running=["a", "b"], seconds=[4.0, 6.0, 5.0, 5.0])
    assert state.left == 2
    assert state.eta_s(workers=2) == pytest.approx(5.0 * 4 / 2)
    assert "done 5/10 (skipped 2) · running 2 · failed 1 · left 2 · ETA 10 s" == state.line(2)


def test_a_failed_job_records_its_reason_and_the_sweep_goes_on(tmp_path, digits_ready):
    # ga with an absurd learning rate drives the loss to a non-finite value: a real failure
    spec = parse_spec({"tasks": ["digits/random-10"], "methods": ["ga", "ft"], "params": {"ga": {"lr": [1e30]}},
                       "lenses": ["behavior", "utility"]})
    jobs = plan_jobs(spec, tmp_path / "runs")
    state = run_sweep(jobs, LocalExecutor())
    assert (state.done, state.failed) == (1, 1)
    failed = {j.spec.method: load_record(j.record_path) for j in jobs}
    assert failed["ga"]["status"] == "failed" and "diverged" in failed["ga"]["error"]
    assert failed["ft"]["status"] == "succeeded"
    assert state.failures == [(failed["ga"]["run_id"], failed["ga"]["error"])]


def test_a_sweep_killed_half_way_runs_only_the_missing_jobs_when_run_again(tmp_path, digits_ready):
    sweep_file, out = _write(tmp_path, SMALLEST), tmp_path / "runs"
    env = {**os.environ, "UNLEARNBENCH_QUIET": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "unlearnbench", "sweep", str(sweep_file), "--out", str(out),
                             "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while sum(s == "succeeded" for s in _statuses(out).values()) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)  # a scheduler's time limit: treated like Ctrl-C
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    before = _statuses(out)
    finished = {run_id for run_id, status in before.items() if status == "succeeded"}
    assert 2 <= len(finished) < 6
    assert set(before.values()) <= {"succeeded", "interrupted"}
    stamps = {run_id: (out / run_id / "record.json").stat().st_mtime_ns for run_id in finished}

    from unlearnbench.cli.app import app

    result = CliRunner().invoke(app, ["sweep", str(sweep_file), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"ran {6 - len(finished)} ({6 - len(finished)} succeeded, 0 failed), skipped {len(finished)}" in result.output
    after = _statuses(out)
    assert len(after) == 6 and set(after.values()) == {"succeeded"}
    assert {run_id: (out / run_id / "record.json").stat().st_mtime_ns for run_id in finished} == stamps

    again = CliRunner().invoke(app, ["sweep", str(sweep_file), "--out", str(out), "--quiet"])
    assert "ran 0 (0 succeeded, 0 failed), skipped 6" in again.output


def _comparable(run_dir: Path) -> tuple[dict, dict]:
    record = json.loads((run_dir / "record.json").read_text())
    kept = {k: record[k] for k in ("run_id", "status", "task", "method", "model", "seed", "metrics", "ci", "reference",
                                   "lenses", "steps")}
    metrics = {k: v for k, v in kept["metrics"].items() if k != "rte"}  # seconds of unlearning differ by nature
    return kept | {"metrics": metrics}, _without_times(json.loads((run_dir / "per_example.json").read_text()))


def _without_times(per_example):
    if isinstance(per_example, dict):
        return {k: _without_times(v) for k, v in per_example.items() if k not in ("rte", "rte_s")}
    if isinstance(per_example, list):
        return [_without_times(v) for v in per_example]
    return per_example


def test_the_ray_executor_gives_the_records_the_local_one_gives(tmp_path, digits_ready):
    pytest.importorskip("ray")
    from unlearnbench.sweep_ray import RayExecutor

    spec = parse_spec({"tasks": ["digits/random-10"], "methods": ["ft", "rl"], "seeds": [0, 1],
                       "params": {"ft": {"epochs": 1}, "rl": {"epochs": 1}}})
    local_jobs, ray_jobs = plan_jobs(spec, tmp_path / "local"), plan_jobs(spec, tmp_path / "ray")
    assert run_sweep(local_jobs, LocalExecutor()).done == 4
    state = run_sweep(ray_jobs, RayExecutor(workers=2))
    assert (state.done, state.failed) == (4, 0), state.failures
    for job in local_jobs:
        local, ray = _comparable(tmp_path / "local" / job.run_id), _comparable(tmp_path / "ray" / job.run_id)
        assert local == ray
