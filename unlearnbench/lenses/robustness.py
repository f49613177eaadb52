"""The robustness lens: does the forgotten knowledge come back?

* **Relearning attack.** The forget set is split by entity (``task.forget_groups``: the
  author or event each row is about) into an attack half and a measured half, so that
  relearning one author cannot simply re-teach the measured rows. A copy of the model is
  fine-tuned on the attack half for 0, 1, 2, 5, 10, 25, 50 steps; after each, the forget
  probability (mean ``exp(-mean token NLL)``) of the measured half is taken. The recovery
  ratio per step is ``(M_attack - M_unlearned) / (M_original - M_unlearned)`` and its area
  under the curve (steps normalised to [0, 1]) is ``relearn_recovery_auc``. The same
  attack on the oracle (``reference.oracle``, with the oracle as the starting point) is
  the control: how fast does a model that never saw the data learn it?
* **Quantization attack.** Block-wise symmetric fake quantization of every linear weight
  to 8 and 4 bits (:mod:`unlearnbench.lm.quantize`, plain tensors, no kernels), then the
  forget probability of the whole forget set again, its recovery ratio, and the share of
  weights whose quantized code equals the original target's (Zhang et al., 2024: an
  update smaller than the quantization step vanishes, and the knowledge returns).

The attacks run on copies; the model passed in is never modified.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unlearnbench.metrics import robustness as rm
from unlearnbench.family import Option
from unlearnbench.lenses.base import LanguageModelLens, LensContext
from unlearnbench.registry import register_lens
from unlearnbench.suites.common import MetricRow

LENS_VERSION = "1"
RELEARN_STEPS = (0, 1, 2, 5, 10, 25, 50)
RELEARN_LR = 1e-3  # the synthetic worlds' tiny models (trained at 3e-3)
RELEARN_LR_LARGE = 1e-5  # models of the field: the rate the published TOFU / MUSE models were fine-tuned at
LARGE_MODEL = 100_000_000  # parameters from which "auto" takes RELEARN_LR_LARGE


def relearn_lr(ctx, model) -> float:
    """``--relearn-lr``, or by the model's size: :data:`RELEARN_LR` for the tiny models the
    synthetic worlds train, :data:`RELEARN_LR_LARGE` from :data:`LARGE_MODEL` parameters (at
    1e-3 a 1B model is wrecked in a few steps instead of relearning)."""
    chosen = (ctx.options or {}).get("relearn_lr")
    if chosen is not None:
        return float(chosen)
    return RELEARN_LR if sum(p.numel() for p in model.parameters()) < LARGE_MODEL else RELEARN_LR_LARGE
RELEARN_BATCH = 8
QUANT_BITS = (8, 4)
QUANT_BLOCK = 64
# A recovery ratio divides by what unlearning removed (M_original - M_unlearned); below this
# gap in forget probability there is nothing to recover and the ratio only amplifies noise,
# so it is left out (a method that barely moved the forget probability shows no recovery).
MIN_GAP = 0.01


def rows() -> list[MetricRow]:
    out = [
        MetricRow("relearn_recovery_auc", "lower", "robustness",
                  "area under the recovery ratio vs relearning steps (0-50) on the held-out forget half"),
    ]
    out += [MetricRow(f"relearn_rr_{s}", "lower", "robustness", f"recovery ratio after {s} relearning steps")
            for s in RELEARN_STEPS[1:]]
    out.append(MetricRow("forget_probability_all", "lower", "robustness", "mean exp(-NLL) of every forget row, full precision"))
    for bits in QUANT_BITS:
        out += [
            MetricRow(f"quant_forget_probability_{bits}bit", "lower", "robustness", f"forget probability after {bits}-bit fake quantization"),
            MetricRow(f"quant_recovery_{bits}bit", "lower", "robustness", f"recovery ratio after {bits}-bit quantization"),
            MetricRow(f"quant_agreement_{bits}bit", "info", "robustness", f"share of {bits}-bit weight codes equal to the original's"),
        ]
    return out


def available(task) -> list[str]:
    return ["relearning", "quantization"] if len(task.splits["forget"]) >= 2 else []


Context = LensContext  # the lens's context (see lenses.base)


def halves(task) -> tuple[list[int], list[int]]:
    """Row indices of the attack half and the measured half of the forget set, split by
    entity (the first half of the entities, in order of appearance, is the attack half)."""
    n = len(task.splits["forget"])
    groups = task.forget_groups if task.forget_groups is not None else list(range(n))
    if len(groups) != n:
        raise ValueError(f"forget_groups has {len(groups)} entries for {n} forget rows")
    order = list(dict.fromkeys(groups))
    attack = set(order[: max(1, len(order) // 2)])
    return [i for i in range(n) if groups[i] in attack], [i for i in range(n) if groups[i] not in attack]


def _pairs(task, index: list[int]) -> list[tuple[str, str]]:
    forget = task.splits["forget"]
    return [(forget[i]["question"], forget[i]["answer"]) for i in index]


def _probabilities(ctx: Context, model, pairs, label: str) -> list[float]:
    return [float(np.exp(-s.nll)) for s in ctx.engine(model, label).score(pairs)]


def relearn_curve(ctx: Context, model, label: str) -> list[list[float]]:
    """Forget probabilities of the measured half after each of :data:`RELEARN_STEPS`."""
    import torch

    from unlearnbench.lm.modeling import QABatches, answer_nll, clone_model, encode_rows
    from unlearnbench.progress import progress_bar

    attack, measure = halves(ctx.task)
    measured = _pairs(ctx.task, measure)
    rows = [{"question": q, "answer": a} for q, a in _pairs(ctx.task, attack)]
    batches = QABatches(encode_rows(ctx.tokenizer, ctx.task.prompt_format, rows), RELEARN_BATCH,
                        ctx.tokenizer.pad_token_id, seed=ctx.seed).forever()
    torch.manual_seed(ctx.seed)
    attacked = clone_model(model).to(ctx.device).train()
    optimizer = torch.optim.AdamW(attacked.parameters(), lr=relearn_lr(ctx, model), weight_decay=0.0)
    curve, done = [], 0
    with progress_bar(f"relearning attack ({label})", total=RELEARN_STEPS[-1], quiet=ctx.quiet) as advance:
        for target in RELEARN_STEPS:
            while done < target:
                batch = {k: v.to(ctx.device) for k, v in next(batches).items()}
                optimizer.zero_grad(set_to_none=True)
                answer_nll(attacked, batch).backward()
                optimizer.step()
                done += 1
                advance(1)
            attacked.eval()
            curve.append(_probabilities(ctx, attacked, measured, f"{label} +{target}"))
            attacked.train()
    return curve


def _codes(model) -> dict:
    from unlearnbench.lm.modeling import clone_model
    from unlearnbench.lm.quantize import quantize_linear_weights

    copies = {}
    for bits in QUANT_BITS:
        q = clone_model(model)
        copies[bits] = (q, quantize_linear_weights(q, bits, QUANT_BLOCK))
    return copies


def quantization(ctx: Context, model, label: str) -> dict:
    """Forget probabilities after fake quantization, and the code agreement with the original."""
    from unlearnbench.metrics.robustness import quantized_agreement

    pairs = _pairs(ctx.task, list(range(len(ctx.task.splits["forget"]))))
    if "original_codes" not in ctx.cache:
        ctx.cache["original_codes"] = {b: codes for b, (_, codes) in _codes(ctx.original).items()}
    out: dict[str, Any] = {"full": _probabilities(ctx, model, pairs, label)}
    for bits, (q, codes) in _codes(model).items():
        out[f"q{bits}"] = _probabilities(ctx, q.to(ctx.device).eval(), pairs, f"{label} {bits}-bit")
        original = ctx.cache["original_codes"][bits]
        out[f"q{bits}_agreement"] = quantized_agreement([codes[n] for n in sorted(codes)], [original[n] for n in sorted(codes)])
    return out


# ---------------------------------------------------------------------------- lens API
def per_example(ctx: Context, model, label: str) -> dict:
    return {"relearn": relearn_curve(ctx, model, label), "quant": quantization(ctx, model, label)}


def aggregate(per_example: dict, references: dict | None = None, *, seed: int = 0) -> tuple[dict, dict]:
    """Recovery ratios relative to the original target (``references["original"]``); for
    the original itself, and wherever unlearning moved the forget probability by less than
    :data:`MIN_GAP`, the ratio is undefined and left out."""
    metrics: dict[str, float] = {}
    original = (references or {}).get("original")
    if original is None:
        return metrics, {}
    curve = [float(np.mean(step)) for step in per_example["relearn"]]
    start, top = curve[0], float(np.mean(original["relearn"][0]))
    ratios = [float(rm.recovery_ratio(m, start, top)) if abs(top - start) >= MIN_GAP else float("nan") for m in curve]
    if not np.isnan(ratios).all():
        metrics["relearn_recovery_auc"] = float(rm.recovery_auc(list(RELEARN_STEPS), ratios))
        for step, ratio in zip(RELEARN_STEPS[1:], ratios[1:]):
            metrics[f"relearn_rr_{step}"] = ratio
    quant, full_original = per_example["quant"], float(np.mean(original["quant"]["full"]))
    full = float(np.mean(quant["full"]))
    metrics["forget_probability_all"] = full
    for bits in QUANT_BITS:
        m = float(np.mean(quant[f"q{bits}"]))
        metrics[f"quant_forget_probability_{bits}bit"] = m
        rr = float(rm.recovery_ratio(m, full, full_original))
        if abs(full_original - full) >= MIN_GAP and not np.isnan(rr):
            metrics[f"quant_recovery_{bits}bit"] = rr
        metrics[f"quant_agreement_{bits}bit"] = float(quant[f"q{bits}_agreement"])
    return metrics, {}


@register_lens("robustness")
class Robustness(LanguageModelLens):
    """Language models here; the regression suite measures its own robustness row (the
    anamnesis index) in its scoring pass."""

    name = "robustness"
    description = "relearning and quantization attacks: does the knowledge come back?"
    order = 40
    version = LENS_VERSION
    options = (Option("relearn_lr", "the relearning attack's learning rate (default: 1e-3 for models under 100M "
                                    "parameters, the synthetic worlds', 1e-5 above)", type=float, default=None,
                      task=False, in_run_id=True),)

    rows = staticmethod(rows)
    per_example = staticmethod(per_example)
    aggregate = staticmethod(aggregate)

    def missing(self, task) -> str | None:
        return None if available(task) else f"task {task.spec.name!r} has a forget set of fewer than two rows"
