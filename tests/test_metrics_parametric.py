"""Parametric (concept vectors, answers, probes) and robustness (recovery) metrics, checked
against hand-worked numbers and independent references (scipy, scikit-learn, numpy) --
never against our own output."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import cosine as scipy_cosine_distance
from scipy.spatial.distance import euclidean
from sklearn.metrics import jaccard_score

from unlearnbench.metrics.parametric import (
    coefficient_ratio,
    concept_token_retention,
    cosine_similarity,
    l2_distance,
    layer_probe_accuracies,
    multiple_choice_accuracy,
    probe_accuracy,
    topk_jaccard,
)
from unlearnbench.metrics.robustness import quantized_agreement, recovery_auc, recovery_ratio

_trapezoid = getattr(np, "trapezoid", None) or getattr(np, "trapz")


def _sklearn_jaccard(a, b) -> float:
    vocab = sorted(set(a) | set(b))
    return float(jaccard_score([int(t in set(a)) for t in vocab], [int(t in set(b)) for t in vocab]))


# ---------------------------------------------------------------- top-k sets


def test_topk_jaccard_hand_worked():
    # {1,2,3,4} vs {3,4,5,6}: intersection 2, union 6.
    assert topk_jaccard([1, 2, 3, 4], [3, 4, 5, 6]) == pytest.approx(2 / 6)
    assert topk_jaccard([7, 8], [8, 7]) == 1.0
    assert topk_jaccard([1, 2], [3, 4]) == 0.0


def test_topk_jaccard_matches_sklearn_on_indicator_vectors():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a = rng.choice(50, size=10, replace=False)
        b = rng.choice(50, size=10, replace=False)
        assert topk_jaccard(a, b) == pytest.approx(_sklearn_jaccard(a.tolist(), b.tolist()))


def test_topk_jaccard_per_row_for_2d_and_duplicates_count_once():
    before = np.array([[1, 2, 3], [5, 6, 7]])
    after = np.array([[1, 2, 9], [5, 5, 5]])
    out = topk_jaccard(before, after)
    assert isinstance(out, np.ndarray) and out.shape == (2,)
    assert out == pytest.approx([2 / 4, 1 / 3])


def test_topk_jaccard_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        topk_jaccard([], [1])
    with pytest.raises(ValueError, match="integers"):
        topk_jaccard([1.5, 2], [1, 2])
    with pytest.raises(ValueError, match="rows"):
        topk_jaccard([[1, 2], [3, 4]], [[1, 2]])
    with pytest.raises(ValueError, match="1-D"):
        topk_jaccard([1, 2], [[1, 2]])


def test_concept_token_retention_hand_worked():
    # Concept tokens {10, 11, 12, 99}; in the original top-k: 10, 11, 12 (99 was not).
    # After: 10 and 12 remain -> 2/3. 99 appearing after does not count.
    assert concept_token_retention([10, 11, 12, 1], [10, 12, 99, 2], [10, 11, 12, 99]) == pytest.approx(2 / 3)
    assert concept_token_retention([10, 11], [1, 2], [10, 11]) == 0.0
    assert concept_token_retention([10, 11], [11, 10], [10]) == 1.0


def test_concept_token_retention_is_nan_when_no_concept_token_was_there():
    assert math.isnan(concept_token_retention([1, 2, 3], [1, 2, 3], [10, 11]))
    out = concept_token_retention([[10, 1], [1, 2]], [[10, 2], [10, 2]], [10])
    assert out[0] == 1.0 and math.isnan(out[1])


# ---------------------------------------------------------------- vectors


def test_cosine_and_l2_hand_worked():
    assert cosine_similarity([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert cosine_similarity([1.0, 1.0], [2.0, 2.0]) == pytest.approx(1.0)
    assert cosine_similarity([1.0, 2.0], [-1.0, -2.0]) == pytest.approx(-1.0)
    assert l2_distance([0.0, 0.0], [3.0, 4.0]) == pytest.approx(5.0)
    assert l2_distance([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.0


def test_cosine_and_l2_match_scipy():
    rng = np.random.default_rng(1)
    v0 = rng.normal(size=(4, 16))
    v1 = v0 + 0.3 * rng.normal(size=(4, 16))
    cos = cosine_similarity(v0, v1)
    l2 = l2_distance(v0, v1)
    assert cos.shape == (4,) and l2.shape == (4,)
    for i in range(4):
        assert cos[i] == pytest.approx(1.0 - scipy_cosine_distance(v0[i], v1[i]))
        assert l2[i] == pytest.approx(euclidean(v0[i], v1[i]))
    assert isinstance(cosine_similarity(v0[0], v1[0]), float)
    assert cosine_similarity(v0[2].tolist(), v1[2].tolist()) == pytest.approx(1.0 - scipy_cosine_distance(v0[2], v1[2]))


def test_cosine_of_a_zero_vector_is_nan_and_shapes_must_match():
    assert math.isnan(cosine_similarity([0.0, 0.0], [1.0, 2.0]))
    with pytest.raises(ValueError, match="shape"):
        l2_distance([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        cosine_similarity([np.nan, 1.0], [1.0, 1.0])


def test_coefficient_ratio_hand_worked_and_signed():
    assert coefficient_ratio([0.1, 0.3], [2.0, 2.0]) == pytest.approx(0.2 / 2.0)
    assert coefficient_ratio(0.5, 1.0) == pytest.approx(0.5)
    # Signs are kept: a coefficient that flipped sign gives a negative ratio.
    assert coefficient_ratio([-1.0], [2.0]) == pytest.approx(-0.5)
    assert coefficient_ratio([-1.0, -3.0], [-4.0]) == pytest.approx(0.5)
    assert math.isnan(coefficient_ratio([1.0], [1.0, -1.0]))  # mean before is 0
    with pytest.raises(ValueError, match="empty"):
        coefficient_ratio([], [1.0])


# ---------------------------------------------------------------- answers and probes


def test_multiple_choice_accuracy_hand_worked():
    option_nll = [
        [0.5, 1.0, 2.0],  # argmin 0, correct 0 -> right
        [1.0, 0.2, 0.3],  # argmin 1, correct 2 -> wrong
        [3.0, 2.0, 1.0],  # argmin 2, correct 2 -> right
        [1.0, 1.0, 2.0],  # tie -> lowest index 0, correct 1 -> wrong
    ]
    assert multiple_choice_accuracy(option_nll, [0, 2, 2, 1]) == pytest.approx(0.5)
    assert multiple_choice_accuracy(np.array(option_nll), np.array([0, 1, 2, 0])) == pytest.approx(1.0)


def test_multiple_choice_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        multiple_choice_accuracy([[0.1, 0.2]], [2])
    with pytest.raises(ValueError, match="one index per question"):
        multiple_choice_accuracy([[0.1, 0.2], [0.3, 0.1]], [0])
    with pytest.raises(ValueError, match="shape"):
        multiple_choice_accuracy([0.1, 0.2], [0, 1])


def test_probe_separable_data_is_perfect_and_uninformative_data_predicts_the_majority():
    train_x = [[-2.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]
    train_y = [0, 0, 1, 1, 1]
    assert probe_accuracy(train_x, train_y, [[-1.5, 0.0], [2.5, 0.0]], [0, 1]) == 1.0
    # Constant features: standardised to 0, the probe can only use its intercept ->
    # always the train majority class (1); test labels [1, 0, 0, 0] -> 1/4.
    const = [[5.0]] * 5
    assert probe_accuracy(const, train_y, [[5.0]] * 4, [1, 0, 0, 0]) == pytest.approx(0.25)


def test_probe_standardises_with_the_train_statistics():
    # Fit on train (x around 0), test shifted far right: with the TRAIN mean/std every
    # test point lands on the class-1 side -> accuracy 2/4. Had the scaler been fitted
    # on the test set, the test points would be re-centred and all classified right.
    train_x = [[-2.0], [-1.0], [1.0], [2.0]]
    assert probe_accuracy(train_x, [0, 0, 1, 1], [[9.0], [10.0], [11.0], [12.0]], [0, 0, 1, 1]) == 0.5


def test_probe_accepts_string_labels_and_rejects_a_single_class():
    assert probe_accuracy([[-1.0], [1.0]], ["no", "yes"], [[-3.0], [3.0]], ["no", "yes"]) == 1.0
    with pytest.raises(ValueError, match="single class"):
        probe_accuracy([[1.0], [2.0]], [1, 1], [[1.0]], [1])
    with pytest.raises(ValueError, match="features"):
        probe_accuracy([[1.0], [2.0]], [0, 1], [[1.0, 2.0]], [1])


def test_layer_probe_accuracies_one_per_layer():
    y = [0, 0, 1, 1, 1]
    informative = [[-2.0], [-1.0], [1.0], [2.0], [3.0]]
    constant = [[0.0]] * 5
    test_informative = [[-1.0], [1.0], [2.0], [-2.0]]
    test_constant = [[0.0]] * 4
    out = layer_probe_accuracies([constant, informative], y, [test_constant, test_informative], [0, 1, 1, 0])
    assert out == pytest.approx([0.5, 1.0])  # constant layer -> majority class 1 -> 2/4
    with pytest.raises(ValueError, match="layers"):
        layer_probe_accuracies([constant], y, [test_constant, test_constant], [0, 1, 1, 0])


# ---------------------------------------------------------------- robustness


def test_recovery_ratio_hand_worked_both_directions():
    # Forget accuracy: original 0.9, unlearned 0.1, attacked 0.5 -> half the gap back.
    assert recovery_ratio(0.5, 0.1, 0.9) == pytest.approx(0.5)
    # A metric that unlearning raised (e.g. forget loss 2 -> 6); attack brings it to 3.
    assert recovery_ratio(3.0, 6.0, 2.0) == pytest.approx(0.75)
    assert recovery_ratio(0.1, 0.1, 0.9) == 0.0
    assert recovery_ratio(0.9, 0.1, 0.9) == pytest.approx(1.0)
    assert recovery_ratio(0.0, 0.1, 0.9) == pytest.approx(-0.125)
    assert isinstance(recovery_ratio(0.5, 0.1, 0.9), float)


def test_recovery_ratio_broadcasts_and_is_nan_without_a_gap():
    out = recovery_ratio([0.1, 0.3, 0.5, np.nan], 0.1, 0.9)
    assert out[:3] == pytest.approx([0.0, 0.25, 0.5]) and math.isnan(out[3])
    assert math.isnan(recovery_ratio(0.5, 0.4, 0.4))
    assert math.isnan(recovery_ratio(0.5, 0.4, 0.4 + 1e-13))
    with pytest.raises(ValueError, match="finite"):
        recovery_ratio(np.inf, 0.1, 0.9)


def test_recovery_auc_constant_curves_and_hand_worked():
    assert recovery_auc([0, 1, 2, 5, 10], [1, 1, 1, 1, 1]) == pytest.approx(1.0)
    assert recovery_auc([0, 3, 50], [0.4, 0.4, 0.4]) == pytest.approx(0.4)
    # steps 0, 1, 3 ; RR 0, 0.5, 1 -> trapezoids 0.25 + 1.5 = 1.75 over last step 3.
    assert recovery_auc([0, 1, 3], [0.0, 0.5, 1.0]) == pytest.approx(1.75 / 3)


def test_recovery_auc_matches_numpy_trapezoid_on_normalised_steps():
    steps = np.array([0, 1, 2, 5, 10, 25, 50], dtype=float)
    ratios = np.array([0.0, 0.1, 0.3, 0.35, 0.6, 0.8, 0.82])
    assert recovery_auc(steps, ratios) == pytest.approx(float(_trapezoid(ratios, steps / steps[-1])))


def test_recovery_auc_drops_nan_points_with_their_steps():
    # Middle point missing: the trapezoid bridges 1 -> 3: (0 + 1)/2 * 3 / 3 = 0.5.
    assert recovery_auc([0, 1, 3], [0.0, np.nan, 1.0]) == pytest.approx(0.5)
    assert math.isnan(recovery_auc([0, 1, 2], [np.nan, np.nan, 0.3]))


def test_recovery_auc_rejects_bad_steps():
    with pytest.raises(ValueError, match="start at 0"):
        recovery_auc([1, 2, 3], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="strictly increase"):
        recovery_auc([0, 2, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="one ratio per step"):
        recovery_auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="at least two"):
        recovery_auc([0], [0.1])


def test_quantized_agreement_is_weighted_by_size():
    a = [np.array([1, 2, 3, 4]), np.array([[0, 0], [0, 0]])]
    b = [np.array([1, 2, 0, 0]), np.array([[0, 0], [0, 1]])]
    # 2 of 4 equal + 3 of 4 equal = 5/8
    assert quantized_agreement(a, b) == pytest.approx(5 / 8)
    c = [np.array([1, 0]), np.arange(8).reshape(2, 4)]
    d = [np.array([0, 0]), np.arange(8).reshape(2, 4)]
    # 1 of 2 + 8 of 8 = 9/10 (the unweighted mean of tensors would be 0.75)
    assert quantized_agreement(c, d) == pytest.approx(0.9)
    assert quantized_agreement(np.array([1, 2, 3]), np.array([1, 2, 4])) == pytest.approx(2 / 3)
    assert quantized_agreement({"x": [1, 2], "y": [3]}, {"y": [0], "x": [1, 2]}) == pytest.approx(2 / 3)


def test_quantized_agreement_rejects_mismatches():
    with pytest.raises(ValueError, match="shape"):
        quantized_agreement(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="different tensors"):
        quantized_agreement({"x": [1]}, {"y": [1]})
    with pytest.raises(ValueError, match="no entries"):
        quantized_agreement(np.zeros(0), np.zeros(0))


def test_registered_with_lens_and_direction():
    from unlearnbench.registry import entries

    metrics = entries("metric")
    lenses = {
        "concept_jaccard": "parametric", "concept_cosine": "parametric", "concept_l2": "parametric",
        "concept_token_retention": "parametric", "concept_coefficient_ratio": "parametric",
        "probe_accuracy": "parametric", "answer_accuracy": "parametric",
        "relearn_recovery_auc": "robustness", "quant_recovery": "robustness", "quant_agreement": "robustness",
    }
    for name, lens in lenses.items():
        assert metrics[name].info["lens"] == lens and metrics[name].info["direction"]
    assert metrics["concept_cosine"].obj is cosine_similarity
    assert metrics["relearn_recovery_auc"].obj is recovery_auc
    assert metrics["quant_agreement"].obj is quantized_agreement
