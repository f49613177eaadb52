"""The family protocol: everything kind-specific about running a task, behind one interface.

One family per task kind (language model, classifier, regression; diffusion next). A family
knows how its tasks are built and its models loaded, copied and handed to a method, what a
method of its kind is given, how a model is scored by the task's suite, and which options its
tasks and runs accept. The runner (:mod:`unlearnbench.runner`) holds no kind-specific policy:
it asks the task's family.

A new task kind is one package ``unlearnbench/<kind>/`` with a ``family.py`` that registers a
:class:`Family` subclass (discovered), its suite (registered with
:func:`unlearnbench.registry.register_suite`) and tasks registered with ``kind=<its kind>``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from unlearnbench.errors import UnknownNameError, UserError


def flag(name: str) -> str:
    """The command-line spelling of option ``name`` (``forget_indices`` -> ``--forget-indices``)."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Option:
    """An option a family's tasks or runs accept (``--forget-indices FILE`` on the command line,
    ``RunSpec(options={"forget_indices": ...})`` in Python).

    ``task``: passed to the task's factory (and part of the run id); otherwise read by the
    family or a lens at run time. ``tasks``: the task names it is for (empty: every task of
    the family). ``choices``: the values it takes (empty: any). ``in_run_id``: a run option
    whose non-default value changes the run id (what it scores depends on it). ``portable``:
    a task option a leaderboard submission may carry, because the task records it as plain
    data (a list of indices, not a file's path) that re-creates the task on any machine; the
    board re-creates a submitted task from its name and its portable options only."""

    name: str
    help: str
    type: Callable[[str], Any] = str
    default: Any = None
    task: bool = True
    tasks: tuple[str, ...] = ()
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()  # a callable: looked up when first needed
    in_run_id: bool = False
    portable: bool = False

    @property
    def flag(self) -> str:
        return flag(self.name)

    def convert(self, value: Any) -> Any:
        if value is None or not isinstance(value, str) or self.type is str:
            converted = value
        else:
            try:
                converted = self.type(value)
            except ValueError:
                raise UserError(f"{self.flag} {value!r}: expected a {getattr(self.type, '__name__', self.type)}.") from None
        choices = self.choices() if callable(self.choices) else self.choices
        if choices and converted not in choices:
            raise UnknownNameError(self.flag.removeprefix("--").replace("-", " "), str(converted), choices)
        return converted


SPLIT = "split"  # the task option that scores a run on one side of the task's validation split
SPLITS = ("all", "validation", "test")
VALIDATION_FRACTION = 0.25  # of each scored set, for hyperparameter selection (unlearnbench tune)
VALIDATION_SEED = 20240
FULL_TASK = "full_task"  # task.extra key: the task before its scored sets were sliced (what a method sees)


def split_option() -> Option:
    """The ``--split`` task option of a family that defines :meth:`Family.split_task`."""
    return Option(SPLIT, "score on the task's validation slices (hyperparameter selection), on the test slices "
                         "(what unlearnbench tune reports), or on all of it (default; the usual run): "
                         "all, validation or test", choices=SPLITS)


def validation_mask(keys, what: str):
    """Which rows of one scored set are validation rows: those whose key (a question's text, a
    training row's index) hashes, with :data:`VALIDATION_SEED`, into the first
    :data:`VALIDATION_FRACTION` of the range. Fixed by the data alone, never by a run's seed,
    and the same row is on the same side in every set that holds it (but in a set so small
    that no row, or every row, falls in the quarter: there the lowest hash, or the highest,
    changes side so that each side has one)."""
    import hashlib

    import numpy as np

    values = np.array([int(hashlib.sha256(f"{VALIDATION_SEED}/{k}".encode()).hexdigest()[:8], 16) for k in keys])
    if len(values) < 2:
        raise UserError(f"the {what} set has {len(values)} row(s); a validation split needs at least 2.")
    mask = values < VALIDATION_FRACTION * 2**32
    if not mask.any():  # a small set with no row in the quarter: its lowest hash is the validation row
        mask[np.argmin(values)] = True
    elif mask.all():
        mask[np.argmax(values)] = False
    return mask


def unsliced(task):
    """The task a method unlearns: the whole forget and retain sets, also on a split run."""
    return getattr(task, "extra", {}).get(FULL_TASK, task)


class Family:
    """Base class of a task kind's family. Subclass, set ``kind`` (the ``kind=`` its tasks
    register with), override what differs, and register with
    :func:`unlearnbench.registry.register_family`."""

    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    # Commands the family adds to the CLI, as "module:function" (a typer command function; the
    # module must import nothing heavy at its top, since `unlearnbench --help` imports it).
    commands: ClassVar[tuple[str, ...]] = ()

    # -------------------------------------------------------------- building and loading
    def load_task(self, factory: Callable[..., Any], *, data_dir, model, oracle, quiet: bool,
                  task_options: dict[str, Any], device: str = "auto"):
        """Build the task from its registered factory and the task options. ``device`` is the
        run's ``--device`` (``auto``, ``cpu``, ``cuda``...): where the task's own training
        recipe trains its target and oracle (a family passes it on where its factories take it)."""
        return factory(data_dir=data_dir, model=model, oracle=oracle, quiet=quiet, **task_options)

    def split_task(self, task, split: str):
        """The task scored on one side of its validation split (``validation`` or ``test``):
        the method still unlearns the whole forget set (:func:`unsliced`), while every scored
        set keeps only its validation or only its test rows, disjoint by construction. A family
        that defines it declares :func:`split_option`; its README section says which rows."""
        raise UserError(f"{self.kind.replace('_', ' ')} tasks have no validation split yet, so they cannot be tuned.")

    def describe(self, task) -> dict[str, Any]:
        """What ``unlearnbench show task`` prints about a built task: its data by role (rows)."""
        return {}

    def load_models(self, task, *, device=None, options: dict | None = None):
        """``(target, oracle)`` as :class:`unlearnbench.task.LoadedModel` (``device``: the run's
        resolved torch device; ``options``: the run options, e.g. a language model's dtype)."""
        return task.load_target(), task.load_oracle()

    def offload(self, *models) -> None:
        """Called once the references' scores are in hand: where a family's models compete
        for a device with the model about to be trained, move them off it (language models)."""

    def load_unlearned(self, source: str, task, target, *, device, options: dict):
        """A model unlearned elsewhere (``--unlearned PATH``), as a
        :class:`~unlearnbench.task.LoadedModel`: a folder :meth:`save_model` wrote, or what the
        kind's own loader reads (a ``save_pretrained`` folder or hub id for language models)."""
        raise UserError(f"--unlearned is not supported for {self.kind.replace('_', ' ')} tasks yet.")

    def save_model(self, model, folder, *, task, target, artifacts: dict) -> dict[str, Any]:
        """Write the unlearned ``model`` under ``folder`` (``--save-model``) so that
        :meth:`load_unlearned` reads it back; ``artifacts`` is what the method left in
        ``ctx.artifacts`` (a LoRA adapter, ...). Returns what the record says about the saved
        model (its layout and fingerprint)."""
        raise UserError(f"--save-model is not supported for {self.kind.replace('_', ' ')} tasks yet.")

    # ------------------------------------------------------------------------ unlearning
    def method_data(self, task, forget_role: str, target) -> Any:
        """What a method of this kind sees of the task (forget set ``task.splits[forget_role]``);
        every family defines it."""
        raise TypeError(f"{type(self).__name__} (task kind {self.kind!r}) does not define method_data.")

    def copy_model(self, model, device):
        """A copy of ``model`` the method may change (the runner never hands it the target)."""
        return copy.deepcopy(model).to(device)

    def unlearn(self, method, model, data, params, ctx):
        """Apply the method to a copy of ``model`` (a method that loads its own model, like
        ``external``, is given none); with ``ctx.trajectory`` the copy is scored every N of its
        optimisation steps (:mod:`unlearnbench.trajectory`)."""
        from unlearnbench.trajectory import watching

        if method.loads_model:
            return method.unlearn(None, data, params, ctx)
        copied = self.copy_model(model, ctx.device)
        with watching(ctx.trajectory, copied):  # --eval-every: the shared loops report this model's steps
            return method.unlearn(copied, data, params, ctx)

    # --------------------------------------------------------------------------- scoring
    def scorer(self, model, target, task, device, *, quiet: bool, label: str):
        """What the suite's :meth:`~unlearnbench.suites.base.Suite.score` measures the model
        through (language models: a scoring engine; arrays: the model itself)."""
        return model

    def score_key(self, task, device, options: dict) -> dict[str, Any]:
        """What else changes a model's scores on this task and so joins every cache key of
        reference scores (suites and lenses): by default the device type off the CPU (CPU keys
        stay as they always were)."""
        return {} if getattr(device, "type", "cpu") == "cpu" else {"device": device.type}

    def model_info(self, task) -> dict[str, Any]:
        """What the record's ``model`` section adds about how the models were run (a language
        model's dtype and prompt format)."""
        return {}

    def counts(self, scorer) -> dict[str, Any] | None:
        """Forward-pass counters of a scorer, for benchmarks (None where it keeps none)."""
        return None

    def lens_context(self, task, target, device, *, quiet: bool, seed: int, options: dict,
                     unlearn: Callable[[Any, int], Any]):
        from unlearnbench.lenses.base import LensContext

        return LensContext(task=task, tokenizer=target.tokenizer, device=device, original=target.model, quiet=True,
                           seed=seed, unlearn=unlearn, options=options, progress=not quiet)

def get_family(kind: str) -> Family:
    """The registered family of task kind ``kind``."""
    from unlearnbench import registry

    return registry.get("family", kind).obj()
