"""The concepts of a classifier's classes: a post-hoc concept bottleneck on its penultimate
features, read with integrated gradients (what ``concept-poisoning`` locates before it poisons).

- :func:`penultimate_features`: what the model's final linear layer ``fc`` receives.
- :func:`concept_bank`: the concepts, found without annotations as the non-negative parts of
  those (post-ReLU) features, by NMF (the unsupervised concept discovery of ICE / CRAFT,
  Zhang et al., 2021; Fel et al., 2023): ``features ~ codes @ bank``.
- :func:`concept_scores`: the post-hoc concept bottleneck's projection (Yuksekgonul et al.,
  ICLR 2023): ``s_k(x) = <h(x), v_k> / ||v_k||^2`` for each concept vector ``v_k``.
- :class:`Bottleneck`: the bottleneck's interpretable predictor, a multinomial logistic
  regression from concept scores to classes.
- :func:`integrated_gradients` (Sundararajan et al., 2017): ``IG_i(x) = (x_i - x'_i) *
  integral_0^1 df(x' + a (x - x'))/dx_i da``, the integral by the midpoint rule.
- :func:`class_importance` (each class's mean attribution of its own probability to each
  concept, over its own rows) and :func:`nearest_class` (the class whose rows lie closest to a
  class's rows in the space of that class's concepts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from unlearnbench.errors import UserError


@torch.no_grad()
def penultimate_features(model, x, *, batch_size: int = 512, device=None) -> np.ndarray:
    """``[N, D]`` float64: the input of ``model.fc`` (the linear head) for each image, in eval mode."""
    head = getattr(model, "fc", None)
    if not isinstance(head, torch.nn.Linear):
        raise UserError("concept-poisoning reads the features a classifier's linear head `fc` receives; this model "
                        "has no such layer.")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    seen: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().double().cpu()))
    was_training = model.training
    model.eval()
    try:
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        for start in range(0, len(xt), batch_size):
            model(xt[start : start + batch_size].to(device))
    finally:
        hook.remove()
        model.train(was_training)
    return torch.cat(seen).numpy()


def concept_bank(features: np.ndarray, n_concepts: int, seed: int) -> np.ndarray:
    """``[K, D]``: ``n_concepts`` concept vectors, the NMF components of the (non-negative) features."""
    from sklearn.decomposition import NMF

    if features.min() < 0:
        raise UserError("concept-poisoning finds concepts as non-negative parts of the penultimate features, but this "
                        "model's are negative in places (its head does not follow a ReLU).")
    if not 1 <= n_concepts <= min(features.shape):
        raise UserError(f"concept-poisoning needs 1 <= n_concepts <= {min(features.shape)} (the feature width); "
                        f"got {n_concepts}.")
    nmf = NMF(n_components=n_concepts, init="nndsvda", max_iter=1000, random_state=seed)
    nmf.fit(features)
    return nmf.components_


def concept_scores(features: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """``[N, K]``: the projection of each feature vector on each concept vector, ``<h, v> / ||v||^2``."""
    norms = (bank**2).sum(axis=1)
    return features @ bank.T / np.where(norms > 0, norms, 1.0)


@dataclass
class Bottleneck:
    """``p(y | s) = softmax(W (s - mean) / scale + b)`` over concept scores ``s``."""

    weight: np.ndarray  # [C, K]
    bias: np.ndarray  # [C]
    mean: np.ndarray  # [K]
    scale: np.ndarray  # [K]

    @classmethod
    def fit(cls, scores: np.ndarray, y: np.ndarray, num_classes: int, seed: int) -> "Bottleneck":
        from sklearn.linear_model import LogisticRegression

        mean, scale = scores.mean(axis=0), scores.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit((scores - mean) / scale, y)
        coef, intercept = clf.coef_, clf.intercept_
        if len(clf.classes_) == 2:  # sklearn keeps one row for two classes (the second's logit): split it
            coef, intercept = np.stack([-coef[0] / 2, coef[0] / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        weight, bias = np.zeros((num_classes, scores.shape[1])), np.full(num_classes, -1e9)
        weight[clf.classes_], bias[clf.classes_] = coef, intercept  # a class absent from y is never predicted
        return cls(weight, bias, mean, scale)

    def probability(self, scores: torch.Tensor) -> torch.Tensor:
        """``[N, C]`` class probabilities (differentiable in ``scores``)."""
        w = torch.as_tensor(self.weight, dtype=scores.dtype)
        b, mean, scale = (torch.as_tensor(a, dtype=scores.dtype) for a in (self.bias, self.mean, self.scale))
        return torch.softmax(((scores - mean) / scale) @ w.T + b, dim=-1)

    def accuracy(self, scores: np.ndarray, y: np.ndarray) -> float:
        probs = self.probability(torch.as_tensor(scores, dtype=torch.float64))
        return float((probs.argmax(-1).numpy() == np.asarray(y)).mean())


def integrated_gradients(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor,
                         steps: int = 32) -> torch.Tensor:
    """Attributions ``[N, K]`` of ``f`` (``[N, K] -> [N]``, one output per row) to each input,
    along the straight path from ``baseline`` to ``x``: ``(x - x') * mean_k grad f(x' + a_k (x - x'))``
    with ``a_k = (k - 1/2) / steps`` (the midpoint rule; exact when the gradient is linear along
    the path). Completeness: the attributions of a row sum to ``f(x) - f(x')`` as ``steps`` grows."""
    if steps < 1:
        raise ValueError(f"integrated gradients needs steps >= 1, got {steps}.")
    x, baseline = x.detach(), baseline.detach().expand_as(x)
    total = torch.zeros_like(x)
    for k in range(steps):
        point = (baseline + (k + 0.5) / steps * (x - baseline)).requires_grad_(True)
        (grad,) = torch.autograd.grad(f(point).sum(), point)
        total += grad
    return (x - baseline) * total / steps


def class_importance(bottleneck: Bottleneck, scores: np.ndarray, y: np.ndarray, num_classes: int,
                     steps: int = 32) -> np.ndarray:
    """``[C, K]``: for each class, the mean over its rows of the integrated gradients of its own
    probability with respect to the concept scores (baseline: no concept present, all zeros).
    A class without rows gets zeros."""
    s = torch.as_tensor(scores, dtype=torch.float64)
    y = np.asarray(y)
    out = np.zeros((num_classes, scores.shape[1]))
    for c in range(num_classes):
        rows = np.nonzero(y == c)[0]
        if len(rows):
            ig = integrated_gradients(lambda t, c=c: bottleneck.probability(t)[:, c], s[rows], torch.zeros(1, s.shape[1],
                                      dtype=s.dtype), steps)
            out[c] = ig.mean(0).numpy()
    return out


def top_concepts(importance: np.ndarray, cls: int, count: int) -> list[int]:
    """The ``count`` concepts with the largest attribution to class ``cls`` (largest first)."""
    return [int(k) for k in np.argsort(-importance[cls], kind="stable")[:count]]


def nearest_class(scores: np.ndarray, y: np.ndarray, cls: int, concepts: list[int]) -> int:
    """The class other than ``cls`` whose rows' mean concept scores, on ``concepts`` (the
    concepts of ``cls``), are closest (Euclidean) to those of ``cls``'s rows."""
    y = np.asarray(y)
    centre = scores[y == cls][:, concepts].mean(axis=0)
    best, best_distance = -1, np.inf
    for c in np.unique(y):
        if c == cls:
            continue
        distance = float(np.linalg.norm(scores[y == c][:, concepts].mean(axis=0) - centre))
        if distance < best_distance:
            best, best_distance = int(c), distance
    if best < 0:
        raise UserError(f"concept-poisoning's targeted labels need a class other than {cls} among the training rows.")
    return best
