"""``simnpo``: Simple NPO (Fan et al., 2024), reference-free and length-normalised.

Forget loss ``-(2/beta) * mean log sigma(beta * (NLL_seq / |y| - delta))`` weighted by
``gamma``, plus ``alpha * CE(retain)``. Defaults beta 4.5, delta 0, gamma 0.125 (paper).
"""

from dataclasses import dataclass

import torch.nn.functional as F

from unlearnbench.lm.modeling import answer_nll, sequence_logprobs
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


@register_method("simnpo", summary="simple NPO: reference-free, length-normalised (+ retain NLL)")
class SimNPO(LossMethod):
    name = "simnpo"
    needs = ("forget", "retain")

    @dataclass(frozen=True)
    class Params(LLMParams):
        beta: float = 4.5
        delta: float = 0.0
        gamma: float = 0.125  # weight of the forget term
        alpha: float = 1.0  # weight of the retain NLL

    def loss(self, model, forget, retain, reference, params):
        logp, n_tokens = sequence_logprobs(model, forget)
        mean_nll = -logp / n_tokens.clamp(min=1)
        forget_loss = -(2.0 / params.beta) * F.logsigmoid(params.beta * (mean_nll - params.delta)).mean()
        return params.gamma * forget_loss + params.alpha * answer_nll(model, retain)
