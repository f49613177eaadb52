"""Reading task data laid out like a hub dataset: one ``<split>.json`` (JSON lines or a JSON
array) or ``<split>.parquet`` per split. Errors name the folder, the split and the field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from unlearnbench.errors import DataError


def _read_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded). Save the file as UTF-8.") from None
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON lines ({exc}). Each line must be one JSON object.") from None
    if not all(isinstance(r, dict) for r in rows):
        raise DataError(f"{path}: every row must be a JSON object with named fields.")
    return rows


def _is_text(value) -> bool:
    """A field the tasks read as text: a string, or a list of strings (TOFU's perturbed answers;
    parquet gives arrays for them)."""
    if isinstance(value, str):
        return True
    if hasattr(value, "tolist") and not isinstance(value, (bytes, bytearray)):
        value = value.tolist()
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def split_files(folder: Path, split: str) -> list[Path]:
    """The file(s) of one split: ``<split>.json|.jsonl|.parquet``, or the parquet shards the hub
    writes (``<split>-00000-of-00002.parquet``, ...), in shard order."""
    for suffix in (".json", ".jsonl", ".parquet"):
        candidate = folder / f"{split}{suffix}"
        if candidate.is_file():
            return [candidate]
    return sorted(p for p in folder.glob(f"{split}-*.parquet") if p.is_file())


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks (data files may be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def split_digests(folder: Path, split: str) -> list[str]:
    """The sha256 of each file of one split, in name order: what a task fingerprints its data by
    (the bytes, not how a library happens to load them)."""
    return [file_sha256(f) for f in sorted(split_files(folder, split))]


def load_splits(folder: Path, schema: Mapping[str, Sequence[str]], *, layout_name: str, text: bool = False) -> dict:
    """Load and validate every split of ``schema`` (split -> required fields) from ``folder``;
    with ``text``, every required field must be text (a string, or a list of strings)."""
    from datasets import Dataset

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"Data folder {str(folder)!r} does not exist.")
    missing = [s for s in schema if not split_files(folder, s)]
    if missing:
        raise DataError(
            f"Data folder {str(folder)!r} is missing split(s) {', '.join(missing)} "
            f"(expected files like {missing[0]}.json). The {layout_name} layout needs: {', '.join(schema)}."
        )
    out = {}
    for split, fields in schema.items():
        files = split_files(folder, split)
        path = files[0] if len(files) == 1 else folder / f"{split}-*.parquet"
        rows = [row for f in files for row in _read_rows(f)]
        if not rows:
            raise DataError(f"{path}: split {split!r} is empty.")
        for i, row in enumerate(rows):
            absent = [f for f in fields if f not in row]
            if absent:
                raise DataError(
                    f"{path}: row {i} of split {split!r} lacks field(s) {', '.join(absent)} "
                    f"(has: {', '.join(row)}). Every row needs: {', '.join(fields)}."
                )
            for f in fields if text else ():
                if not _is_text(row[f]):
                    raise DataError(f"{path}: row {i} of split {split!r} has a {type(row[f]).__name__} in field "
                                    f"{f!r}; it must be text (or a list of texts), e.g. write 1984 as \"1984\".")
        out[split] = Dataset.from_list(rows)
    return out


def write_parquet_split(folder: Path, split: str, rows: Sequence[Mapping]) -> Path:
    """Write one split as a single parquet shard, the way ``datasets`` pushes to the hub."""
    import pandas as pd

    path = Path(folder) / f"{split}-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([dict(r) for r in rows]).to_parquet(path, index=False)
    return path


def write_split(folder: Path, split: str, rows: Sequence[Mapping]) -> Path:
    """Write one split as JSON lines, the way TOFU's hub repository stores them."""
    path = Path(folder) / f"{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(dict(row), ensure_ascii=False) + "\n")
    return path
