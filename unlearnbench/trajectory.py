"""Trajectories: the model scored while it is being unlearned (``--eval-every N``).

The runner makes a :class:`Trajectory` (every how many optimisation steps, and how to score a
model: its suite's cheap metrics, :meth:`unlearnbench.suites.base.Suite.trajectory_point`) and
puts it in the method's ``RunContext``. :meth:`unlearnbench.family.Family.unlearn` watches the
copy of the target it hands the method (:func:`watching`), and the shared training loops
(:func:`unlearnbench.lm.modeling.train_loop`, :func:`unlearnbench.arraytasks.optimise`) call
:func:`step_done` after every optimiser step: no method has code of its own for it. Only the
steps of the watched model count (a VAE or a shard a method trains on the side does not), and
a LoRA wrapper (peft) counts as the model it wraps.

The points are the model before the first step (step 0), after every N-th step, and the model
the method returned (at the last step, replacing an in-loop point there): ``1 + ceil(steps /
N)`` points. Scoring in the loop does not change training: the model goes back to training
mode, and the random states of torch, numpy and ``random`` are restored afterwards.

The active trajectory is a context variable, set by :func:`watching` for the duration of one
``unlearn`` call and reset after it (no state outlives the call).
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Callable

SELECTION_LAST = "last"  # the reported point: the model the method returned
_ACTIVE: ContextVar[tuple["Trajectory", Any] | None] = ContextVar("unlearnbench_trajectory", default=None)


@dataclass
class Trajectory:
    """Every ``every`` optimisation steps, ``score(model) -> {metric: value}``."""

    every: int
    score: Callable[[Any], dict[str, float]]
    steps: int = 0  # optimisation steps of the watched model so far
    points: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # time spent scoring (not unlearning)
    finished: bool = False  # the method returned (its model is the last point)

    def add(self, model) -> None:
        """Score ``model`` now, as the point at :attr:`steps` (replacing a point already there)."""
        t = time.perf_counter()
        point: dict[str, Any] = {"step": self.steps}
        try:
            point["metrics"] = _score_untouched(self.score, model)
        except ValueError as exc:  # a metric refuses what the model gives now (NaN predictions on the way to divergence)
            point |= {"metrics": {}, "error": str(exc)}
        if self.points and self.points[-1]["step"] == self.steps:
            self.points.pop()
        self.points.append(point)
        self.seconds += time.perf_counter() - t

    def finish(self, model) -> None:
        """The model the method returned is the last point (when the watched model trained)."""
        self.finished = True
        if self.steps > 0:
            self.add(model)
        else:
            self.points.clear()

    def record(self) -> dict[str, Any]:
        """The record's ``trajectory`` section."""
        out: dict[str, Any] = {"every": self.every, "steps": self.steps, "points": self.points,
                               "reported": SELECTION_LAST,
                               "reported_step": self.points[-1]["step"] if self.points and self.finished else None,
                               "seconds": self.seconds}
        if not self.finished:
            out["note"] = "the method did not finish: the points it reached, none of them reported"
        elif not self.points:
            out["note"] = ("the method took no optimisation step on the model it was given (through the shared "
                           "training loops): there is no curve to draw")
        return out


def expected_points(steps: int, every: int) -> int:
    """How many points a trajectory of ``steps`` optimisation steps has: step 0, every
    ``every``-th step and the last."""
    return 1 + math.ceil(steps / every) if steps > 0 else 0


@contextlib.contextmanager
def watching(trajectory: Trajectory | None, model):
    """Trace ``model`` through the shared training loops while the block runs (a no-op for
    ``None``); scores it once first, as step 0."""
    if trajectory is None:
        yield
        return
    token = _ACTIVE.set((trajectory, model))
    try:
        trajectory.add(model)
        yield
    finally:
        _ACTIVE.reset(token)


def step_done(model) -> None:
    """Called by a shared training loop after each optimiser step of ``model``."""
    active = _ACTIVE.get()
    if active is None:
        return
    trajectory, watched = active
    if model is not watched and _unwrapped(model) is not watched:
        return
    trajectory.steps += 1
    if trajectory.steps % trajectory.every == 0:
        trajectory.add(model)


def _unwrapped(model):
    get_base = getattr(model, "get_base_model", None)  # a peft (LoRA) wrapper
    return get_base() if callable(get_base) else None


def _score_untouched(score, model) -> dict[str, float]:
    """``score(model)`` in eval mode without gradients, leaving the model's mode and every
    random state as they were (so the training that goes on is the one without scoring)."""
    import numpy as np
    import torch

    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    python_state, numpy_state = random.getstate(), np.random.get_state()
    was_training = model.training
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            model.eval()
            return {k: float(v) for k, v in score(model).items()}
    finally:
        model.train(was_training)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
