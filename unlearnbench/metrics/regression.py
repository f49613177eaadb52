"""Metrics for unlearning in regression models (Tarun et al., 2023, "Deep Regression Unlearning"), pure.

Every function takes numbers computed elsewhere -- predictions and targets in the task's
ORIGINAL units, per-sample losses, relearning step counts -- and returns a float. Nothing
here touches a model or torch (the relearning run behind the anamnesis index lives in
:mod:`unlearnbench.tabular.anamnesis`).

- :func:`l1`, :func:`mse`: errors on the retain, forget and test rows.
- :func:`w1_to_retrain`: Wasserstein-1 distance between the unlearned and the retrained
  (oracle) model's predictions on the forget rows.
- :func:`regression_mia`: a loss-based membership attack (retain = members vs test =
  non-members); the share of forget rows judged members.
- :func:`anamnesis_index`: relearning steps of the unlearned model over the retrained
  model's (AIN).

References
----------
- Tarun, Chundawat, Mandal, Kankanhalli, 2023, "Deep Regression Unlearning" (ICML;
  arXiv:2210.08196); reference code github.com/ayushkumartarun/deep-regression-unlearning,
  ``metrics.py`` (``get_membership_attack_prob``, ``relearn_time``, ``ain``).
- AIN first defined for classifiers: Chundawat et al., 2023, "Zero-Shot Machine Unlearning"
  (IEEE TIFS).
- Wasserstein-1 of two empirical distributions: Ramdas, Garcia, Cuturi, 2017, "On
  Wasserstein two-sample testing and related families of nonparametric tests" (Entropy),
  W1 = integral of ``|F_u - F_v|``; as ``scipy.stats.wasserstein_distance``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import wasserstein_distance

__all__ = ["AIN_TOLERANCE", "l1", "mse", "w1_to_retrain", "regression_mia", "anamnesis_index"]

#: A relearning run stops once the forget loss is within this share of the original model's.
AIN_TOLERANCE = 0.05


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _values(values: ArrayLike, name: str) -> np.ndarray:
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor; no torch import needed
        values = values.detach().cpu().double().numpy()
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} could not be converted to a float64 array ({err}).") from None
    if arr.ndim == 2 and 1 in arr.shape:  # a column or row vector ([N, 1] model outputs)
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional (one value per row), got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty.")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}[{i}] is {float(arr[i])!r}: every value must be a finite number.")
    return arr


def _pair(pred: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, t = _values(pred, "pred"), _values(y, "y")
    if p.size != t.size:
        raise ValueError(f"pred has {p.size} values but y has {t.size}; they must match one to one.")
    return p, t


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def l1(pred: ArrayLike, y: ArrayLike) -> float:
    """Mean absolute error ``L1 = (1/N) sum_i |pred_i - y_i|``.

    In the units of the targets (pass predictions and targets in the task's original
    units). Range: [0, inf). Direction: lower on retain and test (utility); on the forget
    rows, closest to the retrained model's (a retrained model errs on rows it never saw
    about as much as on test rows).
    Reference: Tarun et al. (2023), Sec. 5 (L1 on retain / forget / test).
    """
    p, t = _pair(pred, y)
    return float(np.mean(np.abs(p - t)))


def mse(pred: ArrayLike, y: ArrayLike) -> float:
    """Mean squared error ``MSE = (1/N) sum_i (pred_i - y_i)^2``.

    In squared target units. Range: [0, inf). Direction: as :func:`l1` (lower on retain
    and test). Also the loss the regression models are trained with (on standardised
    targets), and the forget loss of the anamnesis index (:mod:`unlearnbench.tabular.anamnesis`).
    """
    p, t = _pair(pred, y)
    return float(np.mean((p - t) ** 2))


# --------------------------------------------------------------------------
# Wasserstein-1 to the retrained model
# --------------------------------------------------------------------------


def w1_to_retrain(pred_unlearned_forget: ArrayLike, pred_oracle_forget: ArrayLike) -> float:
    """Wasserstein-1 distance between two samples of predictions (empirical distributions).

    ``pred_unlearned_forget``: the unlearned model's predictions on the forget rows;
    ``pred_oracle_forget``: the retrained (oracle) model's on the same rows (the two
    samples may differ in size: each is treated as an empirical distribution with equal
    weights). Formula, with ``F_u`` and ``F_v`` the two empirical CDFs::

        W1 = integral_{-inf}^{inf} |F_u(t) - F_v(t)| dt
           = sum_k |F_u(z_k) - F_v(z_k)| (z_{k+1} - z_k)

    over the sorted pooled values ``z_k`` (the CDFs are constant between them). With equal
    sample sizes this is ``(1/N) sum_i |u_(i) - v_(i)|`` of the sorted samples. It compares
    the DISTRIBUTIONS, not row by row: a permutation of the predictions does not change it.

    In target units. Range: [0, inf). Direction: lower is better (0 = the forget-set
    predictions are distributed like the retrained model's).
    Reference: Tarun et al. (2023), Sec. 5 ("Wasserstein distance", computed with
    ``scipy.stats.wasserstein_distance``, which this calls).
    """
    u = _values(pred_unlearned_forget, "pred_unlearned_forget")
    v = _values(pred_oracle_forget, "pred_oracle_forget")
    return float(wasserstein_distance(u, v))


# --------------------------------------------------------------------------
# Membership inference on per-sample losses
# --------------------------------------------------------------------------


def _balanced_indices(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    if n == size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))


def regression_mia(loss_members: ArrayLike, loss_nonmembers: ArrayLike, loss_forget: ArrayLike, *,
                   seed: int = 0) -> float:
    """Loss-based membership attack: the share of forget rows an attacker judges MEMBERS.

    Inputs are per-sample losses of ONE model (any non-negative per-row loss, e.g. the
    squared or absolute error, the same kind for all three): ``loss_members`` on the
    retain rows (training data), ``loss_nonmembers`` on the test rows, ``loss_forget`` on
    the forget rows.

    Procedure:

    1. Balance: the larger of members / non-members is subsampled without replacement to
       the size of the smaller, ``np.random.default_rng(seed).choice(n_large, n_small,
       replace=False)`` (indices sorted; members drawn first when both need it -- only
       the larger needs it).
    2. Standardise the loss: ``z = (loss - mean) / sd`` with the mean and (population) sd of
       the balanced attack training set (sd 0 -> 1), applied to the forget losses too.
    3. Attacker ``sklearn.svm.SVC(kernel="rbf", C=3, gamma="auto")`` fitted on ``z``,
       members labelled 1 and non-members 0.
    4. ``MIA = (1/|forget|) sum_{i in forget} [attacker(z_i) == member]``.

    Range: [0, 1]. Direction: closest to the retrained model's (higher = the forget rows
    look like training data; a retrained model never saw them, so its value is the share
    of unseen rows that happen to look like members -- near 0 for a model that overfits,
    higher for one that generalises).

    Reference: Tarun et al. (2023), Sec. 5 ("membership inference attack"); reference code
    ``metrics.py``, ``get_membership_attack_prob`` (SVC rbf, C=3, gamma="auto" on the
    per-sample L1 loss, retain vs test; the reported number is the mean prediction on the
    forget set, i.e. the share judged members).
    Differences from the reference code: (1) the reference fits on ALL retain and test
    rows (unbalanced); here the two classes are balanced, so an attacker that learns
    nothing sits near 0.5 rather than at the majority class. (2) The reference fits on the
    raw loss, so its rbf kernel (width 1 in loss units) depends on the target's units;
    here the loss is standardised first, so the result does not change when the losses
    are rescaled (e.g. targets in other units).
    """
    members = _values(loss_members, "loss_members")
    nonmembers = _values(loss_nonmembers, "loss_nonmembers")
    forget = _values(loss_forget, "loss_forget")
    from sklearn.svm import SVC  # lazy: the registry imports this module for listing

    size = min(members.size, nonmembers.size)
    rng = np.random.default_rng(seed)
    members = members[_balanced_indices(members.size, size, rng)]
    nonmembers = nonmembers[_balanced_indices(nonmembers.size, size, rng)]
    x = np.concatenate([members, nonmembers])
    mean, sd = float(np.mean(x)), float(np.std(x))
    sd = sd if sd > 0 else 1.0
    attacker = SVC(kernel="rbf", C=3, gamma="auto")
    attacker.fit(((x - mean) / sd)[:, None], np.r_[np.ones(size), np.zeros(size)])
    return float(np.mean(attacker.predict(((forget - mean) / sd)[:, None]) == 1))


# --------------------------------------------------------------------------
# Anamnesis index
# --------------------------------------------------------------------------


def _steps(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise ValueError(f"{name} must be a whole number of steps, got {value!r}.")
    if not np.isfinite(value) or value != int(value) or value < 0:
        raise ValueError(f"{name} must be a whole number of steps >= 0, got {value!r}.")
    return int(value)


def anamnesis_index(steps_unlearned: int, steps_oracle: int) -> float:
    """Anamnesis index ``AIN = rt(unlearned) / rt(retrained)``.

    ``rt(m)`` is the number of relearning steps (fine-tuning a COPY of ``m`` on the forget
    rows) until its forget loss is within 5% of the ORIGINAL model's forget loss, as
    counted by :func:`unlearnbench.tabular.anamnesis.relearn_steps`. Conventions of that count:

    - 0 when the model is already within 5% before any step (it is checked first). Here a
      count of 0 counts as 1, for both models: the reference code takes a step before its
      first check, so its count is never below 1, and the ratio stays defined. So
      ``AIN(0, 0) = 1`` and ``AIN(0, n) = 1 / n``.
    - ``max_steps + 1`` (the step budget plus one) when the model never gets back within 5%
      in the budget: the true count is larger than the budget, so a ratio involving such
      a count is a bound, not a measurement (two runs that both hit the budget give 1).

    Range: (0, inf). Direction: closest to 1. Below 1: the unlearned model relearns the
    forget rows faster than a model that never saw them, a sign that the information is
    still in the weights (the paper's concern: AIN << 1 is inadequate forgetting). Above
    1: it relearns more slowly than the retrained model, i.e. unlearning pushed it further
    away than never having seen the data (over-unlearning, which can itself leak that the
    rows were removed).

    Reference: Tarun et al. (2023), Sec. 5 ("Anamnesis Index"), with ``alpha = 5%``;
    reference code ``metrics.py``, ``ain`` / ``relearn_time``.
    Differences from the reference code: the reference relearns the models it is given IN
    PLACE (and the retrained one before the unlearned one); relearning here always runs on
    copies, and the counts are measured separately, so the order does not matter.
    """
    unlearned = max(_steps(steps_unlearned, "steps_unlearned"), 1)
    oracle = max(_steps(steps_oracle, "steps_oracle"), 1)
    return unlearned / oracle
