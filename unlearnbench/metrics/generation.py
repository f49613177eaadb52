"""Metrics of class-conditional generators, read through a judge classifier.

Pure functions of arrays (judge probabilities, judge features); the generation suite
(:mod:`unlearnbench.suites.generation`) applies them per class.

- :func:`unlearning_accuracy` (UA, SalUn's generation metric; Fan et al., ICLR 2024): the
  share of images generated for the forgotten class that the judge does not classify as it.
- :func:`judge_accuracy`: the share of images generated for class ``c`` that the judge
  classifies as ``c`` (on the kept classes: they should stay recognisable).
- :func:`frechet_distance`: the Fréchet distance between Gaussians fitted to two feature
  sets (Heusel et al., 2017). On the judge's penultimate features it is FID-*style*, not
  Inception-FID: the numbers are comparable within a task only.
- :func:`precision_recall`: improved precision and recall of generated features
  (Kynkäänniemi et al., NeurIPS 2019), k-NN manifolds.
"""

from __future__ import annotations

import numpy as np


def unlearning_accuracy(probs, forget_class: int) -> float:
    """UA = 100 x (1 - mean_i [argmax_k p_ik == forget_class]) over the images generated for
    the forgotten class; in [0, 100], higher means more forgotten (the oracle's is the
    yardstick). ``probs``: ``[N, K]`` judge probabilities."""
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2 or not len(probs):
        return float("nan")
    return float(100.0 * np.mean(probs.argmax(1) != int(forget_class)))


def judge_accuracy(probs, labels) -> float:
    """100 x mean_i [argmax_k p_ik == label_i]: the share of generated images the judge
    recognises as the class they were generated for; in [0, 100], higher is better."""
    probs, labels = np.asarray(probs, dtype=float), np.asarray(labels, dtype=int)
    if probs.ndim != 2 or not len(probs):
        return float("nan")
    return float(100.0 * np.mean(probs.argmax(1) == labels))


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigh)."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def gaussian_frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """``||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))`` for covariance matrices
    ``S1``, ``S2``. The trace of the square root is computed as ``tr((S1^(1/2) S2
    S1^(1/2))^(1/2))`` (the same eigenvalues, a symmetric matrix: stable where S1 S2 is not
    symmetric). ``>= 0``, 0 for equal Gaussians; lower is closer."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, dtype=float)), np.atleast_1d(np.asarray(mu2, dtype=float))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, dtype=float)), np.atleast_2d(np.asarray(sigma2, dtype=float))
    root1 = _psd_sqrt(s1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)).sum()
    return float(max(0.0, np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * cross))


def frechet_distance(features_a, features_b) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets ``[N, D]`` / ``[M, D]``
    (means and unbiased covariances, as FID does). NaN when either set has fewer than two rows."""
    a, b = np.asarray(features_a, dtype=float), np.asarray(features_b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0, None))


def _radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance of every row to its k-th nearest other row."""
    d = _pairwise(x, x)
    return np.sort(d, axis=1)[:, min(k, len(x) - 1)]  # column 0 is the row itself


def precision_recall(real, fake, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019): precision = share of fake
    rows inside the real manifold (within the k-NN radius of some real row), recall = share
    of real rows inside the fake manifold. Both in [0, 1], higher is better; NaN when either
    set has at most ``k`` rows."""
    real, fake = np.asarray(real, dtype=float), np.asarray(fake, dtype=float)
    if len(real) <= k or len(fake) <= k:
        return float("nan"), float("nan")
    r_real, r_fake = _radii(real, k), _radii(fake, k)
    d = _pairwise(fake, real)  # [fake, real]
    precision = float(np.mean((d <= r_real[None, :]).any(1)))
    recall = float(np.mean((d.T <= r_fake[None, :]).any(1)))
    return precision, recall
