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
