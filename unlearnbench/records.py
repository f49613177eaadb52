"""The RunRecord: the one result format, from the CLI to the leaderboard.

``runs/<run_id>/record.json`` holds the record; ``per_example.json`` beside it holds the
per-example scores every aggregate metric is computed from. Files are written atomically
(temporary file in the same folder, fsync, rename), so an interrupted run never leaves a
half-written record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RECORD_FILE = "record.json"
PER_EXAMPLE_FILE = "per_example.json"


@dataclass
class RunRecord:
    """What a run produced; see DESIGN.md (RunRecord)."""

    run_id: str
    status: str  # "running" | "succeeded" | "failed" | "interrupted"
    task: dict[str, Any]  # name, version, fingerprint
    method: dict[str, Any]  # name, params
    model: dict[str, Any]  # target / oracle sources
    seed: int
    metrics: dict[str, float] = field(default_factory=dict)
    ci: dict[str, list[float]] = field(default_factory=dict)
    reference: dict[str, dict[str, float]] = field(default_factory=dict)  # "original", "oracle"
    timing: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    mode: str = "standard"  # "scalability" | "sustainability": one entry per step in ``steps``
    steps: list[dict[str, Any]] = field(default_factory=list)
    lenses: list[str] = field(default_factory=list)  # the lenses this run measured (others were left out)
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {"schema_version": data.pop("schema_version"), **data}


def _json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON; they become null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json_safe(dataclasses.asdict(value))
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _json_safe(value.item())
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist())
    return value


def write_json_atomic(path: Path, data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_json_safe(data), fh, indent=2, sort_keys=False, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_record(run_dir: Path, record: RunRecord, per_example: dict[str, Any] | None = None) -> Path:
    """Write the per-example scores first, then the record, so a record never points at nothing."""
    run_dir = Path(run_dir)
    if per_example is not None:
        write_json_atomic(run_dir / PER_EXAMPLE_FILE, per_example)
    write_json_atomic(run_dir / RECORD_FILE, record.to_json())
    return run_dir / RECORD_FILE


def load_record(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_FILE
    return json.loads(path.read_text())


def config_hash(config: dict[str, Any]) -> str:
    blob = json.dumps(_json_safe(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def make_run_id(config: dict[str, Any]) -> str:
    """Readable and idempotent: the same task, method, params and seed give the same id."""
    task = str(config["task"]).replace("/", "-")
    return f"{task}__{config['method']}__s{config['seed']}__{config_hash(config)[:10]}"


def _git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return {"git_sha": None, "git_dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=5,
        )
        return {"git_sha": sha.stdout.strip(), "git_dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": None, "git_dirty": None}


PROVENANCE_PACKAGES = (
    "unlearnbench", "torch", "transformers", "datasets", "tokenizers", "numpy", "scipy",
    "scikit-learn", "rouge-score",
)


def provenance(config: dict[str, Any], device: str) -> dict[str, Any]:
    versions = {}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **_git_state(),
        "config_hash": config_hash(config),
        "device": device,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
