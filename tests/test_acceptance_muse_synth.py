"""The default synthetic news world gives MUSE's signal, and the privacy lens separates the
original target from the oracle on both synthetic worlds (issue: Done when 2 and 3).

Trains the default muse-synth and tofu-synth worlds (minutes on 2 CPU cores, once per session)."""

import pytest

from unlearnbench.runner import RunSpec, run

pytestmark = pytest.mark.slow
ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm")


@pytest.fixture(scope="module")
def muse_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return {m: run(RunSpec(task="muse-synth/news", method=m, seed=0, out=out, quiet=True)).record
            for m in ("original", "retrain")}


def test_the_original_target_memorised_the_forget_articles(muse_runs):
    original, oracle = muse_runs["original"].metrics, muse_runs["original"].reference["oracle"]
    assert original["verbmem_forget"] > 60
    assert original["verbmem_forget"] > oracle["verbmem_forget"] + 20
    assert original["privleak"] < -50


def test_the_original_target_knows_more_about_the_forget_events_than_the_oracle(muse_runs):
    original, oracle = muse_runs["original"].metrics, muse_runs["original"].reference["oracle"]
    assert original["knowmem_forget"] > 40
    assert original["knowmem_forget"] > oracle["knowmem_forget"] + 20
    # retain knowledge is shared: both models trained on the retain events
    assert abs(original["knowmem_retain"] - oracle["knowmem_retain"]) < 20


def test_retrain_with_another_seed_leaks_like_the_oracle(muse_runs):
    lo, hi = muse_runs["retrain"].ci["privleak"]
    assert lo <= 0 <= hi or (-10 <= lo and hi <= 10)


@pytest.mark.parametrize("task", ["muse-synth/news", "tofu-synth/forget10"])
def test_every_attack_separates_the_original_but_not_the_oracle(task, muse_runs, tmp_path):
    if task == "muse-synth/news":
        record = muse_runs["original"]
    else:
        record = run(RunSpec(task=task, method="original", seed=0, out=tmp_path, quiet=True)).record
    for attack in ATTACKS:
        assert f"mia_{attack}_auc" in record.metrics
    assert abs(record.metrics["mia_min_k_auc"] - 0.5) > 0.3
    assert abs(record.reference["oracle"]["mia_min_k_auc"] - 0.5) < 0.15
