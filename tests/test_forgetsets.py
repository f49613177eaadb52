"""Forget-set selection: capped-simplex projection, proxies, worst case, size checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.vision import forgetsets
from unlearnbench.errors import UnknownNameError, UserError
from unlearnbench.vision.forgetsets import (
    inner_unlearn, per_example_grad_norms, per_example_losses, project_capped_simplex,
    proxy_gradnorm_indices, proxy_loss_indices, select, worst_case_indices,
)

pytestmark = pytest.mark.usefixtures("one_thread")


class TinyNet(nn.Module):
    def __init__(self, d: int = 8, h: int = 16, k: int = 3):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(d, h), nn.ReLU())
        self.fc = nn.Linear(h, k)

    def forward(self, x):
        return self.fc(self.body(x))


@pytest.fixture(scope="module")
def problem():
    """120 rows [N, 1, 4, 2], 3 classes with 15% label noise, a small net fitted for 150 steps."""
    rng = np.random.default_rng(0)
    n, k = 120, 3
    centers = rng.normal(0, 1.5, size=(k, 8))
    y = rng.integers(0, k, size=n)
    x = (centers[y] + rng.normal(0, 1.0, size=(n, 8))).astype(np.float32)
    noisy = rng.random(n) < 0.15
    y = np.where(noisy, rng.integers(0, k, size=n), y).astype(np.int64)
    torch.manual_seed(0)
    model = TinyNet()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    xt, yt = torch.from_numpy(x).view(n, 1, 4, 2), torch.from_numpy(y)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(model(xt), yt).backward()
        opt.step()
    model.eval()
    return model, x.reshape(n, 1, 4, 2), y


# --- projection -----------------------------------------------------------------------------


def test_projection_hand_worked():
    # clip(v - tau, 0, 1) with tau = 0.25: 1 + 0.65 + 0.35 + 0 = 2
    w = project_capped_simplex(np.array([2.0, 0.9, 0.6, -1.0]), 2)
    np.testing.assert_allclose(w, [1.0, 0.65, 0.35, 0.0], atol=1e-12)
    np.testing.assert_allclose(project_capped_simplex(np.array([0.3, 0.3, 0.3]), 1.5), [0.5, 0.5, 0.5], atol=1e-12)
    np.testing.assert_array_equal(project_capped_simplex(np.array([5.0, -3.0]), 0), [0.0, 0.0])
    np.testing.assert_array_equal(project_capped_simplex(np.array([5.0, -3.0]), 2), [1.0, 1.0])


@pytest.mark.parametrize("seed,n,m", [(0, 12, 3), (1, 12, 7.5), (2, 9, 1)])
def test_projection_matches_scipy(seed, n, m):
    from scipy.optimize import minimize

    v = np.random.default_rng(seed).normal(0.3, 1.2, size=n)
    w = project_capped_simplex(v, m)
    assert abs(w.sum() - m) < 1e-9
    assert w.min() >= 0.0 and w.max() <= 1.0
    ref = minimize(
        lambda u: 0.5 * np.sum((u - v) ** 2), np.full(n, m / n), jac=lambda u: u - v, method="SLSQP",
        bounds=[(0.0, 1.0)] * n, constraints=[{"type": "eq", "fun": lambda u: u.sum() - m, "jac": lambda u: np.ones(n)}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert ref.success, ref.message
    np.testing.assert_allclose(w, ref.x, atol=1e-6)
    # the projection is no farther from v than scipy's optimum
    assert np.sum((w - v) ** 2) <= np.sum((ref.x - v) ** 2) + 1e-9


# --- proxies --------------------------------------------------------------------------------


def test_proxy_loss_picks_lowest_loss_rows(problem):
    model, x, y = problem
    with torch.no_grad():
        by_hand = F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y), reduction="none").numpy()
    np.testing.assert_allclose(per_example_losses(model, x, y, batch_size=32), by_hand, rtol=1e-5, atol=1e-6)
    m = 17
    picked = proxy_loss_indices(model, x, y, m, batch_size=32)
    assert len(picked) == m and np.all(np.diff(picked) > 0)
    assert set(picked.tolist()) == set(np.argsort(by_hand, kind="stable")[:m].tolist())
    assert by_hand[picked].max() <= np.delete(by_hand, picked).min()


def test_proxy_gradnorm_matches_autograd(problem):
    model, x, y = problem
    norms = per_example_grad_norms(model, x, y, batch_size=50)
    for i in (0, 7, 119):
        model.zero_grad()
        F.cross_entropy(model(torch.from_numpy(x[i:i + 1])), torch.from_numpy(y[i:i + 1])).backward()
        by_hand = torch.sqrt(sum(p.grad.double().pow(2).sum() for p in model.parameters())).item()
        assert norms[i] == pytest.approx(by_hand, rel=1e-4)
    model.zero_grad()
    picked = proxy_gradnorm_indices(model, x, y, 10)
    assert norms[picked].max() <= np.delete(norms, picked).min()


# --- worst case -----------------------------------------------------------------------------


def test_worst_case_beats_random_after_unlearning(problem):
    model, x, y = problem
    n, m = len(y), 20
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inner = dict(steps=4, lr=0.01, retain_weight=1.0, retain_batch=64, batch_size=64)
    picked, info = worst_case_indices(
        model, x, y, m, steps=6, inner_steps=inner["steps"], inner_lr=inner["lr"], retain_weight=1.0,
        retain_batch=64, batch_size=64, gamma=0.1, lr=0.2, seed=0, quiet=True,
    )
    assert len(picked) == m and len(np.unique(picked)) == m
    assert picked.min() >= 0 and picked.max() < n and np.all(np.diff(picked) > 0)
    assert info["outer_steps"] == 6 and info["wall_seconds"] > 0
    assert info["backward_examples"] > 0 and info["forward_examples"] > info["backward_examples"] // 2
    assert len(info["objective"]) == 6
    for k, v in model.state_dict().items():  # the original model is left as it was
        assert torch.equal(v, before[k])

    def mean_loss_after_unlearning(rows: np.ndarray) -> float:
        w = np.zeros(n)
        w[rows] = 1.0
        params = inner_unlearn(model, x, y, w, m, seed=123, **inner)
        return float(per_example_losses(model, x, y, params=params, rows=rows).mean())

    worst = mean_loss_after_unlearning(picked)
    randoms = [mean_loss_after_unlearning(forgetsets.random_indices(n, m / n, seed)) for seed in range(3)]
    assert worst < min(randoms), (worst, randoms)


def test_select_dispatch_and_bad_sizes(problem):
    model, x, y = problem
    n = len(y)
    idx, info = select("random", x=x, y=y, size_fraction=0.1, seed=3)
    assert len(idx) == 12 and info["strategy"] == "random"
    np.testing.assert_array_equal(idx, select("random", x=x, y=y, size_fraction=0.1, seed=3)[0])
    idx, _ = select("class", x=x, y=y, size_fraction=None, seed=0, forget_class=1)
    np.testing.assert_array_equal(idx, np.flatnonzero(y == 1))
    idx, info = select("proxy-loss", model=model, x=x, y=y, size_fraction=0.25, seed=0)
    assert len(idx) == 30 and info["forward_examples"] == n
    idx, info = select("worst", model=model, x=x, y=y, size_fraction=0.1, seed=0, quiet=True, steps=1, inner_steps=1)
    assert len(idx) == 12 and info["outer_steps"] == 1

    for bad in (0, 0.0, 1, 1.0, 1.5, -0.2, 0.001, float("nan"), "ten"):
        with pytest.raises(UserError):
            select("random", x=x, y=y, size_fraction=bad, seed=0)
    with pytest.raises(UserError, match="0% forgets nothing"):
        select("proxy-loss", model=model, x=x, y=y, size_fraction=0, seed=0)
    with pytest.raises(UserError):
        select("class", x=x, y=y, size_fraction=None, seed=0, forget_class=7)  # no rows
    with pytest.raises(UserError):
        select("class", x=x, y=np.zeros(n, dtype=np.int64), size_fraction=None, seed=0, forget_class=0)  # 100%
    with pytest.raises(UnknownNameError, match="Did you mean 'worst'"):
        select("worts", x=x, y=y, size_fraction=0.1, seed=0)
    with pytest.raises(UnknownNameError):
        select("worst", model=model, x=x, y=y, size_fraction=0.1, seed=0, stepz=3)


def test_strategies_run_on_the_benchmark_classifier():
    from unlearnbench.vision.classifier import build_classifier, predict_proba

    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, size=40).astype(np.int64)
    model = build_classifier({"arch": "small_cnn", "num_classes": 4, "in_channels": 1, "image_size": 8, "width": 8}, seed=0)
    proba = predict_proba(model, x)
    np.testing.assert_allclose(per_example_losses(model, x, y), -np.log(proba[np.arange(40), y]), rtol=1e-4, atol=1e-5)
    for strategy in ("proxy-loss", "proxy-gradnorm", "worst"):
        extra = {"steps": 2, "inner_steps": 1} if strategy == "worst" else {}
        idx, info = select(strategy, model=model, x=x, y=y, size_fraction=0.2, seed=0, quiet=True, **extra)
        assert len(np.unique(idx)) == 8 and idx.max() < 40 and info["wall_seconds"] >= 0
