"""``ceu``: cross-entropy unlearning (Yang et al., 2025, "CE-U: Cross Entropy Unlearning",
arXiv 2503.01224).

At each answer position the target is the model's own distribution with the answer token
removed: ``q_t = softmax(z_t with z_t[y_t] = -inf)``, detached, and the loss is the
cross-entropy towards it,

``L = mean_t CE(q_t, softmax(z_t))``

over the forget batch's answer tokens except the first ``ignore_first`` of each answer (the
paper's footnote: the first answer token, often a template word, is left alone). Its gradient
on the answer logit is ``p_t(y_t)``, bounded, unlike gradient ascent's; the other tokens keep
their relative probabilities. Forget data only, no retain term, no reference model.
"""

from dataclasses import dataclass

import torch

from unlearnbench.lm.modeling import answer_states
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


def _without_answer(logits, targets):
    target = logits.detach().scatter(-1, targets[:, None], float("-inf")).softmax(-1)
    return -(target * torch.log_softmax(logits, -1)).sum(-1)


@register_method("ceu", summary="cross-entropy towards the model's own distribution without the answer token")
class CEU(LossMethod):
    name = "ceu"
    needs = ("forget",)

    @dataclass(frozen=True)
    class Params(LLMParams):
        ignore_first: int = 1  # answer tokens of each answer left out of the loss

    def loss(self, model, forget, retain, reference, params):
        states = answer_states(model, forget)
        values = states.map(_without_answer)
        kept = states.index >= params.ignore_first
        return values[kept].mean() if kept.any() else values.sum() * 0.0
