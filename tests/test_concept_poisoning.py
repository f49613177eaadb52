"""Concept poisoning: integrated gradients against hand-worked values, the concept bottleneck's
projection, the targeted label on a constructed case, and the method on a small digits problem."""

import copy

import numpy as np
import pytest
import torch

from unlearnbench import registry
from unlearnbench.method import ClassifierData, RunContext, parse_params
from unlearnbench.vision.concepts import (
    Bottleneck, concept_scores, integrated_gradients, nearest_class, top_concepts,
)


def test_integrated_gradients_of_a_linear_model_are_input_minus_baseline_times_weight():
    w = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    x = torch.tensor([[1.0, 2.0, -1.0], [4.0, 0.0, 2.0]], dtype=torch.float64)
    baseline = torch.tensor([[0.5, 1.0, 1.0]], dtype=torch.float64)
    got = integrated_gradients(lambda t: t @ w + 7.0, x, baseline, steps=3)
    torch.testing.assert_close(got, (x - baseline) * w, rtol=0, atol=1e-12)


def test_integrated_gradients_of_a_product_match_the_hand_worked_integral():
    # f = x1 x2 from (1, 0) to (3, 2): the path is (1 + 2a, 2a); IG_1 = 2 * int_0^1 2a da = 2,
    # IG_2 = 2 * int_0^1 (1 + 2a) da = 4; they sum to f(x) - f(x') = 6
    got = integrated_gradients(lambda t: t[:, 0] * t[:, 1], torch.tensor([[3.0, 2.0]], dtype=torch.float64),
                               torch.tensor([[1.0, 0.0]], dtype=torch.float64), steps=1)
    torch.testing.assert_close(got, torch.tensor([[2.0, 4.0]], dtype=torch.float64), rtol=0, atol=1e-12)


def test_integrated_gradients_of_the_bottleneck_are_complete():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 5))
    y = (scores[:, 0] + scores[:, 1] > 0).astype(int) + 2 * (scores[:, 2] > 0.5)
    bottleneck = Bottleneck.fit(scores, y, 4, seed=0)
    s = torch.as_tensor(scores[:8])
    zero = torch.zeros(1, 5, dtype=s.dtype)
    ig = integrated_gradients(lambda t: bottleneck.probability(t)[:, 2], s, zero, steps=256)
    expected = bottleneck.probability(s)[:, 2] - bottleneck.probability(zero)[:, 2]
    torch.testing.assert_close(ig.sum(1), expected, rtol=0, atol=1e-4)


def test_the_bottleneck_predicts_with_sklearns_logistic_regression_probabilities():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    scores = rng.normal(size=(80, 4)) * 3 + 1
    y = rng.integers(0, 3, 80)
    ours = Bottleneck.fit(scores, y, 3, seed=0).probability(torch.as_tensor(scores)).numpy()
    z = (scores - scores.mean(0)) / scores.std(0)
    reference = LogisticRegression(C=1.0, max_iter=2000).fit(z, y).predict_proba(z)
    np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_concept_scores_are_projections_on_the_concept_vectors():
    bank = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    features = np.array([[4.0, 1.0, 3.0]])
    # <h, v1> / |v1|^2 = 8 / 4 = 2; <h, v2> / |v2|^2 = 4 / 2 = 2
    np.testing.assert_allclose(concept_scores(features, bank), [[2.0, 2.0]])


def test_the_targeted_label_is_the_class_nearest_on_the_forget_class_concepts():
    # class 0 (to forget) sits at (1, 1, 0); class 1 at (5, 5, 0); class 2 at (1.5, 1.5, 9):
    # on concepts 0 and 1 class 2 is nearest, on concept 2 class 1 is
    centres = {0: [1, 1, 0], 1: [5, 5, 0], 2: [1.5, 1.5, 9]}
    y = np.repeat([0, 1, 2], 4)
    noise = np.random.default_rng(0).normal(scale=0.05, size=(12, 3))
    scores = np.array([centres[c] for c in y], dtype=float) + noise - noise.reshape(3, 4, 3).mean(1).repeat(4, 0)
    assert nearest_class(scores, y, 0, [0, 1]) == 2
    assert nearest_class(scores, y, 0, [2]) == 1
    assert nearest_class(scores, y, 1, [0, 1, 2]) == 0  # (1,1,0) is 5.66 from (5,5,0); (1.5,1.5,9) is 10.3


def test_top_concepts_are_the_largest_attributions_first():
    importance = np.array([[0.1, 0.7, -0.3, 0.4], [0.0, 0.0, 0.0, 0.0]])
    assert top_concepts(importance, 0, 2) == [1, 3]


# ------------------------------------------------------------------------------ the method

CONFIG = {"arch": "small_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 8}


@pytest.fixture(scope="module")
def digits_class_3():
    from sklearn.datasets import load_digits

    from unlearnbench.vision.classifier import ClassifierTrainConfig, build_classifier, train_classifier

    digits = load_digits()
    rows = np.random.default_rng(0).choice(len(digits.target), 500, replace=False)
    x = ((digits.images[rows] / 16.0 - 0.3) / 0.4).astype(np.float32)[:, None]
    y = digits.target[rows].astype(np.int64)
    forget, keep = np.nonzero(y == 3)[0], np.nonzero(y != 3)[0]
    recipe = ClassifierTrainConfig(epochs=15, batch_size=32, lr=0.05)
    data = ClassifierData(x[forget], y[forget], x[keep], y[keep], 10, CONFIG, recipe, x_train=x, y_train=y,
                          forget_indices=forget, forget_class=3)
    return data, train_classifier(build_classifier(CONFIG, seed=0), x, y, recipe, seed=0, quiet=True)


def _run(name, data, model, **raw):
    method = registry.method(name, "classifier").obj()
    ctx = RunContext(seed=0, device=torch.device("cpu"), quiet=True)
    return method.unlearn(copy.deepcopy(model), data, parse_params(method.params_class("classifier"), raw), ctx), ctx


def test_targeted_poisoning_relabels_the_forget_class_as_its_concept_neighbour(digits_class_3):
    from unlearnbench.vision.classifier import predict_proba

    data, target = digits_class_3
    unlearned, ctx = _run("concept-poisoning", data, target, n_concepts="8", top_concepts="3")
    info = ctx.info["forget_classes"]["3"]
    assert ctx.info["variant"] == "targeted" and len(info["concepts"]) == 3 and info["target"] != 3
    assert ctx.info["bottleneck_accuracy"] > 0.8  # the concepts carry the classes
    predicted = predict_proba(unlearned, data.x_forget).argmax(1)
    assert (predicted == 3).mean() < 0.2 and (predicted == info["target"]).mean() > 0.5
    retained = predict_proba(unlearned, data.x_retain).argmax(1)
    assert (retained == data.y_retain).mean() > 0.9


def test_random_poisoning_is_random_labelling_of_the_forget_rows(digits_class_3):
    data, target = digits_class_3
    poisoned, ctx = _run("concept-poisoning", data, target, variant="random", n_concepts="8")
    relabelled, _ = _run("rl", data, target)
    assert "3" in ctx.info["forget_classes"]  # the concepts are still located and reported
    a, b = poisoned.state_dict(), relabelled.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same labels, the same training as rl
