"""Statistical helpers for reporting metrics (confidence intervals).

Pure functions of numpy arrays; randomness comes only from the ``seed`` the
caller passes (``numpy.random.default_rng(seed)``), never from global state.
Every bootstrap interval in the package (:func:`bootstrap_ci` here, the
membership-attack AUC and PrivLeak intervals in :mod:`unlearnbench.metrics.privacy`)
draws its resamples through :func:`bootstrap_distribution`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["bootstrap_ci", "bootstrap_distribution", "check_bootstrap_args", "percentile_interval"]

# Upper bound on the number of resampled values held in memory at once
# (n_resamples x n int64 indices); larger jobs are processed in row blocks.
_MAX_BLOCK_ELEMENTS = 1 << 22


def as_float64(values, name: str) -> np.ndarray:
    """``values`` (a list, a numpy array or a torch tensor) as a float64 array; an error
    names the argument that could not be converted."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor; no torch import needed
        values = values.detach().cpu().double().numpy()
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} could not be converted to a float64 array ({err}).") from None


def _accepts_axis(statistic: Callable) -> bool:
    try:
        return "axis" in inspect.signature(statistic).parameters
    except (TypeError, ValueError):  # builtins / C functions without a signature
        return False


def check_bootstrap_args(n_resamples: int, confidence: float) -> int:
    """``n_resamples`` as an int, once both arguments are valid; a ``ValueError`` says which is not."""
    if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}.")
    if not (0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be strictly between 0 and 1 (e.g. 0.95), got {confidence!r}.")
    return int(n_resamples)


def bootstrap_distribution(
    group_sizes: Sequence[int],
    statistic: Callable[..., ArrayLike],
    n_resamples: int,
    seed: int | np.random.SeedSequence | None = 0,
) -> np.ndarray:
    """The values of a statistic over ``n_resamples`` bootstrap resamples (with replacement).

    The examples come in groups of fixed sizes ``group_sizes`` (one group: plain
    bootstrap; members and non-members: stratified bootstrap); each resample draws
    ``n_g`` indices in ``[0, n_g)`` with replacement for every group ``g``, so the group
    sizes stay fixed. Resamples are drawn in blocks of ``rows`` (at most about 4M indices
    in memory at once); ``statistic(*indices)`` receives one ``(rows, n_g)`` int array per
    group, in the order of ``group_sizes``, and returns one value per resample (``(rows,)``)
    or one row of values per resample (``(rows, k)``). Returns their concatenation,
    ``(n_resamples,)`` or ``(n_resamples, k)``, as float64.

    The random stream: ``numpy.random.default_rng(seed)``, then per block
    ``rng.integers(0, n_g, size=(rows, n_g))`` for each group in turn, so a fixed
    ``seed`` always gives the same resamples.

    Reference: Efron & Tibshirani (1993), "An Introduction to the Bootstrap", ch. 6
    (resampling) and ch. 13 (percentile intervals, :func:`percentile_interval`).
    """
    sizes = [int(n) for n in group_sizes]
    rng = np.random.default_rng(seed)
    block = max(1, _MAX_BLOCK_ELEMENTS // sum(sizes))
    values = []
    for start in range(0, n_resamples, block):
        rows = min(block, n_resamples - start)
        indices = [rng.integers(0, n, size=(rows, n)) for n in sizes]
        values.append(np.asarray(statistic(*indices), dtype=np.float64))
    return np.concatenate(values)


def percentile_interval(values: ArrayLike, confidence: float) -> tuple[float, float]:
    """The ``(1-confidence)/2`` and ``(1+confidence)/2`` quantiles of bootstrap values
    (Efron & Tibshirani, 1993, ch. 13: the percentile interval)."""
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(
    values: ArrayLike,
    statistic: Callable[..., float] = np.mean,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.SeedSequence | None = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a statistic over examples.

    Method: draw ``n_resamples`` resamples of the ``n`` examples with
    replacement, compute ``statistic`` on each, and return the
    ``(1-confidence)/2`` and ``(1+confidence)/2`` quantiles of those values
    (Efron & Tibshirani, 1993, "An Introduction to the Bootstrap", ch. 13).
    With ``n < 2`` there is nothing to resample: returns ``(s, s)`` with
    ``s = statistic(values)``.

    ``statistic`` is applied to a 2-D ``(block, n)`` array with ``axis=-1`` when
    its signature has an ``axis`` parameter (``np.mean``, ``np.median``, ...);
    otherwise it is called once per resample on a 1-D array.

    Range: ``lo <= hi``. Reproducible for a fixed ``seed`` (same values,
    statistic, n_resamples and confidence give the same interval).

    Reference: MUSE (Shi et al., 2024) reports bootstrap 95% confidence
    intervals; the percentile method here matches ``scipy.stats.bootstrap(...,
    method="percentile")`` in definition (not in random stream).
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"values must be 1-D (one number per example), got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError("values is empty: a confidence interval needs at least one example.")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"values[{i}] is {arr[i]!r}: every value must be a finite number.")
    n_resamples = check_bootstrap_args(n_resamples, confidence)

    n = arr.size
    if n < 2:
        point = float(statistic(arr))
        return point, point

    if _accepts_axis(statistic):
        def on_resamples(indices):
            return statistic(arr[indices], axis=-1)
    else:
        def on_resamples(indices):
            return [statistic(row) for row in arr[indices]]

    return percentile_interval(bootstrap_distribution([n], on_resamples, n_resamples, seed), confidence)
