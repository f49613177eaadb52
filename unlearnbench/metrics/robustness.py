"""Robustness metrics: how much forgotten knowledge an attack brings back, as pure functions.

Two attacks are measured with the same forget metric ``M`` (any number that the
unlearning moved, e.g. forget-set answer probability or KnowMem):

- **Relearning**: fine-tune the unlearned model for a few steps (0, 1, 2, 5, ...)
  on part of the forget set and re-measure ``M`` on the other part;
  :func:`recovery_ratio` per step, :func:`recovery_auc` over the steps.
- **Quantization**: fake-quantize the linear weights (see :mod:`unlearnbench.lm.quantize`)
  and re-measure ``M``; :func:`recovery_ratio` of the quantized model, and
  :func:`quantized_agreement` of the integer codes of two models (the unlearned
  and the original: agreement 1 means quantization maps them to the same
  weights, so the unlearning edit is below the quantization resolution).

Run the same attack on the oracle (retrained) model as a control: relearning also
teaches the oracle, so only recovery beyond the oracle's is evidence of knowledge
that was hidden rather than removed.

References
----------
- Relearning attacks: Lynch et al., 2024, "Eight Methods to Evaluate Robust
  Unlearning in LLMs"; Hu et al., 2025, "Unlearning or Obfuscating? Jogging the
  Memory of Unlearned LLMs via Benign Relearning" (ICLR).
- Quantization: Zhang et al., 2025, "Catastrophic Failure of LLM Unlearning via
  Quantization" (ICLR).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["RR_EPS", "recovery_ratio", "recovery_auc", "quantized_agreement"]

#: ``|M_original - M_unlearned|`` below this: unlearning did not move the metric, RR is NaN.
RR_EPS = 1e-12


def _float_array(values: ArrayLike, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} could not be converted to a float64 array ({err}).") from None
    if np.isinf(arr).any():
        i = tuple(int(j) for j in np.argwhere(np.isinf(arr))[0])
        where = f"{name}[{', '.join(map(str, i))}]" if i else name
        raise ValueError(f"{where} is {float(arr[i])!r}: metric values must be finite (NaN marks a missing one).")
    return arr


def recovery_ratio(attacked: ArrayLike, unlearned: ArrayLike, original: ArrayLike) -> float | np.ndarray:
    """Recovery ratio ``RR = (M_attack - M_unlearned) / (M_original - M_unlearned)``.

    The share of the gap that unlearning opened between the original model and
    the unlearned one that the attack closes again. Works whichever way the
    metric moved (up or down): the ratio has the same sign convention both ways.
    Inputs broadcast (e.g. an array of ``M_attack`` per relearning step against
    scalar ``M_unlearned`` / ``M_original``). Scalars in -> float out; otherwise
    an array.

    ``NaN`` where ``|M_original - M_unlearned| < 1e-12`` (unlearning did not move
    the metric, so there is nothing to recover) and where any input is NaN (a
    missing measurement); ``+-inf`` inputs raise ``ValueError``.

    Range: real numbers. 0 = no recovery (the attack left the metric at its
    unlearned value), 1 = full recovery to the original model's value, > 1 =
    overshoot, < 0 = the attack moved it further from the original. Direction:
    lower is better (more robust unlearning).
    """
    a = _float_array(attacked, "attacked")
    u = _float_array(unlearned, "unlearned")
    o = _float_array(original, "original")
    try:
        a, u, o = np.broadcast_arrays(a, u, o)
    except ValueError:
        raise ValueError(
            f"attacked (shape {a.shape}), unlearned (shape {u.shape}) and original (shape {o.shape}) "
            "do not broadcast together."
        ) from None
    gap = o - u
    defined = np.abs(gap) >= RR_EPS  # False for NaN too
    with np.errstate(invalid="ignore", divide="ignore"):
        rr = np.where(defined, (a - u) / np.where(defined, gap, 1.0), np.nan)
    return float(rr) if rr.ndim == 0 else rr


def recovery_auc(steps: ArrayLike, ratios: ArrayLike) -> float:
    """Normalised area under the recovery-ratio curve over relearning steps.

    Formula: trapezoid rule over ``(steps / s_last, ratios)``, i.e.
    ``sum_i (s_{i+1} - s_i) (r_i + r_{i+1}) / 2 / s_last``, so a curve at a
    constant ``c`` has area ``c`` (constant 1 -> 1): the AUC is the step-weighted
    mean recovery ratio over the attack.

    ``steps`` must be finite, start at 0 and strictly increase (e.g. ``0, 1, 2,
    5, 10, 25, 50``); ``ratios`` holds one RR per step (:func:`recovery_ratio`).
    NaN ratios (missing or undefined measurements) are dropped together with
    their steps, and the trapezoid bridges the gap; the area is then divided by
    the span of the steps that remain (``s_last`` when the first and last
    points are kept). Fewer than two remaining points -> ``NaN``.

    Range: real numbers (like RR); 0 = nothing recovered at any step, 1 = fully
    recovered from the start. Direction: lower is better.
    """
    s = _float_array(steps, "steps")
    r = _float_array(ratios, "ratios")
    if s.ndim != 1 or r.ndim != 1:
        raise ValueError(f"steps and ratios must be 1-D, got shapes {s.shape} and {r.shape}.")
    if s.size != r.size:
        raise ValueError(f"steps has {s.size} entries but ratios has {r.size}; pass one ratio per step.")
    if s.size < 2:
        raise ValueError(f"recovery_auc needs at least two steps (e.g. 0 and the last), got {s.size}.")
    if np.isnan(s).any():
        raise ValueError(f"steps[{int(np.argmax(np.isnan(s)))}] is NaN: every step must be a number.")
    if s[0] != 0:
        raise ValueError(f"steps must start at 0 (the unlearned model before any attack step), got {s[0]!r}.")
    nonincreasing = np.diff(s) <= 0
    if nonincreasing.any():
        i = int(np.argmax(nonincreasing))
        raise ValueError(f"steps must strictly increase: steps[{i}] = {s[i]!r} then steps[{i + 1}] = {s[i + 1]!r}.")
    keep = ~np.isnan(r)
    s, r = s[keep], r[keep]
    if s.size < 2:
        return float("nan")
    area = float(np.sum(np.diff(s) * (r[1:] + r[:-1]) / 2.0))
    return area / float(s[-1] - s[0])


def _code_arrays(codes, name: str) -> list[np.ndarray]:
    if isinstance(codes, (list, tuple)):
        return [np.asarray(c) for c in codes]
    return [np.asarray(codes)]


def quantized_agreement(
    codes_a: ArrayLike | Sequence[ArrayLike] | Mapping[str, ArrayLike],
    codes_b: ArrayLike | Sequence[ArrayLike] | Mapping[str, ArrayLike],
) -> float:
    """Fraction of equal entries between the integer quantization codes of two models.

    Formula: ``sum_t #(a_t == b_t) / sum_t size(a_t)`` over the tensors ``t``: each
    tensor weighs by its number of entries. Accepts one array each, a list (or
    tuple) of arrays each (paired in order), or two dicts name -> array as
    returned by :func:`unlearnbench.lm.quantize.quantize_linear_weights` (paired by
    name; the names must match). CPU torch tensors work as arrays.

    Range: [0, 1]. 1 = the two models quantize to identical weights (the
    unlearning edit is below the quantization resolution: quantization undoes
    it). Direction: for unlearned vs original, lower is better.

    Reference: Zhang et al. (2025), "Catastrophic Failure of LLM Unlearning via
    Quantization".
    """
    if isinstance(codes_a, Mapping) or isinstance(codes_b, Mapping):
        if not (isinstance(codes_a, Mapping) and isinstance(codes_b, Mapping)):
            raise ValueError("Pass both codes_a and codes_b as dicts (name -> codes), or neither.")
        if set(codes_a) != set(codes_b):
            only_a = sorted(set(codes_a) - set(codes_b))
            only_b = sorted(set(codes_b) - set(codes_a))
            raise ValueError(
                f"codes_a and codes_b name different tensors: only in codes_a {only_a[:5]}, only in codes_b {only_b[:5]}."
            )
        names = list(codes_a)
        a_list = [np.asarray(codes_a[k]) for k in names]
        b_list = [np.asarray(codes_b[k]) for k in names]
    else:
        names = None
        a_list = _code_arrays(codes_a, "codes_a")
        b_list = _code_arrays(codes_b, "codes_b")
        if len(a_list) != len(b_list):
            raise ValueError(f"codes_a has {len(a_list)} tensors but codes_b has {len(b_list)}; they must pair up.")
    equal = total = 0
    for i, (a, b) in enumerate(zip(a_list, b_list)):
        label = names[i] if names is not None else i
        if a.shape != b.shape:
            raise ValueError(f"tensor {label!r}: codes_a has shape {a.shape} but codes_b has shape {b.shape}.")
        equal += int(np.count_nonzero(a == b))
        total += a.size
    if total == 0:
        raise ValueError("codes_a and codes_b hold no entries: nothing to compare.")
    return equal / total
