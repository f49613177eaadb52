"""Regression tasks through the runner and the CLI: the Deep Regression Unlearning metrics
with reference rows (recomputable by the leaderboard), the anamnesis index under the
robustness lens, and `tabular-regression` on a table the test writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import wasserstein_distance
from typer.testing import CliRunner

from unlearnbench.cli.app import app
from unlearnbench.errors import UserError
from unlearnbench.records import PER_EXAMPLE_FILE
from unlearnbench.runner import RunSpec, run

cli = CliRunner()
FAST = {"train": {"epochs": 20}}


def test_the_regression_metrics_and_their_reference_rows(tmp_path):
    from unlearnbench.leaderboard.submissions import check_recomputed

    result = run(RunSpec(task="diabetes/random-10", method="ft", out=tmp_path, quiet=True, task_options=dict(FAST),
                         lenses=("behavior", "privacy", "utility", "robustness")))
    record = result.record
    assert record.status == "succeeded"
    assert {"l1_retain", "l1_forget", "l1_test", "mse_test", "w1_to_retrain", "regression_mia", "ain", "rte"} <= set(record.metrics)
    per_example = json.loads((result.run_dir / PER_EXAMPLE_FILE).read_text())
    expected = wasserstein_distance(per_example["unlearned"]["forget"]["pred"], per_example["oracle"]["forget"]["pred"])
    assert record.metrics["w1_to_retrain"] == pytest.approx(expected)
    assert record.reference["oracle"]["w1_to_retrain"] == 0.0 and record.reference["oracle"]["ain"] == 1.0
    check_recomputed(json.loads((result.run_dir / "record.json").read_text()), per_example, "regression")


def test_the_default_lenses_leave_the_relearning_out(tmp_path):
    result = run(RunSpec(task="diabetes/range-200-350", method="original", out=tmp_path, quiet=True, task_options=dict(FAST)))
    assert "ain" not in result.record.metrics and "l1_forget" in result.record.metrics
    assert "relearn_steps" not in json.loads((result.run_dir / PER_EXAMPLE_FILE).read_text())["unlearned"]


def test_tabular_regression_runs_on_a_csv_and_names_a_missing_column(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    rows = ["a,b,c,price"] + [f"{a:.4f},{b:.4f},{c:.4f},{3 * a - b + 0.5 * c + rng.normal(0, 0.1):.4f}" for a, b, c in x]
    table = tmp_path / "houses.csv"
    table.write_text("\n".join(rows) + "\n")
    ok = cli.invoke(app, ["evaluate", "--task", "tabular-regression", "--data-file", str(table), "--target", "price",
                          "--forget", "random-10", "--method", "gaussian", "--out", str(tmp_path / "runs"), "--quiet"])
    assert ok.exit_code == 0, ok.output
    assert "w1_to_retrain" in ok.output
    bad = cli.invoke(app, ["evaluate", "--task", "tabular-regression", "--data-file", str(table), "--target", "cost",
                           "--method", "ft", "--out", str(tmp_path / "runs"), "--quiet"])
    assert bad.exit_code == 2 and "cost" in bad.output and "price" in bad.output


def test_table_options_on_another_task_are_refused(tmp_path):
    with pytest.raises(UserError, match="tabular-regression"):
        run(RunSpec(task="diabetes/random-10", method="ft", out=tmp_path, quiet=True, options={"data_file": "x.csv"}))


def test_the_report_draws_the_error_distributions(tmp_path):
    import re

    from unlearnbench.report.runs import write_report

    result = run(RunSpec(task="diabetes/random-10", method="gaussian", out=tmp_path, quiet=True, task_options=dict(FAST)))
    text = write_report([result.run_dir], tmp_path / "report.html").read_text()
    assert any("abs_error" in alt for alt in re.findall(r'alt="([^"]*)"', text))
