"""``pdu``: primal-dual unlearning (Entesari et al., 2025, "Constrained Entropic Unlearning: A
Primal-Dual Framework for Large Language Models", arXiv 2506.05314).

Forgetting flattens the output distribution on the forget answers through the logit margin,
and retention is a constraint, ``CE(retain) <= eps``, enforced through a dual variable:

``L = gamma * mean_t (max_j z_tj - mean_j z_tj)^2 + lambda * (CE(retain) - eps)``

the mean over the forget batch's answer tokens (the reference code averages over every
position, prompt and padding included). ``lambda`` starts at ``alpha`` and, with
``primal_dual`` and once ``dual_warmup_epochs`` epochs have passed, takes a projected ascent
step after every loss evaluation: ``lambda <- max(0, lambda + dual_step_size * (CE(retain) -
eps))`` (the published runs' per-step update). Without ``primal_dual`` it is a fixed weight.
Set ``retain_loss_eps`` a little above the target's own retain NLL (the authors' advice);
the record's ``method.info`` has the final ``dual_variable``.
"""

from dataclasses import dataclass

from unlearnbench.lm.modeling import answer_nll, answer_states
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


def _margin_squared(logits, targets):
    return (logits.max(-1).values - logits.mean(-1)) ** 2


class DualVariable:
    """The retain constraint's multiplier for one run, and how many losses it has seen."""

    def __init__(self, start: float, warmup_losses: int, info: dict):
        self.value, self.seen, self.warmup, self.info = float(start), 0, warmup_losses, info

    def step(self, violation: float, size: float) -> None:
        if self.seen >= self.warmup:
            self.value = max(0.0, self.value + size * violation)
        self.seen += 1
        self.info["dual_variable"] = self.value


@register_method("pdu", summary="logit-margin flattening on forget, retain NLL as a primal-dual constraint")
class PDU(LossMethod):
    name = "pdu"
    needs = ("forget", "retain")

    @dataclass(frozen=True)
    class Params(LLMParams):
        gamma: float = 1.0  # weight of the forget term
        alpha: float = 1.0  # the dual variable's start (the retain preference)
        retain_loss_eps: float = 0.3  # the constraint CE(retain) <= eps
        primal_dual: bool = True
        dual_step_size: float = 1.0
        dual_warmup_epochs: int = 5

    def prepare(self, model, params, ctx, forget=None):
        return DualVariable(params.alpha, params.dual_warmup_epochs * len(forget), ctx.info)

    def loss(self, model, forget, retain, reference, params):
        forget_loss = answer_states(model, forget).map(_margin_squared).mean()
        violation = answer_nll(model, retain) - params.retain_loss_eps
        loss = params.gamma * forget_loss + reference.value * violation
        if params.primal_dual:
            reference.step(float(violation.detach()), params.dual_step_size)
        return loss
