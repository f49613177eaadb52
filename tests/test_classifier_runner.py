"""Classifier tasks through the runner and the CLI: the SalUn metrics with reference rows,
recomputable by the leaderboard; methods and lenses that do not fit a task kind are refused
with a clear message; forget-index files from `unlearnbench forgetset`; the strong tier."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from unlearnbench.cli.app import app
from unlearnbench.errors import UserError
from unlearnbench.records import PER_EXAMPLE_FILE
from unlearnbench.runner import RunSpec, run

FAST = {"train": {"epochs": 3}}
cli = CliRunner()


def digits(method: str, tmp_path, task: str = "digits/random-10", **fields):
    fields.setdefault("task_options", dict(FAST))
    return run(RunSpec(task=task, method=method, out=tmp_path / "runs", quiet=True, **fields))


def test_the_salun_metrics_and_their_reference_rows(tmp_path):
    from unlearnbench.leaderboard.submissions import check_recomputed

    result = digits("ft", tmp_path)
    record = result.record
    assert record.status == "succeeded"
    assert {"ua", "ra", "ta", "mia_efficacy", "avg_gap", "rte"} <= set(record.metrics)
    assert record.reference["oracle"]["avg_gap"] == 0.0
    assert record.metrics["rte"] == pytest.approx(record.timing["unlearn_s"])
    per_example = json.loads((result.run_dir / PER_EXAMPLE_FILE).read_text())
    # UA by hand: the share of forget rows the unlearned model gets wrong, in percent
    probs = np.asarray(per_example["unlearned"]["forget"]["probs"])
    labels = np.asarray(per_example["unlearned"]["forget"]["labels"])
    assert record.metrics["ua"] == pytest.approx(100 * np.mean(probs.argmax(1) != labels))
    saved = json.loads((result.run_dir / "record.json").read_text())
    check_recomputed(saved, per_example, "classifier")


def test_class_wise_forgetting_reports_the_forgotten_class(tmp_path):
    record = digits("original", tmp_path, task="digits/class-3").record
    assert "ta_forget_class" in record.metrics
    assert record.reference["oracle"]["ua"] > 90  # the oracle never saw a 3


@pytest.mark.parametrize("method,task,message", [
    ("npo", "digits/random-10", "does not apply to classifier tasks"),
    ("ft", "tofu-synth/forget10", "does not apply to language-model tasks"),
])
def test_a_method_of_the_other_kind_is_refused_with_the_ones_that_fit(method, task, message, tmp_path):
    with pytest.raises(UserError, match=message):
        run(RunSpec(task=task, method=method, out=tmp_path, quiet=True))


def test_lenses_of_the_other_kind_are_refused(tmp_path, run_tiny):
    with pytest.raises(UserError, match="parametric lens.*do not apply to classifier tasks"):
        digits("original", tmp_path, lenses=("behavior", "parametric"))
    with pytest.raises(UserError, match="classifier tasks"):
        run_tiny("original", lenses=("behavior", "privacy-strong"))


def test_forgetset_writes_an_index_file_that_evaluate_uses(tmp_path):
    out = tmp_path / "forget.json"
    result = cli.invoke(app, ["forgetset", "--task", "digits/random-10", "--strategy", "proxy-loss", "--size", "5",
                              "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    indices = json.loads(out.read_text())["indices"]
    record = digits("original", tmp_path, task_options={**FAST, "forget_indices": str(out)}).record
    per_example = json.loads((tmp_path / "runs" / record.run_id / PER_EXAMPLE_FILE).read_text())
    assert len(per_example["unlearned"]["forget"]["labels"]) == len(indices)
    bad = cli.invoke(app, ["forgetset", "--task", "digits/random-10", "--strategy", "random", "--size", "0",
                           "--out", str(tmp_path / "x.json")])
    assert bad.exit_code == 2 and "0" in bad.output


def test_forget_indices_on_a_language_model_task_is_refused(tmp_path):
    with pytest.raises(UserError, match="for classifier and regression tasks"):
        run(RunSpec(task="tofu-synth/forget10", method="original", out=tmp_path, quiet=True,
                    options={"forget_indices": "x.json"}))


def test_the_strong_tier_reports_f_and_the_final_score(tmp_path):
    from unlearnbench.leaderboard.submissions import check_recomputed

    result = digits("original", tmp_path, lenses=("behavior", "privacy", "utility", "privacy-strong"),
                    options={"strong_models": 3})
    metrics = result.record.metrics
    assert 0.0 <= metrics["forgetting_score"] <= 1.0 and metrics["strong_privacy_models"] == 3
    # the original is the same model every time: its scores are a point mass, told apart from retraining
    assert metrics["forgetting_score"] < 0.5
    saved = json.loads((result.run_dir / "record.json").read_text())
    check_recomputed(saved, json.loads((result.run_dir / PER_EXAMPLE_FILE).read_text()), "classifier")


def test_the_report_draws_the_confidence_distributions(tmp_path):
    import re

    from unlearnbench.report.runs import write_report

    result = digits("rl", tmp_path)
    text = write_report([result.run_dir], tmp_path / "report.html").read_text()
    assert any("confidence" in alt for alt in re.findall(r'alt="([^"]*)"', text))


def test_the_mia_feature_is_selectable_and_recorded(tmp_path):
    from unlearnbench.errors import UnknownNameError
    from unlearnbench.leaderboard.submissions import check_recomputed

    result = digits("rl", tmp_path, options={"mia_feature": "modified_entropy"})
    per_example = json.loads((result.run_dir / PER_EXAMPLE_FILE).read_text())
    assert per_example["unlearned"]["mia_feature"] == "modified_entropy"
    check_recomputed(json.loads((result.run_dir / "record.json").read_text()), per_example, "classifier")
    with pytest.raises(UnknownNameError, match="modified_entropy"):
        digits("rl", tmp_path, options={"mia_feature": "modified-entropy"})
