"""Metrics for unlearning in classifiers (SalUn-style and the NeurIPS 2023 challenge), as pure functions.

Every function takes numbers computed elsewhere -- a probability matrix
``probs`` of shape ``(N, K)`` (one row per example, softmax outputs, rows sum
to 1), integer labels of shape ``(N,)``, per-model scores -- and returns an
array or a float. Nothing here touches a model or torch.

Two tiers
---------
1. **SalUn tier** (Fan et al., 2024; Jia et al., 2023): unlearning accuracy
   ``UA = 1 - acc(forget)``, retain accuracy ``RA = acc(retain)``, test
   accuracy ``TA = acc(test)`` (class-wise forgetting: ``TA`` on the test set
   without the forgotten class, plus the accuracy on the test examples of the
   forgotten class, registered as ``ta_forget_class``), MIA-Efficacy
   (:func:`mia_efficacy`) and Avg. Gap (:func:`avg_gap`), the mean distance
   of those four numbers to the retrained model's.
2. **Strong privacy tier** (U-LiRA, Hayes et al., 2024; the NeurIPS 2023
   machine unlearning challenge, Triantafillou et al., 2024): per forget
   example, the logit-scaled confidence (:func:`logit_confidence`) under N
   unlearned and N retrained models; an (epsilon, delta) estimate from the best
   decision rule telling the two apart (:func:`epsilon_from_scores`); the
   epsilons bucketed into a forgetting score ``F`` (:func:`forgetting_score`);
   final score ``F x RA_u/RA_r x TA_u/TA_r`` (:func:`challenge_final_score`).

Units: accuracies, UA and MIA-Efficacy are fractions in [0, 1] here; the
suite reports them (and passes them to :func:`avg_gap`) in percent.

References
----------
- SalUn: Fan et al., 2024, "SalUn: Empowering Machine Unlearning via Gradient-based
  Weight Saliency in Both Image Classification and Generation" (ICLR); reference
  code github.com/OPTML-Group/Unlearn-Saliency, ``evaluation/SVC_MIA.py``, itself
  from Jia et al., 2023, "Model Sparsity Can Simplify Machine Unlearning" (NeurIPS;
  github.com/OPTML-Group/Unlearn-Sparse).
- MIA features (correctness, confidence, entropy, modified entropy): Song & Mittal,
  2021, "Systematic Evaluation of Privacy Risks of Machine Learning Models" (USENIX
  Security), Eq. (4) for the modified entropy.
- LiRA logit scaling: Carlini et al., 2022, "Membership Inference Attacks From
  First Principles" (IEEE S&P).
- U-LiRA: Hayes et al., 2024, "Inexact Unlearning Needs More Careful Evaluations
  to Avoid a False Sense of Privacy".
- Challenge metric: Triantafillou et al., 2024, "Are we making progress in
  unlearning? Findings from the first NeurIPS unlearning competition"
  (arXiv:2406.09073), and its evaluation code github.com/google-deepmind/
  unlearning_evaluation (``metric.py``: ``DELTA = 1e-5``, ``EPSILON_CAP = 50``,
  buckets of width 0.5 worth 1, 1/2, 1/4, ... up to ``ceil(log(N - 1))``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import logsumexp

from unlearnbench.metrics.stats import as_float64

__all__ = [
    "DELTA",
    "EPSILON_CAP",
    "BUCKET_WIDTH",
    "PEAKY_RATIO",
    "LOG_FLOOR",
    "MIA_FEATURES",
    "AVG_GAP_KEYS",
    "accuracy",
    "unlearning_accuracy",
    "confidence",
    "correctness",
    "entropy",
    "modified_entropy",
    "probability_vector",
    "mia_efficacy",
    "avg_gap",
    "logit_confidence",
    "epsilon_from_scores",
    "per_example_epsilons",
    "challenge_max_epsilon",
    "forgetting_score",
    "challenge_final_score",
]

#: delta of the (epsilon, delta) estimate; the challenge's ``DELTA``.
DELTA = 1e-5
#: Largest epsilon reported; perfect separation (FPR = FNR = 0) gives this. The challenge's ``EPSILON_CAP``.
EPSILON_CAP = 50.0
#: Width of one epsilon bucket in :func:`forgetting_score` (the challenge's ``bucket_size``).
BUCKET_WIDTH = 0.5
#: Spread ratio below which one score distribution counts as "peaky" (the challenge's 1% shortcut).
PEAKY_RATIO = 0.01
#: Logs of probabilities are taken of ``max(x, LOG_FLOOR)`` (Song & Mittal's ``small_value``).
LOG_FLOOR = 1e-30
#: The keys :func:`avg_gap` averages over by default (SalUn's Avg. Gap).
AVG_GAP_KEYS = ("ua", "ra", "ta", "mia_efficacy")

# Tolerance on the row sums of a probability matrix (float16 / float32 softmax outputs).
_ROW_SUM_ATOL = 1e-2
# The challenge adds this inside its logs of probabilities (compute_logit_scaled_confidence).
_CHALLENGE_LOG_EPS = 1e-45


# --------------------------------------------------------------------------
# Validation helpers (errors name the argument and the offending index)
# --------------------------------------------------------------------------


def _where(name: str, idx: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(str(int(i)) for i in idx)}]"


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        i = _first(bad)
        raise ValueError(f"{_where(name, i)} is {float(arr[i])!r}: every value must be a finite number.")


def _scores(values: ArrayLike, name: str, ndim: int = 1) -> np.ndarray:
    arr = as_float64(values, name)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty.")
    _check_finite(arr, name)
    return arr


def _probs(values: ArrayLike, name: str) -> np.ndarray:
    arr = as_float64(values, name)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D probability matrix of shape (examples, classes), got shape {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no examples (shape {arr.shape}).")
    if arr.shape[1] < 2:
        raise ValueError(f"{name} has shape {arr.shape}: a classifier needs at least 2 classes.")
    _check_finite(arr, name)
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        i = _first(bad)
        raise ValueError(
            f"{_where(name, i)} is {float(arr[i])!r}: probabilities lie in [0, 1]. "
            "Pass softmax(logits), not the logits."
        )
    sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > _ROW_SUM_ATOL
    if off.any():
        i = int(np.argmax(off))
        raise ValueError(
            f"{name}[{i}] sums to {float(sums[i])!r}: each row must be a probability distribution "
            "(softmax over the classes)."
        )
    return arr


def _labels(values: ArrayLike, name: str, n: int, n_classes: int | None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional (one class index per example), got shape {arr.shape}.")
    if arr.size != n:
        raise ValueError(f"{name} has {arr.size} labels but there are {n} examples; they must match one to one.")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        as_float = as_float64(arr, name)
        _check_finite(as_float, name)
        if (as_float != np.round(as_float)).any():
            i = _first(as_float != np.round(as_float))
            raise ValueError(f"{_where(name, i)} is {float(as_float[i])!r}: labels must be integer class indices.")
        arr = as_float.astype(np.int64)
    arr = arr.astype(np.int64)
    if arr.size and (arr < 0).any():
        i = _first(arr < 0)
        raise ValueError(f"{_where(name, i)} is {int(arr[i])}: class indices cannot be negative.")
    if n_classes is not None and arr.size and (arr >= n_classes).any():
        i = _first(arr >= n_classes)
        raise ValueError(
            f"{_where(name, i)} is {int(arr[i])} but the probability matrix has only {n_classes} classes."
        )
    return arr


def _probs_and_labels(probs: ArrayLike, labels: ArrayLike, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    p = _probs(probs, f"{prefix}probs")
    y = _labels(labels, f"{prefix}labels", p.shape[0], p.shape[1])
    return p, y


def _safe_log(x: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(x, LOG_FLOOR))


# --------------------------------------------------------------------------
# Accuracies (UA, RA, TA)
# --------------------------------------------------------------------------


def accuracy(probs_or_preds: ArrayLike, labels: ArrayLike) -> float:
    """Top-1 accuracy: ``acc = (1/N) sum_i [pred_i == y_i]``.

    ``probs_or_preds`` is either a 2-D matrix ``(N, K)`` of probabilities (or
    logits: only the argmax is used; ties go to the lowest class index, like
    ``numpy.argmax`` / ``torch.argmax``) or a 1-D array of ``N`` predicted
    class indices.

    Range: [0, 1] (a fraction, not percent). Direction: RA and TA higher is
    better; on the forget set see :func:`unlearning_accuracy`.

    Used as RA (retain accuracy), TA (test accuracy) and, in class-wise
    forgetting, the accuracy on the test examples of the forgotten class.
    Reference: SalUn (Fan et al., 2024), Sec. 5 "Evaluation metrics".
    """
    arr = as_float64(probs_or_preds, "probs_or_preds")
    if arr.ndim == 2:
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"probs_or_preds has shape {arr.shape}: accuracy needs at least one example and class.")
        bad = np.isnan(arr)
        if bad.any():
            i = _first(bad)
            raise ValueError(f"{_where('probs_or_preds', i)} is nan: cannot take the argmax.")
        preds = np.argmax(arr, axis=1)
        y = _labels(labels, "labels", arr.shape[0], arr.shape[1])
    elif arr.ndim == 1:
        if arr.size == 0:
            raise ValueError("probs_or_preds is empty: accuracy needs at least one example.")
        _check_finite(arr, "probs_or_preds")
        if (arr != np.round(arr)).any():
            i = _first(arr != np.round(arr))
            raise ValueError(
                f"{_where('probs_or_preds', i)} is {float(arr[i])!r}: a 1-D input holds predicted class "
                "indices; pass the (N, K) probability matrix to take the argmax."
            )
        preds = arr.astype(np.int64)
        y = _labels(labels, "labels", arr.size, None)
    else:
        raise ValueError(
            f"probs_or_preds must be (N, K) probabilities or (N,) predicted classes, got shape {arr.shape}."
        )
    return float(np.mean(preds == y))


def unlearning_accuracy(forget_probs: ArrayLike, forget_labels: ArrayLike) -> float:
    """Unlearning accuracy ``UA = 1 - acc(forget set)``.

    Inputs as :func:`accuracy` (probabilities / logits or predicted classes).

    Range: [0, 1]. Direction: closest to the retrained model's UA (higher =
    the model gets more of the forget set wrong; the retrained model's UA is
    roughly its test error for random forgetting and near 1 for class-wise
    forgetting).

    Reference: SalUn (Fan et al., 2024), "UA"; Jia et al. (2023).
    """
    return 1.0 - accuracy(forget_probs, forget_labels)


# --------------------------------------------------------------------------
# MIA features (Song & Mittal, 2021; SalUn's SVC_MIA)
# --------------------------------------------------------------------------


def confidence(probs: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Confidence feature ``c_i = p_i[y_i]``, the probability of the true class.

    Range: [0, 1] per example. Members (training data) tend to have higher
    confidence. SalUn's default MIA-Efficacy feature.
    Reference: Song & Mittal (2021); SalUn ``SVC_MIA`` ("confidence").
    """
    p, y = _probs_and_labels(probs, labels)
    return p[np.arange(p.shape[0]), y]


def correctness(probs: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Correctness feature ``1[argmax_k p_i[k] == y_i]`` as floats 0.0 / 1.0.

    Ties go to the lowest class index (``numpy.argmax``, as ``torch.argmax``).
    Range: {0, 1}. Reference: Song & Mittal (2021); SalUn ``SVC_MIA`` ("correctness").
    """
    p, y = _probs_and_labels(probs, labels)
    return (np.argmax(p, axis=1) == y).astype(np.float64)


def entropy(probs: ArrayLike, labels: ArrayLike | None = None) -> np.ndarray:
    """Prediction entropy ``H_i = -sum_k p_ik log p_ik`` (natural log, ``0 log 0 = 0``).

    ``labels`` is accepted (and validated when given) so that every feature
    has the same signature; the entropy does not use it. Logs are of
    ``max(p, 1e-30)`` as in the reference code.

    Range: [0, log K]. Members tend to have lower entropy.
    Reference: Song & Mittal (2021); SalUn ``SVC_MIA`` ("entropy").
    """
    p = _probs(probs, "probs")
    if labels is not None:
        _labels(labels, "labels", p.shape[0], p.shape[1])
    return -np.sum(p * _safe_log(p), axis=1)


def modified_entropy(probs: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Modified prediction entropy (Song & Mittal, 2021, Eq. 4), the CORRECT formula.

    Formula::

        Mentr_i = -(1 - p_iy) log(p_iy) - sum_{k != y} p_ik log(1 - p_ik)

    with ``y = y_i``, natural log, and logs taken of ``max(x, 1e-30)`` (Song &
    Mittal's ``small_value``) so that ``p = 0`` or ``p = 1`` stay finite. Unlike
    the entropy it uses the label: a confident correct prediction gives ~0, a
    confident wrong one a large value.

    Range: [0, inf), in practice <= ~69 with the 1e-30 floor. Members tend to
    have lower modified entropy.

    Reference: Song & Mittal (2021), Eq. (4); their code
    github.com/inspire-group/membership-inference-evaluation.
    Differences from the reference code: SalUn's ``m_entropy`` (used for its
    MIA-Efficacy) is wrong in two ways, fixed here: (1) its "reverse"
    log-probability is ``log p`` where it must be ``log(1 - p)``, so the
    wrong-class terms are ``-p_k log p_k`` instead of ``-p_k log(1 - p_k)``; (2) it
    indexes ``[:, labels]``, replacing the columns of EVERY label in the batch
    for every row, instead of each row's own label. This function follows the
    paper, row by row.
    """
    p, y = _probs_and_labels(probs, labels)
    rows = np.arange(p.shape[0])
    p_y = p[rows, y]
    wrong = p * _safe_log(1.0 - p)
    wrong[rows, y] = 0.0
    return -(1.0 - p_y) * _safe_log(p_y) - np.sum(wrong, axis=1)


def probability_vector(probs: ArrayLike, labels: ArrayLike | None = None) -> np.ndarray:
    """The full probability row as a feature: a copy of ``probs`` (N, K), AS-IS in class order.

    Not sorted: SalUn's "prob" feature feeds the row in class order to the
    attacker (an attacker then also sees which class was predicted). ``labels``
    is accepted (and validated when given) for a uniform signature; unused.

    Range: [0, 1] per entry. Reference: SalUn ``SVC_MIA`` ("prob").
    """
    p = _probs(probs, "probs")
    if labels is not None:
        _labels(labels, "labels", p.shape[0], p.shape[1])
    return p.copy()


#: The features :func:`mia_efficacy` can train its attacker on: name -> function(probs, labels).
MIA_FEATURES: dict[str, Callable[..., np.ndarray]] = {
    "confidence": confidence,
    "correctness": correctness,
    "entropy": entropy,
    "modified_entropy": modified_entropy,
    "probability_vector": probability_vector,
}


def _feature_matrix(feature: str, probs: ArrayLike, labels: ArrayLike, prefix: str) -> np.ndarray:
    p, y = _probs_and_labels(probs, labels, prefix)
    values = MIA_FEATURES[feature](p, y)
    return values.reshape(values.shape[0], -1)


def _balanced_indices(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    if n == size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def mia_efficacy(
    retain_probs: ArrayLike,
    retain_labels: ArrayLike,
    test_probs: ArrayLike,
    test_labels: ArrayLike,
    forget_probs: ArrayLike,
    forget_labels: ArrayLike,
    *,
    feature: str = "confidence",
    seed: int = 0,
) -> float:
    """SalUn's MIA-Efficacy: the share of forget examples an attacker judges NON-members.

    Procedure: compute ``feature`` (see :data:`MIA_FEATURES`) for the retain,
    test and forget examples. Train ``sklearn.svm.SVC(kernel="rbf", C=3,
    gamma="auto")`` on retain examples labelled member (1) vs test examples
    labelled non-member (0) in EQUAL numbers: the larger of the two sets is
    subsampled without replacement to the size of the smaller, with
    ``np.random.default_rng(seed).choice(n_large, n_small, replace=False)``
    (indices then sorted). Apply the attacker to the forget examples::

        MIA-Efficacy = (1/|forget|) sum_{i in forget} [attacker(x_i) == non-member]

    Range: [0, 1]. Direction: closest to the retrained model's (higher = the
    forget set looks less like training data; a retrained model, which never
    saw it, is usually high but below 1 for random forgetting).

    Reference: SalUn (Fan et al., 2024), "MIA-Efficacy"; reference code
    ``evaluation/SVC_MIA.py`` (``SVC_fit_predict`` with ``target_test`` = the
    forget set; ``acc = 1 - mean(predict)``).
    Differences from the reference code: the reference balances by taking the
    FIRST ``len(test)`` retain examples; here the larger set (whichever it is)
    is subsampled at random with ``seed``. The modified-entropy feature is the
    corrected one (see :func:`modified_entropy`). Raises ``ValueError`` for an
    unknown feature, listing the known ones.
    """
    if feature not in MIA_FEATURES:
        raise ValueError(f"Unknown MIA feature {feature!r}; known features: {', '.join(MIA_FEATURES)}.")
    x_retain = _feature_matrix(feature, retain_probs, retain_labels, "retain_")
    x_test = _feature_matrix(feature, test_probs, test_labels, "test_")
    x_forget = _feature_matrix(feature, forget_probs, forget_labels, "forget_")
    if not (x_retain.shape[1] == x_test.shape[1] == x_forget.shape[1]):
        raise ValueError(
            f"The {feature} features have {x_retain.shape[1]} (retain), {x_test.shape[1]} (test) and "
            f"{x_forget.shape[1]} (forget) columns; the three probability matrices must have the same classes."
        )
    from sklearn.svm import SVC  # lazy: the registry imports this module for listing

    size = min(x_retain.shape[0], x_test.shape[0])
    rng = np.random.default_rng(seed)
    members = x_retain[_balanced_indices(x_retain.shape[0], size, rng)]
    nonmembers = x_test[_balanced_indices(x_test.shape[0], size, rng)]
    attacker = SVC(kernel="rbf", C=3, gamma="auto")
    attacker.fit(np.vstack([members, nonmembers]), np.r_[np.ones(size), np.zeros(size)])
    return float(np.mean(attacker.predict(x_forget) == 0))


# --------------------------------------------------------------------------
# Avg. Gap
# --------------------------------------------------------------------------


def avg_gap(
    metrics: Mapping[str, float],
    reference: Mapping[str, float],
    keys: Sequence[str] = AVG_GAP_KEYS,
) -> float:
    """Avg. Gap: ``(1/|keys|) sum_{k in keys} |metrics[k] - reference[k]|``.

    ``reference`` holds the retrained (oracle) model's numbers. The gap is in
    the units it is given: the suite passes UA, RA, TA and MIA-Efficacy in
    PERCENT (as SalUn's tables), so its Avg. Gap is in percentage points.

    Range: [0, inf) (<= 100 for percentages). Direction: lower is better (0 =
    indistinguishable from retraining on these numbers).
    Reference: SalUn (Fan et al., 2024), "Avg. Gap".
    """
    keys = tuple(keys)
    if not keys:
        raise ValueError("keys is empty: Avg. Gap needs at least one metric.")
    gaps = []
    for k in keys:
        for where, source in (("metrics", metrics), ("reference", reference)):
            if k not in source:
                raise ValueError(f"{where} has no {k!r} (has: {', '.join(map(str, source)) or 'nothing'}).")
            v = source[k]
            if v is None or isinstance(v, bool) or not np.isfinite(as_float64(v, f"{where}[{k!r}]")).all():
                raise ValueError(f"{where}[{k!r}] is {v!r}: Avg. Gap needs finite numbers.")
        gaps.append(abs(float(metrics[k]) - float(reference[k])))
    return float(np.mean(gaps))


# --------------------------------------------------------------------------
# Strong privacy tier: U-LiRA / NeurIPS 2023 challenge
# --------------------------------------------------------------------------


def logit_confidence(probs: ArrayLike, labels: ArrayLike, *, from_logits: bool = False) -> np.ndarray:
    """Logit-scaled confidence ``c_i = log p_iy - log sum_{k != y} p_ik``.

    From probabilities (default): ``log(p_y + 1e-45) - log(sum_{k != y} p_k + 1e-45)``,
    the wrong-class mass summed directly (not ``1 - p_y``, which cancels for
    ``p_y`` near 1), with the challenge's 1e-45 so that 0 stays finite.
    With ``from_logits=True``, ``probs`` holds logits ``z`` (any real numbers)
    and ``c = z_y - logsumexp_{k != y} z_k``, exact even where the softmax
    underflows (the most stable form).

    Range: real numbers (about [-103.6, 103.6] from probabilities because of
    the 1e-45). Approximately Gaussian across models, which is why LiRA and the
    challenge threshold it.

    Reference: Carlini et al. (2022), LiRA, Sec. IV-B; the challenge's
    ``compute_logit_scaled_confidence`` (which takes logits and softmaxes them
    first, then proceeds as the probability path here).
    """
    if from_logits:
        z = as_float64(probs, "probs")
        if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 2:
            raise ValueError(f"logits must have shape (examples, classes >= 2), got shape {z.shape}.")
        _check_finite(z, "probs")
        y = _labels(labels, "labels", z.shape[0], z.shape[1])
        rows = np.arange(z.shape[0])
        others = z.copy()
        others[rows, y] = -np.inf
        return z[rows, y] - logsumexp(others, axis=1)
    p, y = _probs_and_labels(probs, labels)
    rows = np.arange(p.shape[0])
    p_y = p[rows, y]
    wrong = p.copy()
    wrong[rows, y] = 0.0
    return np.log(p_y + _CHALLENGE_LOG_EPS) - np.log(wrong.sum(axis=1) + _CHALLENGE_LOG_EPS)


def _threshold_rates(u: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (FPR, FNR) pairs of single-threshold rules, exactly, in both directions.

    Regions S = {s >= v} and S = {s <= v} for every observed score v, plus the
    empty region. Labelling A predicts "unlearned" inside S: FPR = share of
    retrained scores in S, FNR = share of unlearned scores outside S. Labelling
    B predicts "retrained" inside S: FPR = share of unlearned in S, FNR = share
    of retrained outside S. (B on S is A on the complement of S with the roles
    swapped; the epsilon formula is symmetric under that swap, so A and B
    together cover both directions of every threshold.)
    """
    v = np.unique(np.concatenate([u, r]))
    su, sr = np.sort(u), np.sort(r)
    in_u = np.concatenate([u.size - np.searchsorted(su, v, side="left"), np.searchsorted(su, v, side="right"), [0]])
    in_r = np.concatenate([r.size - np.searchsorted(sr, v, side="left"), np.searchsorted(sr, v, side="right"), [0]])
    frac_u_in = in_u / u.size
    frac_r_in = in_r / r.size
    return np.concatenate([frac_r_in, frac_u_in]), np.concatenate([1.0 - frac_u_in, 1.0 - frac_r_in])


def _share_in(sorted_scores: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Share of scores with ``left <= s <= right`` (0 where left > right)."""
    count = np.searchsorted(sorted_scores, right, side="right") - np.searchsorted(sorted_scores, left, side="left")
    return np.maximum(count, 0) / sorted_scores.size


def _challenge_rates(u: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, FNR) of the challenge's two rule families on its grids (``metric.py``).

    Positive = the side with the larger median (retrained only if strictly
    larger). Single threshold: ``s >= t`` is positive, ``t`` on
    ``linspace(min, max, ceil(100 (max - min)))`` over all scores. Double
    threshold: ``l <= s <= r`` is the peakier side (smaller spread ``w``; the
    original negative side on a tie), ``r`` on ``linspace(p_min + w - 2,
    p_max + 2, ceil(100 (4)))`` and, for each ``r``, ``l`` on
    ``linspace(r - w - 2, r - w + 2, 400)``. FPR / FNR refer to whichever side
    is positive; the epsilon formula is symmetric in them.
    """
    pos, neg = (r, u) if np.median(r) > np.median(u) else (u, r)
    per_unit, buffer = 100, 2.0
    # Double threshold: the peakier distribution inside [l, r].
    pos_diff, neg_diff = float(np.ptp(pos)), float(np.ptp(neg))
    width = neg_diff if pos_diff > neg_diff else pos_diff
    inner, outer = (neg, pos) if pos_diff >= neg_diff else (pos, neg)
    lo, hi = inner.min() + width - buffer, inner.max() + buffer
    rights = np.linspace(lo, hi, int(np.ceil((hi - lo) * per_unit)))
    lefts = np.linspace(rights - width - buffer, rights - width + buffer, int(np.ceil(2 * buffer * per_unit)), axis=1)
    rights = np.broadcast_to(rights[:, None], lefts.shape).ravel()
    lefts = lefts.ravel()
    tpr_d = _share_in(np.sort(inner), lefts, rights)
    fpr_d = _share_in(np.sort(outer), lefts, rights)
    # Single threshold: s >= t is the larger-median side.
    both = np.concatenate([pos, neg])
    thresholds = np.linspace(both.min(), both.max(), int(np.ceil((both.max() - both.min()) * per_unit)))
    tpr_s = (pos.size - np.searchsorted(np.sort(pos), thresholds, side="left")) / pos.size
    fpr_s = (neg.size - np.searchsorted(np.sort(neg), thresholds, side="left")) / neg.size
    return np.concatenate([fpr_d, fpr_s]), np.concatenate([1.0 - tpr_d, 1.0 - tpr_s])


def _log_positive(x: np.ndarray) -> np.ndarray:
    out = np.full(x.shape, -np.inf)
    np.log(x, out=out, where=x > 0)
    return out


def epsilon_from_scores(
    unlearned_scores: ArrayLike,
    retrained_scores: ArrayLike,
    *,
    delta: float = DELTA,
    cap: float = EPSILON_CAP,
    rule: str = "threshold",
    peaky_ratio: float = PEAKY_RATIO,
) -> float:
    """Empirical epsilon for ONE forget example, from its score under N unlearned and M retrained models.

    ``unlearned_scores`` (N,) and ``retrained_scores`` (M,) are usually
    :func:`logit_confidence` values of the same example. A decision rule calls
    a score "unlearned" or "retrained"; for every rule of the family

        FPR = share of retrained models called "unlearned",
        FNR = share of unlearned models called "retrained",
        eps(rule) = max(log(1 - delta - FPR) - log FNR, log(1 - delta - FNR) - log FPR),

    clipped below at 0 (a rule worse than chance says nothing; a log of a
    non-positive number counts as ``-inf``). The estimate is the max over rules.
    The formula is symmetric in (FPR, FNR), so which side is called positive
    does not matter.

    Rule families (``rule``):

    - ``"threshold"`` (default): one threshold, EVERY cut between observed
      scores (exact, no grid), in BOTH directions (``s >= t`` called unlearned,
      or called retrained).
    - ``"challenge"``: the challenge's released rules on its grids, to
      reproduce its numbers: a single threshold (``s >= t`` is the side with the
      larger median; 100 thresholds per unit between the smallest and largest
      score) plus a double threshold (``l <= s <= r`` is the peakier side,
      right ends within 2 of its max, interval widths within 2 of its spread,
      100 per unit each). The double threshold also catches a narrow
      distribution nested inside a wide one, which no single threshold separates.

    An unconstrained interval family (every ``[a, b]``) is deliberately not
    offered: with few models it finds some interval holding, say, 14 of 128
    unlearned scores and 1 retrained one by chance, and reports epsilon ~
    log 14 for two IDENTICAL distributions.

    Zero rates, as the challenge (``metric.py``). With N models the smallest
    non-zero rate is 1/N, so an observed 0 may just be a rate too small to see:

    - a rule with FPR = FNR = 0 (perfect separation) gives ``inf``, reported as ``cap``;
    - a rule with exactly one of FPR, FNR equal to 0 is DISCARDED (it would give
      ``inf`` from one unobservably small rate);
    - if no rule survives (e.g. all scores equal), the estimate is 0.0 (the
      challenge's code asserts here instead).

    Peaky shortcut (the challenge's): if ``min(spread) / max(spread) < peaky_ratio``
    (spread = max - min of one side's scores), one side is (nearly) a point mass
    and the other is not: return ``cap`` without sweeping. A point mass inside
    the other distribution is otherwise missed by threshold rules (its rates
    have one zero and get discarded). ``peaky_ratio=0`` turns it off. Two
    constant sides (both spreads 0) are swept: equal constants give 0,
    different ones ``cap``.

    The result is clipped to ``[0, cap]``; ``cap`` defaults to the challenge's
    ``EPSILON_CAP = 50``. The largest FINITE estimate with N models per side is
    ``log((1 - delta - 1/N) / (1/N)) ~ log(N - 1)`` (FPR = FNR = 1/N), which is
    why :func:`forgetting_score` stops scoring at ``ceil(log(N - 1))``.

    Range: [0, cap]. Direction: lower is better (0 = the unlearned models'
    scores look like the retrained models'). Even IDENTICAL distributions give
    a clearly positive estimate, from the few models in the tails: on average
    about 1.3-1.4 with 32 to 512 standard-normal scores per side for
    ``"threshold"``, 1.5-1.6 for ``"challenge"``. Compare methods at the same
    N and rule, and against retrain-vs-retrain.

    Reference: Triantafillou et al. (2024), Sec. 3 and the challenge's
    ``metric.py`` (``_get_epsilons``, ``_get_single_threshold_rates``,
    ``_get_double_threshold_rates``); Hayes et al. (2024), U-LiRA.
    Differences from the reference code: ``"threshold"`` sweeps exactly and in
    both directions (the reference: a grid, one direction); ``"challenge"`` is
    the reference's rules computed in float64 (the reference's single-threshold
    grid is float32); no surviving rule gives 0.0 instead of an assertion error.
    """
    u = _scores(unlearned_scores, "unlearned_scores")
    r = _scores(retrained_scores, "retrained_scores")
    if rule not in ("threshold", "challenge"):
        raise ValueError(f"Unknown rule {rule!r}; known rules: threshold, challenge.")
    if not (0.0 <= delta < 1.0):
        raise ValueError(f"delta must lie in [0, 1), got {delta!r} (the challenge uses 1e-5).")
    if not (cap > 0):  # also rejects NaN
        raise ValueError(f"cap must be a positive number, got {cap!r} (the challenge uses 50).")
    if not (peaky_ratio >= 0):
        raise ValueError(f"peaky_ratio must be >= 0 (0 turns the shortcut off), got {peaky_ratio!r}.")
    spreads = (float(np.ptp(u)), float(np.ptp(r)))
    if max(spreads) > 0 and min(spreads) / max(spreads) < peaky_ratio:
        return float(cap)
    fpr, fnr = _threshold_rates(u, r) if rule == "threshold" else _challenge_rates(u, r)
    if ((fpr == 0) & (fnr == 0)).any():
        return float(cap)
    keep = (fpr > 0) & (fnr > 0)
    if not keep.any():
        return 0.0
    fpr, fnr = fpr[keep], fnr[keep]
    eps = np.maximum(
        _log_positive(1.0 - delta - fpr) - np.log(fnr),
        _log_positive(1.0 - delta - fnr) - np.log(fpr),
    )
    return float(np.clip(np.max(eps), 0.0, cap))


def per_example_epsilons(
    unlearned_scores: ArrayLike,
    retrained_scores: ArrayLike,
    **kwargs,
) -> np.ndarray:
    """:func:`epsilon_from_scores` for every forget example.

    ``unlearned_scores`` (N models, E examples) and ``retrained_scores`` (M
    models, E examples), the challenge's layout; keyword arguments go to
    :func:`epsilon_from_scores`. Returns (E,) epsilons.
    """
    u = _scores(unlearned_scores, "unlearned_scores", ndim=2)
    r = _scores(retrained_scores, "retrained_scores", ndim=2)
    if u.shape[1] != r.shape[1]:
        raise ValueError(
            f"unlearned_scores has {u.shape[1]} examples (columns) but retrained_scores has {r.shape[1]}; "
            "both are (models, examples) for the same forget examples."
        )
    return np.array([epsilon_from_scores(u[:, e], r[:, e], **kwargs) for e in range(u.shape[1])])


def challenge_max_epsilon(n_models: int) -> float:
    """The challenge's scoring ceiling ``ceil(log(n_models - 1))`` (natural log).

    With ``n_models`` models per side, rates are multiples of ``1/n_models``,
    so the largest finite epsilon one can estimate is about ``log(n_models - 1)``.
    512 models -> 7; 128 -> 5; 32 -> 4. Reference: the challenge's
    ``compute_forget_score_from_confs`` (``max_epsilon``).
    """
    if isinstance(n_models, bool) or int(n_models) != n_models or n_models < 3:
        raise ValueError(f"n_models must be an integer >= 3 (log(n - 1) > 0), got {n_models!r}.")
    return float(math.ceil(math.log(int(n_models) - 1)))


def forgetting_score(
    epsilons: ArrayLike,
    *,
    bucket_width: float = BUCKET_WIDTH,
    n_models: int | None = None,
    max_epsilon: float | None = None,
) -> float:
    """Forgetting quality ``F`` from per-example epsilons, bucketed as in the NeurIPS 2023 challenge.

    Formula::

        F = (1/E) sum_i h(eps_i),   h(eps) = 2^(-floor(eps / bucket_width))  if eps < max_epsilon
                                            0                                  otherwise

    Buckets of width 0.5 score 1, 1/2, 1/4, ...: [0, 0.5) -> 1, [0.5, 1) -> 1/2,
    [1, 1.5) -> 1/4. ``max_epsilon`` is the ceiling above which an epsilon
    scores 0: pass ``n_models`` (models per side) to use the challenge's
    ``ceil(log(n_models - 1))`` (see :func:`challenge_max_epsilon`; 7 for 512
    models), or ``max_epsilon`` directly; with neither there is no ceiling (an
    epsilon at the cap of 50 then scores 2^-100, i.e. ~0). ``inf`` scores 0.

    Range: [0, 1]. Direction: higher is better (1 = every example has
    epsilon < 0.5). Because of the sampling noise in epsilon (see
    :func:`epsilon_from_scores`), even retrained-vs-retrained models score only
    about 0.2-0.25 with 32 to 512 models per side: read F against that baseline.

    Reference: Triantafillou et al. (2024), Sec. 3 ("H(eps) = 2 / 2^n(eps)" with
    bucket index n(eps) from 1) and the challenge's
    ``compute_forget_score_from_confs`` (bucket loop, identical to the formula).
    """
    eps = as_float64(epsilons, "epsilons")
    if eps.ndim != 1 or eps.size == 0:
        raise ValueError(f"epsilons must be a non-empty 1-D array (one per forget example), got shape {eps.shape}.")
    bad = np.isnan(eps) | (eps < 0)
    if bad.any():
        i = _first(bad)
        raise ValueError(f"{_where('epsilons', i)} is {float(eps[i])!r}: an epsilon is a number >= 0.")
    if not (bucket_width > 0) or not np.isfinite(bucket_width):
        raise ValueError(f"bucket_width must be a positive number, got {bucket_width!r} (the challenge uses 0.5).")
    if n_models is not None and max_epsilon is not None:
        raise ValueError("Pass n_models or max_epsilon, not both (n_models sets max_epsilon = ceil(log(n_models - 1))).")
    ceiling = challenge_max_epsilon(n_models) if n_models is not None else max_epsilon
    if ceiling is not None and not (ceiling > 0):
        raise ValueError(f"max_epsilon must be a positive number, got {ceiling!r}.")
    finite = np.isfinite(eps)
    bucket = np.floor(np.where(finite, eps, 0.0) / bucket_width)
    points = np.where(finite, np.exp2(-bucket), 0.0)
    if ceiling is not None:
        points = np.where(eps < ceiling, points, 0.0)
    return float(np.mean(points))


def challenge_final_score(
    forgetting: float, ra_unlearned: float, ra_retrained: float, ta_unlearned: float, ta_retrained: float
) -> float:
    """The challenge's final score ``F x (RA_u / RA_r) x (TA_u / TA_r)``.

    ``forgetting`` is :func:`forgetting_score`; RA / TA are retain / test
    accuracies of the unlearned (u) and retrained (r) models, in any one unit
    (fractions or percent: only the ratios enter). In the challenge the
    accuracies are means over the unlearned and the retrained models.

    Range: [0, inf) (about [0, 1]; a ratio above 1 rewards an unlearned model
    more accurate than retraining). Direction: higher is better.
    Reference: Triantafillou et al. (2024), Sec. 3, final score.
    """
    values = {
        "forgetting": forgetting, "ra_unlearned": ra_unlearned, "ra_retrained": ra_retrained,
        "ta_unlearned": ta_unlearned, "ta_retrained": ta_retrained,
    }
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}.")
        if v < 0:
            raise ValueError(f"{name} is {v!r}: scores and accuracies cannot be negative.")
    for name in ("ra_retrained", "ta_retrained"):
        if values[name] == 0:
            raise ValueError(f"{name} is 0: the utility ratio is undefined (the retrained model is always wrong).")
    return float(forgetting) * (float(ra_unlearned) / float(ra_retrained)) * (float(ta_unlearned) / float(ta_retrained))
