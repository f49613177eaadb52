"""The lens protocol: one signature for every view of a run.

A lens is a named view of a run with a description and a place in the display order
(``--lens behavior,privacy,+parametric``). Two sorts:

* **Suite lenses** (``behavior``, ``privacy``, ``utility``, and ``robustness`` where a suite has
  rows in it) are measured by the task's suite in its one scoring pass: the lens only names
  and describes them (``model_lens = False``).
* **Model lenses** need the models themselves (concept vectors and probes, relearning and
  quantization attacks, N retrained vs N unlearned models, lm-eval). They implement
  :meth:`Lens.per_example` (needs a model) and :meth:`Lens.aggregate` (pure: the leaderboard
  recomputes it). The runner scores the original target and the oracle once per task and lens
  (cached on disk) unless ``references = False``.

A new lens is one module in this package with a :func:`unlearnbench.registry.register_lens`
class; it is discovered, and ``--lens`` accepts it on the task kinds in its ``kinds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from unlearnbench.suites.common import MetricRow


@dataclass
class LensContext:
    """What a model lens needs beyond the model it measures: the task's data, the device and
    the original target; for language models the tokenizer; for lenses that run the method
    again (the strong privacy tier), ``unlearn(model, seed) -> model``; ``cache`` keeps what
    one run computes once (located concept vectors, the original's quantization codes, ...)."""

    task: Any
    tokenizer: Any = None
    device: Any = None
    original: Any = None
    quiet: bool = True  # the lens's inner scoring passes (the runner shows one line per lens and model)
    seed: int = 0
    cache: dict = field(default_factory=dict)
    unlearn: Callable[[Any, int], Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the family's run options (e.g. models per side)
    progress: bool = False  # a lens's own long loops (N models) may show progress bars

    def engine(self, model, label: str):
        """A language model's scoring engine (language-model lenses)."""
        from unlearnbench.lm.scoring import ScoringEngine

        return ScoringEngine(model, self.tokenizer, self.task.prompt_format, self.device, quiet=self.quiet, label=label,
                             **getattr(self.task, "scoring", {}))


class Lens:
    """Subclass, set the class attributes, and (model lenses) implement ``per_example`` and
    ``aggregate``; register with :func:`unlearnbench.registry.register_lens`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    order: ClassVar[int] = 100  # display order in tables and reports (lower first)
    default: ClassVar[bool] = False  # measured when --lens is not given
    model_lens: ClassVar[bool] = True  # False: the suite's rows in this lens (one scoring pass)
    kinds: ClassVar[tuple[str, ...] | None] = None  # task kinds a model lens applies to (None: all)
    version: ClassVar[str] = "1"  # bumped when its scores change: cached references are recomputed
    references: ClassVar[bool] = True  # score the original target and the oracle too (cached)
    options: ClassVar[tuple] = ()  # unlearnbench.family.Option: run options it reads from ctx.options

    def rows(self) -> list[MetricRow]:
        return []

    def rows_for(self, scores: dict) -> list[MetricRow]:
        """The rows of one run, from the unlearned model's scores (a lens whose rows depend on
        what it was asked to measure, like lm-eval's tasks, overrides this)."""
        return self.rows()

    def missing(self, task) -> str | None:
        """Why this lens cannot measure ``task`` (None: it can). Checked once the task's data
        is loaded, before any model is."""
        return None

    def check(self, task, options: dict) -> str | None:
        """:meth:`missing`, with the run's options at hand (what the runner calls)."""
        return self.missing(task)

    def provenance(self, scores: dict) -> dict[str, Any]:
        """What the record's provenance keeps of this lens (library and task versions)."""
        return {}

    def per_example(self, ctx: LensContext, model, which: str) -> dict[str, Any]:
        """Everything the aggregate needs, for one model (``which``: unlearned, original, oracle)."""
        raise TypeError(f"The {self.name} lens is measured by the task's suite, not by itself.")

    def aggregate(self, per_example: dict, references: dict | None = None, *,
                  seed: int = 0) -> tuple[dict[str, float], dict[str, list[float]]]:
        """Flat metrics from one model's per-example scores (pure); ``references`` holds every
        model's scores (``original``, ``oracle``) where the lens scored them."""
        raise TypeError(f"The {self.name} lens is measured by the task's suite, not by itself.")

    def reference_key(self, task) -> dict[str, Any]:
        """What besides the task, the models, the lens version and the seed changes the
        references' scores (it goes into their cache key)."""
        return {}


class LanguageModelLens(Lens):
    """A model lens of language models whose scores depend on the task's concepts and probe
    questions (part of their references' cache key)."""

    kinds = ("language_model",)

    def reference_key(self, task) -> dict[str, Any]:
        return {"concepts": task.concepts, "probes": task.probes}
