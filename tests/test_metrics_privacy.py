"""Membership-inference scores, AUC, PrivLeak and their bootstrap CIs, checked against
hand-worked numbers and independent references (scikit-learn, scipy, zlib) -- never
against our own output."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
from scipy.special import log_softmax, softmax
from sklearn.metrics import roc_auc_score

from unlearnbench.metrics.privacy import (
    ATTACKS,
    _rank_auc,
    attack_auc_bootstrap_ci,
    gradnorm_score,
    loss_score,
    mia_auc,
    min_k_plus_plus_score,
    min_k_score,
    privleak,
    privleak_bootstrap_ci,
    reference_score,
    token_distribution_moments,
    zlib_score,
)


def _sklearn_auc(members, nonmembers) -> float:
    labels = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
    return float(roc_auc_score(labels, np.r_[members, nonmembers]))


# ---------------------------------------------------------------- attack scores


def test_loss_score_is_minus_nll():
    assert loss_score([0.5, 2.0, 0.0]) == pytest.approx([-0.5, -2.0, 0.0])


def test_zlib_score_divides_nll_by_zlib_compressed_length_in_bytes():
    texts = ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "The quick brown fox jumps over the lazy dog.", "héllo wörld"]
    nll = [1.0, 2.0, 3.0]
    lengths = [len(zlib.compress(t.encode("utf-8"))) for t in texts]
    assert zlib_score(nll, texts) == pytest.approx([-1.0 / lengths[0], -2.0 / lengths[1], -3.0 / lengths[2]])


def test_zlib_score_ranks_a_repetitive_text_below_a_varied_one_at_equal_loss():
    # Same loss, but the repetitive text compresses better -> larger nll/zlib -> lower score.
    scores = zlib_score([2.0, 2.0], ["ab" * 50, "The quick brown fox jumps over the lazy dog, twice."])
    assert scores[0] < scores[1]


def test_min_k_hand_worked():
    # 5 tokens, k = 0.4 -> floor(2.0) = 2 lowest: -3 and -2 -> -2.5
    assert min_k_score([[-0.1, -3.0, -0.5, -2.0, -1.0]], k=0.4) == pytest.approx([-2.5])


def test_min_k_token_count_is_floored():
    # 7 tokens, k = 0.4 -> floor(2.8) = 2 lowest: -7 and -6 -> -6.5 (not 3 tokens)
    assert min_k_score([[-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0]], k=0.4) == pytest.approx([-6.5])


def test_min_k_uses_at_least_one_token():
    # 2 tokens, k = 0.4 -> floor(0.8) = 0 -> at least 1: the single lowest.
    assert min_k_score([[-0.2, -1.5]], k=0.4) == pytest.approx([-1.5])


def test_min_k_with_k_one_is_mean_log_prob():
    row = np.array([-0.3, -1.2, -0.7])
    assert min_k_score([row], k=1.0) == pytest.approx([row.mean()])


def test_min_k_accepts_examples_of_different_lengths():
    # k = 0.5: [-1,-4] -> 1 token -> -4; [-1,-2,-3,-4] -> 2 tokens -> -3.5
    assert min_k_score([[-1.0, -4.0], [-1.0, -2.0, -3.0, -4.0]], k=0.5) == pytest.approx([-4.0, -3.5])


def test_min_k_rejects_an_empty_example_naming_its_index():
    with pytest.raises(ValueError, match=r"token_logprobs\[1\] is empty"):
        min_k_score([[-1.0], []])


def test_min_k_rejects_a_non_finite_log_prob_naming_example_and_token():
    with pytest.raises(ValueError, match=r"token_logprobs\[0\]\[1\] is -inf"):
        min_k_score([[-1.0, -np.inf]])


@pytest.mark.parametrize("k", [0.0, -0.1, 1.5, float("nan"), True])
def test_min_k_rejects_k_outside_unit_interval(k):
    with pytest.raises(ValueError, match="k must be a fraction"):
        min_k_score([[-1.0]], k=k)


def test_min_k_plus_plus_hand_worked():
    # z = (lp - mu) / sigma = [(-1+2)/1, (-3+2)/0.5, (-2+1)/2, (-0.5+1)/0.25] = [1, -2, -0.5, 2]
    # 4 tokens, k = 0.5 -> 2 lowest: -2, -0.5 -> -1.25
    score = min_k_plus_plus_score(
        [[-1.0, -3.0, -2.0, -0.5]], [[-2.0, -2.0, -1.0, -1.0]], [[1.0, 0.5, 2.0, 0.25]], k=0.5
    )
    assert score == pytest.approx([-1.25])


def test_min_k_plus_plus_matches_direct_computation_from_naive_softmax():
    rng = np.random.default_rng(0)
    vocab, k = 50, 0.4
    lengths = [7, 12, 3]
    token_logprobs, mus, sigmas, expected = [], [], [], []
    for n in lengths:
        logits = rng.normal(scale=3.0, size=(n, vocab))
        tokens = rng.integers(0, vocab, size=n)
        probs = softmax(logits, axis=-1)
        logp = np.log(probs)
        mu = (probs * logp).sum(-1)
        sigma = np.sqrt((probs * logp**2).sum(-1) - mu**2)
        lp = logp[np.arange(n), tokens]
        z = np.sort((lp - mu) / sigma)
        expected.append(z[: max(1, int(k * n))].mean())
        token_logprobs.append(lp)
        mus.append(mu)
        sigmas.append(sigma)
    assert min_k_plus_plus_score(token_logprobs, mus, sigmas, k=k) == pytest.approx(expected, rel=1e-10)


def test_min_k_plus_plus_treats_zero_sigma_as_a_typical_token():
    # sigma = 0 -> z = 0; other token z = (-1 - 0) / 1 = -1; k = 1 -> mean(0, -1) = -0.5
    assert min_k_plus_plus_score([[0.0, -1.0]], [[0.0, 0.0]], [[0.0, 1.0]], k=1.0) == pytest.approx([-0.5])


def test_min_k_plus_plus_rejects_negative_sigma():
    with pytest.raises(ValueError, match=r"token_sigma\[0\]\[1\] is -0.5"):
        min_k_plus_plus_score([[-1.0, -1.0]], [[-1.0, -1.0]], [[1.0, -0.5]])


def test_min_k_plus_plus_rejects_token_count_mismatch_within_an_example():
    with pytest.raises(ValueError, match=r"example 0: token_logprobs\[0\] has 2 tokens, token_mu\[0\] 3"):
        min_k_plus_plus_score([[-1.0, -1.0]], [[-1.0, -1.0, -1.0]], [[1.0, 1.0]])


def test_reference_score_is_minus_nll_difference():
    assert reference_score([1.0, 3.0], [2.0, 2.5]) == pytest.approx([1.0, -0.5])


def test_gradnorm_score_is_minus_norm():
    assert gradnorm_score([0.0, 2.5]) == pytest.approx([0.0, -2.5])


def test_gradnorm_rejects_negative_norm_naming_index():
    with pytest.raises(ValueError, match=r"grad_norms\[1\] is -1.0"):
        gradnorm_score([1.0, -1.0])


def test_attacks_lists_the_six_attacks():
    assert set(ATTACKS) == {"loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm"}


def test_memorised_members_get_higher_scores_under_every_attack():
    # Members: low NLL, high token log-probs, small gradients; the one sign convention.
    member, nonmember = 0.5, 3.0
    assert loss_score([member])[0] > loss_score([nonmember])[0]
    assert zlib_score([member], ["same text"])[0] > zlib_score([nonmember], ["same text"])[0]
    assert min_k_score([[-member]])[0] > min_k_score([[-nonmember]])[0]
    assert reference_score([member], [2.0])[0] > reference_score([nonmember], [2.0])[0]
    assert gradnorm_score([member])[0] > gradnorm_score([nonmember])[0]


# ---------------------------------------------------------------- moments


def test_token_distribution_moments_match_explicit_sums():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=2.0, size=(2, 3, 11))
    mu, sigma = token_distribution_moments(logits)
    assert mu.shape == sigma.shape == (2, 3)
    for i in range(2):
        for t in range(3):
            logp = log_softmax(logits[i, t])
            p = np.exp(logp)
            m = sum(p[v] * logp[v] for v in range(11))
            s = math.sqrt(sum(p[v] * (logp[v] - m) ** 2 for v in range(11)))
            assert mu[i, t] == pytest.approx(m, rel=1e-12)
            assert sigma[i, t] == pytest.approx(s, rel=1e-12)


def test_token_distribution_moments_hand_worked_uniform_is_zero_sigma():
    mu, sigma = token_distribution_moments(np.zeros(4))
    assert mu == pytest.approx(math.log(0.25))
    assert sigma == pytest.approx(0.0, abs=1e-15)


def test_token_distribution_moments_ignore_masked_minus_inf_logits():
    # Two live entries with equal logits -> uniform over 2: mu = log 1/2, sigma = 0.
    mu, sigma = token_distribution_moments(np.array([0.0, -np.inf, 0.0]))
    assert mu == pytest.approx(math.log(0.5))
    assert sigma == pytest.approx(0.0, abs=1e-15)


def test_token_distribution_moments_accept_a_torch_tensor_and_return_float64():
    torch = pytest.importorskip("torch")
    logits = np.random.default_rng(2).normal(size=(3, 5))
    mu, sigma = token_distribution_moments(torch.tensor(logits, dtype=torch.float64))
    logp = log_softmax(logits, axis=-1)
    assert mu.dtype == np.float64
    assert mu == pytest.approx((np.exp(logp) * logp).sum(-1), rel=1e-12)


def test_token_distribution_moments_reject_nan_logits():
    with pytest.raises(ValueError, match=r"logits\[0, 1\] is nan"):
        token_distribution_moments(np.array([[0.0, np.nan]]))


# ---------------------------------------------------------------- AUC


def test_mia_auc_matches_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(0.5, 1.0, size=40), rng.normal(0.0, 1.0, size=55)
    assert mia_auc(members, nonmembers) == pytest.approx(_sklearn_auc(members, nonmembers), rel=1e-12)


def test_mia_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(1)
    members, nonmembers = rng.integers(0, 4, size=30).astype(float), rng.integers(0, 4, size=25).astype(float)
    assert mia_auc(members, nonmembers) == pytest.approx(_sklearn_auc(members, nonmembers), rel=1e-12)


def test_mia_auc_hand_worked():
    # pairs (m, n): (3,1) win, (3,2) win, (2,1) win, (2,2) tie -> (3 + 0.5) / 4
    assert mia_auc([3.0, 2.0], [1.0, 2.0]) == pytest.approx(0.875)


def test_mia_auc_is_one_for_perfectly_separated_members():
    assert mia_auc([5.0, 6.0], [1.0, 2.0, 3.0]) == 1.0


def test_rank_based_auc_equals_sklearn_on_unresampled_data():
    rng = np.random.default_rng(2)
    members, nonmembers = np.round(rng.normal(0.3, 1.0, size=33), 1), np.round(rng.normal(size=21), 1)
    assert _rank_auc(members[None, :], nonmembers[None, :])[0] == pytest.approx(
        _sklearn_auc(members, nonmembers), rel=1e-12
    )


@pytest.mark.parametrize(
    ("members", "nonmembers", "message"),
    [
        ([], [1.0], "member_scores is empty"),
        ([1.0], [], "nonmember_scores is empty"),
        ([1.0, np.nan], [0.0], r"member_scores\[1\] is nan"),
        ([1.0], [0.0, np.inf], r"nonmember_scores\[1\] is inf"),
        ([[1.0]], [0.0], "1-dimensional"),
    ],
)
def test_mia_auc_rejects_empty_or_non_finite_scores(members, nonmembers, message):
    with pytest.raises(ValueError, match=message):
        mia_auc(members, nonmembers)


# ---------------------------------------------------------------- PrivLeak


def test_privleak_of_a_memorising_model_is_minus_100():
    # our AUC 1.0 -> MUSE AUC 0; retrain 0.5 -> 0.5; (0 - 0.5) / 0.5 * 100
    assert privleak(1.0, 0.5) == pytest.approx(-100.0)


def test_privleak_is_zero_when_aucs_are_equal():
    assert privleak(0.62, 0.62) == 0.0


def test_privleak_is_positive_for_over_unlearning():
    # forget texts look less familiar than holdout: our AUC 0.2 -> MUSE 0.8 vs 0.5 -> +60
    assert privleak(0.2, 0.5) == pytest.approx(60.0)


def test_privleak_hand_worked_with_a_non_half_retrain_auc():
    # MUSE AUCs 1 - 0.7 = 0.3 and 1 - 0.4 = 0.6 -> (0.3 - 0.6) / 0.6 * 100 = -50
    assert privleak(0.7, 0.4) == pytest.approx(-50.0)


def test_privleak_rejects_a_perfectly_separating_retrain_model():
    with pytest.raises(ValueError, match="auc_retrain is 1.0"):
        privleak(0.8, 1.0)


@pytest.mark.parametrize(("u", "r", "name"), [(1.2, 0.5, "auc_unlearned"), (0.5, float("nan"), "auc_retrain")])
def test_privleak_rejects_aucs_outside_unit_interval(u, r, name):
    with pytest.raises(ValueError, match=name):
        privleak(u, r)


# ---------------------------------------------------------------- bootstrap CIs


def test_attack_auc_ci_contains_point_estimate():
    rng = np.random.default_rng(3)
    members, nonmembers = rng.normal(0.4, 1.0, size=80), rng.normal(size=90)
    lo, hi = attack_auc_bootstrap_ci(members, nonmembers, seed=5)
    assert lo < _sklearn_auc(members, nonmembers) < hi


def test_attack_auc_ci_is_reproducible_with_fixed_seed():
    rng = np.random.default_rng(4)
    members, nonmembers = rng.normal(size=30), rng.normal(size=30)
    assert attack_auc_bootstrap_ci(members, nonmembers, seed=9) == attack_auc_bootstrap_ci(members, nonmembers, seed=9)
    assert attack_auc_bootstrap_ci(members, nonmembers, seed=9) != attack_auc_bootstrap_ci(members, nonmembers, seed=10)


def test_attack_auc_ci_resamples_each_group_separately():
    # Perfectly separated groups stay perfectly separated in every stratified resample.
    assert attack_auc_bootstrap_ci([5.0, 6.0, 7.0], [1.0, 2.0]) == (1.0, 1.0)


def test_attack_auc_ci_rejects_bad_confidence_and_resample_count():
    with pytest.raises(ValueError, match="confidence"):
        attack_auc_bootstrap_ci([1.0], [0.0], confidence=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        attack_auc_bootstrap_ci([1.0], [0.0], n_resamples=0)


def test_privleak_ci_contains_point_estimate():
    rng = np.random.default_rng(6)
    member_u, nonmember_u = rng.normal(0.6, 1.0, size=100), rng.normal(size=100)
    member_r, nonmember_r = member_u - 0.6 + rng.normal(scale=0.3, size=100), nonmember_u
    point = privleak(_sklearn_auc(member_u, nonmember_u), _sklearn_auc(member_r, nonmember_r))
    lo, hi = privleak_bootstrap_ci(member_u, nonmember_u, member_r, nonmember_r, seed=1)
    assert lo < point < hi


def test_privleak_ci_of_identical_score_sets_is_zero():
    rng = np.random.default_rng(7)
    members, nonmembers = rng.normal(0.3, 1.0, size=50), rng.normal(size=60)
    assert privleak_bootstrap_ci(members, nonmembers, members.copy(), nonmembers.copy()) == (0.0, 0.0)


def test_privleak_ci_is_reproducible_with_fixed_seed():
    rng = np.random.default_rng(8)
    scores = [rng.normal(size=40) for _ in range(4)]
    assert privleak_bootstrap_ci(*scores, seed=3) == privleak_bootstrap_ci(*scores, seed=3)


def test_privleak_ci_pairs_the_two_models_on_the_same_examples():
    # The retrained model's scores are the unlearned model's shifted by a constant: every
    # paired resample has the same ranking for both models -> PrivLeak exactly 0. Unpaired
    # (independent) resampling of the two models would give a wide interval instead.
    rng = np.random.default_rng(9)
    members, nonmembers = rng.normal(size=40), rng.normal(size=40)
    lo, hi = privleak_bootstrap_ci(members, nonmembers, members + 10.0, nonmembers + 10.0, seed=2)
    assert (lo, hi) == (0.0, 0.0)


def test_privleak_ci_rejects_mismatched_example_counts():
    with pytest.raises(ValueError, match="member_unlearned has 3 examples but member_retrain has 2"):
        privleak_bootstrap_ci([1.0, 2.0, 3.0], [0.0], [1.0, 2.0], [0.0])


def test_privleak_ci_rejects_a_retrain_model_that_always_separates_perfectly():
    with pytest.raises(ValueError, match="resamples the retrained"):
        privleak_bootstrap_ci([1.0, 2.0], [0.0, 0.5], [5.0, 6.0], [0.0, 0.5], n_resamples=20)


def test_privleak_ci_leaves_out_the_few_resamples_where_privleak_is_undefined():
    # retrain separates only in resamples that miss both low members (2, 2.5) or both high
    # non-members (3, 3.5): about 12% of them
    member_r, nonmember_r = [2.0, 2.5, 6.0, 7.0], [0.0, 1.0, 3.0, 3.5]
    lo, hi = privleak_bootstrap_ci([1.0, 2.0, 3.0, 4.0], [0.0, 0.5, 1.5, 2.5], member_r, nonmember_r,
                                   n_resamples=200, seed=0)
    assert np.isfinite(lo) and np.isfinite(hi) and lo <= hi


# ---------------------------------------------------------------- module hygiene


def test_privacy_and_muse_modules_do_not_import_torch():
    code = (
        "import sys; import unlearnbench.metrics.privacy, unlearnbench.metrics.muse; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0
