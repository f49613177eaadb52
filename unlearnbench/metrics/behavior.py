"""Behavioural metrics for LLM unlearning (TOFU-style), as pure functions of arrays.

Every function here takes numbers that the scoring engine (or anyone else)
already computed -- negative log-likelihoods, argmax hit vectors, generated
strings -- and returns per-example arrays or a summary float. Nothing here
touches a model, a task or torch.

Input conventions
-----------------
``nll`` arrays hold ``L(a|q)``: the MEAN per-token negative log-likelihood of an
answer given its question (teacher forced), one number per example. Perturbed
answers come as a 2-D array of shape ``(n_examples, n_perturbations)``.

References
----------
- TOFU: Maini et al., 2024, "TOFU: A Task of Fictitious Unlearning for LLMs"
  (reference code: github.com/locuslab/tofu).
- MUSE: Shi et al., 2024, "MUSE: Machine Unlearning Six-Way Evaluation for
  Language Models".
- ROUGE: Lin, 2004, "ROUGE: A Package for Automatic Evaluation of Summaries".
- Exact memorization: Tirumala et al., 2022, "Memorization Without
  Overfitting: Analyzing the Training Dynamics of Large Language Models".
- Extraction strength: Wang et al., 2025, "Towards Effective Evaluations and
  Comparisons for LLM Unlearning Methods" (ICLR), after Carlini et al., 2021;
  reference code in OpenUnlearning (github.com/locuslab/open-unlearning).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from scipy.special import logsumexp

__all__ = [
    "answer_probability",
    "normalized_probability",
    "truth_ratio",
    "truth_ratio_forget_score",
    "truth_ratio_retain_score",
    "rouge_l_recall",
    "rouge_l_f1",
    "forget_quality",
    "model_utility",
    "exact_memorization",
    "extraction_strength",
]


# --------------------------------------------------------------------------
# Validation helpers (errors are for people: name the argument and the index)
# --------------------------------------------------------------------------


def _first_bad_index(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _fmt_index(idx: tuple[int, ...]) -> str:
    return ", ".join(str(i) for i in idx)


def _as_float_array(values: ArrayLike, name: str, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be a numeric array of {ndim} dimension(s); could not convert it "
            f"to float64 ({err})."
        ) from None
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must be {ndim}-dimensional, got shape {arr.shape}."
            + (
                " Pass one row per example and one column per perturbed answer."
                if ndim == 2
                else ""
            )
        )
    return arr


def _check_finite(arr: np.ndarray, name: str, what: str = "negative log-likelihood") -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        i = _first_bad_index(bad)
        hint = (
            " Check the scoring engine for answers with zero tokens (a mean over no tokens) "
            "or an overflow."
            if what == "negative log-likelihood"
            else ""
        )
        raise ValueError(f"{name}[{_fmt_index(i)}] is {float(arr[i])!r}: every {what} must be a finite number.{hint}")


def _nll_1d(values: ArrayLike, name: str) -> np.ndarray:
    arr = _as_float_array(values, name, ndim=1)
    _check_finite(arr, name)
    return arr


def _nll_2d(values: ArrayLike, name: str) -> np.ndarray:
    arr = _as_float_array(values, name, ndim=2)
    if arr.shape[0] > 0 and arr.shape[1] == 0:
        raise ValueError(
            f"{name} has shape {arr.shape}: every example needs at least one perturbed answer."
        )
    _check_finite(arr, name)
    return arr


def _check_same_length(a: np.ndarray | Sequence, name_a: str, b: np.ndarray | Sequence, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(
            f"{name_a} has {len(a)} examples but {name_b} has {len(b)}; "
            "they must describe the same examples in the same order."
        )


def _truth_ratios(tr: ArrayLike, name: str) -> np.ndarray:
    """Validate truth ratios: 1-D, non-empty, no NaN, not negative (0 and +inf are allowed
    because ``truth_ratio`` can legitimately underflow/overflow to them)."""
    arr = _as_float_array(tr, name, ndim=1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty: a truth-ratio summary needs at least one example.")
    bad = np.isnan(arr) | (arr < 0)
    if bad.any():
        i = _first_bad_index(bad)
        raise ValueError(
            f"{name}[{_fmt_index(i)}] is {float(arr[i])!r}: a truth ratio must be a non-negative number "
            "(it is a ratio of probabilities); compute it with truth_ratio()."
        )
    return arr


# --------------------------------------------------------------------------
# Probabilities
# --------------------------------------------------------------------------


def answer_probability(nll: ArrayLike) -> np.ndarray:
    """Per-example probability of the answer, ``P(a|q) = exp(-L(a|q))``.

    Formula: ``p_i = exp(-nll_i)`` with ``nll_i`` the mean per-token NLL, i.e.
    the geometric mean of the per-token probabilities (length-normalised).
    Range: [0, 1] for non-negative NLLs. Direction: on the forget set lower
    means more forgetting; on retain data higher is better. TOFU's
    "Probability" is the mean of these values over examples.

    Reference: TOFU (Maini et al., 2024), Sec. 2.4 "Probability".
    Differences from the reference code: none.
    """
    arr = _nll_1d(nll, "nll")
    return np.exp(-arr)


def normalized_probability(nll_answer: ArrayLike, nll_perturbed: ArrayLike) -> np.ndarray:
    """Per-example probability of the answer normalised against perturbed (wrong) answers.

    Formula: ``P(a|q) / (P(a|q) + sum_j P(pert_j|q))`` with ``P = exp(-L)``,
    computed as ``exp(-L(a) - logsumexp([-L(a), -L(pert_1), ...]))`` so it
    stays finite and accurate when every probability underflows (e.g. NLL 800).

    Range: (0, 1]. Direction: higher is better on retain / real authors /
    world facts (the model prefers the correct answer). With k perturbations
    a model that cannot tell them apart scores ``1/(k+1)``.

    Reference: TOFU (Maini et al., 2024), Sec. 2.4 "Probability" on the real
    authors and world facts sets.
    Differences from the reference code: TOFU / OpenUnlearning compute the
    ratio in probability space (OpenUnlearning adds 1e-10 to the
    denominator), which underflows to 0/0 or 0 for long, unlikely answers;
    this function is exact in log space and adds no epsilon.
    """
    answer = _nll_1d(nll_answer, "nll_answer")
    perturbed = _nll_2d(nll_perturbed, "nll_perturbed")
    _check_same_length(answer, "nll_answer", perturbed, "nll_perturbed")
    log_probs = np.concatenate([-answer[:, None], -perturbed], axis=1)
    return np.exp(-answer - logsumexp(log_probs, axis=1))


# --------------------------------------------------------------------------
# Truth ratio
# --------------------------------------------------------------------------


def truth_ratio(nll_paraphrased: ArrayLike, nll_perturbed: ArrayLike) -> np.ndarray:
    """Per-example truth ratio: wrong answers' likelihood over the correct answer's.

    Formula: ``tr = exp(-mean_j L(pert_j|q)) / exp(-L(para|q))
    = exp(L(para|q) - mean_j L(pert_j|q))`` -- the geometric mean of the
    perturbed (wrong) answers' length-normalised probabilities divided by that
    of the paraphrased (correct) answer. On real authors / world facts pass
    the NLL of the answer itself as ``nll_paraphrased``.

    Range: [0, inf). ``tr < 1``: the model prefers the correct answer; ``tr ~ 1``:
    it cannot tell them apart. Summaries: :func:`truth_ratio_forget_score`
    (forget set) and :func:`truth_ratio_retain_score` (other sets). Values
    overflow to ``inf`` / underflow to ``0`` only when the NLL difference
    exceeds ~709 nats; both summaries handle those limits.

    Reference: TOFU (Maini et al., 2024), Sec. 2.4 "Truth Ratio".
    Differences from the reference code: TOFU's code stores the reciprocal
    ``exp(mean L(pert) - L(para))`` and inverts it in the summaries;
    OpenUnlearning computes ``P(pert) / (P(para) + 1e-10)``, which is
    distorted when ``P(para)`` is tiny. Here the ratio is exact (log space,
    no epsilon) and always oriented as wrong-over-correct, as in the paper.
    """
    para = _nll_1d(nll_paraphrased, "nll_paraphrased")
    perturbed = _nll_2d(nll_perturbed, "nll_perturbed")
    _check_same_length(para, "nll_paraphrased", perturbed, "nll_perturbed")
    with np.errstate(over="ignore"):
        return np.exp(para - perturbed.mean(axis=1))


def truth_ratio_forget_score(tr: ArrayLike) -> float:
    """Forget-set summary of truth ratios: ``mean_i min(tr_i, 1/tr_i)``.

    Range: [0, 1]. Direction: higher is better on the forget set -- 1 means the
    model finds correct and wrong answers equally likely (nothing left to
    distinguish them), 0 means it strongly prefers one side.

    Reference: TOFU (Maini et al., 2024), Sec. 2.4 "Truth Ratio" (forget set).
    Differences from the reference code: OpenUnlearning uses
    ``1 / (tr + 1e-10)``; here ``tr = 0`` and ``tr = inf`` both give exactly 0.
    """
    arr = _truth_ratios(tr, "tr")
    with np.errstate(divide="ignore"):
        return float(np.mean(np.minimum(arr, 1.0 / arr)))


def truth_ratio_retain_score(tr: ArrayLike) -> float:
    """Retain / real-authors / world-facts summary of truth ratios: ``mean_i max(0, 1 - tr_i)``.

    Range: [0, 1]. Direction: higher is better -- the model keeps preferring the
    correct answer over the perturbed ones.

    Reference: TOFU (Maini et al., 2024), Sec. 2.4 "Truth Ratio".
    Differences from the reference code: none (TOFU writes it as
    ``max(0, 1 - 1/r)`` with ``r = 1/tr``).
    """
    arr = _truth_ratios(tr, "tr")
    return float(np.mean(np.maximum(0.0, 1.0 - arr)))


# --------------------------------------------------------------------------
# ROUGE-L
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _rouge_l_scorer(use_stemmer: bool):
    # Building the scorer is cheap but not free (tokenizer + stemmer set-up);
    # the scorer itself is stateless, so one per stemmer setting is shared.
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)


def _check_strings(values: Sequence[str], name: str) -> None:
    if isinstance(values, str):
        raise ValueError(f"{name} must be a sequence of strings, got a single string.")
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise ValueError(f"{name}[{i}] is {type(v).__name__} {v!r}: every entry must be a str.")


def _rouge_l(predictions: Sequence[str], references: Sequence[str], use_stemmer: bool, field: str) -> np.ndarray:
    _check_strings(predictions, "predictions")
    _check_strings(references, "references")
    _check_same_length(predictions, "predictions", references, "references")
    scorer = _rouge_l_scorer(bool(use_stemmer))
    # rouge_score's argument order is score(target, prediction).
    return np.array(
        [getattr(scorer.score(ref, pred)["rougeL"], field) for pred, ref in zip(predictions, references)],
        dtype=np.float64,
    )


def rouge_l_recall(
    predictions: Sequence[str], references: Sequence[str], use_stemmer: bool = True
) -> np.ndarray:
    """Per-example ROUGE-L recall of a generation against its reference answer.

    Formula: ``LCS(pred, ref) / |ref|`` over rouge-score tokens (lower-cased,
    non-alphanumerics dropped, Porter-stemmed when ``use_stemmer``), LCS = the
    longest common subsequence of tokens. Empty reference -> 0.

    Range: [0, 1]. Direction: higher means the answer is reproduced; lower is
    better on the forget set, higher on retain data.

    Reference: TOFU (Maini et al., 2024), Sec. 2.4 "ROUGE" (greedy generation
    vs. the answer, stemmer on); Lin (2004) for ROUGE-L.
    Differences from the reference code: none (same ``rouge_score`` scorer,
    ``rougeL`` -- not ``rougeLsum`` -- recall).
    """
    return _rouge_l(predictions, references, use_stemmer, "recall")


def rouge_l_f1(
    predictions: Sequence[str], references: Sequence[str], use_stemmer: bool = False
) -> np.ndarray:
    """Per-example ROUGE-L F-measure of a generation against its reference.

    Formula: with ``P = LCS/|pred|`` and ``R = LCS/|ref|``, ``F1 = 2PR/(P+R)``
    (0 when the LCS is empty), over rouge-score tokens.

    Range: [0, 1]. Direction: higher means more verbatim / knowledge overlap;
    lower is better on forget data, higher on retain data. MUSE reports
    ``100 x mean`` of this value (VerbMem, KnowMem).

    Reference: MUSE (Shi et al., 2024), VerbMem and KnowMem (ROUGE-L F1, no
    stemmer); Lin (2004).
    Differences from the reference code: none.
    """
    return _rouge_l(predictions, references, use_stemmer, "fmeasure")


# --------------------------------------------------------------------------
# Forget quality and model utility
# --------------------------------------------------------------------------


def forget_quality(tr_unlearned: ArrayLike, tr_oracle: ArrayLike) -> dict[str, float | int]:
    """TOFU forget quality: KS-test p-value between truth-ratio distributions.

    Formula: two-sided two-sample Kolmogorov-Smirnov test
    (``scipy.stats.ks_2samp``) between the truth ratios of the unlearned
    model on the forget set and those of the oracle (trained on the retain
    split only) on the same forget set. ``D = sup_x |F_unlearned(x) - F_oracle(x)|``.

    Returns a dict with ``forget_quality`` (the p-value, range [0, 1], higher is
    better: the distributions are indistinguishable), ``forget_quality_ks_statistic``
    (D, range [0, 1], lower is better), ``forget_quality_n`` and
    ``forget_quality_n_oracle`` (sample sizes). A p-value shrinks with sample
    size for the same D, so report D and n beside it.

    Reference: TOFU (Maini et al., 2024), Sec. 2.5 "Forget Quality".
    Differences from the reference code: TOFU feeds ``1/tr`` to the test; the
    KS statistic and p-value are invariant under that strictly monotone map,
    so the numbers agree. Here D and the sample sizes are returned as well.
    """
    unlearned = _truth_ratios(tr_unlearned, "tr_unlearned")
    oracle = _truth_ratios(tr_oracle, "tr_oracle")
    result = stats.ks_2samp(unlearned, oracle, alternative="two-sided")
    return {
        "forget_quality": float(result.pvalue),
        "forget_quality_ks_statistic": float(result.statistic),
        "forget_quality_n": int(unlearned.size),
        "forget_quality_n_oracle": int(oracle.size),
    }


def model_utility(values: Sequence[float]) -> float:
    """TOFU model utility: harmonic mean of the utility components.

    Formula: ``n / sum_i (1/v_i)``, and exactly 0 when any ``v_i`` is 0. Usually
    the 9 numbers {probability, ROUGE-L recall, truth-ratio retain score} on
    {retain, real authors, world facts}.

    Range: [0, max(v)] -- [0, 1] for the usual components. Direction: higher
    is better. The harmonic mean is dominated by the weakest component.

    Reference: TOFU (Maini et al., 2024), Sec. 2.5 "Model Utility"
    (reference code: ``scipy.stats.hmean``).
    Differences from the reference code: none for valid input; negative,
    non-finite or empty input raises ``ValueError`` instead of returning NaN.
    """
    if isinstance(values, (str, bytes)):
        raise ValueError("values must be a sequence of numbers, got a string.")
    arr = _as_float_array(values, "values", ndim=1)
    if arr.size == 0:
        raise ValueError("values is empty: model_utility needs at least one component (usually 9).")
    _check_finite(arr, "values", what="utility component")
    if (arr < 0).any():
        i = _first_bad_index(arr < 0)
        raise ValueError(
            f"values[{_fmt_index(i)}] is {float(arr[i])!r}: the harmonic mean is only defined for non-negative "
            "components (probabilities, ROUGE, truth-ratio scores)."
        )
    if (arr == 0).any():
        return 0.0
    return float(arr.size / np.sum(1.0 / arr))


# --------------------------------------------------------------------------
# Token-level memorization (from teacher-forced argmax hits)
# --------------------------------------------------------------------------


def _hit_vectors(argmax_hits: Sequence[ArrayLike]) -> list[np.ndarray]:
    if isinstance(argmax_hits, np.ndarray) and argmax_hits.ndim != 2:
        raise ValueError(
            "argmax_hits must be a sequence of 1-D hit vectors (one per example), "
            f"got an array of shape {argmax_hits.shape}."
        )
    out = []
    for i, hits in enumerate(argmax_hits):
        arr = np.asarray(hits)
        if arr.ndim != 1:
            raise ValueError(
                f"argmax_hits[{i}] has shape {arr.shape}: each example needs a 1-D vector with "
                "one entry per answer token."
            )
        if arr.dtype != np.bool_:
            if arr.size and not np.issubdtype(arr.dtype, np.number):
                raise ValueError(f"argmax_hits[{i}] has dtype {arr.dtype}: use bool or 0/1 values.")
            ok = (arr == 0) | (arr == 1)
            if not ok.all():
                j = int(np.argmin(ok))
                raise ValueError(
                    f"argmax_hits[{i}][{j}] is {arr[j].item()!r}: hits must be bool or 0/1 "
                    "(1 where the teacher-forced argmax equals the answer token)."
                )
            arr = arr.astype(np.bool_)
        out.append(arr)
    return out


def exact_memorization(argmax_hits: Sequence[ArrayLike]) -> np.ndarray:
    """Per-example exact memorization: fraction of answer tokens the model predicts.

    Formula: ``EM = (1/|y|) sum_t 1[argmax_v p(v | x, y_<t) = y_t]`` (teacher
    forced). Input: one 1-D bool / 0-1 vector per example, entry ``t`` true
    where the argmax at answer position ``t`` equals ``y_t``.

    Range: [0, 1]. Direction: lower is better on the forget set (less
    memorised), higher on retain data. An empty answer (``|y| = 0``) scores 0.

    Reference: Tirumala et al. (2022); as used in OpenUnlearning.
    Differences from the reference code: OpenUnlearning marks an empty answer
    as None and leaves it out of the mean; here it scores 0.0 so the output
    stays aligned with the examples (drop such examples upstream if needed).
    The suites pass the answer's own tokens (``SequenceScores.text_hits``): the
    end token is not text, while OpenUnlearning's evaluator counts the EOS
    label among the answer's tokens.
    """
    hits = _hit_vectors(argmax_hits)
    return np.array([h.mean() if h.size else 0.0 for h in hits], dtype=np.float64)


def extraction_strength(argmax_hits: Sequence[ArrayLike]) -> np.ndarray:
    """Per-example extraction strength: how short a prefix the model needs to reproduce the rest.

    Formula: ``ES = 1 - k*/|y|`` with ``k*`` the smallest ``k`` in ``[0, |y|]``
    such that the teacher-forced argmax reproduces ``y[k:]`` exactly, i.e.
    ``hits[k:]`` are all true. Equivalently ``ES`` = (length of the trailing run
    of hits) / ``|y|``. All hits -> 1.0; last token missed -> ``k* = |y|`` -> 0.0;
    empty answer -> 0.0.

    Range: [0, 1]. Direction: lower is better on the forget set, higher on
    retain data.

    Reference: Wang et al. (2025), after Carlini et al. (2021); OpenUnlearning.
    Differences from the reference code: OpenUnlearning searches ``k`` only in
    ``[0, |y|-1]`` and keeps the last ``k`` when no suffix matches, so a missed
    final token gives ``1/|y|`` there (an off-by-one); here the empty suffix
    (``k = |y|``) is the fallback, giving 0.0 as the definition intends (``k =
    |y|`` always qualifies). The suites pass the answer's own tokens, without
    the end token that OpenUnlearning's evaluator includes.
    """
    hits = _hit_vectors(argmax_hits)
    scores = np.zeros(len(hits), dtype=np.float64)
    for i, h in enumerate(hits):
        if h.size == 0:
            continue
        misses = np.flatnonzero(~h)
        trailing = h.size if misses.size == 0 else h.size - 1 - int(misses[-1])
        scores[i] = trailing / h.size
    return scores
