"""One registry for tasks, methods, metrics, families, suites and lenses.

Built-ins are discovered, not listed: every module below ``unlearnbench.tasks``,
``unlearnbench.methods``, ``unlearnbench.lenses`` and ``unlearnbench.suites``, every
``<package>/family.py`` of the library (one per task kind) and ``unlearnbench.metrics.registered``
are imported when a name of that kind is first looked up or listed, so ``unlearnbench --help``
does not pay for torch. Third-party packages add entries through the entry-point groups
``unlearnbench.tasks``, ``unlearnbench.methods``, ``unlearnbench.metrics``, ``unlearnbench.lenses``
and ``unlearnbench.families``; each entry point names a module (or object) whose import registers.

Methods are keyed by (task kind, name): ``ga`` is one name for users and a small class per
kind (``methods/lm/ga.py``, ``methods/vision/ga.py``, ...). :func:`method` finds the class
for one kind. A module that fails to import fails the lookup loudly, naming the module, and
leaves the registry as it was before the attempt (no half-loaded registry).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from unlearnbench.errors import UnknownNameError, UserError

KINDS = ("task", "method", "metric", "family", "suite", "lens")

# Where built-ins live: packages are walked (every module in them registers), plain modules imported.
_BUILTIN_PACKAGES: dict[str, tuple[str, ...]] = {
    "task": ("unlearnbench.tasks",),
    "method": ("unlearnbench.methods",),
    "metric": (),
    "family": (),
    "suite": ("unlearnbench.suites",),
    "lens": ("unlearnbench.lenses",),
}
_BUILTIN_MODULES: dict[str, tuple[str, ...]] = {"metric": ("unlearnbench.metrics.registered",)}
_ENTRY_POINT_GROUPS = {k: ("unlearnbench.families" if k == "family" else f"unlearnbench.{k}s") for k in KINDS}


@dataclass(frozen=True)
class Entry:
    """A registered object with what the CLI shows about it. For methods, ``kind`` is the task
    kind the class serves (``language_model``, ``classifier``, ...)."""

    kind: str
    name: str
    obj: Any
    summary: str = ""
    info: dict[str, Any] = field(default_factory=dict)


_entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
_methods: dict[str, dict[str, Entry]] = {}  # name -> task kind -> Entry
_loaded: set[str] = set()
_order: dict[str, dict[str, int]] = {}  # kind -> module -> position (built-ins list in module order)


def _register(kind: str, name: str, obj: Any, summary: str, info: dict[str, Any]) -> None:
    if kind == "method":
        kinds = tuple(getattr(obj, "kinds", ()) or ())
        if not kinds:
            raise ValueError(f"method {name!r} ({obj!r}) declares no task kinds (set `kinds = (\"classifier\",)` ...).")
        for task_kind in kinds:
            existing = _methods.get(name, {}).get(task_kind)
            if existing is not None and existing.obj is not obj:
                raise ValueError(f"method {name!r} for {task_kind} is registered twice ({existing.obj!r} and {obj!r}).")
        for task_kind in kinds:
            _methods.setdefault(name, {})[task_kind] = Entry(task_kind, name, obj, summary, dict(info))
        return
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
    """Register a task factory: ``factory(**options) -> Task``. ``kind`` in info names the
    task's family (default ``language_model``); ``options`` the task options it accepts."""
    return _decorator("task", name, summary, info)


def register_method(name: str, *, summary: str = "", **info: Any) -> Callable:
    """Register a method class for the task kinds in its ``kinds`` (see :mod:`unlearnbench.method`)."""
    return _decorator("method", name, summary, info)


def register_metric(name: str, *, summary: str = "", **info: Any) -> Callable:
    """Register a metric: a pure function of arrays, with ``direction`` and ``lens`` in info."""
    return _decorator("metric", name, summary, info)


def register_family(name: str, *, summary: str = "") -> Callable:
    """Register a family class (see :mod:`unlearnbench.family`) under its task kind."""
    return _decorator("family", name, summary, {})


def register_suite(name: str, *, summary: str = "") -> Callable:
    """Register a suite class (see :mod:`unlearnbench.suites.base`) under the name tasks give."""
    return _decorator("suite", name, summary, {})


def register_lens(name: str, *, summary: str = "") -> Callable:
    """Register a lens class (see :mod:`unlearnbench.lenses.base`) under the name ``--lens`` takes."""
    return _decorator("lens", name, summary, {})


def _modules(kind: str) -> list[str]:
    names = list(_BUILTIN_MODULES.get(kind, ()))
    for package in _BUILTIN_PACKAGES[kind]:
        pkg = importlib.import_module(package)
        names += sorted(m.name for m in pkgutil.walk_packages(pkg.__path__, prefix=package + ".")
                        if not m.name.rsplit(".", 1)[-1].startswith("_"))
    if kind == "family":  # one family.py per task-kind package of the library (lm/, vision/, tabular/, ...)
        root = importlib.import_module("unlearnbench")
        names += sorted(f"unlearnbench.{m.name}.family" for m in pkgutil.iter_modules(root.__path__)
                        if m.ispkg and importlib.util.find_spec(f"unlearnbench.{m.name}.family") is not None)
    return names


def _snapshot() -> tuple:
    return ({k: dict(v) for k, v in _entries.items()}, {k: dict(v) for k, v in _methods.items()})


def _restore(snapshot: tuple) -> None:
    entries, methods = snapshot
    for k in KINDS:
        _entries[k].clear()
        _entries[k].update(entries[k])
    _methods.clear()
    _methods.update(methods)


def _load(kind: str) -> None:
    if kind in _loaded:
        return
    snapshot = _snapshot()
    _loaded.add(kind)
    current = ""
    try:
        modules = _modules(kind)
        _order[kind] = {module: i for i, module in enumerate(modules)}
        for current in modules:
            importlib.import_module(current)
        for ep in metadata.entry_points(group=_ENTRY_POINT_GROUPS[kind]):
            current = f"entry point {ep.name!r} ({ep.value}) of group {ep.group}"
            ep.load()
    except Exception as exc:
        _loaded.discard(kind)
        _restore(snapshot)
        raise RuntimeError(f"Could not load the {kind} registry: {current} failed to import "
                           f"({type(exc).__name__}: {exc}). Fix or uninstall it; nothing of it was registered.") from exc


def entries(kind: str) -> dict[str, Entry]:
    """All registered entries of one kind, built-ins and plugins, by name. For methods, one
    entry per name (its first kind's class); :func:`method_kinds` has every kind's class."""
    if kind not in KINDS:
        raise UnknownNameError("registry kind", kind, KINDS)
    _load(kind)
    if kind == "method":
        found = {name: next(iter(by_kind.values())) for name, by_kind in _methods.items()}
    else:
        found = dict(_entries[kind])
    # built-ins in the order of their modules (whatever imported one first), then plugins
    order = _order.get(kind, {})
    return dict(sorted(found.items(), key=lambda item: order.get(getattr(item[1].obj, "__module__", ""), len(order))))


def get(kind: str, name: str) -> Entry:
    """The entry called ``name``; an unknown name lists the known ones and the closest."""
    known = entries(kind)
    if name not in known:
        raise UnknownNameError(kind, name, known)
    return known[name]


def kind_label(kind: str) -> str:
    """A task kind as users read it (``language_model`` -> ``language-model``)."""
    return kind.replace("_", "-")


def method_kinds(name: str) -> dict[str, Entry]:
    """Every task kind's class of method ``name`` (task kind -> entry)."""
    get("method", name)
    return dict(_methods[name])


def method(name: str, task_kind: str) -> Entry:
    """The class of method ``name`` for tasks of ``task_kind``; a method that exists only for
    other kinds fails with the methods that do apply."""
    by_kind = method_kinds(name)
    if task_kind in by_kind:
        return by_kind[task_kind]
    fitting = [n for n, k in _methods.items() if task_kind in k]
    raise UserError(f"Method {name!r} does not apply to {kind_label(task_kind)} tasks "
                    f"(it has {', '.join(kind_label(k) for k in by_kind)}). Methods that do: {', '.join(fitting)}.")


def unregister(kind: str, name: str) -> None:
    """Remove an entry (tests and notebooks that register temporary ones)."""
    if kind == "method":
        _methods.pop(name, None)
    else:
        _entries[kind].pop(name, None)
