"""``idkdpo``: DPO towards a refusal (Rafailov et al., 2023, as used by TOFU; Maini et al., 2024).

Preferred answer: an "I don't know"-style refusal (``unlearnbench/lm/idk_answers.txt``, one
drawn per forget question); rejected: the forget answer.
Loss ``-(2/beta) * mean log sigma(beta * [(lp_theta - lp_ref)(y_idk) - (lp_theta - lp_ref)(y_f)])``
plus ``alpha * CE(retain)``.
"""

from dataclasses import dataclass

import torch.nn.functional as F

from unlearnbench.lm.alternatives import refusal_pairs
from unlearnbench.lm.modeling import answer_nll, sequence_logprobs
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


@register_method("idkdpo", summary="DPO preferring a refusal over the forget answer (+ retain NLL)")
class IdkDPO(LossMethod):
    name = "idkdpo"
    needs = ("forget", "retain", "reference")

    @dataclass(frozen=True)
    class Params(LLMParams):
        beta: float = 0.1
        alpha: float = 1.0  # weight of the retain NLL

    def forget_batches(self, data, params, seed):
        return refusal_pairs(data, params.batch_size, seed)

    def reference_examples(self, forget):
        return list(forget.forget.encoded) + list(forget.template.encoded)

    def loss(self, model, forget, retain, reference, params):
        lp_f, _ = sequence_logprobs(model, forget["forget"])
        lp_i, _ = sequence_logprobs(model, forget["template"])
        ref_f, ref_i = reference.of(forget["forget"]), reference.of(forget["template"])  # computed once, before training
        margin = (lp_i - ref_i) - (lp_f - ref_f)
        loss = -(2.0 / params.beta) * F.logsigmoid(params.beta * margin).mean()
        if params.alpha:
            loss = loss + params.alpha * answer_nll(model, retain)
        return loss
