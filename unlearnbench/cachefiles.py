"""What the cache holds, for ``unlearnbench cache verify|clear``: each artefact with its size
and state (sound, damaged and why, without checksums, absent), of the whole cache or of the
artefacts a task's runs used (:func:`unlearnbench.cache.used_by`)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from unlearnbench.cache import MANIFEST, TASKS_FOLDER, cache_root, locked, problem, task_artefacts, task_index

SOUND = "ok"
UNCHECKED = "no checksums"  # files kept outside any artefact, or an artefact built before checksums
ABSENT = "absent (built when next used)"


@dataclass(frozen=True)
class Entry:
    path: Path
    size: int
    status: str  # SOUND, UNCHECKED, ABSENT or "damaged: <why>"

    @property
    def damaged(self) -> bool:
        return self.status.startswith("damaged")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _artefact(path: Path) -> Entry:
    if not path.exists():
        return Entry(path, 0, ABSENT)
    why = problem(path)
    return Entry(path, _size(path), SOUND if why is None else f"damaged: {why}")


def entries(task: str | None = None) -> list[Entry]:
    """Every artefact in the cache (or those recorded for ``task``), checked against its
    checksums. Files outside any artefact (built before checksums) are one entry per folder."""
    if task is not None:
        return [_artefact(path) for path in task_artefacts(task)]
    root = cache_root()
    out, loose = [], {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if MANIFEST in files:
            out.append(_artefact(here))
            dirs[:] = []
            continue
        # locks, builds in progress and the task index are the cache's own bookkeeping
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (here == root and d == TASKS_FOLDER))
        for name in files:
            if not name.startswith("."):
                loose[here] = loose.get(here, 0) + (here / name).stat().st_size
    out += [Entry(folder, size, UNCHECKED) for folder, size in loose.items()]
    return sorted(out, key=lambda e: str(e.path))


def clear(task: str | None = None) -> list[Entry]:
    """Remove the cache (or the artefacts recorded for ``task``, and its record); returns what
    was removed. An artefact being built is removed once its build ends (its lock is waited for)."""
    root = cache_root()
    if task is None:
        removed = [Entry(p, _size(p), "removed") for p in sorted(root.iterdir())] if root.is_dir() else []
        for entry in removed:
            _remove(entry.path)
        return removed
    removed = []
    for path in task_artefacts(task):
        with locked(path):
            if path.exists():
                removed.append(Entry(path, _size(path), "removed"))
                _remove(path)
    task_index(task).unlink(missing_ok=True)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def human_size(size: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"
