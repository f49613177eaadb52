"""``flat``: forget-data-only loss adjustment (Wang et al., 2025, "LLM Unlearning via Loss
Adjustment with Only Forget Data", ICLR 2025).

No retain data and no reference model. Each forget question is paired with a template answer
(an "I don't know"-style refusal, ``unlearnbench/lm/idk_answers.txt``, drawn once per
question) and the f-divergence between the template answers and the forget answers is
maximised through its variational form, which reweights learning the template against
forgetting the forget answer:

``L = mean_i [ -g*(P(x_i, y_i^template)) + f*(g*(P(x_i, y_i^forget))) ]``

with ``P(x, y)`` the mean probability of the answer's tokens (teacher forced) and the
optimal variational function ``g*`` and conjugate ``f*`` of the chosen divergence
(``divergence``; the f-GAN pairs, as in the paper's Table 2 and its code):

==========  =======================  ============================
divergence  g*(v)                    f*(g*(v))
==========  =======================  ============================
kl          v                        exp(v - 1)
js          log 2 - log(1 + e^-v)    log(1 + e^v) - log 2
pearson     v                        v^2 / 4 + v
tv          tanh(v) / 2              tanh(v) / 2
==========  =======================  ============================

The reference code averages the token probabilities over the whole padded batch before
applying ``g*`` and ``f*``; here ``P`` is per question over its own answer tokens, as the
paper defines it, and the loss is the mean over questions.
"""

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from unlearnbench.lm.alternatives import refusal_pairs
from unlearnbench.lm.modeling import token_logprobs
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method

LOG2 = math.log(2.0)
# divergence -> (g*, f* o g*)
DIVERGENCES = {
    "kl": (lambda v: v, lambda v: torch.exp(v - 1.0)),
    "js": (lambda v: LOG2 - F.softplus(-v), lambda v: F.softplus(v) - LOG2),
    "pearson": (lambda v: v, lambda v: v * v / 4.0 + v),
    "tv": (lambda v: torch.tanh(v) / 2.0, lambda v: torch.tanh(v) / 2.0),
}


def mean_token_probability(model, batch) -> torch.Tensor:
    """Per row, the mean probability of its answer tokens [B]."""
    logp, states = token_logprobs(model, batch)
    return states.per_row(logp.exp()) / states.counts.clamp(min=1)


@register_method("flat", summary="forget data only: maximise an f-divergence between template and forget answers")
class FLAT(LossMethod):
    name = "flat"
    needs = ("forget",)

    @dataclass(frozen=True)
    class Params(LLMParams):
        divergence: Literal["kl", "js", "pearson", "tv"] = "kl"

    def forget_batches(self, data, params, seed):
        return refusal_pairs(data, params.batch_size, seed)

    def loss(self, model, forget, retain, reference, params):
        activation, conjugate = DIVERGENCES[params.divergence]
        template = activation(mean_token_probability(model, forget["template"]))
        forgotten = conjugate(mean_token_probability(model, forget["forget"]))
        return (forgotten - template).mean()
