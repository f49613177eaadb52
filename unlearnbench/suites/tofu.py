"""The TOFU suite (Maini et al., 2024): probability, ROUGE-L, truth ratio on four splits,
forget quality and model utility, plus the privacy lens on forget vs holdout QA."""

from __future__ import annotations

from typing import Any

import numpy as np

from unlearnbench.metrics import behavior
from unlearnbench.suites import privacy as privacy_lens
from unlearnbench.suites.common import MetricRow, mean_metric
from unlearnbench.registry import register_suite
from unlearnbench.suites.base import LanguageModelSuite

EVAL_ROLES = {"forget": "forget_eval", "retain": "retain_eval", "real_authors": "real_authors_eval", "world_facts": "world_facts_eval"}
HAS_PARAPHRASE = ("forget", "retain")  # on these, "correct" is the paraphrased answer (TOFU)
MAX_NEW_TOKENS = 200


def tofu_rows() -> list[MetricRow]:
    rows = [
        MetricRow("forget_quality", "higher", "behavior", "KS-test p-value of forget truth ratios vs the oracle's"),
        MetricRow("model_utility", "higher", "utility", "harmonic mean of probability, ROUGE-L and truth ratio on retain, real authors, world facts"),
    ]
    for split in EVAL_ROLES:
        lens, direction = ("behavior", "lower") if split == "forget" else ("utility", "higher")
        rows += [
            MetricRow(f"{split}_probability", direction, lens, "P(answer|question)" + (" normalised over options" if split not in HAS_PARAPHRASE else "")),
            MetricRow(f"{split}_rouge_l_recall", direction, lens, "ROUGE-L recall of the greedy answer"),
            MetricRow(f"{split}_truth_ratio", "higher", lens,
                      "mean min(tr, 1/tr)" if split == "forget" else "mean max(0, 1 - tr)"),
        ]
    rows += [
        MetricRow("forget_exact_memorization", "lower", "behavior", "share of answer tokens the argmax reproduces"),
        MetricRow("forget_extraction_strength", "lower", "behavior", "1 - k*/|y|: how much of the answer a prefix unlocks"),
        MetricRow("forget_quality_ks_statistic", "lower", "behavior", "KS statistic D behind forget_quality"),
        MetricRow("forget_quality_n", "info", "behavior", "number of forget examples in the KS test", count=True),
    ]
    return rows + privacy_lens.rows()


def tofu_statistics(engine, splits: dict[str, Any], *, privacy: bool = True,
                    generate: bool = True) -> dict[str, dict[str, Any]]:
    """Per-example statistics of one model on the TOFU eval roles (computed once, shared);
    the privacy lens's statistics unless ``privacy=False``; the greedy generations (ROUGE-L)
    unless ``generate=False`` (teacher forcing only: the trajectory's statistics)."""
    requests: list[tuple[str, str]] = []
    layout: dict[str, dict[str, Any]] = {}
    for split, role in EVAL_ROLES.items():
        rows = splits[role]
        questions = list(rows["question"])
        answers = list(rows["answer"])
        perturbed = [list(p) for p in rows["perturbed_answer"]]
        para = list(rows["paraphrased_answer"]) if split in HAS_PARAPHRASE else None
        requests += list(zip(questions, answers))
        if para is not None:
            requests += list(zip(questions, para))
        requests += [(q, p) for q, ps in zip(questions, perturbed) for p in ps]
        layout[split] = {"questions": questions, "answers": answers, "paraphrased": para, "perturbed": perturbed}
    engine.score(requests, description="teacher forcing")
    if generate:
        all_questions = [q for split in layout.values() for q in split["questions"]]
        engine.generate(all_questions, max_new_tokens=MAX_NEW_TOKENS, description="generating")

    stats = {}
    for split, parts in layout.items():
        qs = parts["questions"]
        answer_scores = engine.score(list(zip(qs, parts["answers"])))
        n_pert = {len(p) for p in parts["perturbed"]}
        if len(n_pert) != 1:
            raise ValueError(f"{split}: rows have different numbers of perturbed answers {sorted(n_pert)}.")
        pert_nll = np.array([[s.nll for s in engine.score([(q, p) for p in ps])] for q, ps in zip(qs, parts["perturbed"])])
        entry = {
            "nll_answer": np.array([s.nll for s in answer_scores]),
            "nll_perturbed": pert_nll,
            "hits_answer": [s.text_hits.astype(bool) for s in answer_scores],  # the answer's own tokens
            "answer": parts["answers"],
        }
        if generate:
            entry["generation"] = engine.generate(qs, max_new_tokens=MAX_NEW_TOKENS)
        if parts["paraphrased"] is not None:
            entry["nll_paraphrased"] = np.array([s.nll for s in engine.score(list(zip(qs, parts["paraphrased"])))])
        stats[split] = entry
    if privacy:
        stats["privacy"] = privacy_lens.statistics(engine, _qa_pairs(splits["forget"]), _qa_pairs(splits["holdout"]))
    return stats


def _qa_pairs(rows) -> list[tuple[str, str]]:
    return list(zip(rows["question"], rows["answer"]))


def tofu_per_example(stats: dict[str, dict[str, Any]]) -> dict[str, dict[str, list]]:
    """The per-example scores every aggregate is computed from (what goes beside a record)."""
    out = {"privacy": privacy_lens.per_example(stats["privacy"])} if "privacy" in stats else {}
    for split, s in stats.items():
        if split == "privacy":
            continue
        correct = s["nll_paraphrased"] if split in HAS_PARAPHRASE else s["nll_answer"]
        probability = (
            behavior.answer_probability(s["nll_answer"]) if split in HAS_PARAPHRASE
            else behavior.normalized_probability(s["nll_answer"], s["nll_perturbed"])
        )
        entry = {
            "probability": probability.tolist(),
            "rouge_l_recall": behavior.rouge_l_recall(s["generation"], s["answer"]).tolist(),
            "truth_ratio": behavior.truth_ratio(correct, s["nll_perturbed"]).tolist(),
            "generation": list(s["generation"]),
            "nll_answer": np.asarray(s["nll_answer"]).tolist(),
            "nll_perturbed": np.asarray(s["nll_perturbed"]).tolist(),
        }
        if split in HAS_PARAPHRASE:
            entry["nll_paraphrased"] = np.asarray(s["nll_paraphrased"]).tolist()
        if split == "forget":
            entry["exact_memorization"] = behavior.exact_memorization(s["hits_answer"]).tolist()
            entry["extraction_strength"] = behavior.extraction_strength(s["hits_answer"]).tolist()
        out[split] = entry
    return out


def tofu_aggregate(per_example: dict, oracle_per_example: dict | None, *, seed: int = 0,
                   n_resamples: int = 1000) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Flat metrics and 95% bootstrap CIs from per-example scores (pure: no model)."""
    metrics: dict[str, float] = {}
    ci: dict[str, list[float]] = {}

    def add(name: str, values, statistic=np.mean) -> None:
        mean_metric(metrics, ci, name, values, statistic=statistic, n_resamples=n_resamples, seed=seed)

    for split in EVAL_ROLES:
        s = per_example[split]
        add(f"{split}_probability", s["probability"])
        add(f"{split}_rouge_l_recall", s["rouge_l_recall"])
        summary = behavior.truth_ratio_forget_score if split == "forget" else behavior.truth_ratio_retain_score
        add(f"{split}_truth_ratio", s["truth_ratio"], statistic=summary)
        if split == "forget":
            add("forget_exact_memorization", s["exact_memorization"])
            add("forget_extraction_strength", s["extraction_strength"])
    utility_parts = [metrics[f"{split}_{m}"] for split in ("retain", "real_authors", "world_facts")
                     for m in ("probability", "rouge_l_recall", "truth_ratio")]
    metrics["model_utility"] = behavior.model_utility(utility_parts)
    if oracle_per_example is not None:
        fq = behavior.forget_quality(per_example["forget"]["truth_ratio"], oracle_per_example["forget"]["truth_ratio"])
        metrics.update({k: float(v) for k, v in fq.items() if k != "forget_quality_n_oracle"})
    if "privacy" in per_example:
        oracle_privacy = oracle_per_example.get("privacy") if oracle_per_example else None
        privacy_lens.aggregate(per_example["privacy"], oracle_privacy, metrics, ci, seed=seed, n_resamples=n_resamples)
    return metrics, ci


TRAJECTORY_UTILITY = "model_utility_teacher_forced"


def tofu_trajectory_rows() -> list[MetricRow]:
    """What ``--eval-every`` measures on TOFU: everything teacher forcing gives (no generation,
    so no ROUGE-L): forget quality itself, probability and truth ratio on the four splits, and
    model utility without its three ROUGE-L parts (a proxy, under its own name)."""
    kept = {"forget_quality", "forget_quality_ks_statistic"} | {
        f"{split}_{m}" for split in EVAL_ROLES for m in ("probability", "truth_ratio")}
    rows = [row for row in tofu_rows() if row.name in kept]
    return rows[:1] + [MetricRow(TRAJECTORY_UTILITY, "higher", "utility",
                                 "harmonic mean of probability and truth ratio on retain, real authors, world facts "
                                 "(model utility without ROUGE-L)")] + rows[1:]


def tofu_trajectory_point(engine, splits: dict[str, Any], oracle_per_example: dict | None) -> dict[str, float]:
    """The trajectory's metrics of one model, from teacher forcing alone (the same statistics
    and formulas as :func:`tofu_aggregate`, without ROUGE-L)."""
    stats = tofu_statistics(engine, splits, privacy=False, generate=False)
    metrics: dict[str, float] = {}
    for split, s in stats.items():
        correct = s["nll_paraphrased"] if split in HAS_PARAPHRASE else s["nll_answer"]
        probability = (behavior.answer_probability(s["nll_answer"]) if split in HAS_PARAPHRASE
                       else behavior.normalized_probability(s["nll_answer"], s["nll_perturbed"]))
        ratios = behavior.truth_ratio(correct, s["nll_perturbed"])
        summary = behavior.truth_ratio_forget_score if split == "forget" else behavior.truth_ratio_retain_score
        metrics[f"{split}_probability"] = float(np.mean(probability))
        metrics[f"{split}_truth_ratio"] = float(summary(ratios))
        if split == "forget" and oracle_per_example is not None:
            fq = behavior.forget_quality(ratios.tolist(), oracle_per_example["forget"]["truth_ratio"])
            metrics["forget_quality"] = float(fq["forget_quality"])
            metrics["forget_quality_ks_statistic"] = float(fq["forget_quality_ks_statistic"])
    metrics[TRAJECTORY_UTILITY] = behavior.model_utility([metrics[f"{split}_{m}"] for split in
                                                          ("retain", "real_authors", "world_facts")
                                                          for m in ("probability", "truth_ratio")])
    return metrics


@register_suite("tofu", summary="TOFU: probability, ROUGE-L, truth ratio, forget quality, model utility")
class TofuSuite(LanguageModelSuite):
    name = "tofu"
    rows = staticmethod(tofu_rows)
    statistics = staticmethod(tofu_statistics)
    per_example = staticmethod(tofu_per_example)
    aggregate = staticmethod(tofu_aggregate)
    trajectory_rows = staticmethod(tofu_trajectory_rows)

    def trajectory_point(self, scorer, ctx, oracle_per_example):
        return tofu_trajectory_point(scorer, ctx.task.splits, oracle_per_example)
