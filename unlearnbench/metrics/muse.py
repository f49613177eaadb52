"""MUSE helpers: the KnowMem prompt and answer cut, and VerbMem / KnowMem scores.

Pure functions of strings; generation (greedy, at most
``VERBMEM_MAX_NEW_TOKENS`` / ``KNOWMEM_MAX_NEW_TOKENS`` new tokens) and the
truncation of VerbMem ground truths to ``VERBMEM_GT_TOKENS`` tokens happen in
the scoring engine, which has the tokenizer. PrivLeak lives in
:mod:`unlearnbench.metrics.privacy` (:func:`~unlearnbench.metrics.privacy.privleak`).

Reference: Shi et al., 2024, "MUSE: Machine Unlearning Six-Way Evaluation for
Language Models"; reference code github.com/swj0419/muse_bench (released
evaluation) and the authors' development repository
(github.com/jaechan-repo/muse_bench, ``knowmem/get_rouge_qa.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unlearnbench.metrics.behavior import _check_same_length, _check_strings, rouge_l_f1
from unlearnbench.metrics.privacy import MIN_K

__all__ = [
    "VERBMEM_MAX_NEW_TOKENS",
    "VERBMEM_GT_TOKENS",
    "KNOWMEM_MAX_NEW_TOKENS",
    "KNOWMEM_STOP_STRINGS",
    "MIN_K",
    "knowmem_prompt",
    "knowmem_cut",
    "verbmem_scores",
    "knowmem_scores",
]

#: VerbMem: greedy continuation length in new tokens.
VERBMEM_MAX_NEW_TOKENS = 128
#: VerbMem: the ground-truth continuation is truncated to this many tokens.
VERBMEM_GT_TOKENS = 128
#: KnowMem: greedy answer length in new tokens.
KNOWMEM_MAX_NEW_TOKENS = 32
#: KnowMem: a generated answer ends before the first of these strings.
KNOWMEM_STOP_STRINGS = ("\n\n", "\nQuestion", "Question:")


def knowmem_prompt(question: str, icl_examples: Sequence[tuple[str, str]]) -> str:
    """Few-shot KnowMem prompt, in MUSE's format.

    Format: for each ``(q, a)`` in ``icl_examples``
    ``"Question: {q}\\nAnswer: {a}\\n\\n"``, then ``"Question: {question}\\nAnswer: "``
    -- note the trailing space after the final ``Answer:``, as in the
    reference code (the model continues after the space).

    Reference: MUSE (Shi et al., 2024), KnowMem; reference code
    ``run_completions`` in ``knowmem/get_rouge_qa.py`` (authors' repository).
    Differences from the reference code: none in the authors' repository.
    One copy of the released evaluation (``metrics/knowmem.py`` in a fork of
    swj0419/muse_bench) writes the separators of the in-context examples as
    the escaped two-character sequence backslash-n instead of newlines; the
    real newlines here follow the paper and the authors' code.
    """
    if not isinstance(question, str):
        raise ValueError(f"question must be a str, got {type(question).__name__} {question!r}.")
    if isinstance(icl_examples, (str, bytes)):
        raise ValueError("icl_examples must be a sequence of (question, answer) pairs, got a string.")
    parts = []
    for i, example in enumerate(icl_examples):
        if (
            not isinstance(example, (tuple, list))
            or len(example) != 2
            or not all(isinstance(x, str) for x in example)
        ):
            raise ValueError(
                f"icl_examples[{i}] is {example!r}: every in-context example must be a (question, answer) "
                "pair of strings."
            )
        q, a = example
        parts.append(f"Question: {q}\nAnswer: {a}\n\n")
    parts.append(f"Question: {question}\nAnswer: ")
    return "".join(parts)


def knowmem_cut(text: str) -> str:
    """Cut a generated KnowMem answer before the first stop string, and strip whitespace.

    Stop strings: ``"\\n\\n"``, ``"\\nQuestion"``, ``"Question:"`` -- whichever
    occurs first; the model has finished its answer and started the next
    few-shot block.

    Reference: MUSE (Shi et al., 2024); reference code
    ``get_prefix_before_words_occur``.
    Differences from the reference code: the result is stripped of leading
    and trailing whitespace (ROUGE-L ignores whitespace, so scores agree).
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__} {text!r}.")
    for stop in KNOWMEM_STOP_STRINGS:
        text = text.split(stop, 1)[0]
    return text.strip()


def verbmem_scores(generations: Sequence[str], ground_truths: Sequence[str]) -> np.ndarray:
    """Per-example MUSE VerbMem: ``100 x ROUGE-L F1`` of a continuation against the true one.

    Formula: ``100 * F1_ROUGE-L(generation_i, ground_truth_i)`` with the
    rouge-score tokenizer, no stemmer (:func:`~unlearnbench.metrics.behavior.rouge_l_f1`).
    ``generations`` are greedy continuations of the VerbMem prompts (at most
    ``VERBMEM_MAX_NEW_TOKENS`` tokens, prompt not included); ``ground_truths``
    are the true continuations truncated to ``VERBMEM_GT_TOKENS`` tokens.
    MUSE's VerbMem is the mean of these values.

    Range: [0, 100]. Direction: lower is better on the forget set (less
    verbatim memorisation); the retrained model gives the target level.

    Reference: MUSE (Shi et al., 2024), "C1. No verbatim memorization".
    Differences from the reference code: none. Where published codes disagree,
    MUSE's choice is kept: no stemmer (open-unlearning's evaluator stems with
    Porter), the score in [0, 100] (open-unlearning reports [0, 1]) and the
    ground truth cut to its first ``VERBMEM_GT_TOKENS`` tokens (an evaluator
    that compares with the whole passage scores a 128-token continuation lower).
    """
    _check_strings(generations, "generations")
    _check_strings(ground_truths, "ground_truths")
    _check_same_length(generations, "generations", ground_truths, "ground_truths")
    return 100.0 * rouge_l_f1(list(generations), list(ground_truths), use_stemmer=False)


def knowmem_scores(generations: Sequence[str], answers: Sequence[str]) -> np.ndarray:
    """Per-example MUSE KnowMem: ``100 x ROUGE-L F1`` of the cut answer against the true answer.

    Formula: ``100 * F1_ROUGE-L(knowmem_cut(generation_i), answer_i)``, no
    stemmer. ``generations`` are greedy continuations (at most
    ``KNOWMEM_MAX_NEW_TOKENS`` tokens) of :func:`knowmem_prompt`; they are cut
    here with :func:`knowmem_cut`. MUSE's KnowMem is the mean of these values.

    Range: [0, 100]. Direction: lower is better on forget QA (the knowledge is
    gone); higher is better on retain QA (utility).

    Reference: MUSE (Shi et al., 2024), "C2. No knowledge memorization" and
    "C4. Utility preservation".
    Differences from the reference code: none (the cut is also stripped,
    which does not change ROUGE-L). As for VerbMem, MUSE's choices where codes
    disagree: no stemmer, [0, 100].
    """
    _check_strings(generations, "generations")
    _check_strings(answers, "answers")
    _check_same_length(generations, "generations", answers, "answers")
    return 100.0 * rouge_l_f1([knowmem_cut(g) for g in generations], list(answers), use_stemmer=False)
