"""The lenses every suite measures in its one scoring pass: behavior, privacy, utility."""

from __future__ import annotations

from unlearnbench.lenses.base import Lens
from unlearnbench.registry import register_lens


@register_lens("behavior")
class Behavior(Lens):
    name = "behavior"
    description = "what the model says: the suite's forget metrics"
    order = 10
    default = True
    model_lens = False


@register_lens("privacy")
class Privacy(Lens):
    name = "privacy"
    description = "membership inference on forget vs holdout (the suite's attacks)"
    order = 20
    default = True
    model_lens = False


@register_lens("utility")
class Utility(Lens):
    name = "utility"
    description = "what the model still knows outside the forget set"
    order = 90
    default = True
    model_lens = False
