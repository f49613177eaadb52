"""Regression unlearning metrics (pure), against hand-worked numbers and independent
references (scipy's Wasserstein distance) -- never against our own output."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from unlearnbench.metrics.regression import anamnesis_index, l1, mse, regression_mia, w1_to_retrain

# ------------------------------------------------------------------ L1 / MSE


def test_l1_and_mse_hand_worked():
    pred, y = [1.0, 2.0, 5.0, -1.0], [2.0, 2.0, 1.0, 1.0]
    # errors -1, 0, 4, -2 -> |.| mean 7/4, squares mean (1 + 0 + 16 + 4)/4 = 21/4
    assert l1(pred, y) == pytest.approx(7 / 4)
    assert mse(pred, y) == pytest.approx(21 / 4)


def test_l1_and_mse_accept_column_vectors_and_reject_bad_input():
    assert l1(np.array([[1.0], [3.0]]), [0.0, 0.0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="match one to one"):
        l1([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        mse([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="empty"):
        mse([], [])


# ------------------------------------------------------------------ W1


@pytest.mark.parametrize("n_u, n_v, seed", [(50, 50, 0), (37, 81, 1), (1, 9, 2), (200, 13, 3), (64, 64, 4)])
def test_w1_matches_scipy_on_random_samples(n_u, n_v, seed):
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, 1.0, n_u) * 40 + 150
    v = rng.gamma(2.0, 30.0, n_v)
    assert w1_to_retrain(u, v) == pytest.approx(wasserstein_distance(u, v), rel=1e-10, abs=1e-10)


def test_w1_with_ties_matches_scipy():
    rng = np.random.default_rng(5)
    u = rng.integers(0, 5, 40).astype(float)
    v = rng.integers(2, 8, 23).astype(float)
    assert w1_to_retrain(u, v) == pytest.approx(wasserstein_distance(u, v), rel=1e-12)


def test_w1_hand_worked_and_distributional():
    # equal sizes: mean |sorted u - sorted v| = (|1-2| + |3-6|) / 2 = 2
    assert w1_to_retrain([3.0, 1.0], [6.0, 2.0]) == pytest.approx(2.0)
    # a shift by c moves every quantile by c
    assert w1_to_retrain([0.0, 1.0, 5.0], [2.5, 3.5, 7.5]) == pytest.approx(2.5)
    # the same values in another order: distance 0 (distributions, not rows)
    assert w1_to_retrain([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]) == 0.0


# ------------------------------------------------------------------ MIA


def test_mia_forget_like_members_is_high_and_like_test_is_low():
    rng = np.random.default_rng(0)
    members = rng.normal(1.0, 0.3, 300) ** 2
    nonmembers = rng.normal(3.0, 0.3, 120) ** 2
    like_members = rng.normal(1.0, 0.3, 60) ** 2
    like_test = rng.normal(3.0, 0.3, 60) ** 2
    assert regression_mia(members, nonmembers, like_members) > 0.9
    assert regression_mia(members, nonmembers, like_test) < 0.1
    halfway = np.r_[like_members[:30], like_test[:30]]
    assert regression_mia(members, nonmembers, halfway) == pytest.approx(0.5, abs=0.1)


def test_mia_does_not_depend_on_the_loss_units_and_is_seeded():
    rng = np.random.default_rng(1)
    members, nonmembers, forget = rng.gamma(1.0, 1.0, 200), rng.gamma(3.0, 1.0, 150), rng.gamma(2.0, 1.0, 80)
    base = regression_mia(members, nonmembers, forget, seed=3)
    assert regression_mia(members * 1e4, nonmembers * 1e4, forget * 1e4, seed=3) == pytest.approx(base)
    assert regression_mia(members, nonmembers, forget, seed=3) == base
    assert 0.0 <= base <= 1.0


def test_mia_rejects_non_finite_losses():
    with pytest.raises(ValueError, match="loss_forget"):
        regression_mia([1.0, 2.0], [3.0, 4.0], [float("inf")])


# ------------------------------------------------------------------ AIN


def test_anamnesis_index_arithmetic_and_conventions():
    assert anamnesis_index(10, 5) == pytest.approx(2.0)
    assert anamnesis_index(3, 12) == pytest.approx(0.25)
    # a count of 0 (already within 5%) counts as 1
    assert anamnesis_index(0, 0) == pytest.approx(1.0)
    assert anamnesis_index(0, 4) == pytest.approx(0.25)
    assert anamnesis_index(8, 0) == pytest.approx(8.0)
    # both at the budget + 1 (never relearned within 500 steps): 1
    assert anamnesis_index(501, 501) == pytest.approx(1.0)
    assert anamnesis_index(np.int64(6), 3.0) == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [-1, 2.5, float("nan"), True, "3"])
def test_anamnesis_index_rejects_non_counts(bad):
    with pytest.raises(ValueError, match="steps"):
        anamnesis_index(bad, 3)
