"""``original``: no unlearning. The target diffusion model as it is (the lower bound)."""

from dataclasses import dataclass

from unlearnbench.method import Method
from unlearnbench.registry import register_method


@register_method("original", summary="no unlearning: the target model as it is")
class DiffusionOriginal(Method):
    name = "original"
    needs = ()
    kinds = ("diffusion",)

    @dataclass(frozen=True)
    class Params:
        pass

    def unlearn(self, model, data, params, ctx):
        return model
