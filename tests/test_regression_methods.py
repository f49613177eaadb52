"""Regression unlearning methods and the relearning run behind the anamnesis index, on a tiny
problem: 120 rows of scikit-learn's diabetes data, a 16-16 MLP fitted for a few epochs."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from unlearnbench import registry
from unlearnbench.method import RegressionData, RunContext

pytestmark = pytest.mark.usefixtures("one_thread")

REGRESSION_METHODS = ["original", "retrain", "ga", "ft", "gaussian", "blindspot"]


@pytest.fixture(scope="module")
def problem():
    from sklearn.datasets import load_diabetes

    from unlearnbench.tabular.regression import RegressionTrainConfig, fit_regressor

    data = load_diabetes(scaled=False)
    rows = np.random.default_rng(0).choice(len(data.target), size=120, replace=False)
    x = data.data[rows]
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    y = data.target[rows].astype(np.float32)
    forget = np.zeros(len(y), dtype=bool)
    forget[:12] = True
    config = {"arch": "mlp", "in_features": x.shape[1], "hidden": [16, 16]}
    train = RegressionTrainConfig(epochs=20, batch_size=16, lr=3e-3)
    target = fit_regressor(config, x, y, train, 0, quiet=True)
    data = RegressionData(x_forget=x[forget], y_forget=y[forget], x_retain=x[~forget], y_retain=y[~forget],
                          model_config=config, train_config=train)
    return target, data


def _ctx(log=None):
    return RunContext(seed=0, device=torch.device("cpu"), quiet=True, log=log or (lambda message: None))


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _unlearn(name, target, data, ctx=None, **overrides):
    method = registry.method(name, "regression").obj()
    params = method.params_class("regression")(**overrides)
    ctx = ctx or _ctx()
    return method.unlearn(copy.deepcopy(target), data, params, ctx), ctx


def test_regression_methods_are_registered_with_their_params():
    methods = registry.entries("method")
    fitting = [name for name in methods if "regression" in registry.method_kinds(name)]
    assert set(REGRESSION_METHODS) <= set(fitting)
    for name in ("ga", "ft", "gaussian", "blindspot"):
        params = registry.method(name, "regression").obj.params_class("regression")()
        assert params.lr > 0 and params.epochs >= 1
    assert registry.method("blindspot", "regression").obj.params_class("regression")().at_beta == 50.0


def test_original_keeps_the_weights(problem):
    target, data = problem
    model, _ = _unlearn("original", target, data)
    assert _same(_state(model), _state(target))


@pytest.mark.parametrize("name", ["retrain", "ft", "ga", "gaussian", "blindspot"])
def test_every_method_changes_the_weights(problem, name):
    from unlearnbench.tabular.regression import predict

    target, data = problem
    before = _state(target)
    model, _ = _unlearn(name, target, data)
    after = _state(model)
    assert _same(before, _state(target))  # the target itself is untouched (the method had a copy)
    weights = [k for k in after if k not in ("y_mean", "y_std")]
    assert any(not torch.equal(before[k], after[k]) for k in weights)
    assert np.isfinite(predict(model, data.x_forget)).all()


def test_ga_is_bounded_and_reports_the_stop(problem):
    from unlearnbench.tabular.regression import predict

    target, data = problem
    logs = []
    model, ctx = _unlearn("ga", target, data, ctx=_ctx(logs.append), lr=10.0, epochs=50)
    stopped = ctx.info["ga_stopped"]
    assert stopped["step"] < 50 and "exceeded" in stopped["reason"]
    assert any("stopped early" in line for line in logs)
    assert np.isfinite(predict(model, data.x_retain)).all()


def test_ga_with_a_moderate_run_does_not_stop(problem):
    target, data = problem
    _, ctx = _unlearn("ga", target, data, lr=1e-4, epochs=1)
    assert "ga_stopped" not in ctx.info


def test_gaussian_targets_have_the_training_mean_and_sd(problem):
    from unlearnbench.methods.tabular.gaussian import gaussian_targets

    _, data = problem
    y = np.concatenate([data.y_retain, data.y_forget])
    draws, mean, sd = gaussian_targets(y, 20000, seed=7)
    assert mean == pytest.approx(float(np.mean(y))) and sd == pytest.approx(float(np.std(y)))
    assert draws.dtype == np.float32 and draws.shape == (20000,)
    assert abs(draws.mean() - y.mean()) < 0.05 * y.std()
    assert draws.std() == pytest.approx(y.std(), rel=0.05)
    assert np.array_equal(gaussian_targets(y, 50, seed=7)[0], gaussian_targets(y, 50, seed=7)[0])


def test_gaussian_reports_the_training_target_statistics(problem):
    target, data = problem
    _, ctx = _unlearn("gaussian", target, data)
    y = np.concatenate([data.y_retain, data.y_forget]).astype(np.float64)
    assert ctx.info["gaussian"]["mean"] == pytest.approx(y.mean(), abs=1e-5)
    assert ctx.info["gaussian"]["sd"] == pytest.approx(y.std(), abs=1e-5)


def test_blindspot_attention_map_hand_worked_and_hooks_removed(problem):
    from unlearnbench.methods.tabular.blindspot import attention_distance, attention_map, hidden_layers

    a = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    # squares (9, 16) / sqrt(81 + 256); (0, 4) / 4
    expected = torch.tensor([[9 / 337 ** 0.5, 16 / 337 ** 0.5], [0.0, 1.0]])
    assert torch.allclose(attention_map(a), expected)
    assert float(attention_distance(a, a)) == 0.0
    target, data = problem
    assert len(hidden_layers(target)) == 2  # the two ReLUs of the 16-16 MLP
    model, _ = _unlearn("blindspot", target, data)
    assert all(not m._forward_hooks for m in model.modules())


# ------------------------------------------------------------------ relearning (AIN)


def test_relearn_steps_is_zero_when_already_within_and_leaves_the_model_alone(problem):
    from unlearnbench.tabular.anamnesis import forget_loss, relearn_steps

    target, data = problem
    before = _state(target)
    own = forget_loss(target, data.x_forget, data.y_forget)
    assert relearn_steps(target, data.x_forget, data.y_forget, own, lr=1e-3, batch_size=4, max_steps=20, seed=0) == 0
    assert relearn_steps(target, data.x_forget, data.y_forget, own / 1.04, lr=1e-3, batch_size=4, max_steps=20,
                         seed=0) == 0  # 4% above the original: within 5%
    assert _same(before, _state(target))


def test_relearn_steps_counts_on_a_copy_and_reports_the_budget_plus_one(problem):
    from unlearnbench.tabular.anamnesis import forget_loss, relearn_steps

    target, data = problem
    damaged, _ = _unlearn("ga", target, data, lr=3e-2, epochs=3)
    before = _state(damaged)
    was_training = damaged.training
    goal = forget_loss(target, data.x_forget, data.y_forget)
    assert forget_loss(damaged, data.x_forget, data.y_forget) > 1.05 * goal
    steps = relearn_steps(damaged, data.x_forget, data.y_forget, goal, lr=3e-3, batch_size=4, max_steps=300, seed=0)
    assert 1 <= steps <= 300
    assert steps == relearn_steps(damaged, data.x_forget, data.y_forget, goal, lr=3e-3, batch_size=4,
                                  max_steps=300, seed=0)
    assert _same(before, _state(damaged)) and damaged.training == was_training
    # a goal of zero loss is out of reach in 3 steps: budget + 1
    assert relearn_steps(damaged, data.x_forget, data.y_forget, 0.0, lr=1e-3, batch_size=4, max_steps=3, seed=0) == 4
    assert _same(before, _state(damaged))


def test_relearn_steps_rejects_a_bad_goal(problem):
    from unlearnbench.tabular.anamnesis import relearn_steps

    target, data = problem
    with pytest.raises(ValueError, match="original_forget_loss"):
        relearn_steps(target, data.x_forget, data.y_forget, float("nan"), lr=1e-3, batch_size=4, max_steps=3, seed=0)
