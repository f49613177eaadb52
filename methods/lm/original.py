"""``original``: no unlearning. The target as it is; the lower bound every method must beat."""

from dataclasses import dataclass

from unlearnbench.method import Method
from unlearnbench.registry import register_method


@register_method("original", summary="no unlearning: the target model as it is")
class Original(Method):
    name = "original"
    needs = ()
    kinds = ("language_model",)

    @dataclass(frozen=True)
    class Params:
        pass

    def unlearn(self, model, data, params, ctx):
        return model
