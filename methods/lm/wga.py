"""``wga``: weighted gradient ascent (Wang et al., 2025, "Rethinking LLM Unlearning Objectives:
A Gradient Perspective and Go Beyond", ICLR 2025).

Gradient ascent with each answer token's cross-entropy weighted by the model's own
(detached) probability of that token, to the power ``beta``:

``L = gamma * (-mean_t [p_t^beta * CE_t]) + alpha * CE(retain)``, ``p_t = exp(-CE_t)`` (no gradient)

the mean running over every answer token of the forget batch. A token the model has already
stopped predicting is pushed less and less, so the ascent fades out instead of running on
to gibberish as GA's does. Defaults are open-unlearning's (``configs/trainer/WGA.yaml``: beta
1, gamma 1, alpha 1 with the retain NLL).
"""

from dataclasses import dataclass

from unlearnbench.lm.modeling import answer_nll, token_logprobs
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


@register_method("wga", summary="weighted gradient ascent: token CE weighted by its own probability^beta (+ retain NLL)")
class WGA(LossMethod):
    name = "wga"
    needs = ("forget", "retain")

    @dataclass(frozen=True)
    class Params(LLMParams):
        beta: float = 1.0
        gamma: float = 1.0  # weight of the forget term
        alpha: float = 1.0  # weight of the retain NLL

    def loss(self, model, forget, retain, reference, params):
        logp, _ = token_logprobs(model, forget)
        weight = logp.detach().exp() ** params.beta
        loss = params.gamma * (weight * logp).mean()  # -mean(w * CE), CE = -logp
        if params.alpha:
            loss = loss + params.alpha * answer_nll(model, retain)
        return loss
