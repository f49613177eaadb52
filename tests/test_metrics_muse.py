"""MUSE prompt, answer cut and VerbMem / KnowMem scores, checked against exact strings
and the rouge-score package directly -- never against our own output."""

from __future__ import annotations

import numpy as np
import pytest
from rouge_score import rouge_scorer

from unlearnbench import registry
from unlearnbench.metrics import muse, privacy
from unlearnbench.metrics.muse import (
    KNOWMEM_MAX_NEW_TOKENS,
    MIN_K,
    VERBMEM_GT_TOKENS,
    VERBMEM_MAX_NEW_TOKENS,
    knowmem_cut,
    knowmem_prompt,
    knowmem_scores,
    verbmem_scores,
)


def _rouge_l_f1_x100(prediction: str, reference: str) -> float:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return 100.0 * scorer.score(reference, prediction)["rougeL"].fmeasure


# ---------------------------------------------------------------- prompt


def test_knowmem_prompt_exact_string():
    prompt = knowmem_prompt("Who won?", [("Where?", "In Paris."), ("When?", "In 2023.")])
    assert prompt == (
        "Question: Where?\nAnswer: In Paris.\n\n"
        "Question: When?\nAnswer: In 2023.\n\n"
        "Question: Who won?\nAnswer: "
    )


def test_knowmem_prompt_without_examples_is_the_question_alone():
    assert knowmem_prompt("Who won?", []) == "Question: Who won?\nAnswer: "


def test_knowmem_prompt_rejects_a_malformed_example_naming_its_index():
    with pytest.raises(ValueError, match=r"icl_examples\[1\]"):
        knowmem_prompt("q", [("a", "b"), ("only one",)])


# ---------------------------------------------------------------- cut


@pytest.mark.parametrize(
    ("generation", "expected"),
    [
        (" Paris\n\nQuestion: next", "Paris"),
        (" Paris\nQuestion: next", "Paris"),
        (" Paris Question: next", "Paris"),
        (" Paris, in 2023\n\nmore", "Paris, in 2023"),
    ],
)
def test_knowmem_cut_stops_at_each_stop_string(generation, expected):
    assert knowmem_cut(generation) == expected


def test_knowmem_cut_stops_at_the_earliest_stop_string():
    assert knowmem_cut("A Question: B\n\nC") == "A"


def test_knowmem_cut_keeps_an_answer_without_stop_string_and_strips_it():
    assert knowmem_cut("  In Paris, France.\n") == "In Paris, France."


# ---------------------------------------------------------------- scores


def test_verbmem_scores_match_rouge_score_times_100():
    generations = ["the cat sat on the mat today", "completely different words", ""]
    truths = ["the cat sat on a mat", "the dog barked loudly", "nothing here"]
    expected = [_rouge_l_f1_x100(g, t) for g, t in zip(generations, truths)]
    assert verbmem_scores(generations, truths) == pytest.approx(expected)


def test_verbmem_does_not_stem():
    # "running" vs "runs": equal under the Porter stemmer, different without it.
    assert verbmem_scores(["running"], ["runs"]) == pytest.approx([0.0])


def test_knowmem_scores_cut_the_generation_before_scoring():
    generations = [" The Eiffel Tower\n\nQuestion: Who built it?\nAnswer: Eiffel", " in March 2021 Question: x"]
    answers = ["Eiffel Tower", "March 2021"]
    expected = [
        _rouge_l_f1_x100("The Eiffel Tower", "Eiffel Tower"),
        _rouge_l_f1_x100("in March 2021", "March 2021"),
    ]
    assert knowmem_scores(generations, answers) == pytest.approx(expected)


def test_knowmem_exact_answer_scores_100():
    assert knowmem_scores([" Paris\n\nQuestion: y"], ["Paris"]) == pytest.approx([100.0])


def test_muse_scores_reject_mismatched_lengths_and_non_strings():
    with pytest.raises(ValueError, match="generations has 1 examples but ground_truths has 2"):
        verbmem_scores(["a"], ["a", "b"])
    with pytest.raises(ValueError, match=r"answers\[0\]"):
        knowmem_scores(["a"], [None])


def test_muse_scores_return_float64_arrays():
    assert verbmem_scores(["a"], ["a"]).dtype == np.float64


# ---------------------------------------------------------------- constants and registry


def test_muse_constants_match_the_paper():
    assert (VERBMEM_MAX_NEW_TOKENS, VERBMEM_GT_TOKENS, KNOWMEM_MAX_NEW_TOKENS, MIN_K) == (128, 128, 32, 0.4)


def test_privacy_and_muse_metrics_are_registered_with_lens_and_direction():
    metrics = registry.entries("metric")
    expected = {
        "mia_loss": (privacy.loss_score, "privacy"),
        "mia_zlib": (privacy.zlib_score, "privacy"),
        "mia_min_k": (privacy.min_k_score, "privacy"),
        "mia_min_k_plus_plus": (privacy.min_k_plus_plus_score, "privacy"),
        "mia_reference": (privacy.reference_score, "privacy"),
        "mia_gradnorm": (privacy.gradnorm_score, "privacy"),
        "mia_auc": (privacy.mia_auc, "privacy"),
        "privleak": (privacy.privleak, "privacy"),
        "verbmem_forget": (muse.verbmem_scores, "behavior"),
        "knowmem_forget": (muse.knowmem_scores, "behavior"),
        "knowmem_retain": (muse.knowmem_scores, "utility"),
    }
    for name, (fn, lens) in expected.items():
        assert metrics[name].obj is fn, name
        assert metrics[name].info["lens"] == lens, name
    assert metrics["privleak"].info["direction"] == "closest to 0"
    assert metrics["knowmem_forget"].info["direction"] == "lower"
    assert metrics["knowmem_retain"].info["direction"] == "higher"
