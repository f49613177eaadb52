"""The runner on a tiny synthetic world: records, determinism, failure and interruption."""

import json

import pytest

from unlearnbench.errors import UserError
from unlearnbench.records import PER_EXAMPLE_FILE, RECORD_FILE
from unlearnbench.suites.tofu import tofu_aggregate

RECORD_KEYS = {"schema_version", "run_id", "status", "task", "method", "model", "seed", "metrics", "ci", "reference",
               "timing", "provenance"}


def test_a_run_writes_the_record_and_the_per_example_scores(run_tiny):
    result = run_tiny("npo", params={"epochs": "1"})
    record = json.loads((result.run_dir / RECORD_FILE).read_text())
    assert RECORD_KEYS <= set(record)
    assert record["status"] == "succeeded"
    assert record["task"]["name"] == "tofu-synth/forget10" and len(record["task"]["fingerprint"]) == 16
    assert record["method"] == {"name": "npo", "preset": {}, "params": {
        "lr": 0.001, "epochs": 1, "batch_size": 32, "warmup_fraction": 0.0, "weight_decay": 0.0, "grad_clip": 1.0,
        "schedule": "constant", "grad_accum": 1, "gradient_checkpointing": False, "lora_r": 0, "lora_alpha": 32,
        "lora_dropout": 0.0, "lora_targets": "all-linear", "beta": 0.1, "alpha": 1.0}}
    assert set(record["reference"]) == {"original", "oracle"}
    assert set(record["reference"]["original"]) == set(record["metrics"])
    assert {"packages", "git_sha", "git_dirty", "config_hash", "device", "date"} <= set(record["provenance"])
    lo, hi = record["ci"]["forget_probability"]
    assert lo <= record["metrics"]["forget_probability"] <= hi
    assert not [p for p in result.run_dir.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_aggregates_are_recomputable_from_the_per_example_scores(run_tiny):
    result = run_tiny("ga", params={"epochs": "1"})
    per_example = json.loads((result.run_dir / PER_EXAMPLE_FILE).read_text())
    metrics, _ = tofu_aggregate(per_example["unlearned"], per_example["oracle"], seed=0)
    assert metrics == pytest.approx(result.record.metrics, rel=1e-12)
    original, _ = tofu_aggregate(per_example["original"], per_example["oracle"], seed=0)
    assert original == pytest.approx(result.record.reference["original"], rel=1e-12)


def test_same_seed_gives_identical_metrics(run_tiny, tmp_path):
    first = run_tiny("npo", params={"epochs": "2"}, out=tmp_path / "a")
    second = run_tiny("npo", params={"epochs": "2"}, out=tmp_path / "b")
    assert first.record.metrics == second.record.metrics
    assert first.record.run_id == second.record.run_id


def test_another_seed_changes_the_run_id(run_tiny):
    assert run_tiny("ga", params={"epochs": "1"}, seed=1).record.run_id != run_tiny("ga", params={"epochs": "1"}).record.run_id


def test_non_finite_loss_fails_the_run_with_the_reason(run_tiny):
    result = run_tiny("ga", params={"lr": "1e30", "epochs": "3"})
    assert result.record.status == "failed"
    assert "diverged" in result.record.error and "lr" in result.record.error
    saved = json.loads((result.run_dir / RECORD_FILE).read_text())
    assert saved["status"] == "failed" and saved["error"] == result.record.error


def test_an_interrupted_run_is_recorded_as_interrupted(run_tiny, monkeypatch, tmp_path):
    from unlearnbench.methods.lm.ga import GradientAscent

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(GradientAscent, "unlearn", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_tiny("ga", out=tmp_path / "runs")
    (run_dir,) = (tmp_path / "runs").iterdir()
    saved = json.loads((run_dir / RECORD_FILE).read_text())
    assert saved["status"] == "interrupted"
    assert saved["reference"]["original"]  # work done before the interruption is kept


def test_retrain_on_a_task_without_recipe_explains(run_tiny, tiny_task, tmp_path):
    from unlearnbench.method import RunContext, UnlearnData
    from unlearnbench.methods.lm.retrain import Retrain

    data = UnlearnData(tiny_task.splits["forget"], tiny_task.splits["retain"], None, tiny_task.prompt_format)
    import torch

    with pytest.raises(UserError, match="has no training recipe"):
        Retrain().unlearn(None, data, Retrain.Params(), RunContext(seed=0, device=torch.device("cpu"), task_name="tofu/forget10"))
