"""The MUSE suite (Shi et al., 2024): VerbMem and KnowMem on forget data, KnowMem on retain
data (utility), PrivLeak against the oracle, plus the privacy lens (six attacks) on the
PrivLeak forget vs holdout texts.

Roles read from the task's splits: ``verbmem_forget`` (prompt, gt), ``knowmem_forget_qa``,
``knowmem_retain_qa`` and their ``*_icl`` few-shot examples (question, answer),
``privleak_forget`` and ``privleak_holdout`` (text).
"""

from __future__ import annotations

from typing import Any

from unlearnbench.metrics import muse, privacy as attacks
from unlearnbench.suites import privacy as privacy_lens
from unlearnbench.suites.common import MetricRow, mean_metric, truncate
from unlearnbench.registry import register_suite
from unlearnbench.suites.base import LanguageModelSuite

KNOWMEM = {"forget": ("knowmem_forget_qa", "knowmem_forget_qa_icl"), "retain": ("knowmem_retain_qa", "knowmem_retain_qa_icl")}


def muse_rows() -> list[MetricRow]:
    return [
        MetricRow("verbmem_forget", "lower", "behavior", "100 x ROUGE-L F1 of 128-token continuations of forget text"),
        MetricRow("knowmem_forget", "lower", "behavior", "100 x ROUGE-L F1 of few-shot answers to forget QA"),
        MetricRow("privleak", "zero", "privacy", "(AUC - AUC_oracle) / AUC_oracle x 100, Min-K% forget vs holdout (MUSE orientation)"),
        *privacy_lens.rows(),
        MetricRow("knowmem_retain", "higher", "utility", "100 x ROUGE-L F1 of few-shot answers to retain QA"),
    ]


def muse_statistics(engine, splits: dict[str, Any], *, privacy: bool = True) -> dict[str, Any]:
    """Generations for VerbMem and KnowMem and token statistics for the privacy lens
    (left out with ``privacy=False``)."""
    verbmem = splits["verbmem_forget"]
    prompts = list(verbmem["prompt"])
    truths = [truncate(engine.tokenizer, gt, muse.VERBMEM_GT_TOKENS) for gt in verbmem["gt"]]
    knowmem = {}
    for which, (qa_role, icl_role) in KNOWMEM.items():
        icl = list(zip(splits[icl_role]["question"], splits[icl_role]["answer"]))
        qa = splits[qa_role]
        knowmem[which] = ([muse.knowmem_prompt(q, icl) for q in qa["question"]], list(qa["answer"]))
    stats: dict[str, Any] = {
        "verbmem_forget": {"generation": engine.generate(prompts, muse.VERBMEM_MAX_NEW_TOKENS, description="verbmem"),
                           "reference": truths},
    }
    for which, (questions, answers) in knowmem.items():
        stats[f"knowmem_{which}"] = {
            "generation": engine.generate(questions, muse.KNOWMEM_MAX_NEW_TOKENS, description=f"knowmem {which}"),
            "reference": answers,
        }
    if privacy:
        members = [("", t) for t in splits["privleak_forget"]["text"]]
        nonmembers = [("", t) for t in splits["privleak_holdout"]["text"]]
        stats["privacy"] = privacy_lens.statistics(engine, members, nonmembers)
    return stats


def muse_per_example(stats: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"privacy": privacy_lens.per_example(stats["privacy"])} if "privacy" in stats else {}
    scorers = {"verbmem_forget": muse.verbmem_scores, "knowmem_forget": muse.knowmem_scores, "knowmem_retain": muse.knowmem_scores}
    for name, score in scorers.items():
        s = stats[name]
        out[name] = {"score": score(s["generation"], s["reference"]).tolist(), "generation": list(s["generation"]),
                     "reference": list(s["reference"])}
    return out


def muse_aggregate(per_example: dict, oracle_per_example: dict | None, *, seed: int = 0,
                   n_resamples: int = 1000) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Flat MUSE metrics and 95% bootstrap CIs from per-example scores (pure: no model)."""
    metrics: dict[str, float] = {}
    ci: dict[str, list[float]] = {}
    for name in ("verbmem_forget", "knowmem_forget", "knowmem_retain"):
        mean_metric(metrics, ci, name, per_example[name]["score"], n_resamples=n_resamples, seed=seed)
    if "privacy" not in per_example:  # run without the privacy lens
        return metrics, ci
    oracle_privacy = oracle_per_example.get("privacy") if oracle_per_example else None
    privacy_lens.aggregate(per_example["privacy"], oracle_privacy, metrics, ci, seed=seed, n_resamples=n_resamples)
    if oracle_privacy is not None:
        member_u, nonmember_u = privacy_lens.attack_scores(per_example["privacy"], None, "min_k")
        member_r, nonmember_r = privacy_lens.attack_scores(oracle_privacy, None, "min_k")
        try:
            metrics["privleak"] = attacks.privleak(attacks.mia_auc(member_u, nonmember_u), attacks.mia_auc(member_r, nonmember_r))
            ci["privleak"] = list(attacks.privleak_bootstrap_ci(member_u, nonmember_u, member_r, nonmember_r,
                                                                n_resamples=n_resamples, seed=seed))
        except ValueError:
            # the oracle itself separates forget from holdout perfectly: PrivLeak is undefined
            # (the record shows null); with a sound oracle this needs a handful of examples
            metrics["privleak"] = float("nan")
    return metrics, ci


@register_suite("muse", summary="MUSE: VerbMem, KnowMem on forget and retain, PrivLeak")
class MuseSuite(LanguageModelSuite):
    name = "muse"
    rows = staticmethod(muse_rows)
    statistics = staticmethod(muse_statistics)
    per_example = staticmethod(muse_per_example)
    aggregate = staticmethod(muse_aggregate)
