"""``ga``: gradient ascent on the forget set (Jang et al., 2023; TOFU baseline).

Loss ``-CE(forget)``. Unbounded: it drives the model to gibberish if run long enough, which
is why the retain-regularised variants exist.
"""

from dataclasses import dataclass

from unlearnbench.lm.modeling import answer_nll
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


@register_method("ga", summary="gradient ascent on the forget set")
class GradientAscent(LossMethod):
    name = "ga"
    needs = ("forget",)
    kinds = ("language_model",)

    @dataclass(frozen=True)
    class Params(LLMParams):
        pass

    def loss(self, model, forget, retain, reference, params):
        return -answer_nll(model, forget)
