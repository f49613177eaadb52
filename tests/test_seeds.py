"""Runs that differ only by seed: spread, ties, the signal check, and where they are shown."""

from __future__ import annotations

import numpy as np
import pytest

from unlearnbench.leaderboard.ranking import Criterion, Ranking
from unlearnbench.leaderboard.seeds import rank_groups, seed_groups, signal_check, spread

HIGHER = Ranking((Criterion("forget_quality", "higher"),), y="forget_quality")
W1 = Ranking((Criterion("w1_to_retrain", "lower"),), x="l1_test", y="w1_to_retrain")


def _record(method, seed, metrics, params=None, original=None, task="diabetes/random-10", suite="regression"):
    return {"run_id": f"{task.replace('/', '-')}__{method}__s{seed}__{abs(hash(str(params))) % 10**6:06d}",
            "status": "succeeded", "task": {"name": task, "fingerprint": "f" * 16, "suite": suite, "version": "1"},
            "method": {"name": method, "params": params or {}}, "seed": seed, "metrics": metrics,
            "reference": {"original": original or {}, "oracle": {}}, "provenance": {"git_dirty": False},
            "_path": f"{task.replace('/', '__')}/{method}-{seed}"}


def test_the_spread_is_the_mean_the_sample_std_and_n():
    values = [0.2, 0.5, 0.9, 0.4]
    s = spread(values)
    assert (s.mean, s.std, s.n) == (pytest.approx(np.mean(values)), pytest.approx(np.std(values, ddof=1)), 4)
    assert spread([0.3]).std == 0.0 and spread([0.3]).ci is None
    assert spread([None, float("nan")]) is None
    assert spread([0.7638888888888908] * 3).std == 0.0  # np.std gives 1.4e-16 here: equal seeds have no spread


def test_the_bootstrap_ci_of_two_seeds_spans_the_two_values():
    # resampling two seeds gives a (1/4), (a+b)/2 (1/2) or b (1/4): the 2.5% and 97.5% quantiles are a and b
    s = spread([1.0, 3.0])
    assert s.ci == (pytest.approx(1.0), pytest.approx(3.0))


def test_the_bootstrap_ci_of_many_seeds_matches_scipys_percentile_bootstrap():
    from scipy.stats import bootstrap

    x = np.random.default_rng(3).normal(size=12)
    ours = spread(x, n_boot=20000).ci
    ref = bootstrap((x,), np.mean, n_resamples=20000, method="percentile", random_state=1).confidence_interval
    assert ours == (pytest.approx(ref.low, abs=0.03), pytest.approx(ref.high, abs=0.03))


def test_runs_are_grouped_by_method_and_parameters_and_a_repeated_seed_counts_once():
    records = [_record("ga", s, {"w1_to_retrain": v}, {"lr": 0.1}) for s, v in ((0, 1.0), (1, 2.0), (2, 3.0))]
    records += [_record("ga", 0, {"w1_to_retrain": 9.0}, {"lr": 0.2}), _record("ga", 0, {"w1_to_retrain": 1.0}, {"lr": 0.1}) |
                {"run_id": "zz-same-seed-again"}]
    groups = {g.params["lr"]: g for g in seed_groups(records)}
    assert groups[0.1].n == 3 and groups[0.1].seeds == [0, 1, 2]
    assert groups[0.1].metrics["w1_to_retrain"].mean == pytest.approx(2.0)
    assert groups[0.2].n == 1


def test_ranks_not_separated_by_their_spread_are_ties():
    records = [_record("a", s, {"forget_quality": v}) for s, v in enumerate((0.5, 0.6, 0.7))]
    records += [_record("b", s, {"forget_quality": v}) for s, v in enumerate((0.55, 0.65, 0.75))]
    records += [_record("c", s, {"forget_quality": v}) for s, v in enumerate((0.10, 0.12, 0.11))]
    ranked = [(position, g.method, tied) for position, _, g, tied in rank_groups(seed_groups(records), HIGHER)]
    assert ranked == [(1, "b", False), (1, "a", True), (3, "c", False)]


def test_a_group_is_tied_only_with_the_groups_it_overlaps_not_with_a_chain_of_overlaps():
    # intervals (mean ± std): a [1.3, 1.5], b [1.05, 1.35], c [0.9, 1.1]: a overlaps b, b overlaps c, a and c are apart
    records = [_record("a", s, {"forget_quality": v}) for s, v in enumerate((1.3, 1.4, 1.5))]
    records += [_record("b", s, {"forget_quality": v}) for s, v in enumerate((1.05, 1.2, 1.35))]
    records += [_record("c", s, {"forget_quality": v}) for s, v in enumerate((0.9, 1.0, 1.1))]
    ranked = [(position, g.method, tied) for position, _, g, tied in rank_groups(seed_groups(records), HIGHER)]
    assert ranked == [(1, "a", False), (1, "b", True), (2, "c", True)]


def test_a_task_where_the_original_lies_within_retrains_seed_spread_has_no_signal():
    # diabetes/random-10 as measured: retrain seed 1 is farther from the oracle (W1 7.78) than the original (7.35)
    records = [_record("retrain", 0, {"w1_to_retrain": 0.0}, original={"w1_to_retrain": 7.35}),
               _record("retrain", 1, {"w1_to_retrain": 7.78}, original={"w1_to_retrain": 7.35})]
    check = signal_check(records, W1)
    assert check.no_signal and check.retrain_range == (0.0, 7.78) and check.original == 7.35
    assert "no signal" in check.text()


def test_a_task_where_the_original_is_far_outside_retrains_spread_has_signal():
    # diabetes/range-200-350: the original at 76, retrain at 5
    records = [_record("retrain", s, {"w1_to_retrain": v}, original={"w1_to_retrain": 76.0}, task="diabetes/range-200-350")
               for s, v in ((0, 0.0), (1, 5.0))]
    assert not signal_check(records, W1).no_signal
    assert signal_check(records[:1], W1) is None  # one seed of retrain: no spread to read


def test_the_board_shows_mean_std_and_n_and_flags_no_signal():
    from unlearnbench.leaderboard.boards import render_html, render_markdown, task_boards

    original = {"w1_to_retrain": 7.35}
    records = [_record("retrain", s, {"w1_to_retrain": v}, original=original) for s, v in ((0, 0.0), (1, 7.78))]
    records += [_record("ga", s, {"w1_to_retrain": v}, {"lr": 0.001}, original=original) for s, v in ((0, 4.0), (1, 6.0))]
    board, = task_boards(records)
    text = render_markdown([board])
    assert "| 1 | retrain |  | 2 | 0,1 | 3.8900 ± 5.5013" in text
    assert "| =1 | ga | lr=0.001 | 2 | 0,1 | 5.0000 ± 1.4142 [4.0000, 6.0000] |" in text
    assert "**no signal: on w1_to_retrain the original target (7.35) lies within retrain's seed spread" in text
    html = render_html([board])
    assert "Over seeds" in html and "5.0000 ± 1.4142" in html and "no-signal" in html


def test_a_board_without_repeated_seeds_has_no_seed_table():
    from unlearnbench.leaderboard.boards import render_markdown, task_boards

    board, = task_boards([_record("ga", 0, {"w1_to_retrain": 1.0}), _record("ft", 0, {"w1_to_retrain": 2.0})])
    assert board.seeds is None and "Over seeds" not in render_markdown([board])


def test_the_report_of_several_seeds_aggregates_them(tmp_path):
    from unlearnbench.report.runs import Run, render_report

    runs = [Run(tmp_path / str(s), _record("ga", s, {"w1_to_retrain": v}, {"lr": 0.001}), None)
            for s, v in ((0, 4.0), (1, 6.0), (2, 5.0))]
    html = render_report(runs)
    assert "Over seeds" in html and "5.0000 ± 1.0000" in html
