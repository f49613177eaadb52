"""``npo``: Negative Preference Optimization (Zhang et al., 2024).

Forget loss ``-(2/beta) * mean log sigma(-beta * (log p_theta(y|x) - log p_ref(y|x)))`` with
sequence-summed log-probabilities and ``ref`` the model before unlearning (its log-probabilities are computed once, before training); with
``alpha > 0`` the retain NLL is added (NPO+RT). Its collapse towards gibberish is
exponentially slower than gradient ascent's.
"""

from dataclasses import dataclass

import torch.nn.functional as F

from unlearnbench.lm.modeling import answer_nll, sequence_logprobs
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


@register_method("npo", summary="negative preference optimization (+ retain NLL)")
class NPO(LossMethod):
    name = "npo"
    needs = ("forget", "retain", "reference")

    @dataclass(frozen=True)
    class Params(LLMParams):
        beta: float = 0.1
        alpha: float = 1.0  # weight of the retain NLL; 0 gives plain NPO

    def loss(self, model, forget, retain, reference, params):
        logp, _ = sequence_logprobs(model, forget)
        logp_ref = reference.of(forget)  # the model before unlearning, computed once per forget batch
        loss = -(2.0 / params.beta) * F.logsigmoid(-params.beta * (logp - logp_ref)).mean()
        if params.alpha:
            loss = loss + params.alpha * answer_nll(model, retain)
        return loss
