"""Behavioural metrics and bootstrap CIs, checked against hand-worked numbers and
independent references (scipy, rouge-score) -- never against our own output."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from scipy import stats

from unlearnbench.metrics.behavior import (
    answer_probability,
    exact_memorization,
    extraction_strength,
    forget_quality,
    model_utility,
    normalized_probability,
    rouge_l_f1,
    rouge_l_recall,
    truth_ratio,
    truth_ratio_forget_score,
    truth_ratio_retain_score,
)
from unlearnbench.metrics.stats import bootstrap_ci


# ---------------------------------------------------------------- probability


def test_answer_probability_is_exp_of_minus_mean_nll():
    assert answer_probability([0.0, 1.0, 2.5]) == pytest.approx([1.0, math.exp(-1.0), math.exp(-2.5)])


def test_answer_probability_returns_float64():
    assert answer_probability(np.array([1.0], dtype=np.float32)).dtype == np.float64


def test_normalized_probability_matches_naive_computation_on_moderate_values():
    rng = np.random.default_rng(0)
    nll_answer = rng.uniform(0.1, 5.0, size=20)
    nll_perturbed = rng.uniform(0.1, 5.0, size=(20, 3))
    p_answer = np.exp(-nll_answer)
    naive = p_answer / (p_answer + np.exp(-nll_perturbed).sum(axis=1))
    assert normalized_probability(nll_answer, nll_perturbed) == pytest.approx(naive, rel=1e-12)


def test_normalized_probability_hand_worked():
    # P(a)=e^-1, P(pert)=e^-1 twice -> 1/3.
    assert normalized_probability([1.0], [[1.0, 1.0]]) == pytest.approx([1.0 / 3.0])


def test_normalized_probability_stays_finite_where_naive_underflows():
    nll_answer = np.array([800.0])
    nll_perturbed = np.array([[801.0, 800.0]])
    with np.errstate(invalid="ignore"):
        naive = np.exp(-nll_answer) / (np.exp(-nll_answer) + np.exp(-nll_perturbed).sum(axis=1))
    assert not np.isfinite(naive).all()  # 0/0 in probability space
    # By hand: 1 / (1 + e^-1 + 1)
    expected = 1.0 / (2.0 + math.exp(-1.0))
    assert normalized_probability(nll_answer, nll_perturbed) == pytest.approx([expected], rel=1e-12)


# ---------------------------------------------------------------- truth ratio


def test_truth_ratio_hand_worked():
    # L(para)=1, L(pert)=[2,3] -> exp(1 - 2.5)
    assert truth_ratio([1.0], [[2.0, 3.0]]) == pytest.approx([math.exp(-1.5)])


def test_truth_ratio_is_wrong_over_correct_geometric_mean():
    # exp(-mean L(pert)) / exp(-L(para)) written out in probability space.
    para, pert = 0.7, np.array([0.4, 1.2, 2.0])
    expected = np.prod(np.exp(-pert)) ** (1 / 3) / math.exp(-para)
    assert truth_ratio([para], [pert]) == pytest.approx([expected])


def test_truth_ratio_forget_score_hand_worked():
    # min(tr, 1/tr): 0.5 -> 0.5, 2 -> 0.5, 1 -> 1, 0.25 -> 0.25
    assert truth_ratio_forget_score([0.5, 2.0, 1.0, 0.25]) == pytest.approx((0.5 + 0.5 + 1.0 + 0.25) / 4)


def test_truth_ratio_retain_score_hand_worked():
    # max(0, 1 - tr): 0.25 -> 0.75, 1 -> 0, 3 -> 0, 0.5 -> 0.5
    assert truth_ratio_retain_score([0.25, 1.0, 3.0, 0.5]) == pytest.approx((0.75 + 0 + 0 + 0.5) / 4)


def test_truth_ratio_summaries_handle_zero_and_infinity():
    assert truth_ratio_forget_score([0.0, np.inf]) == 0.0
    assert truth_ratio_retain_score([0.0, np.inf]) == pytest.approx(0.5)


def test_truth_ratio_extreme_difference_gives_zero_forget_score_without_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr = truth_ratio([1000.0, 0.0], [[0.0], [1000.0]])
        assert truth_ratio_forget_score(tr) == 0.0


# ---------------------------------------------------------------- ROUGE-L


def test_rouge_l_recall_hand_worked_lcs():
    # ref: the cat sat on the mat (6 tokens); pred: the cat on mat; LCS = 4.
    assert rouge_l_recall(["the cat on mat"], ["the cat sat on the mat"]) == pytest.approx([4 / 6])


def test_rouge_l_f1_hand_worked_lcs():
    # P = 4/4, R = 4/6 -> F1 = 2PR/(P+R) = 0.8
    assert rouge_l_f1(["the cat on mat"], ["the cat sat on the mat"]) == pytest.approx([0.8])


def test_rouge_l_recall_stemmer_on_by_default_and_off_for_f1():
    # stemmed ref: the cat were run; stemmed pred: a cat run -> LCS 2 of 4 ref tokens.
    assert rouge_l_recall(["a cat runs"], ["the cats were running"]) == pytest.approx([0.5])
    # without stemming "cats"/"cat", "running"/"runs" differ -> no overlap.
    assert rouge_l_f1(["a cat runs"], ["the cats were running"]) == pytest.approx([0.0])


def test_rouge_l_of_empty_prediction_is_zero():
    assert rouge_l_recall([""], ["some answer"]) == pytest.approx([0.0])


def test_rouge_l_wiring_matches_rouge_score_on_random_sentences():
    from rouge_score import rouge_scorer

    rng = np.random.default_rng(1)
    vocab = "alpha beta gamma delta running runs cats cat the of walked".split()
    preds = [" ".join(rng.choice(vocab, size=rng.integers(1, 9))) for _ in range(25)]
    refs = [" ".join(rng.choice(vocab, size=rng.integers(1, 9))) for _ in range(25)]
    for use_stemmer in (True, False):
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)
        expected = [scorer.score(r, p)["rougeL"] for p, r in zip(preds, refs)]
        assert rouge_l_recall(preds, refs, use_stemmer=use_stemmer) == pytest.approx([s.recall for s in expected])
        assert rouge_l_f1(preds, refs, use_stemmer=use_stemmer) == pytest.approx([s.fmeasure for s in expected])


# ---------------------------------------------------------------- forget quality


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_forget_quality_matches_scipy_ks_2samp(seed):
    rng = np.random.default_rng(seed)
    tr_unlearned = rng.lognormal(0.0, 1.0, size=40 + 10 * seed)
    tr_oracle = rng.lognormal(0.3, 1.2, size=55)
    reference = stats.ks_2samp(tr_unlearned, tr_oracle)
    result = forget_quality(tr_unlearned, tr_oracle)
    assert result["forget_quality"] == pytest.approx(reference.pvalue, rel=1e-12)
    assert result["forget_quality_ks_statistic"] == pytest.approx(reference.statistic, rel=1e-12)
    assert result["forget_quality_n"] == tr_unlearned.size
    assert result["forget_quality_n_oracle"] == 55


def test_forget_quality_hand_worked_ks_statistic():
    # ECDFs of {1,2,3} and {4,5,6} are fully separated -> D = 1.
    # Exact two-sided p-value for n=m=3, D=1: 2 / C(6,3) = 0.1 (only the two
    # fully separated orderings out of 20 reach D = 1).
    result = forget_quality([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert result["forget_quality_ks_statistic"] == pytest.approx(1.0)
    assert result["forget_quality"] == pytest.approx(0.1)
    # {1,2,3,4} vs {3.5,5,6,7}: at x=3 F1=3/4, F2=0 -> D = 3/4.
    assert forget_quality([1, 2, 3, 4], [3.5, 5, 6, 7])["forget_quality_ks_statistic"] == pytest.approx(0.75)


def test_forget_quality_identical_samples_is_one():
    tr = [0.2, 0.5, 1.0, 1.7]
    result = forget_quality(tr, tr)
    assert result["forget_quality"] == pytest.approx(1.0)
    assert result["forget_quality_ks_statistic"] == 0.0


def test_forget_quality_is_invariant_to_reciprocal_as_in_tofu_code():
    # TOFU's code feeds 1/tr to the KS test; the result must be the same.
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(size=30), rng.lognormal(0.5, size=30)
    assert forget_quality(a, b)["forget_quality"] == pytest.approx(stats.ks_2samp(1 / a, 1 / b).pvalue)


# ---------------------------------------------------------------- model utility


def test_model_utility_matches_scipy_hmean():
    rng = np.random.default_rng(0)
    values = rng.uniform(0.05, 1.0, size=9)
    assert model_utility(values) == pytest.approx(stats.hmean(values), rel=1e-12)


def test_model_utility_hand_worked():
    # hmean(1, 0.5) = 2 / (1 + 2) = 2/3
    assert model_utility([1.0, 0.5]) == pytest.approx(2 / 3)


def test_model_utility_is_zero_when_one_component_is_zero():
    assert model_utility([0.9, 0.8, 0.0, 0.7]) == 0.0


def test_model_utility_rejects_negative_values():
    with pytest.raises(ValueError, match=r"values\[1\]"):
        model_utility([0.5, -0.1, 0.3])


@pytest.mark.parametrize("bad", [[0.5, float("nan")], [0.5, float("inf")], []])
def test_model_utility_rejects_non_finite_or_empty(bad):
    with pytest.raises(ValueError):
        model_utility(bad)


# ---------------------------------------------------------------- EM / ES


def test_exact_memorization_hand_worked():
    hits = [np.array([1, 1, 0, 1, 1], dtype=bool), np.ones(3, dtype=bool), np.zeros(4, dtype=bool)]
    assert exact_memorization(hits) == pytest.approx([0.8, 1.0, 0.0])


def test_exact_memorization_accepts_varying_lengths_and_int_hits():
    assert exact_memorization([[1, 0], [1, 1, 1, 0]]) == pytest.approx([0.5, 0.75])


def test_exact_memorization_of_empty_answer_is_zero():
    assert exact_memorization([np.array([], dtype=bool)]) == pytest.approx([0.0])


def test_extraction_strength_hand_worked():
    # hits [1,1,0,1,1]: suffix from k=3 is all hits -> k*=3 -> 1 - 3/5 = 0.4
    assert extraction_strength([np.array([1, 1, 0, 1, 1], dtype=bool)]) == pytest.approx([0.4])


def test_extraction_strength_all_hits_is_one():
    assert extraction_strength([np.ones(7, dtype=bool)]) == pytest.approx([1.0])


def test_extraction_strength_last_token_missed_is_zero():
    # k* = |y| (only the empty suffix matches) -> 1 - 5/5 = 0
    assert extraction_strength([np.array([1, 1, 1, 1, 0], dtype=bool)]) == pytest.approx([0.0])


def test_extraction_strength_empty_answer_is_zero():
    assert extraction_strength([np.array([], dtype=bool)]) == pytest.approx([0.0])


def test_extraction_strength_several_examples_of_varying_length():
    hits = [[0, 1], [1, 0, 1, 1, 1, 1], [1]]
    # trailing runs 1/2, 4/6, 1/1
    assert extraction_strength(hits) == pytest.approx([0.5, 4 / 6, 1.0])


# ---------------------------------------------------------------- bootstrap CI


def test_bootstrap_ci_contains_sample_mean():
    rng = np.random.default_rng(3)
    values = rng.exponential(size=100)
    lo, hi = bootstrap_ci(values, seed=7)
    assert lo < values.mean() < hi


def test_bootstrap_ci_of_constant_sample_is_zero_width_at_constant():
    lo, hi = bootstrap_ci(np.full(50, 0.3), seed=0)
    assert lo == pytest.approx(0.3)
    assert hi == pytest.approx(0.3)
    assert hi - lo == pytest.approx(0.0, abs=1e-15)


def test_bootstrap_ci_is_reproducible_with_fixed_seed():
    values = np.random.default_rng(4).normal(size=80)
    assert bootstrap_ci(values, seed=11) == bootstrap_ci(values, seed=11)
    assert bootstrap_ci(values, seed=11) != bootstrap_ci(values, seed=12)


def test_bootstrap_ci_width_matches_normal_theory_for_large_sample():
    rng = np.random.default_rng(0)
    values = rng.normal(loc=2.0, scale=3.0, size=2000)
    lo, hi = bootstrap_ci(values, n_resamples=2000, seed=0)
    expected_width = 2 * 1.96 * values.std(ddof=1) / math.sqrt(values.size)
    assert hi - lo == pytest.approx(expected_width, rel=0.15)


def test_bootstrap_ci_single_value_is_degenerate():
    assert bootstrap_ci([0.42]) == (0.42, 0.42)


def test_bootstrap_ci_supports_non_vectorised_statistic():
    values = np.random.default_rng(2).normal(size=60)
    lo, hi = bootstrap_ci(values, statistic=lambda x: float(np.median(x)), n_resamples=200, seed=1)
    assert lo <= np.median(values) <= hi
    # the same statistic through its vectorised form gives the same interval
    assert (lo, hi) == bootstrap_ci(values, statistic=np.median, n_resamples=200, seed=1)


def test_bootstrap_ci_does_not_touch_global_numpy_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    bootstrap_ci(np.arange(10.0), seed=0)
    assert np.array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"values": []},
        {"values": [1.0, float("nan")]},
        {"values": [[1.0, 2.0]]},
        {"values": [1.0, 2.0], "confidence": 1.5},
        {"values": [1.0, 2.0], "n_resamples": 0},
    ],
)
def test_bootstrap_ci_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        bootstrap_ci(**kwargs)


# ---------------------------------------------------------------- validation


def test_nan_nll_error_names_argument_and_index():
    with pytest.raises(ValueError, match=r"nll\[2\]"):
        answer_probability([0.1, 0.2, float("nan")])


def test_non_finite_perturbed_nll_names_row_and_column():
    with pytest.raises(ValueError, match=r"nll_perturbed\[1, 0\] is inf"):
        truth_ratio([1.0, 1.0], [[1.0, 2.0], [float("inf"), 2.0]])


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="nll_paraphrased has 2 examples but nll_perturbed has 3"):
        truth_ratio([1.0, 2.0], np.ones((3, 2)))
    with pytest.raises(ValueError, match="nll_answer"):
        normalized_probability([1.0], np.ones((2, 3)))
    with pytest.raises(ValueError, match="predictions has 1 examples but references has 2"):
        rouge_l_recall(["a"], ["a", "b"])


def test_perturbed_must_be_two_dimensional_with_at_least_one_column():
    with pytest.raises(ValueError, match="2-dimensional"):
        truth_ratio([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one perturbed"):
        normalized_probability([1.0], np.ones((1, 0)))


def test_rouge_rejects_non_string_entries_and_a_bare_string():
    with pytest.raises(ValueError, match=r"predictions\[1\]"):
        rouge_l_recall(["a", None], ["a", "b"])
    with pytest.raises(ValueError, match="single string"):
        rouge_l_f1("abc", "abc")


def test_truth_ratio_summaries_reject_nan_negative_and_empty():
    with pytest.raises(ValueError, match=r"tr\[1\]"):
        truth_ratio_forget_score([1.0, float("nan")])
    with pytest.raises(ValueError, match=r"tr\[0\]"):
        truth_ratio_retain_score([-0.5])
    with pytest.raises(ValueError, match="empty"):
        truth_ratio_retain_score([])
    with pytest.raises(ValueError, match="tr_oracle"):
        forget_quality([1.0, 2.0], [])


def test_hits_must_be_boolean_or_zero_one():
    with pytest.raises(ValueError, match=r"argmax_hits\[1\]\[2\]"):
        exact_memorization([[1, 0], [1, 1, 2]])
    with pytest.raises(ValueError, match=r"argmax_hits\[0\]"):
        extraction_strength([np.ones((2, 2))])


def test_behavior_module_does_not_import_torch():
    import os
    import subprocess

    code = (
        "import sys; import unlearnbench.metrics.behavior, unlearnbench.metrics.stats; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    # Same import path as this test process, whether or not the package is installed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
