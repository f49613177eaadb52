"""Membership-inference attacks (MIA) on language models, as pure functions of arrays.

Each ``*_score`` function turns numbers the scoring engine (or anyone else)
already computed -- per-example NLLs, per-token log-probabilities, gradient
norms -- into one attack score per example. :func:`mia_auc` then measures how
well a score separates members (e.g. the forget set) from non-members (e.g. a
holdout set the model never saw), and :func:`privleak` compares that AUC with
the AUC of the retrained (oracle) model, as MUSE does.

Sign convention (everywhere in this module)
-------------------------------------------
**Higher score = more likely a member.** A loss is therefore negated
(``loss_score = -nll``), and :func:`mia_auc` labels members 1, so a model that
memorised its members gets an AUC near 1 and a model that cannot tell members
from non-members gets 0.5. (MUSE orients its AUC the other way; see
:func:`privleak`.)

Input conventions
-----------------
``nll``: the MEAN per-token negative log-likelihood of each text, one number
per example. ``token_logprobs``: one 1-D array per example with
``log p(x_t | x_<t)`` for each scored token (examples may differ in length).

References
----------
- LOSS: Yeom et al., 2018, "Privacy Risk in Machine Learning: Analyzing the
  Connection to Overfitting".
- Zlib and reference-model attacks: Carlini et al., 2021, "Extracting Training
  Data from Large Language Models" (USENIX Security); reference model as a
  likelihood-ratio attack: Mireshghallah et al., 2022, "Quantifying Privacy
  Risks of Masked Language Models Using Membership Inference Attacks".
- Min-K% Prob: Shi et al., 2024, "Detecting Pretraining Data from Large
  Language Models" (ICLR).
- Min-K%++: Zhang et al., 2024, "Min-K%++: Improved Baseline for Detecting
  Pre-Training Data from Large Language Models" (reference code:
  github.com/zjysteven/mink-plus-plus).
- Gradient norm: as used for LLM MIA benchmarks, e.g. Duan et al., 2024, "Do
  Membership Inference Attacks Work on Large Language Models?" (MIMIR).
- MUSE PrivLeak: Shi et al., 2024, "MUSE: Machine Unlearning Six-Way
  Evaluation for Language Models" (reference code: github.com/swj0419/muse_bench).
- Percentile bootstrap: Efron & Tibshirani, 1993, "An Introduction to the
  Bootstrap", ch. 13.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import log_softmax
from scipy.stats import rankdata

from unlearnbench.metrics.behavior import (
    _as_float_array,
    _check_finite,
    _check_same_length,
    _check_strings,
    _first_bad_index,
    _fmt_index,
    _nll_1d,
)
from unlearnbench.metrics.stats import as_float64, bootstrap_distribution, check_bootstrap_args, percentile_interval

__all__ = [
    "ATTACKS",
    "MIN_K",
    "loss_score",
    "zlib_score",
    "min_k_score",
    "min_k_plus_plus_score",
    "reference_score",
    "gradnorm_score",
    "token_distribution_moments",
    "mia_auc",
    "privleak",
    "attack_auc_bootstrap_ci",
    "privleak_bootstrap_ci",
]

#: Default fraction of tokens for Min-K% / Min-K%++ (MUSE uses Min-40%).
MIN_K = 0.4

#: The attacks in this module: name -> what the score is (higher = more likely a member).
ATTACKS: dict[str, str] = {
    "loss": "-mean token NLL (Yeom et al., 2018)",
    "zlib": "-mean token NLL / zlib-compressed length of the text in bytes (Carlini et al., 2021)",
    "min_k": "mean of the lowest k fraction of token log-probs, Min-K% Prob (Shi et al., 2024)",
    "min_k_plus_plus": "mean of the lowest k fraction of standardised token log-probs, Min-K%++ (Zhang et al., 2024)",
    "reference": "-(NLL under the model - NLL under a reference model that never saw the data) (Carlini et al., 2021)",
    "gradnorm": "-norm of the per-example loss gradient w.r.t. the parameters",
}

# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _scores_1d(values: ArrayLike, name: str) -> np.ndarray:
    arr = _as_float_array(values, name, ndim=1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty: an attack AUC needs at least one member and one non-member.")
    _check_finite(arr, name, what="attack score")
    return arr


def _check_k(k: float) -> float:
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)) or not (0.0 < k <= 1.0):
        raise ValueError(f"k must be a fraction in (0, 1] (MUSE uses 0.4 for Min-40%), got {k!r}.")
    return float(k)


def _token_arrays(values: Sequence[ArrayLike], name: str, what: str) -> list[np.ndarray]:
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of 1-D arrays (one per example), got a string.")
    if isinstance(values, np.ndarray) and values.ndim != 2 and values.dtype != object:
        raise ValueError(
            f"{name} must be a sequence of 1-D arrays (one per example), got an array of shape {values.shape}."
        )
    out = []
    for i, row in enumerate(values):
        try:
            arr = np.asarray(row, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name}[{i}] could not be converted to a float64 array ({err}).") from None
        if arr.ndim != 1:
            raise ValueError(
                f"{name}[{i}] has shape {arr.shape}: each example needs a 1-D array with one {what} per token."
            )
        if arr.size == 0:
            raise ValueError(
                f"{name}[{i}] is empty: the example has no scored tokens. Drop it, or check the "
                "scoring engine (a text shorter than two tokens has no next-token predictions)."
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            j = int(np.argmax(bad))
            raise ValueError(f"{name}[{i}][{j}] is {float(arr[j])!r}: every {what} must be a finite number.")
        out.append(arr)
    return out


def _check_unit_interval(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.") from None
    if not (0.0 <= v <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} is {v!r}: an AUC must lie in [0, 1] (as returned by mia_auc).")
    return v


# --------------------------------------------------------------------------
# Attack scores (higher = more likely a member)
# --------------------------------------------------------------------------


def loss_score(nll: ArrayLike) -> np.ndarray:
    """LOSS attack: ``score_i = -nll_i``.

    ``nll_i`` is the mean per-token NLL of text ``i``. Members were trained on,
    so they tend to have lower loss and a higher score.

    Range: (-inf, 0] for non-negative NLLs. Direction: higher = more likely a
    member; on its own a score has no better/worse, only its AUC
    (:func:`mia_auc`) does.

    Reference: Yeom et al. (2018); MUSE's "PPL" attack (Shi et al., 2024).
    Differences from the reference code: MUSE ranks by the loss itself and
    orients the AUC the other way; the ordering is the same.
    """
    return -_nll_1d(nll, "nll")


def zlib_score(nll: ArrayLike, texts: Sequence[str]) -> np.ndarray:
    """Zlib attack: loss calibrated by the text's compressibility.

    Formula: ``score_i = -(nll_i / len(zlib.compress(texts_i.encode("utf-8"))))``,
    the mean token NLL over the zlib-compressed size in bytes (default
    compression level). Repetitive, easily compressed text has low loss for
    every model; dividing by its zlib length discounts that.

    Range: (-inf, 0] for non-negative NLLs. Direction: higher = more likely a
    member.

    Reference: Carlini et al. (2021), "zlib" membership metric; MUSE's
    "PPL/zlib" attack (loss over zlib length, as here).
    Differences from the reference code: none beyond the sign.
    """
    arr = _nll_1d(nll, "nll")
    _check_strings(texts, "texts")
    _check_same_length(arr, "nll", texts, "texts")
    zlib_lengths = np.array([len(zlib.compress(t.encode("utf-8"))) for t in texts], dtype=np.float64)
    return -(arr / zlib_lengths)


def _lowest_k_count(n_tokens: int, k: float) -> int:
    # floor, as the reference code (int(len * ratio)), but never zero tokens:
    # the reference averages an empty slice (NaN) for texts shorter than 1/k.
    return max(1, int(k * n_tokens))


def _mean_lowest_k(values: np.ndarray, k: float) -> float:
    count = _lowest_k_count(values.size, k)
    return float(np.mean(np.partition(values, count - 1)[:count]))


def min_k_score(token_logprobs: Sequence[ArrayLike], k: float = MIN_K) -> np.ndarray:
    """Min-K% Prob attack: mean of the lowest ``k`` fraction of token log-probabilities.

    Formula: with ``n`` scored tokens and ``m = max(1, floor(k * n))``,
    ``score = (1/m) * sum of the m smallest log p(x_t | x_<t)``. Members have
    few very unlikely ("outlier") tokens, so their lowest log-probs are less
    negative. ``token_logprobs`` holds one 1-D array per example.

    Range: (-inf, 0]. Direction: higher = more likely a member.

    Reference: Shi et al. (2024), "Detecting Pretraining Data from Large
    Language Models", Min-K% Prob; MUSE's PrivLeak uses k = 0.4 ("Min-40%").
    Differences from the reference code: the token count is
    ``floor(k * n)`` as there, but at least one token -- the reference takes
    the mean of an empty slice (NaN) for texts with fewer than ``1/k`` tokens.
    An example with no tokens raises ``ValueError``. The sign is kept as a
    log-probability (MUSE negates it and flips the AUC; same ranking). The
    suites pass the text's own tokens (the end token is not text; MUSE's code
    scores the text without one, open-unlearning's includes the EOS label).
    """
    k = _check_k(k)
    rows = _token_arrays(token_logprobs, "token_logprobs", "log-probability")
    return np.array([_mean_lowest_k(row, k) for row in rows], dtype=np.float64)


def min_k_plus_plus_score(
    token_logprobs: Sequence[ArrayLike],
    token_mu: Sequence[ArrayLike],
    token_sigma: Sequence[ArrayLike],
    k: float = MIN_K,
) -> np.ndarray:
    """Min-K%++ attack: Min-K% over log-probabilities standardised by the model's own distribution.

    Formula: for each token ``z_t = (log p(x_t | x_<t) - mu_t) / sigma_t`` with
    ``mu_t = E_{v~p(.|x_<t)}[log p(v | x_<t)]`` and ``sigma_t`` the standard
    deviation of ``log p(v | x_<t)`` under the same distribution (moments of
    the model's full next-token distribution; see
    :func:`token_distribution_moments`). Then, with ``m = max(1, floor(k * n))``,
    ``score = mean of the m smallest z_t``. Members sit near local maxima of
    the likelihood, so their tokens score high relative to the alternatives.

    ``sigma_t == 0`` (a distribution that is uniform over its support, e.g.
    one-hot) gives ``z_t = 0``: every token with non-zero probability then has
    ``log p = mu_t`` exactly, so the token is exactly typical. (The reference
    code divides by zero there and produces NaN.)

    Range: real numbers, typically within a few units of 0. Direction:
    higher = more likely a member.

    Reference: Zhang et al. (2024), Min-K%++, Eq. (2)-(3); reference code
    github.com/zjysteven/mink-plus-plus.
    Differences from the reference code: at least one token is averaged (the
    reference takes ``floor(k * n)``, an empty slice for short texts), and
    ``sigma_t == 0`` gives ``z_t = 0`` instead of NaN / inf. The suites pass
    the text's own tokens, without the end token open-unlearning includes.
    """
    k = _check_k(k)
    logprobs = _token_arrays(token_logprobs, "token_logprobs", "log-probability")
    mus = _token_arrays(token_mu, "token_mu", "mean log-probability")
    sigmas = _token_arrays(token_sigma, "token_sigma", "standard deviation")
    _check_same_length(logprobs, "token_logprobs", mus, "token_mu")
    _check_same_length(logprobs, "token_logprobs", sigmas, "token_sigma")
    scores = np.empty(len(logprobs), dtype=np.float64)
    for i, (lp, mu, sigma) in enumerate(zip(logprobs, mus, sigmas)):
        if not (lp.shape == mu.shape == sigma.shape):
            raise ValueError(
                f"example {i}: token_logprobs[{i}] has {lp.size} tokens, token_mu[{i}] {mu.size} and "
                f"token_sigma[{i}] {sigma.size}; they must describe the same tokens."
            )
        if (sigma < 0).any():
            j = int(np.argmax(sigma < 0))
            raise ValueError(
                f"token_sigma[{i}][{j}] is {float(sigma[j])!r}: a standard deviation cannot be negative."
            )
        degenerate = sigma == 0
        z = np.where(degenerate, 0.0, (lp - mu) / np.where(degenerate, 1.0, sigma))
        scores[i] = _mean_lowest_k(z, k)
    return scores


def reference_score(nll: ArrayLike, nll_reference: ArrayLike) -> np.ndarray:
    """Reference-model attack: ``score_i = -(nll_i - nll_reference_i)``.

    ``nll_reference`` is the mean token NLL of the same texts under a
    reference model that never saw them (here usually the oracle, retrained
    without the forget set). The difference removes how hard each text is in
    general and keeps what the target model learned about it specifically.

    Range: real numbers. Direction: higher = more likely a member.

    Reference: Carlini et al. (2021), "comparing to other neural language
    models"; Mireshghallah et al. (2022), likelihood-ratio attack.
    Differences from the reference code: MUSE's "PPL/ref" key uses a ratio to
    a lower-cased copy of the text rather than a second model; this is the
    two-model difference of Carlini et al.
    """
    arr = _nll_1d(nll, "nll")
    ref = _nll_1d(nll_reference, "nll_reference")
    _check_same_length(arr, "nll", ref, "nll_reference")
    return -(arr - ref)


def gradnorm_score(grad_norms: ArrayLike) -> np.ndarray:
    """Gradient-norm attack: ``score_i = -||grad_theta L(x_i)||``.

    ``grad_norms`` holds the norm of each example's loss gradient with respect
    to the model parameters (computed elsewhere). Training drives members
    towards stationary points, so their gradients tend to be smaller.

    Range: (-inf, 0]. Direction: higher = more likely a member.

    Reference: gradient-norm MIA as evaluated for LLMs in MIMIR (Duan et al.,
    2024) and in unlearning benchmarks (OpenUnlearning).
    Differences from the reference code: none beyond the sign. Which norm is
    the caller's choice: the scoring engine takes, by default, the mean over
    parameter tensors of each tensor's L2 norm, as MIMIR and open-unlearning
    do (``--gradnorm-norm global``: one L2 norm over all parameters), of the
    mean NLL of the text's own tokens; the record's ``model.scoring`` says which.
    """
    arr = _as_float_array(grad_norms, "grad_norms", ndim=1)
    _check_finite(arr, "grad_norms", what="gradient norm")
    if (arr < 0).any():
        i = _first_bad_index(arr < 0)
        raise ValueError(f"grad_norms[{_fmt_index(i)}] is {float(arr[i])!r}: a norm cannot be negative.")
    return -arr


# --------------------------------------------------------------------------
# Moments of the next-token distribution (reference for the chunked engine)
# --------------------------------------------------------------------------


def token_distribution_moments(logits: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of ``log p(v)`` under ``p = softmax(logits)``, naively.

    Formula: with ``log p = log_softmax(logits)`` over the last axis (size V),
    ``mu = sum_v p(v) log p(v)`` (minus the entropy) and
    ``sigma = sqrt(sum_v p(v) (log p(v) - mu)^2)``. Entries with ``p(v) = 0``
    (logit ``-inf``, e.g. a masked vocabulary slot) contribute nothing.

    Input: a numpy array or torch tensor of shape ``(..., V)``; computed in
    float64 on the CPU, materialising the full log-softmax. Returns two float64
    numpy arrays of shape ``(...)``. This is the exact reference for the
    chunked implementation in the scoring engine, which must not hold a
    B x T x V tensor; use it on small inputs.

    Range: ``mu <= 0``, ``sigma >= 0``; ``sigma = 0`` when ``p`` is uniform over
    its support. Used by :func:`min_k_plus_plus_score`.

    Reference: Zhang et al. (2024), Min-K%++, Eq. (2).
    Differences from the reference code: the reference computes the variance
    as ``E[(log p)^2] - mu^2`` (can cancel to slightly negative); here it is
    the centred sum, which is non-negative.
    """
    arr = as_float64(logits, "logits")
    if arr.ndim < 1 or arr.shape[-1] == 0:
        raise ValueError(f"logits must have shape (..., V) with V >= 1, got shape {arr.shape}.")
    bad = np.isnan(arr) | (arr == np.inf)
    if bad.any():
        i = _first_bad_index(bad)
        raise ValueError(
            f"logits[{_fmt_index(i)}] is {float(arr[i])!r}: logits must be finite (-inf is allowed for masked entries)."
        )
    all_masked = np.all(arr == -np.inf, axis=-1)
    if all_masked.any():
        i = _first_bad_index(all_masked)
        raise ValueError(f"logits[{_fmt_index(i)}] is -inf everywhere: there is no distribution to take moments of.")
    logp = log_softmax(arr, axis=-1)
    p = np.exp(logp)
    support = p > 0
    safe_logp = np.where(support, logp, 0.0)
    mu = np.sum(np.where(support, p * safe_logp, 0.0), axis=-1)
    var = np.sum(np.where(support, p * (safe_logp - mu[..., None]) ** 2, 0.0), axis=-1)
    return mu, np.sqrt(var)


# --------------------------------------------------------------------------
# AUC and PrivLeak
# --------------------------------------------------------------------------


def mia_auc(member_scores: ArrayLike, nonmember_scores: ArrayLike) -> float:
    """ROC AUC of an attack score separating members (label 1) from non-members (label 0).

    Formula: ``AUC = P(s_member > s_nonmember) + 0.5 P(s_member = s_nonmember)``
    over all member / non-member pairs (``sklearn.metrics.roc_auc_score``).

    Range: [0, 1]. 0.5 = the attack cannot tell them apart; 1 = every member
    scores above every non-member. Direction: for an unlearned model's forget
    set (members) vs a holdout (non-members), closest to the oracle's AUC
    (about 0.5) is best; see :func:`privleak`.

    Reference: MUSE (Shi et al., 2024) PrivLeak uses this AUC (with the
    opposite orientation, ``1 - mia_auc``).
    Differences from the reference code: orientation only (members = 1,
    higher score = member).
    """
    from sklearn.metrics import roc_auc_score

    members = _scores_1d(member_scores, "member_scores")
    nonmembers = _scores_1d(nonmember_scores, "nonmember_scores")
    labels = np.concatenate([np.ones(members.size), np.zeros(nonmembers.size)])
    return float(roc_auc_score(labels, np.concatenate([members, nonmembers])))


def _muse_auc(member_auc: float, name: str) -> float:
    # MUSE labels the holdout texts 1 and ranks by a member-high score, so its
    # AUC is ours reflected: AUC_MUSE = 1 - AUC_member.
    return 1.0 - _check_unit_interval(member_auc, name)


def privleak(auc_unlearned: float, auc_retrain: float) -> float:
    """MUSE PrivLeak: relative gap between the unlearned and the retrained model's MIA AUC.

    Formula: ``PrivLeak = (AUC_u - AUC_r) / AUC_r * 100`` with MUSE's AUC
    orientation ``AUC = 1 - a`` where ``a`` is our member AUC
    (:func:`mia_auc` on forget = members vs holdout = non-members). Pass our
    AUCs: ``auc_unlearned`` for the unlearned model, ``auc_retrain`` for the
    retrained (oracle) model scored on the same texts.

    MUSE's orientation: a model that memorised the forget set ranks forget
    texts as members, our AUC is about 1, MUSE's about 0, and PrivLeak about
    -100. So: 0 is ideal (the unlearned model leaks as much as the retrained
    one); large negative = under-unlearning (still leaks membership); large
    positive = over-unlearning (forget texts look *less* familiar than unseen
    ones, which itself reveals membership).

    Range: [-100, inf) -- bounded by ``(1 - AUC_r) / AUC_r * 100`` above.
    Direction: closest to 0 is best.

    Reference: MUSE (Shi et al., 2024), Sec. 3 "C3. No privacy leakage";
    Min-K% (k = 0.4) scores, forget vs holdout.
    Differences from the reference code: the reference uses precomputed
    constants for ``AUC_r``; here it is computed from the oracle model, so
    pass it explicitly. Raises ``ValueError`` when ``AUC_r`` (MUSE
    orientation) is 0, i.e. the retrained model itself ranks every forget text
    as a member (our ``auc_retrain == 1``): the ratio is undefined.
    """
    muse_u = _muse_auc(auc_unlearned, "auc_unlearned")
    muse_r = _muse_auc(auc_retrain, "auc_retrain")
    if muse_r == 0.0:
        raise ValueError(
            "auc_retrain is 1.0: the retrained (oracle) model separates forget from holdout perfectly, so "
            "its MUSE-orientation AUC is 0 and PrivLeak (a ratio to it) is undefined. Check that the oracle "
            "never saw the forget texts, or use more examples."
        )
    return (muse_u - muse_r) / muse_r * 100.0


# --------------------------------------------------------------------------
# Bootstrap confidence intervals
# --------------------------------------------------------------------------


def _rank_auc(members: np.ndarray, nonmembers: np.ndarray) -> np.ndarray:
    """Row-wise member AUC by Mann-Whitney U (average ranks for ties).

    ``members`` has shape ``(B, n1)``, ``nonmembers`` ``(B, n0)``; returns ``(B,)``.
    ``AUC = (R_1 - n1 (n1 + 1) / 2) / (n1 n0)`` with ``R_1`` the members' rank sum.
    """
    n1, n0 = members.shape[1], nonmembers.shape[1]
    ranks = rankdata(np.concatenate([members, nonmembers], axis=1), method="average", axis=1)
    rank_sum = ranks[:, :n1].sum(axis=1)
    return (rank_sum - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def attack_auc_bootstrap_ci(
    member_scores: ArrayLike,
    nonmember_scores: ArrayLike,
    n_resamples: int = 1000,
    seed: int | np.random.SeedSequence | None = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Stratified percentile bootstrap confidence interval of :func:`mia_auc`.

    Method: in each of ``n_resamples`` resamples, draw the members with
    replacement from the members and the non-members from the non-members
    (the group sizes stay fixed), compute the AUC (rank-based Mann-Whitney U,
    identical to ``roc_auc_score``), and return the ``(1-confidence)/2`` and
    ``(1+confidence)/2`` quantiles.

    Range: ``0 <= lo <= hi <= 1``. Reproducible for a fixed ``seed``.

    Reference: MUSE (Shi et al., 2024) reports bootstrap 95% CIs; Efron &
    Tibshirani (1993), ch. 13 (percentile interval).
    """
    members = _scores_1d(member_scores, "member_scores")
    nonmembers = _scores_1d(nonmember_scores, "nonmember_scores")
    n_resamples = check_bootstrap_args(n_resamples, confidence)
    aucs = bootstrap_distribution([members.size, nonmembers.size],
                                  lambda idx1, idx0: _rank_auc(members[idx1], nonmembers[idx0]), n_resamples, seed)
    return percentile_interval(aucs, confidence)


def privleak_bootstrap_ci(
    member_unlearned: ArrayLike,
    nonmember_unlearned: ArrayLike,
    member_retrain: ArrayLike,
    nonmember_retrain: ArrayLike,
    n_resamples: int = 1000,
    seed: int | np.random.SeedSequence | None = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Paired, stratified percentile bootstrap confidence interval of :func:`privleak`.

    The unlearned and the retrained model were scored on the SAME texts, so
    ``member_unlearned[i]`` and ``member_retrain[i]`` are the same forget text
    (likewise for the non-members). Each resample draws one set of member
    indices and one set of non-member indices (with replacement, group sizes
    fixed) and uses them for both models, so the interval reflects which texts
    were sampled once, not twice. PrivLeak is computed per resample from the
    two AUCs and the ``(1-confidence)/2``, ``(1+confidence)/2`` quantiles are
    returned.

    Range: ``lo <= hi``; identical score sets for both models give ``(0, 0)``.
    Reproducible for a fixed ``seed``. Resamples in which the retrained model
    separates perfectly (PrivLeak undefined there; see :func:`privleak`) are
    left out of the percentiles, which happens only with very few examples;
    if half or more of them are undefined, raises ``ValueError``.

    Reference: MUSE (Shi et al., 2024) reports bootstrap 95% CIs; Efron &
    Tibshirani (1993), ch. 13.
    """
    member_u = _scores_1d(member_unlearned, "member_unlearned")
    nonmember_u = _scores_1d(nonmember_unlearned, "nonmember_unlearned")
    member_r = _scores_1d(member_retrain, "member_retrain")
    nonmember_r = _scores_1d(nonmember_retrain, "nonmember_retrain")
    _check_same_length(member_u, "member_unlearned", member_r, "member_retrain")
    _check_same_length(nonmember_u, "nonmember_unlearned", nonmember_r, "nonmember_retrain")
    n_resamples = check_bootstrap_args(n_resamples, confidence)

    def muse_aucs(idx1, idx0):  # one (unlearned, retrained) pair per resample, on the same texts
        return np.stack([1.0 - _rank_auc(member_u[idx1], nonmember_u[idx0]),
                         1.0 - _rank_auc(member_r[idx1], nonmember_r[idx0])], axis=1)

    muse_u, muse_r = bootstrap_distribution([member_u.size, nonmember_u.size], muse_aucs, n_resamples, seed).T
    degenerate = muse_r == 0.0
    if degenerate.mean() >= 0.5:
        raise ValueError(
            f"In {int(degenerate.sum())} of {n_resamples} resamples the retrained (oracle) model separates "
            "forget from holdout perfectly, so PrivLeak is undefined there. Use more examples, or check "
            "that the oracle never saw the forget texts."
        )
    defined = ~degenerate
    return percentile_interval((muse_u[defined] - muse_r[defined]) / muse_r[defined] * 100.0, confidence)
