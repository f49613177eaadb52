"""Classifier unlearning methods on a tiny digits problem: each runs through the registry and
returns a K-way model; every method but ``original`` changes the weights; SalUn leaves its
unsalient weights bit-identical; BE removes its shadow class; RL never relabels a sample to its
own class; GA lowers forget accuracy (and stops itself before running away)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from unlearnbench import registry
from unlearnbench.vision.classifier import ClassifierTrainConfig, build_classifier, predict_proba, train_classifier
from unlearnbench.errors import UserError
from unlearnbench.method import ClassifierData, RunContext, parse_params

K = 10
METHODS = ["original", "retrain", "ga", "ft", "rl", "l1sparse", "bs", "be", "salun"]
CLASSIFIER_ONLY = ["ft", "l1sparse", "bs", "be", "salun"]


@pytest.fixture(scope="module")
def problem(one_thread):
    """350 training digits (35 to forget), a SmallCNN of width 8 trained for 10 epochs."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = ((digits.images / 16.0 - 0.3) / 0.4).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(0)
    train = rng.permutation(len(y))[:350]
    x_train, y_train = x[train], y[train]
    forget = np.sort(rng.choice(len(train), 35, replace=False))
    keep = np.ones(len(train), dtype=bool)
    keep[forget] = False
    model_config = {"arch": "small_cnn", "num_classes": K, "in_channels": 1, "image_size": 8, "width": 8}
    train_config = ClassifierTrainConfig(epochs=10, batch_size=32, lr=0.05)
    target = train_classifier(build_classifier(model_config, seed=0), x_train, y_train, train_config, 0, quiet=True)
    data = ClassifierData(x_train[forget], y_train[forget], x_train[keep], y_train[keep], K, model_config,
                          train_config, x_train, y_train, forget)
    return target, data


def _run(problem, name, **params):
    target, data = problem
    method = registry.method(name, "classifier").obj()
    parsed = parse_params(method.params_class("classifier"), {k: str(v) for k, v in params.items()})
    ctx = RunContext(seed=1, device=torch.device("cpu"), quiet=True)
    model = method.unlearn(copy.deepcopy(target), data, parsed, ctx)
    return model, ctx


def _accuracy(model, x, y) -> float:
    return float((predict_proba(model, x).argmax(1) == y).mean())


@pytest.mark.parametrize("name", METHODS)
def test_method_runs_returns_k_way_model_and_changes_weights(problem, name):
    target, data = problem
    assert "classifier" in registry.method(name, "classifier").obj.kinds
    model, _ = _run(problem, name)
    assert predict_proba(model, data.x_forget[:5]).shape == (5, K)
    assert model.fc.out_features == K
    before, after = target.state_dict(), model.state_dict()
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if name == "original":
        assert not changed
    else:
        assert changed, f"{name} left every weight as it was"


@pytest.mark.parametrize("name", CLASSIFIER_ONLY)
def test_classifier_only_methods_do_not_apply_to_language_models(name):
    cls = registry.method(name, "classifier").obj
    assert "classifier" in cls.kinds and "language_model" not in cls.kinds
    assert "language_model" not in registry.method_kinds(name)
    with pytest.raises(UserError, match="does not apply to language-model tasks"):
        registry.method(name, "language_model")


def test_salun_leaves_unmasked_weights_bit_identical(problem):
    from unlearnbench.methods.vision.salun import saliency_mask

    target, data = problem
    masks = saliency_mask(copy.deepcopy(target), data.x_forget, data.y_forget, 0.5)
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == round(0.5 * total)
    model, ctx = _run(problem, "salun")  # default weight_decay 5e-4 and momentum 0.9: neither may leak
    assert ctx.info["salun_masked_fraction"] == pytest.approx(0.5, abs=1e-3)
    after = dict(model.named_parameters())
    moved = 0
    for name, before in target.named_parameters():
        mask = masks[name]
        assert torch.equal(before.detach()[~mask], after[name].detach()[~mask]), f"unmasked entries of {name} moved"
        moved += int((before.detach()[mask] != after[name].detach()[mask]).sum())
    assert moved > 0.5 * sum(int(m.sum()) for m in masks.values())
    assert not any(getattr(p, "_backward_hooks", None) for p in model.parameters())
    x = torch.as_tensor(data.x_forget[:4])  # hooks removed: gradients flow to unsalient entries again
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), torch.as_tensor(data.y_forget[:4])).backward()
    assert any(bool((p.grad[~masks[n]] != 0).any()) for n, p in model.named_parameters())


def test_be_removes_the_shadow_class(problem):
    target, data = problem
    model, _ = _run(problem, "be")
    assert isinstance(model.fc, torch.nn.Linear) and model.fc.out_features == K
    assert model(torch.as_tensor(data.x_forget[:3])).shape == (3, K)
    rows = np.arange(len(data.y_forget))  # the forget samples' own class lost probability
    assert predict_proba(model, data.x_forget)[rows, data.y_forget].mean() < predict_proba(target, data.x_forget)[rows, data.y_forget].mean()


def test_rl_never_relabels_a_sample_to_its_own_class(problem):
    from unlearnbench.vision.recipes import random_wrong_labels, relabelled_training_set

    y = np.repeat(np.arange(K), 200)
    wrong = random_wrong_labels(y, K, seed=3)
    assert not np.any(wrong == y)
    counts = np.bincount(wrong[y == 0], minlength=K)  # uniform over the 9 other classes
    assert counts[0] == 0 and counts[1:].min() > 5
    _, data = problem
    x, labels = relabelled_training_set(data, seed=1)  # via x_train / forget_indices
    assert len(x) == len(labels) == len(data.y_train)
    assert not np.any(labels[data.forget_indices] == data.y_train[data.forget_indices])
    keep = np.setdiff1d(np.arange(len(labels)), data.forget_indices)
    assert np.array_equal(labels[keep], data.y_train[keep])
    no_train = copy.copy(data)
    no_train.x_train = no_train.forget_indices = None
    x, labels = relabelled_training_set(no_train, seed=1)  # forget + retain concatenated
    assert len(x) == len(data.y_forget) + len(data.y_retain)
    assert not np.any(labels[: len(data.y_forget)] == data.y_forget)


def test_bs_neighbour_labels_are_never_the_true_label(problem):
    from unlearnbench.methods.vision.bs import neighbour_labels

    target, data = problem
    before = copy.deepcopy(target.state_dict())
    labels = neighbour_labels(target, data.x_forget, data.y_forget, 0.1)
    assert labels.shape == data.y_forget.shape and not np.any(labels == data.y_forget)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_ga_lowers_forget_accuracy(problem):
    target, data = problem
    model, _ = _run(problem, "ga", lr=0.05)
    assert _accuracy(model, data.x_forget, data.y_forget) < _accuracy(target, data.x_forget, data.y_forget)


def test_ga_stops_itself_instead_of_running_away(problem):
    _, data = problem
    model, ctx = _run(problem, "ga", lr=0.5, epochs=50)
    stop = ctx.info["ga_stopped"]
    assert stop["step"] < 50 * 2 and ("accuracy reached 0" in stop["reason"] or "max_loss" in stop["reason"])
    assert np.isfinite(predict_proba(model, data.x_forget)).all()
