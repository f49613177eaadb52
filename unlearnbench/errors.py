"""Errors meant for people.

Every error raised for bad user input is a :class:`UserError`: the CLI prints its message
(what was wrong, with which value, and what to do) without a traceback and exits non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input from the user: an unknown name, a malformed file, a missing path."""


class UnknownNameError(UserError, KeyError):
    """An unknown task, method, metric or parameter name."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind, self.name = kind, name
        self.known = sorted(known)
        close = difflib.get_close_matches(name, self.known, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        listing = ", ".join(self.known) if self.known else "(none registered)"
        super().__init__(f"Unknown {kind} {name!r}.{hint} Known {kind}s: {listing}.")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class DataError(UserError):
    """A data folder or file that does not have the layout a task needs."""


class ModelSourceError(UserError):
    """A model source (hub id, folder, recipe) that cannot be resolved."""


class TrainingDivergedError(RuntimeError):
    """A method or recipe produced a non-finite loss; the run is recorded as failed."""

    def __init__(self, where: str, step: int, value: float):
        self.where, self.step, self.value = where, step, value
        super().__init__(
            f"{where}: loss became {value} at step {step}. Training diverged; "
            "lower the learning rate (--param lr=...) or the number of epochs and run again."
        )


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal (``kill``: SIGTERM, a closed terminal: SIGHUP,
    a scheduler's time limit): handled like Ctrl-C, so the run's record is rewritten as
    interrupted, but recorded as what it was."""

    def __init__(self, signal_name: str):
        self.signal_name = signal_name
        super().__init__(signal_name)
