"""One registry for tasks, methods and metrics.

Built-in entries live in known modules that are imported only when a name is looked up or
listed, so ``unlearnbench --help`` does not pay for torch. Third-party packages add entries
through the entry-point groups ``unlearnbench.tasks``, ``unlearnbench.methods`` and
``unlearnbench.metrics``; each entry point names a module (or object) whose import registers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from unlearnbench.errors import UnknownNameError

KINDS = ("task", "method", "metric")

_BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "task": ("unlearnbench.tasks.tofu", "unlearnbench.tasks.muse", "unlearnbench.tasks.digits", "unlearnbench.tasks.cifar",
             "unlearnbench.tasks.diabetes", "unlearnbench.tasks.tabular"),
    "method": (
        "unlearnbench.methods.original",
        "unlearnbench.methods.retrain",
        "unlearnbench.methods.ga",
        "unlearnbench.methods.graddiff",
        "unlearnbench.methods.npo",
        "unlearnbench.methods.simnpo",
        "unlearnbench.methods.idkdpo",
        "unlearnbench.methods.needle",
        "unlearnbench.methods.ft",
        "unlearnbench.methods.rl",
        "unlearnbench.methods.l1sparse",
        "unlearnbench.methods.bs",
        "unlearnbench.methods.be",
        "unlearnbench.methods.salun",
        "unlearnbench.methods.iu",
        "unlearnbench.methods.scrub",
        "unlearnbench.methods.laf",
        "unlearnbench.methods.sisa",
        "unlearnbench.methods.gaussian",
        "unlearnbench.methods.blindspot",
    ),
    "metric": ("unlearnbench.metrics.registered",),
}
_ENTRY_POINT_GROUPS = {k: f"unlearnbench.{k}s" for k in KINDS}


@dataclass(frozen=True)
class Entry:
    """A registered object with what the CLI shows about it."""

    kind: str
    name: str
    obj: Any
    summary: str = ""
    info: dict[str, Any] = field(default_factory=dict)


_entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
_loaded: set[str] = set()


def _register(kind: str, name: str, obj: Any, summary: str, info: dict[str, Any]) -> None:
    existing = _entries[kind].get(name)
    if existing is not None and existing.obj is not obj:
        raise ValueError(f"{kind} {name!r} is registered twice ({existing.obj!r} and {obj!r}).")
    _entries[kind][name] = Entry(kind, name, obj, summary, dict(info))


def _decorator(kind: str, name: str, summary: str, info: dict[str, Any]) -> Callable:
    def wrap(obj):
        doc = summary or (obj.__doc__ or "").strip().split("\n")[0]
        _register(kind, name, obj, doc, info)
        return obj

    return wrap


def register_task(name: str, *, summary: str = "", **info: Any) -> Callable:
    """Register a task factory: ``factory(**options) -> Task``."""
    return _decorator("task", name, summary, info)


def register_method(name: str, *, summary: str = "", **info: Any) -> Callable:
    """Register a method class (see :mod:`unlearnbench.method`)."""
    return _decorator("method", name, summary, info)


def register_metric(name: str, *, summary: str = "", **info: Any) -> Callable:
    """Register a metric: a pure function of arrays, with ``direction`` and ``lens`` in info."""
    return _decorator("metric", name, summary, info)


def _load(kind: str) -> None:
    if kind in _loaded:
        return
    _loaded.add(kind)
    for module in _BUILTIN_MODULES[kind]:
        importlib.import_module(module)
    for ep in metadata.entry_points(group=_ENTRY_POINT_GROUPS[kind]):
        ep.load()


def entries(kind: str) -> dict[str, Entry]:
    """All registered entries of one kind, built-ins and plugins, by name."""
    if kind not in KINDS:
        raise UnknownNameError("registry kind", kind, KINDS)
    _load(kind)
    # built-ins in the order of their modules (whatever imported one first), then plugins
    order = {module: i for i, module in enumerate(_BUILTIN_MODULES[kind])}
    ranked = sorted(_entries[kind].items(),
                    key=lambda item: order.get(getattr(item[1].obj, "__module__", ""), len(order)))
    return dict(ranked)


def get(kind: str, name: str) -> Entry:
    """The entry called ``name``; an unknown name lists the known ones and the closest."""
    known = entries(kind)
    if name not in known:
        raise UnknownNameError(kind, name, known)
    return known[name]
