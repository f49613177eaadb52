"""``undial``: self-distillation with adjusted logits (Dong et al., 2025, "UNDIAL: Self-Distillation
with Adjusted Logits for Robust Unlearning in Large Language Models", NAACL 2025).

The teacher is the model before unlearning; at each answer position its logit of the answer
token is lowered by ``beta`` and the student is distilled towards the result:

``L = gamma * mean_t CE(softmax(z_t^teacher - beta * onehot(y_t)), softmax(z_t)) + alpha * CE(retain)``

over the forget batch's answer tokens only: prompt and padding positions are masked out (one
reference implementation averages over every position, prompt and padding included, and
there lowers a logit at index -100). The cross-entropy differs from the KL divergence to the
adjusted teacher by the teacher's entropy, a constant: the gradients are the same. The paper
uses no retain term (alpha 0); beta 10 is open-unlearning's default
(``configs/trainer/UNDIAL.yaml``, lr 1e-4, 10 epochs, 16 rows per step).

Memory: no frozen copy of the model. Before training, the teacher's last hidden states at
every forget answer position and a copy of its output layer are kept
(:class:`unlearnbench.method.ReferenceStates`: answer tokens x hidden size, plus V x H); each
step recomputes the teacher's logits from them in the same chunks as the student's
(:meth:`unlearnbench.lm.modeling.AnswerStates.map`), so neither holds a B x T x V tensor.
"""

from dataclasses import dataclass

import torch

from unlearnbench.lm.modeling import answer_nll, answer_states
from unlearnbench.method import LLMParams, LossMethod, ReferenceStates
from unlearnbench.registry import register_method


@register_method("undial", summary="self-distillation towards the original's logits with the answer token lowered by beta")
class UNDIAL(LossMethod):
    name = "undial"
    needs = ("forget", "retain")

    @dataclass(frozen=True)
    class Params(LLMParams):
        beta: float = 10.0  # how far the answer token's teacher logit is lowered
        gamma: float = 1.0  # weight of the distillation term
        alpha: float = 0.0  # weight of the retain NLL (the paper: none)

    def prepare(self, model, params, ctx, forget=None):
        return ReferenceStates(model, self.reference_examples(forget), ctx.device, params.batch_size, forget.pad_id)

    def loss(self, model, forget, retain, reference, params):
        def distil(logits, targets, teacher_states):
            adjusted = reference.logits(teacher_states)
            adjusted = adjusted.scatter_add(-1, targets[:, None], adjusted.new_full((len(targets), 1), -params.beta))
            return -(torch.softmax(adjusted, -1) * torch.log_softmax(logits, -1)).sum(-1)

        loss = params.gamma * answer_states(model, forget).map(distil, reference.of(forget)).mean()
        if params.alpha:
            loss = loss + params.alpha * answer_nll(model, retain)
        return loss
