"""``external``: a model unlearned elsewhere, scored as this run's unlearned model.

``unlearnbench evaluate --task T --unlearned PATH|hub:ID`` runs this method: it does no
unlearning; it loads ``source`` through the task's family (a ``save_pretrained`` folder or hub
id for language models, a ``--save-model`` folder for every kind) and the runner scores it
against the task's original target and oracle like any other result. The record names it:
method ``external``, ``params.source`` and ``method.info`` (the source and the weights'
fingerprint).
"""

from dataclasses import dataclass
from typing import ClassVar

from unlearnbench.errors import UserError
from unlearnbench.method import Method
from unlearnbench.registry import register_method


@register_method("external", summary="a model unlearned elsewhere (--unlearned PATH|hub:ID), scored as it is")
class External(Method):
    name = "external"
    needs = ()
    kinds = ("language_model", "classifier", "regression", "diffusion")
    loads_model: ClassVar[bool] = True  # the family does not copy the target for it

    @dataclass(frozen=True)
    class Params:
        source: str = ""  # a folder or hub:<id>; --unlearned sets it

    def unlearn(self, model, data, params, ctx):
        if not params.source:
            raise UserError("The external method scores a model unlearned elsewhere: pass it with "
                            "--unlearned PATH (a folder) or --unlearned hub:<org>/<name>.")
        loaded = ctx.load_unlearned(params.source)
        ctx.info.update({"source": loaded.source, "fingerprint": loaded.fingerprint})
        return loaded.model
