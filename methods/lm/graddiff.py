"""``graddiff``: gradient difference (Liu et al., 2022; TOFU baseline).

Loss ``-gamma * CE(forget) + alpha * CE(retain)``: ascend on what to forget, descend on what
to keep.
"""

from dataclasses import dataclass

from unlearnbench.lm.modeling import answer_nll
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


@register_method("graddiff", summary="gradient ascent on forget + descent on retain")
class GradDiff(LossMethod):
    name = "graddiff"
    needs = ("forget", "retain")

    @dataclass(frozen=True)
    class Params(LLMParams):
        gamma: float = 1.0  # weight of the forget term
        alpha: float = 1.0  # weight of the retain term

    def loss(self, model, forget, retain, reference, params):
        return -params.gamma * answer_nll(model, forget) + params.alpha * answer_nll(model, retain)
