"""``original``: no unlearning. The target as it is; the lower bound every method must beat."""

from dataclasses import dataclass

from unlearnbench.method import Method
from unlearnbench.registry import register_method


@register_method("original", summary="no unlearning: the target model as it is")
class RegressionOriginal(Method):
    name = "original"
    needs = ()
    kinds = ("regression",)

    @dataclass(frozen=True)
    class Params:
        pass

    def unlearn(self, model, data, params, ctx):
        return model
