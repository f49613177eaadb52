"""The default synthetic world gives the signal the literature reports (issue: Done when 3).

Trains the default tofu-synth world (a few minutes on 2 CPU cores, once per session)."""

import pytest

from unlearnbench.runner import RunSpec, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {m: run(RunSpec(method=m, seed=0, out=out, quiet=True)).record for m in ("original", "retrain", "npo")}


def test_the_original_target_is_far_from_the_oracle(default_runs):
    assert default_runs["original"].metrics["forget_quality"] < 0.01


def test_retrain_with_another_seed_is_close_to_the_oracle(default_runs):
    assert default_runs["retrain"].metrics["forget_quality"] > 0.05


def test_npo_forgets_without_destroying_utility(default_runs):
    npo, original = default_runs["npo"].metrics, default_runs["original"].metrics
    assert npo["forget_quality"] > original["forget_quality"]
    assert npo["model_utility"] >= 0.5 * original["model_utility"]


def test_the_reference_rows_match_the_original_and_retrain_runs(default_runs):
    assert default_runs["npo"].reference["original"] == default_runs["original"].metrics
    assert default_runs["npo"].reference["oracle"]["forget_quality"] == 1.0


def test_default_evaluate_prints_the_table_and_writes_the_record(default_runs, tmp_path):
    import json

    from typer.testing import CliRunner

    from unlearnbench.cli.app import app

    result = CliRunner().invoke(app, ["evaluate", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    assert "tofu-synth/forget10 · npo · seed 0" in result.stdout
    for column in ("metric", "unlearned", "original", "oracle", "95% CI", "forget_quality", "model_utility"):
        assert column in result.stdout
    (run_dir,) = tmp_path.iterdir()
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "succeeded" and record["method"]["name"] == "npo"
    assert record["metrics"] == default_runs["npo"].metrics  # same seed, same numbers


def test_prepare_reports_the_cached_task(default_runs):
    from typer.testing import CliRunner

    from unlearnbench.cli.app import app

    result = CliRunner().invoke(app, ["prepare", "--task", "tofu-synth/forget10"])
    assert result.exit_code == 0, result.stderr
    assert "prepared tofu-synth/forget10" in result.stdout
