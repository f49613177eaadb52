"""Classifier unlearning metrics (SalUn tier, NeurIPS 2023 challenge tier), checked against
hand-worked numbers and independent references (scikit-learn's SVC fitted here, scipy,
brute-force enumeration, the challenge's published bucket loop) -- never against our own output."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.svm import SVC

from unlearnbench.metrics.classifier import (
    DELTA,
    EPSILON_CAP,
    MIA_FEATURES,
    accuracy,
    avg_gap,
    challenge_final_score,
    challenge_max_epsilon,
    confidence,
    correctness,
    entropy,
    epsilon_from_scores,
    forgetting_score,
    logit_confidence,
    mia_efficacy,
    modified_entropy,
    per_example_epsilons,
    probability_vector,
    unlearning_accuracy,
)

# Two 3-class examples used throughout: labels 0 and 1.
P = np.array([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1]])
Y = np.array([0, 1])

# ------------------------------------------------------------------ accuracy, UA


def test_accuracy_from_probabilities_takes_the_argmax():
    probs = [[0.6, 0.3, 0.1], [0.1, 0.5, 0.4], [0.2, 0.2, 0.6], [0.5, 0.1, 0.4]]
    # argmax = 0, 1, 2, 0; labels 0, 2, 2, 1 -> hits 1, 0, 1, 0 -> 2/4
    assert accuracy(probs, [0, 2, 2, 1]) == pytest.approx(0.5)


def test_accuracy_from_predicted_classes():
    assert accuracy([3, 1, 1, 0, 2], [3, 1, 0, 0, 0]) == pytest.approx(3 / 5)


def test_unlearning_accuracy_is_one_minus_forget_accuracy():
    # forget predictions right on 1 of 4 -> UA = 3/4
    assert unlearning_accuracy([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]], [0, 1, 0, 0]) == pytest.approx(0.75)


def test_accuracy_rejects_mismatched_lengths_and_fractional_predictions():
    with pytest.raises(ValueError, match="3 labels but there are 2 examples"):
        accuracy([[0.5, 0.5], [0.2, 0.8]], [0, 1, 1])
    with pytest.raises(ValueError, match="predicted class indices"):
        accuracy([0.2, 1.0], [0, 1])


# ------------------------------------------------------------------ MIA features


def test_confidence_and_correctness_hand_worked():
    assert confidence(P, Y) == pytest.approx([0.7, 0.2])
    assert correctness(P, Y).tolist() == [1.0, 0.0]


def test_entropy_hand_worked_with_zero_probability():
    # -(0.5 ln 0.5 + 0.5 ln 0.5 + 0) = ln 2
    assert entropy([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]]) == pytest.approx([math.log(2), 0.0])


def test_modified_entropy_hand_worked_three_classes():
    # Song & Mittal Eq. 4: -(1 - p_y) ln p_y - sum_{k != y} p_k ln(1 - p_k)
    # y = 0: -(0.3) ln 0.7 - 0.2 ln 0.8 - 0.1 ln 0.9
    y0 = 0.3 * 0.35667494393873245 + 0.2 * 0.2231435513142097 + 0.1 * 0.10536051565782628
    # y = 1: -(0.8) ln 0.2 - 0.7 ln 0.3 - 0.1 ln 0.9
    y1 = 0.8 * 1.6094379124341003 + 0.7 * 1.2039728043259361 + 0.1 * 0.10536051565782628
    assert y0 == pytest.approx(0.16216725, abs=1e-8)
    assert modified_entropy(P, Y) == pytest.approx([y0, y1], rel=1e-12)


def test_modified_entropy_is_not_the_flawed_reference_variant():
    # SalUn's m_entropy uses ln p_k where ln(1 - p_k) belongs:
    # -(0.3) ln 0.7 - 0.2 ln 0.2 - 0.1 ln 0.1 = 0.6591486...
    flawed = 0.3 * 0.35667494393873245 + 0.2 * 1.6094379124341003 + 0.1 * 2.302585092994046
    correct = modified_entropy(P[:1], Y[:1])[0]
    assert correct == pytest.approx(0.16216725, abs=1e-8)
    assert abs(correct - flawed) > 0.49


def test_modified_entropy_uses_each_rows_own_label():
    # The reference indexes [:, labels] (all labels of the batch, every row). Row by row, a
    # confident correct prediction has Mentr ~ 0, a confident wrong one a large value.
    m = modified_entropy([[0.98, 0.01, 0.01], [0.98, 0.01, 0.01]], [0, 2])
    ok = -(0.02) * math.log(0.98) - 2 * 0.01 * math.log(0.99)
    wrong = -(0.99) * math.log(0.01) - 0.98 * math.log(0.02) - 0.01 * math.log(0.99)
    assert m == pytest.approx([ok, wrong], rel=1e-12)


def test_modified_entropy_stays_finite_at_zero_and_one():
    m = modified_entropy([[1.0, 0.0], [0.0, 1.0]], [0, 0])
    # row 0: -(0) ln 1 - 0 * ln 1 = 0; row 1: -(1) ln(1e-30) - 1 * ln(max(0, 1e-30)) = 2 * 30 ln 10
    assert m == pytest.approx([0.0, 2 * 30 * math.log(10)])


def test_probability_vector_is_the_row_as_is():
    out = probability_vector(P, Y)
    assert out.tolist() == P.tolist() and out is not P


def test_features_reject_logits():
    with pytest.raises(ValueError, match="softmax"):
        confidence([[2.0, -1.0]], [0])


# ------------------------------------------------------------------ MIA-Efficacy


def _conf_probs(conf: np.ndarray) -> np.ndarray:
    """Binary probability rows with p_y = conf for label 0."""
    return np.c_[conf, 1.0 - conf]


def _reference_efficacy(x_member, x_nonmember, x_forget) -> float:
    clf = SVC(kernel="rbf", C=3, gamma="auto").fit(
        np.vstack([x_member, x_nonmember]), np.r_[np.ones(len(x_member)), np.zeros(len(x_nonmember))]
    )
    return float(np.mean(clf.predict(x_forget) == 0))


RNG = np.random.default_rng(0)
RETAIN_CONF = np.clip(RNG.normal(0.97, 0.02, 60), 0.0, 1.0)  # members: confident
TEST_CONF = np.clip(RNG.normal(0.55, 0.15, 60), 0.0, 1.0)  # non-members: less so
ZEROS = np.zeros(60, dtype=int)


def test_mia_efficacy_high_when_forget_looks_like_test():
    eff = mia_efficacy(_conf_probs(RETAIN_CONF), ZEROS, _conf_probs(TEST_CONF), ZEROS,
                       _conf_probs(TEST_CONF[:30]), ZEROS[:30])
    assert eff > 0.8
    assert eff == _reference_efficacy(RETAIN_CONF[:, None], TEST_CONF[:, None], TEST_CONF[:30, None])


def test_mia_efficacy_low_when_forget_looks_like_retain():
    eff = mia_efficacy(_conf_probs(RETAIN_CONF), ZEROS, _conf_probs(TEST_CONF), ZEROS,
                       _conf_probs(RETAIN_CONF[:30]), ZEROS[:30])
    assert eff < 0.2
    assert eff == _reference_efficacy(RETAIN_CONF[:, None], TEST_CONF[:, None], RETAIN_CONF[:30, None])


def test_mia_efficacy_balances_by_subsampling_the_larger_set_with_the_documented_rng():
    retain = np.clip(RNG.normal(0.9, 0.08, 150), 0.0, 1.0)
    forget = np.linspace(0.3, 1.0, 25)
    seed = 7
    idx = np.sort(np.random.default_rng(seed).choice(150, 60, replace=False))
    expected = _reference_efficacy(retain[idx, None], TEST_CONF[:, None], forget[:, None])
    eff = mia_efficacy(_conf_probs(retain), np.zeros(150, int), _conf_probs(TEST_CONF), ZEROS,
                       _conf_probs(forget), np.zeros(25, int), seed=seed)
    assert eff == expected


@pytest.mark.parametrize("feature", ["entropy", "modified_entropy", "probability_vector", "correctness"])
def test_mia_efficacy_other_features_match_an_svc_fit_by_hand(feature):
    rng = np.random.default_rng(1)
    retain = softmax(rng.normal(size=(40, 4)) * 4 + 6 * np.eye(4)[rng.integers(0, 4, 40)], axis=1)
    test = softmax(rng.normal(size=(40, 4)) * 1.5, axis=1)
    forget = softmax(rng.normal(size=(20, 4)) * 2, axis=1)
    yr, yt, yf = retain.argmax(1), rng.integers(0, 4, 40), rng.integers(0, 4, 20)

    def feat(p, y):  # independent computation of each feature
        rows = np.arange(len(y))
        if feature == "entropy":
            return -(p * np.log(p)).sum(1, keepdims=True)
        if feature == "correctness":
            return (p.argmax(1) == y).astype(float)[:, None]
        if feature == "probability_vector":
            return p
        py = p[rows, y]
        wrong = p * np.log(1 - p)
        return (-(1 - py) * np.log(py) - wrong.sum(1) + wrong[rows, y])[:, None]

    expected = _reference_efficacy(feat(retain, yr), feat(test, yt), feat(forget, yf))
    got = mia_efficacy(retain, yr, test, yt, forget, yf, feature=feature)
    assert got == expected


def test_mia_efficacy_unknown_feature_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown MIA feature 'm_entr'.*confidence.*modified_entropy"):
        mia_efficacy(P, Y, P, Y, P, Y, feature="m_entr")
    assert set(MIA_FEATURES) == {"confidence", "correctness", "entropy", "modified_entropy", "probability_vector"}


# ------------------------------------------------------------------ Avg. Gap


def test_avg_gap_hand_worked_in_percentage_points():
    unlearned = {"ua": 5.0, "ra": 99.0, "ta": 94.0, "mia_efficacy": 10.0, "extra": 1.0}
    retrained = {"ua": 8.0, "ra": 100.0, "ta": 93.0, "mia_efficacy": 20.0}
    # |5-8| + |99-100| + |94-93| + |10-20| = 3 + 1 + 1 + 10 = 15 -> 15 / 4
    assert avg_gap(unlearned, retrained) == pytest.approx(3.75)
    assert avg_gap(unlearned, retrained, keys=("ua", "ra")) == pytest.approx(2.0)


def test_avg_gap_names_a_missing_key():
    with pytest.raises(ValueError, match="reference has no 'ta'"):
        avg_gap({"ua": 1, "ra": 1, "ta": 1, "mia_efficacy": 1}, {"ua": 1, "ra": 1, "mia_efficacy": 1})


# ------------------------------------------------------------------ logit-scaled confidence


def test_logit_confidence_from_probabilities_hand_worked():
    # y = 0: ln 0.7 - ln 0.3 ; y = 1: ln 0.2 - ln 0.8
    assert logit_confidence(P, Y) == pytest.approx(
        [math.log(0.7) - math.log(0.3), math.log(0.2) - math.log(0.8)], rel=1e-12
    )


def test_logit_confidence_from_logits_is_exact_where_softmax_underflows():
    # z = [2, 1, 0], y = 1: 1 - ln(e^2 + e^0)
    assert logit_confidence([[2.0, 1.0, 0.0]], [1], from_logits=True) == pytest.approx(
        [1.0 - math.log(math.exp(2) + 1.0)], rel=1e-12
    )
    # z = [1000, 0, 0], y = 0: 1000 - ln 2 (the probabilities underflow to [1, 0, 0])
    assert logit_confidence([[1000.0, 0.0, 0.0]], [0], from_logits=True) == pytest.approx([1000.0 - math.log(2)])
    # From probabilities the challenge's 1e-45 floor applies: ln(1 + 1e-45) - ln(1e-45)
    assert logit_confidence([[1.0, 0.0, 0.0]], [0]) == pytest.approx([-math.log(1e-45)])


# ------------------------------------------------------------------ epsilon


def test_epsilon_hand_worked_four_models_each_side():
    u = [0.0, 1.0, 2.0, 3.0]
    r = [1.5, 2.5, 3.5, 4.5]
    # "retrained if s >= t": FPR = share of u >= t, FNR = share of r < t
    #   t=1.5: (2/4, 0) discarded;  t=2: (2/4, 1/4) -> max(ln(.5-d) - ln .25, ln(.75-d) - ln .5) = ln(2 - 4d)
    #   t=2.5: (1/4, 1/4) -> ln((.75 - d) / .25) = ln(3 - 4d);  t=3: (1/4, 2/4) -> ln(2 - 4d)
    #   t=3.5: (0, 2/4) discarded.  The other direction is worse than chance (clipped to 0).
    # The challenge's double threshold cannot do better: rates are multiples of 1/4 and u, r interleave.
    expected = math.log(3 - 4 * DELTA)
    assert epsilon_from_scores(u, r) == pytest.approx(expected, rel=1e-12)
    assert epsilon_from_scores(r, u) == pytest.approx(expected, rel=1e-12)  # symmetric
    assert epsilon_from_scores(u, r, rule="challenge") == pytest.approx(expected, rel=1e-12)


def test_epsilon_threshold_direction_does_not_matter():
    # Larger scores under the unlearned models this time: same rates mirrored -> same epsilon.
    assert epsilon_from_scores([1.5, 2.5, 3.5, 4.5], [0.0, 1.0, 2.0, 3.0]) == pytest.approx(math.log(3 - 4 * DELTA))
    assert epsilon_from_scores([-1.5, -2.5, -3.5, -4.5], [0.0, -1.0, -2.0, -3.0]) == pytest.approx(
        math.log(3 - 4 * DELTA))


def test_epsilon_challenge_double_threshold_catches_a_distribution_nested_inside_the_other():
    u = [0.0, 1.0, 5.0, 6.0]
    r = [2.0, 3.0, 3.5, 4.0]
    # Single thresholds, "retrained if s >= t": t=3 -> (FPR 2/4, FNR 1/4) -> ln(2 - 4d) is the best
    # (t=2: (2/4, 0) discarded; t=3.5: (2/4, 2/4) -> < 0; t=5: (2/4, 1) -> < 0); the other
    # direction never beats chance.
    assert epsilon_from_scores(u, r) == pytest.approx(math.log(2 - 4 * DELTA), rel=1e-12)
    # Double threshold: r is peakier (spread 2 < 6); "retrained iff 1.x <= s <= 4.x" -> FPR = FNR = 0
    # -> perfect separation -> the cap.
    assert epsilon_from_scores(u, r, rule="challenge") == EPSILON_CAP == 50.0
    assert epsilon_from_scores(u, r, rule="challenge", cap=9.0) == 9.0


def test_epsilon_is_zero_for_identical_score_sets():
    s = [0.3, 1.2, 2.0, 2.2, 5.0]
    # Every threshold gives FPR = 1 - FNR: eps = ln((1 - d - FPR) / (1 - FPR)) < 0 -> 0.
    assert epsilon_from_scores(s, s) == 0.0
    assert epsilon_from_scores(s, s, rule="challenge") == 0.0
    assert epsilon_from_scores([1.0, 1.0], [1.0, 1.0]) == 0.0  # nothing survives -> 0


def test_epsilon_perfect_separation_gives_the_cap():
    assert epsilon_from_scores([0.0, 0.5, 1.0], [2.0, 2.5, 3.5]) == EPSILON_CAP
    assert epsilon_from_scores([0.0, 0.5, 1.0], [2.0, 2.5, 3.5], rule="challenge") == EPSILON_CAP


def test_epsilon_peaky_shortcut_as_the_challenge():
    u = [2.0, 2.0, 2.0, 2.0]  # a point mass (every unlearned model gives the same score)
    r = [0.0, 1.0, 3.0, 4.0]
    assert epsilon_from_scores(u, r) == EPSILON_CAP
    # Without the shortcut the thresholds only see e.g. "retrained if s >= 2": (FPR 1, FNR 2/4)
    # -> ln(.5 - d) - ln 1 < 0 -> 0, or "unlearned if s >= 2": (FPR 2/4, FNR 0) -> discarded.
    assert epsilon_from_scores(u, r, peaky_ratio=0.0) == 0.0


def _brute_force_threshold_epsilon(u, r, delta=DELTA):
    """Independent reference: a threshold below, between and above all scores, both directions,
    the challenge's zero-rate conventions, by plain loops."""
    values = sorted(set(u) | set(r))
    cuts = [values[0] - 1.0] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1.0]
    best, any_kept = 0.0, False
    for t in cuts:
        for pos, neg in ((u, r), (r, u)):  # pos is predicted for s > t
            fpr = sum(s > t for s in neg) / len(neg)
            fnr = sum(s < t for s in pos) / len(pos)
            if fpr == 0 and fnr == 0:
                return EPSILON_CAP
            if fpr == 0 or fnr == 0:
                continue
            any_kept = True
            if 1 - delta - fpr > 0:
                best = max(best, math.log(1 - delta - fpr) - math.log(fnr))
            if 1 - delta - fnr > 0:
                best = max(best, math.log(1 - delta - fnr) - math.log(fpr))
    return min(best, EPSILON_CAP) if any_kept else 0.0


def _challenge_reference_epsilon(u, r, delta=DELTA):
    """Transcription of the challenge's metric.py for one example (torch -> numpy, broadcasting
    every model against every threshold as the original does)."""
    u, r = np.asarray(u, float), np.asarray(r, float)
    pos, neg = (r, u) if np.median(r) > np.median(u) else (u, r)
    pos_diff, neg_diff = pos.max() - pos.min(), neg.max() - neg.min()
    if min(pos_diff, neg_diff) / max(pos_diff, neg_diff) < 0.01:
        return 50.0
    # _get_double_threshold_rates
    smallest = neg_diff if pos_diff > neg_diff else pos_diff
    p, n = (neg, pos) if pos_diff >= neg_diff else (pos, neg)
    min_, max_ = p.min() + smallest - 2.0, p.max() + 2.0
    right = np.linspace(min_, max_, num=int(np.ceil((max_ - min_) * 100)))
    left = np.concatenate([np.linspace(tr - smallest - 2.0, tr - smallest + 2.0, num=400) for tr in right])
    right = np.tile(right.reshape(-1, 1), (1, 400)).reshape(-1)
    inside_p = (left[None, :] <= p[:, None]) & (p[:, None] <= right[None, :])
    inside_n = (left[None, :] <= n[:, None]) & (n[:, None] <= right[None, :])
    tpr_d, fnr_d, fpr_d, tnr_d = inside_p.mean(0), (~inside_p).mean(0), inside_n.mean(0), (~inside_n).mean(0)
    # _get_single_threshold_rates
    all_ = np.concatenate([pos, neg])
    thr = np.linspace(all_.min(), all_.max(), int(np.ceil((all_.max() - all_.min()) * 100)))
    tpr_s, fpr_s = (pos[:, None] >= thr).mean(0), (neg[:, None] >= thr).mean(0)
    tnr_s, fnr_s = (neg[:, None] < thr).mean(0), (pos[:, None] < thr).mean(0)
    tpr, fnr = np.r_[tpr_d, tpr_s], np.r_[fnr_d, fnr_s]
    fpr, tnr = np.r_[fpr_d, fpr_s], np.r_[tnr_d, tnr_s]
    # _get_epsilons
    thr_eps = np.zeros(tpr.shape)
    thr_eps = np.where((fpr + fnr == 0) & (tpr + tnr == 2), np.inf, thr_eps)
    thr_eps = np.where((thr_eps == 0) & (fpr * fnr == 0), np.nan, thr_eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            vals = np.clip(np.nanmax([np.log(1 - delta - fpr) - np.log(fnr),
                                      np.log(1 - delta - fnr) - np.log(fpr)], axis=0), 0, None)
    thr_eps = np.where(thr_eps == 0, vals, thr_eps)
    thr_eps = thr_eps[~np.isnan(thr_eps)]
    return float(np.clip(np.max(thr_eps), 0, 50))


def test_epsilon_threshold_matches_brute_force_on_random_small_cases():
    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(3, 9))
        u = np.round(rng.normal(0.0, 1.0, n), 1)
        r = np.round(rng.normal(float(rng.uniform(0, 2)), float(rng.uniform(0.5, 2)), n + int(rng.integers(0, 3))), 1)
        expected = _brute_force_threshold_epsilon(list(u), list(r))
        assert epsilon_from_scores(u, r, peaky_ratio=0.0) == pytest.approx(expected, rel=1e-12)


def test_epsilon_challenge_rule_matches_a_transcription_of_the_released_metric():
    rng = np.random.default_rng(4)
    for _ in range(12):
        n = int(rng.integers(4, 12))
        u = rng.normal(0.0, float(rng.uniform(0.3, 1.5)), n)
        r = rng.normal(float(rng.uniform(-1, 2)), float(rng.uniform(0.3, 1.5)), n)
        assert epsilon_from_scores(u, r, rule="challenge") == pytest.approx(
            _challenge_reference_epsilon(u, r), rel=1e-9)


def test_per_example_epsilons_goes_column_by_column():
    u = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 5.0], [3.0, 6.0]])
    r = np.array([[1.5, 2.0], [2.5, 3.0], [3.5, 3.5], [4.5, 4.0]])
    assert per_example_epsilons(u, r) == pytest.approx([math.log(3 - 4 * DELTA), math.log(2 - 4 * DELTA)])
    assert per_example_epsilons(u, r, rule="challenge") == pytest.approx([math.log(3 - 4 * DELTA), EPSILON_CAP])


def test_epsilon_rejects_unknown_rule():
    with pytest.raises(ValueError, match="known rules: threshold, challenge"):
        epsilon_from_scores([0.0, 1.0], [0.0, 1.0], rule="interval")


# ------------------------------------------------------------------ forgetting score


def _challenge_bucket_loop(eps, num_models):
    """Transcription of the challenge's compute_forget_score_from_confs scoring loop."""
    max_epsilon = np.ceil(np.log(num_models - 1))
    start_idx, bucket_size, points, bucket_points = 0, 0.5, 1, {}
    end_idx = start_idx + bucket_size
    while end_idx <= max_epsilon:
        bucket_points[start_idx] = points
        points /= 2
        start_idx += bucket_size
        end_idx = start_idx + bucket_size
    score = 0
    for e in eps:
        for start, pts in bucket_points.items():
            if e < start + bucket_size:
                score += pts
                break
    return score / len(eps)


def test_forgetting_score_hand_worked():
    eps = [0.0, 0.49, 0.5, 1.2, 7.0, 50.0]
    # 512 models: ceiling ceil(ln 511) = 7 -> points 1, 1, 1/2, 1/4, 0, 0 -> 2.75 / 6
    assert challenge_max_epsilon(512) == 7.0
    assert forgetting_score(eps, n_models=512) == pytest.approx(2.75 / 6)
    # no ceiling: 7.0 -> bucket 14 -> 2^-14, 50 -> 2^-100
    assert forgetting_score(eps) == pytest.approx((2.75 + 2.0**-14 + 2.0**-100) / 6)
    assert forgetting_score([0.3, math.inf]) == pytest.approx(0.5)


def test_forgetting_score_matches_the_challenges_bucket_loop():
    rng = np.random.default_rng(5)
    for n_models in (32, 128, 512):
        eps = np.r_[rng.uniform(0, 8, 200), [0.5, 1.0, 3.0, 4.0, 5.0, 6.0, 7.0]]
        assert forgetting_score(eps, n_models=n_models) == pytest.approx(_challenge_bucket_loop(eps, n_models))


def test_forgetting_score_rejects_negative_or_nan():
    with pytest.raises(ValueError, match=r"epsilons\[1\] is -0.1"):
        forgetting_score([0.0, -0.1])
    with pytest.raises(ValueError, match="not both"):
        forgetting_score([0.0], n_models=512, max_epsilon=7.0)


# ------------------------------------------------------------------ final score


def test_challenge_final_score_arithmetic():
    # 0.8 x (0.9 / 0.95) x (0.85 / 0.9) = 0.612 / 0.855
    assert challenge_final_score(0.8, 0.9, 0.95, 0.85, 0.9) == pytest.approx(0.612 / 0.855, rel=1e-12)
    with pytest.raises(ValueError, match="ra_retrained is 0"):
        challenge_final_score(0.8, 0.9, 0.0, 0.85, 0.9)


# ------------------------------------------------------------------ registration


def test_classifier_metrics_registered_with_lens_and_direction():
    from unlearnbench.registry import entries

    metrics = entries("metric")
    expected = {
        "ua": (unlearning_accuracy, "behavior"), "ra": (accuracy, "utility"), "ta": (accuracy, "utility"),
        "ta_forget_class": (accuracy, "behavior"), "mia_efficacy": (mia_efficacy, "privacy"),
        "avg_gap": (avg_gap, "behavior"), "forgetting_score": (forgetting_score, "privacy"),
        "challenge_score": (challenge_final_score, "privacy"),
    }
    for name, (fn, lens) in expected.items():
        assert metrics[name].obj is fn, name
        assert metrics[name].info["lens"] == lens and metrics[name].info["direction"], name
    assert metrics["avg_gap"].info["direction"] == "lower"
