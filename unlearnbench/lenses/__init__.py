"""Lenses: the named views of a run (``--lens``), one registry with their descriptions and
display order. See :mod:`unlearnbench.lenses.base` for the protocol; every module of this
package that registers a lens is discovered."""

from __future__ import annotations


def all_lenses() -> dict:
    """Every registered lens (an instance), in display order."""
    from unlearnbench import registry

    found = [entry.obj() for entry in registry.entries("lens").values()]
    return {lens.name: lens for lens in sorted(found, key=lambda lens: (lens.order, lens.name))}


def get_lens(name: str):
    """The registered lens called ``name`` (an instance); unknown names list the known ones."""
    from unlearnbench import registry

    return registry.get("lens", name).obj()


def default_lenses() -> tuple[str, ...]:
    """What a run measures when ``--lens`` is not given."""
    return tuple(name for name, lens in all_lenses().items() if lens.default)
