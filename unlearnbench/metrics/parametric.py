"""Parametric metrics: what unlearning did to the weights and hidden states, as pure functions.

Nothing here touches a model or torch: the caller extracts the numbers (a concept
vector before and after unlearning, the token ids of its vocabulary projection, the
activation coefficients on concept prompts, hidden states per layer, per-option NLLs)
and these functions turn them into metrics.

Concept vectors
---------------
An MLP is a key-value memory, ``MLP(x) = sum_j m_j(x) v_j``, with ``v_j`` the j-th
column of the down projection (``mlp.down_proj.weight[:, j]`` for a Llama-style
``nn.Linear``, ``mlp.c_proj.weight[j, :]`` for a GPT-2 ``Conv1D``). Its vocabulary
projection ``E v_j`` (``E`` the output embedding matrix, no final norm) ranks tokens;
a *concept vector* puts the concept's tokens in its top-k. Before (``v0``) and after
(``v1``) unlearning we compare

- the top-k token sets (:func:`topk_jaccard`, :func:`concept_token_retention`),
- the vectors themselves (:func:`cosine_similarity`, :func:`l2_distance`),
- the mean activation coefficient ``m_j`` on concept prompts (:func:`coefficient_ratio`).

An unchanged vector (Jaccard 1, cosine 1, L2 0) whose coefficient ratio is far below 1
means the knowledge is *suppressed at inference*, not erased: it is still stored in
the weights and can come back.

Linear probes
-------------
:func:`probe_accuracy` fits a logistic regression on hidden states with the true
labels; if it stays high after unlearning, the forgetting is shallow (the
information is still linearly decodable). :func:`layer_probe_accuracies` does it
for every layer.

References
----------
- Geva et al., 2021, "Transformer Feed-Forward Layers Are Key-Value Memories" (EMNLP);
  Geva et al., 2022, "Transformer Feed-Forward Layers Build Predictions by Promoting
  Concepts in the Vocabulary Space" (EMNLP).
- Hong et al., 2024, "Intrinsic Evaluation of Unlearning Using Parametric Knowledge
  Traces" (ConceptVectors benchmark; Jaccard / cosine / L2 of concept vectors).
- Zhang, Choshen and Andreas, 2024, "Unforgettable Generalization in Language
  Models": layer-wise linear probes after unlearning.
- Jaccard, 1912, "The distribution of the flora in the alpine zone".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from unlearnbench.metrics.behavior import _check_finite, _first_bad_index, _fmt_index

__all__ = [
    "topk_jaccard",
    "cosine_similarity",
    "l2_distance",
    "concept_token_retention",
    "coefficient_ratio",
    "multiple_choice_accuracy",
    "probe_accuracy",
    "layer_probe_accuracies",
]


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _token_ids(values: ArrayLike, name: str) -> np.ndarray:
    """Token ids as a 1-D or 2-D int64 array (integral floats accepted)."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as err:  # ragged nested lists
        raise ValueError(f"{name} must be a 1-D or 2-D array of token ids ({err}).") from None
    if arr.dtype == object:
        raise ValueError(
            f"{name} must be a 1-D or 2-D array of token ids; got ragged or non-numeric input. "
            "Pass one top-k list per row, all of the same length."
        )
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be a 1-D (one top-k list) or 2-D (one per row) array, got shape {arr.shape}.")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integer token ids, got dtype {arr.dtype}.")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            i = _first_bad_index(bad)
            raise ValueError(f"{name}[{_fmt_index(i)}] is {float(arr[i])!r}: token ids must be integers.")
    return arr.astype(np.int64)


def _id_rows(before_ids: ArrayLike, after_ids: ArrayLike) -> tuple[list[set], list[set], bool]:
    before = _token_ids(before_ids, "before_ids")
    after = _token_ids(after_ids, "after_ids")
    if before.ndim != after.ndim:
        raise ValueError(
            f"before_ids is {before.ndim}-D (shape {before.shape}) but after_ids is {after.ndim}-D "
            f"(shape {after.shape}); pass both as one top-k list or both as one list per row."
        )
    if before.ndim == 1:
        rows_b, rows_a = [before], [after]
    else:
        if before.shape[0] != after.shape[0]:
            raise ValueError(
                f"before_ids has {before.shape[0]} rows but after_ids has {after.shape[0]}; "
                "they must describe the same vectors in the same order."
            )
        rows_b, rows_a = list(before), list(after)
    for name, rows in (("before_ids", rows_b), ("after_ids", rows_a)):
        for i, row in enumerate(rows):
            if row.size == 0:
                where = name if before.ndim == 1 else f"{name}[{i}]"
                raise ValueError(f"{where} is empty: a top-k token list needs k >= 1 ids.")
    return [set(r.tolist()) for r in rows_b], [set(r.tolist()) for r in rows_a], before.ndim == 2


def _vectors(v0: ArrayLike, v1: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = _as_float(v0, "v0")
    b = _as_float(v1, "v1")
    if a.ndim not in (1, 2):
        raise ValueError(f"v0 must be a 1-D vector or a 2-D array of row vectors, got shape {a.shape}.")
    if a.shape != b.shape:
        raise ValueError(f"v0 has shape {a.shape} but v1 has shape {b.shape}; they must match.")
    if a.shape[-1] == 0:
        raise ValueError(f"v0 and v1 have shape {a.shape}: the vectors are empty.")
    _check_finite(a, "v0", what="vector entry")
    _check_finite(b, "v1", what="vector entry")
    return a, b


def _as_float(values: ArrayLike, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} could not be converted to a float64 array ({err}).") from None


def _per_row(values: np.ndarray, two_d: bool) -> float | np.ndarray:
    return values if two_d else float(values[0])


# --------------------------------------------------------------------------
# Concept vectors: top-k token sets
# --------------------------------------------------------------------------


def topk_jaccard(before_ids: ArrayLike, after_ids: ArrayLike) -> float | np.ndarray:
    """Jaccard similarity of the top-k token-id sets before and after unlearning.

    Formula: ``J = |B ∩ A| / |B ∪ A|`` with ``B = set(before_ids)`` and
    ``A = set(after_ids)`` (duplicate ids count once; the two lists may have
    different lengths). ``before_ids`` / ``after_ids`` are the top-k ids of the
    vocabulary projection ``E v`` of the concept vector before / after.

    Input: 1-D (one top-k list) -> float; 2-D ``(n, k)`` (one list per vector) ->
    array of ``n`` floats. An empty list raises ``ValueError``.

    Range: [0, 1]. 1 = the same top-k tokens (the vector still promotes the same
    tokens); lower means the vector changed more.

    Reference: Hong et al. (2024), ConceptVectors, Jaccard of top-k projections.
    """
    rows_b, rows_a, two_d = _id_rows(before_ids, after_ids)
    out = np.array([len(b & a) / len(b | a) for b, a in zip(rows_b, rows_a)], dtype=np.float64)
    return _per_row(out, two_d)


def concept_token_retention(before_ids: ArrayLike, after_ids: ArrayLike, concept_ids: ArrayLike) -> float | np.ndarray:
    """Fraction of the concept tokens in the original top-k that are still in the top-k after.

    Formula: with ``C0 = set(concept_ids) ∩ set(before_ids)`` (the concept tokens
    the vector promoted before unlearning), ``retention = |C0 ∩ set(after_ids)| / |C0|``.
    ``NaN`` when ``C0`` is empty (no concept token was in the top-k before, so there
    is nothing to retain; the vector is then not a concept vector for this concept).

    Input: ``before_ids`` / ``after_ids`` 1-D -> float, 2-D ``(n, k)`` -> array of
    ``n`` floats; ``concept_ids`` is one 1-D list of token ids shared by all rows.

    Range: [0, 1] or NaN. 1 = every concept token is still promoted; 0 = none is.
    Lower means the concept was removed from the vector.
    """
    rows_b, rows_a, two_d = _id_rows(before_ids, after_ids)
    concept = _token_ids(concept_ids, "concept_ids")
    if concept.ndim != 1:
        raise ValueError(f"concept_ids must be one 1-D list of token ids, got shape {concept.shape}.")
    concept_set = set(concept.tolist())
    out = np.empty(len(rows_b), dtype=np.float64)
    for i, (b, a) in enumerate(zip(rows_b, rows_a)):
        c0 = concept_set & b
        out[i] = len(c0 & a) / len(c0) if c0 else np.nan
    return _per_row(out, two_d)


# --------------------------------------------------------------------------
# Concept vectors: the vectors themselves
# --------------------------------------------------------------------------


def cosine_similarity(v0: ArrayLike, v1: ArrayLike) -> float | np.ndarray:
    """Cosine similarity ``v0 · v1 / (||v0|| ||v1||)`` of a vector before and after unlearning.

    Input: two 1-D vectors -> float; two 2-D arrays of the same shape -> one value
    per row. A zero vector has no direction: ``NaN`` for that row.

    Range: [-1, 1]. 1 = same direction; lower means the vector changed more.

    Reference: Hong et al. (2024), ConceptVectors.
    """
    a, b = _vectors(v0, v1)
    two_d = a.ndim == 2
    a2, b2 = np.atleast_2d(a), np.atleast_2d(b)
    norms = np.linalg.norm(a2, axis=1) * np.linalg.norm(b2, axis=1)
    dots = np.einsum("ij,ij->i", a2, b2)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), np.nan)
    return _per_row(np.clip(out, -1.0, 1.0), two_d)


def l2_distance(v0: ArrayLike, v1: ArrayLike) -> float | np.ndarray:
    """Euclidean distance ``||v0 - v1||_2`` of a vector before and after unlearning.

    Input: two 1-D vectors -> float; two 2-D arrays of the same shape -> one value
    per row.

    Range: [0, inf). 0 = unchanged; higher means the vector changed more. Not scale
    free: compare it with ``||v0||`` when vectors differ in size.

    Reference: Hong et al. (2024), ConceptVectors.
    """
    a, b = _vectors(v0, v1)
    out = np.linalg.norm(np.atleast_2d(a) - np.atleast_2d(b), axis=1)
    return _per_row(out, a.ndim == 2)


def coefficient_ratio(after: ArrayLike, before: ArrayLike) -> float:
    """Mean activation coefficient of a concept vector after unlearning over the same before.

    Formula: ``ratio = mean(after) / mean(before)``, where ``after`` / ``before`` are
    the activation coefficients ``m_j(x)`` of the concept vector ``v_j`` on concept
    prompts (one number, or one per prompt / token, which are averaged; the two
    sides need not have the same count).

    Sign handling: the coefficients are used *as given*, signed (no absolute
    value). ``m_j`` may be negative (SiLU/GELU-gated MLPs), so the ratio is
    signed: 1 = unchanged, 0 = silenced, between 0 and 1 = damped, negative = the
    mean coefficient flipped sign, > 1 = amplified. ``NaN`` when
    ``mean(before) == 0`` (the vector was not used before; no ratio).

    Reading: a ratio far below 1 while the vector itself is unchanged
    (:func:`cosine_similarity` about 1) means the knowledge is suppressed at
    inference -- the upstream keys no longer fire -- rather than erased from
    the weights.

    Range: real numbers or NaN.
    """
    a = _as_float(after, "after").ravel()
    b = _as_float(before, "before").ravel()
    for name, arr in (("after", a), ("before", b)):
        if arr.size == 0:
            raise ValueError(f"{name} is empty: pass at least one activation coefficient.")
        _check_finite(arr, name, what="activation coefficient")
    mean_before = float(np.mean(b))
    if mean_before == 0.0:
        return float("nan")
    return float(np.mean(a)) / mean_before


# --------------------------------------------------------------------------
# Answers and probes
# --------------------------------------------------------------------------


def multiple_choice_accuracy(option_nll: ArrayLike, correct: ArrayLike) -> float:
    """Accuracy of picking the option with the lowest NLL.

    ``option_nll`` has shape ``(n, C)``: the MEAN per-token negative log-likelihood
    of each of ``C`` options for each of ``n`` questions; ``correct`` holds the index
    of the right option per question (integers in ``[0, C)``). The prediction is
    ``argmin`` over the options; ties go to the lowest index (``numpy.argmin``).

    Range: [0, 1]; chance is ``1/C``. Higher = the model still answers; on the
    forget concept lower is the goal, on unrelated questions higher.
    """
    nll = _as_float(option_nll, "option_nll")
    if nll.ndim != 2:
        raise ValueError(f"option_nll must have shape (n_questions, n_options), got shape {nll.shape}.")
    n, c = nll.shape
    if n == 0 or c == 0:
        raise ValueError(f"option_nll has shape {nll.shape}: need at least one question and one option.")
    _check_finite(nll, "option_nll")
    labels = np.asarray(correct)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"correct must be 1-D with one index per question ({n}), got shape {labels.shape}.")
    if labels.dtype.kind not in "iu" and not (
        labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
    ):
        raise ValueError(f"correct must hold integer option indices, got dtype {labels.dtype}.")
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= c)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"correct[{i}] is {int(labels[i])}: option indices must lie in [0, {c}).")
    return float(np.mean(np.argmin(nll, axis=1) == labels))


def _features(x: ArrayLike, name: str) -> np.ndarray:
    arr = _as_float(x, name)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (n_examples, n_features) with both >= 1, got shape {arr.shape}.")
    _check_finite(arr, name, what="feature")
    return arr


def _labels(y: ArrayLike, n: int, name: str, x_name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per example), got shape {arr.shape}.")
    if arr.shape[0] != n:
        raise ValueError(f"{x_name} has {n} examples but {name} has {arr.shape[0]}; they must match.")
    return arr


def probe_accuracy(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    *,
    seed: int = 0,
    C: float = 1.0,
) -> float:
    """Test accuracy of a linear probe (logistic regression) on hidden states.

    Method: standardise every feature with the mean and standard deviation of
    the TRAIN features (``sklearn.preprocessing.StandardScaler``; a constant
    feature is left centred, not divided by zero), fit
    ``LogisticRegression(C=C, max_iter=2000, random_state=seed)`` on
    ``(train_x, train_y)``, and return its accuracy on ``(test_x, test_y)``.
    ``x`` arrays have shape ``(n_examples, hidden_size)``; labels are any
    hashable class labels (ints or strings); the train labels need at least two
    classes. Deterministic for a fixed input (``seed`` only matters for solvers
    that shuffle).

    Range: [0, 1]; chance is the majority-class rate of the test set. If it stays
    high after unlearning, the forgotten information is still linearly decodable
    from the hidden states: the forgetting is shallow.

    Reference: "Unforgettable Generalization in Language Models" (Zhang et al., 2024).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    xtr = _features(train_x, "train_x")
    xte = _features(test_x, "test_x")
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(
            f"train_x has {xtr.shape[1]} features but test_x has {xte.shape[1]}; use hidden states of the same layer."
        )
    ytr = _labels(train_y, xtr.shape[0], "train_y", "train_x")
    yte = _labels(test_y, xte.shape[0], "test_y", "test_x")
    if np.unique(ytr).size < 2:
        raise ValueError(
            f"train_y has a single class ({ytr[0]!r}): a probe needs at least two classes to separate."
        )
    if not (float(C) > 0):
        raise ValueError(f"C must be a positive number (inverse regularisation strength), got {C!r}.")
    scaler = StandardScaler().fit(xtr)
    clf = LogisticRegression(C=float(C), max_iter=2000, random_state=seed)
    clf.fit(scaler.transform(xtr), ytr)
    return float(np.mean(clf.predict(scaler.transform(xte)) == yte))


def layer_probe_accuracies(
    train_by_layer: Sequence[ArrayLike],
    train_y: ArrayLike,
    test_by_layer: Sequence[ArrayLike],
    test_y: ArrayLike,
    seed: int = 0,
    *,
    C: float = 1.0,
) -> list[float]:
    """:func:`probe_accuracy` for every layer: one probe per layer, same labels.

    ``train_by_layer[l]`` / ``test_by_layer[l]`` are the hidden states of layer
    ``l`` (shape ``(n_examples, hidden_size)``); a 3-D array ``(n_layers, n, d)``
    works too. Returns one accuracy per layer, in layer order.
    """
    if isinstance(train_by_layer, (str, bytes)) or isinstance(test_by_layer, (str, bytes)):
        raise ValueError("train_by_layer and test_by_layer must be sequences of (n, d) arrays, one per layer.")
    train_layers, test_layers = list(train_by_layer), list(test_by_layer)
    if len(train_layers) != len(test_layers):
        raise ValueError(
            f"train_by_layer has {len(train_layers)} layers but test_by_layer has {len(test_layers)}; they must match."
        )
    if not train_layers:
        raise ValueError("train_by_layer is empty: pass the hidden states of at least one layer.")
    return [
        probe_accuracy(tr, train_y, te, test_y, seed=seed, C=C) for tr, te in zip(train_layers, test_layers)
    ]
