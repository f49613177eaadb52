"""``satimp``: saturation-importance reweighted gradient ascent (Yang et al., 2025, "Exploring
Criteria of Loss Reweighting to Enhance LLM Unlearning", ICML 2025).

Like ``wga``, each answer token's cross-entropy is reweighted by a detached function of its
probability, here the product of a saturation weight (tokens already forgotten matter
little) and an importance weight (tokens the model is sure of matter little):

``L = gamma * (-mean_t [p_t^beta1 * (1 - p_t)^beta2 * CE_t]) + alpha * CE(retain)``, ``p_t = exp(-CE_t)`` (no gradient)

over every answer token of the forget batch. Defaults: beta1 5, beta2 1 and a forget:retain
ratio of 10 (gamma 1, alpha 0.1), as the paper and open-unlearning's method class have them
(its ``configs/trainer/SatImp.yaml`` sets gamma 0.1, alpha 1.0, the ratio reversed).
"""

from dataclasses import dataclass

from unlearnbench.lm.modeling import answer_nll, token_logprobs
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


@register_method("satimp", summary="gradient ascent reweighted by p^beta1 (1-p)^beta2 per token (+ retain NLL)")
class SatImp(LossMethod):
    name = "satimp"
    needs = ("forget", "retain")

    @dataclass(frozen=True)
    class Params(LLMParams):
        beta1: float = 5.0  # saturation: p^beta1
        beta2: float = 1.0  # importance: (1 - p)^beta2
        gamma: float = 1.0  # weight of the forget term
        alpha: float = 0.1  # weight of the retain NLL

    def loss(self, model, forget, retain, reference, params):
        logp, _ = token_logprobs(model, forget)
        p = logp.detach().exp()
        weight = p ** params.beta1 * (1.0 - p) ** params.beta2
        loss = params.gamma * (weight * logp).mean()  # -mean(w * CE), CE = -logp
        if params.alpha:
            loss = loss + params.alpha * answer_nll(model, retain)
        return loss
