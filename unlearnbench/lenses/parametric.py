"""The parametric lens: is the knowledge still in the weights and hidden states?

Two probes of a model, for any language-model task that says what its concepts and its
probe attribute are (``task.concepts``, ``task.probes``):

* **Concept vectors** (Hong et al., 2024, "Intrinsic Evaluation of Unlearning Using
  Parametric Knowledge Traces"). In the original target, every MLP value vector is
  projected through the output embedding; a concept's candidates are the vectors whose
  top-k tokens overlap the concept's words and that the concept's prompts activate
  (:func:`unlearnbench.lm.concepts.find_concept_vectors`). Each candidate is validated
  causally: noise on the vector (norm 10 x the vector's) must raise the NLL of the
  concept's own prompts clearly more than that of unrelated retain prompts. The validated vectors are then compared before and after
  unlearning: top-k Jaccard, cosine, L2, the share of concept tokens still in the top-k,
  and the mean activation coefficient on the concept's prompts relative to the original
  (a vector left intact with its coefficient driven to zero is suppression, not erasure).
* **Linear probes** (Unforgettable Generalization). Per layer, a logistic regression on
  the residual stream at the end of each probe question, fitted on the model's own
  retain questions and tested on the forget questions, against the model's answer
  accuracy on the same questions (multiple choice over the attribute's values). Probe
  accuracy far above answer accuracy means the model stopped saying what it still
  represents. ``probe_accuracy_transfer`` applies the probe fitted on the *original*
  model's retain states to this model's forget states (a fine-tuned model keeps the
  original's representation space; the oracle does not, so its transfer is left out).

``per_example`` needs the models; ``aggregate`` is pure (the leaderboard recomputes it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unlearnbench.metrics import parametric as pm
from unlearnbench.lenses.base import LanguageModelLens, LensContext
from unlearnbench.registry import register_lens
from unlearnbench.suites.common import MetricRow

LENS_VERSION = "1"
N_UNRELATED = 64  # retain prompts that serve as the unrelated control


def rows() -> list[MetricRow]:
    return [
        MetricRow("concept_jaccard", "info", "parametric", "top-k token Jaccard of each concept vector, after vs before (1 = unchanged)"),
        MetricRow("concept_cosine", "info", "parametric", "cosine of each concept vector after vs before"),
        MetricRow("concept_l2", "info", "parametric", "L2 distance of each concept vector after vs before"),
        MetricRow("concept_token_retention", "lower", "parametric", "share of the concept tokens of the original top-k still in the top-k"),
        MetricRow("concept_coefficient_ratio", "info", "parametric", "mean activation coefficient on concept prompts / the original's (suppression)"),
        MetricRow("concept_vectors", "info", "parametric", "validated concept vectors located in the original target", count=True),
        MetricRow("concept_validation_margin", "info", "parametric", "mean NLL rise of concept prompts minus unrelated prompts under noise"),
        MetricRow("probe_accuracy", "oracle", "parametric", "best-layer linear-probe accuracy on forget questions (fitted on retain)"),
        MetricRow("probe_accuracy_transfer", "oracle", "parametric", "best-layer accuracy of the original's probes on this model's forget states"),
        MetricRow("answer_accuracy", "oracle", "parametric", "multiple-choice accuracy of the model's answers to the probed questions"),
        MetricRow("probe_answer_gap", "zero", "parametric", "probe_accuracy - answer_accuracy: knowledge held but not said"),
    ]


Context = LensContext  # the lens's context (see lenses.base)


def available(task) -> list[str]:
    """What this lens can measure on ``task`` (empty: nothing; the runner says so)."""
    return [part for part, data in (("concepts", task.concepts), ("probes", task.probes)) if data]


# ------------------------------------------------------------------------------ concepts
def _unrelated(task) -> list[tuple[str, str]]:
    retain = task.splits["retain"]
    n = min(N_UNRELATED, len(retain))
    return list(zip(retain["question"][:n], retain["answer"][:n]))


def locate_concepts(ctx: Context) -> dict:
    """Located and validated concept vectors of the original target (cached in ``ctx``);
    see :func:`unlearnbench.lm.concepts.find_concept_vectors`."""
    if "located" not in ctx.cache:
        from unlearnbench.lm import concepts as cv

        concepts = [{**c, "prompts": [tuple(p) for p in c["prompts"]]} for c in ctx.task.concepts]
        ctx.cache["located"] = cv.find_concept_vectors(
            ctx.original.to(ctx.device), ctx.tokenizer, ctx.task.prompt_format, concepts, _unrelated(ctx.task),
            seed=ctx.seed)
    return ctx.cache["located"]


def _coefficient(ctx: Context, model, vm, index: int, prompts) -> float:
    from unlearnbench.lm import concepts as cv

    return float(cv.coefficients(model, vm, [index], cv.qa_batches(ctx.tokenizer, ctx.task.prompt_format, prompts))[0])


def concept_scores(ctx: Context, model) -> list[dict]:
    """Per validated vector: the before/after comparison numbers."""
    from unlearnbench.lm import concepts as cv

    located = locate_concepts(ctx)
    model = model.to(ctx.device).eval()
    matrices = cv.value_matrices(model)
    defs = {c["name"]: c for c in ctx.task.concepts}
    out = []
    for e in located["vectors"]:
        vm = matrices[e["matrix"]]
        prompts = [tuple(p) for p in defs[e["concept"]]["prompts"]]
        v0, v1 = cv.value_vector(ctx.original, vm, e["index"]), cv.value_vector(model, vm, e["index"])
        top1 = cv.topk_of(model, v1[None], located["k"])[0].tolist()
        v0, v1 = v0.numpy(), v1.numpy()
        out.append({
            "concept": e["concept"], "layer": e["layer"], "index": e["index"],
            "jaccard": pm.topk_jaccard(e["topk"], top1),
            "cosine": float(pm.cosine_similarity(v0, v1)),
            "l2": float(pm.l2_distance(v0, v1)),
            "token_retention": pm.concept_token_retention(e["topk"], top1, e["concept_ids"]),
            "coefficient_before": _coefficient(ctx, ctx.original, vm, e["index"], prompts),
            "coefficient_after": _coefficient(ctx, model, vm, e["index"], prompts),
            "margin": e["margin"],
        })
    return out


# -------------------------------------------------------------------------------- probes
def _states(ctx: Context, model, label: str) -> dict[str, np.ndarray]:
    """Hidden states where the model is about to say the attribute: after the question and
    the row's answer ``prefix`` (e.g. "Ada Limo writes"), if it has one."""
    engine = ctx.engine(model, label)
    return {part: engine.hidden_states([(r["question"], r.get("prefix", "")) for r in ctx.task.probes[part]])
            for part in ("retain", "forget")}


def _layer_accuracies(train: np.ndarray, y_train, test: np.ndarray, y_test, seed: int) -> list[float]:
    """Per layer, the accuracy on the forget rows of a probe fitted on ``train``."""
    return [float(a) for a in pm.layer_probe_accuracies(
        [train[:, layer] for layer in range(train.shape[1])], y_train,
        [test[:, layer] for layer in range(test.shape[1])], y_test, seed=seed)]


def probe_scores(ctx: Context, model, label: str, *, transfer: bool) -> dict:
    probes = ctx.task.probes
    y_retain = [r["label"] for r in probes["retain"]]
    y_forget = [r["label"] for r in probes["forget"]]
    states = _states(ctx, model, label)
    out = {"layer_accuracy": _layer_accuracies(states["retain"], y_retain, states["forget"], y_forget, ctx.seed)}
    if transfer:
        if "original_states" not in ctx.cache:
            ctx.cache["original_states"] = _states(ctx, ctx.original, "original")
        out["transfer_layer_accuracy"] = _layer_accuracies(ctx.cache["original_states"]["retain"], y_retain,
                                                           states["forget"], y_forget, ctx.seed)
    engine = ctx.engine(model, label)
    rows = probes["forget"]
    nll = [[s.nll for s in engine.score([(r["question"], o) for o in r["options"]])] for r in rows]
    # Per question, so the per-example scores keep which answers were right; the mean of these
    # is multiple_choice_accuracy over all the questions (aggregate reports it).
    out["answer_correct"] = [pm.multiple_choice_accuracy([options], [label]) == 1.0 for options, label in zip(nll, y_forget)]
    return out


# ---------------------------------------------------------------------------- lens API
def per_example(ctx: Context, model, label: str) -> dict:
    """Everything the aggregate needs, for one model (``label``: unlearned/original/oracle)."""
    out: dict[str, Any] = {}
    if ctx.task.concepts and label != "oracle":  # the oracle's vectors do not correspond
        out["concepts"] = concept_scores(ctx, model)
        out["candidates"] = locate_concepts(ctx)["candidates"]
    probes = ctx.task.probes
    if probes and probes["forget"] and len({r["label"] for r in probes["retain"]}) >= 2:  # a probe needs two classes
        out["probes"] = probe_scores(ctx, model, label, transfer=label == "unlearned")
    return out


def _best_layer(accuracies: list[float]) -> float:
    return float(max(accuracies)) if accuracies else float("nan")


def aggregate(per_example: dict, references: dict | None = None, *, seed: int = 0) -> tuple[dict, dict]:
    """Flat ``concept_*`` / ``probe_*`` metrics from the per-example scores (pure)."""
    metrics: dict[str, float] = {}
    vectors = per_example.get("concepts")
    if vectors is not None:
        metrics["concept_vectors"] = float(len(vectors))
        if vectors:
            for name, key in (("concept_jaccard", "jaccard"), ("concept_cosine", "cosine"), ("concept_l2", "l2"),
                              ("concept_token_retention", "token_retention"), ("concept_validation_margin", "margin")):
                values = [v[key] for v in vectors if v[key] is not None and np.isfinite(v[key])]
                metrics[name] = float(np.mean(values)) if values else float("nan")  # e.g. no concept token in any top-k
            metrics["concept_coefficient_ratio"] = float(pm.coefficient_ratio(
                [v["coefficient_after"] for v in vectors], [v["coefficient_before"] for v in vectors]))
    probes = per_example.get("probes")
    if probes:
        metrics["probe_accuracy"] = _best_layer(probes["layer_accuracy"])
        metrics["answer_accuracy"] = float(np.mean(probes["answer_correct"]))
        metrics["probe_answer_gap"] = metrics["probe_accuracy"] - metrics["answer_accuracy"]
        if "transfer_layer_accuracy" in probes:
            metrics["probe_accuracy_transfer"] = _best_layer(probes["transfer_layer_accuracy"])
    return metrics, {}


@register_lens("parametric")
class Parametric(LanguageModelLens):
    name = "parametric"
    description = "concept vectors and linear probes: is the knowledge still in the weights?"
    order = 30
    version = LENS_VERSION

    rows = staticmethod(rows)
    per_example = staticmethod(per_example)
    aggregate = staticmethod(aggregate)

    def missing(self, task) -> str | None:
        if available(task):
            return None
        return (f"task {task.spec.name!r} provides no concepts or probe questions (a ConceptVectors file can name "
                "concepts: --concepts FILE)")
