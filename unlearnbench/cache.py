"""The user cache: worlds, trained models and reference scores, keyed by fingerprint.

``UNLEARNBENCH_CACHE`` overrides the location (tests point it at a temporary folder).
Artefacts are built in a temporary sibling folder and renamed into place, so an interrupted
build never leaves a half-written artefact that a later run would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    env = os.environ.get("UNLEARNBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("unlearnbench"))


def fingerprint(obj: Any, length: int = 16) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


@contextlib.contextmanager
def building(final: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it becomes ``final`` atomically."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.building-"))
    try:
        yield tmp
        if final.exists():  # someone else finished first; theirs is as good as ours
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def folder_fingerprint(path: Path) -> str:
    """Cheap identity of a model folder: names, sizes and modification times of its files."""
    path = Path(path)
    entries = sorted(
        (str(p.relative_to(path)), p.stat().st_size, int(p.stat().st_mtime))
        for p in path.rglob("*") if p.is_file()
    )
    return fingerprint({"folder": str(path.resolve()), "files": entries})
