"""Results as data: run records into a pandas DataFrame, for notebooks and other evaluations.

>>> from unlearnbench import load_runs
>>> df = load_runs("runs/")                       # or "runs/*npo*", "leaderboards/**", one record.json
>>> df.pivot_table(index="method", values=["forget_quality", "model_utility"])
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

from unlearnbench.errors import UserError
from unlearnbench.records import RECORD_FILE

FIXED_COLUMNS = ["run_id", "task", "suite", "method", "params", "seed", "status", "kind", "path"]


def find_records(path_or_glob: str | Path) -> list[Path]:
    """record.json files under a run folder, a folder of runs, a record file, or a glob of any of these."""
    text = str(path_or_glob)
    roots = [Path(p) for p in sorted(glob.glob(text, recursive=True))] if glob.has_magic(text) else [Path(text)]
    found: dict[Path, None] = {}
    for root in roots:
        if root.is_file() and root.name == RECORD_FILE:
            found[root] = None
        elif root.is_dir():
            for record in sorted(root.rglob(RECORD_FILE)) if not (root / RECORD_FILE).is_file() else [root / RECORD_FILE]:
                if not any(part.startswith(".") for part in record.relative_to(root).parts):
                    found[record] = None
    if not found and not glob.has_magic(text) and not Path(text).exists():
        raise UserError(f"{text} does not exist. Pass a run folder, a folder of runs, a {RECORD_FILE} or a glob "
                        "such as 'runs/*npo*'.")
    return list(found)


def _row(record: dict[str, Any], path: Path) -> dict[str, Any]:
    task, method = record.get("task", {}), record.get("method", {})
    return {"run_id": record.get("run_id"), "task": task.get("name"), "suite": task.get("suite"),
            "method": method.get("name"), "params": dict(method.get("params") or {}), "seed": record.get("seed"),
            "status": record.get("status"), "kind": "run", "path": str(path.parent)}


def load_runs(path_or_glob: str | Path, *, references: bool = False):
    """One row per run and one column per metric, plus ``run_id``, ``task``, ``suite``,
    ``method``, ``params`` (a dict; ``df.params.apply(pd.Series)`` spreads it), ``seed``,
    ``status``, ``kind`` and ``path``. Missing metrics are NaN.

    ``references=True`` adds, per task, rows for the original target and the oracle
    (``kind`` "reference", ``method`` "original" / "oracle") so they plot next to the runs.
    """
    import pandas as pd

    rows, metric_names, seen_refs = [], {}, set()
    for path in find_records(path_or_glob):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path} is not a readable JSON record ({exc}).") from None
        if not isinstance(record, dict) or "run_id" not in record:
            raise UserError(f"{path} is not a RunRecord (no run_id).")
        metrics = record.get("metrics") or {}
        metric_names.update(dict.fromkeys(metrics))
        rows.append(_row(record, path) | metrics)
        if references:
            key = (record.get("task", {}).get("name"), json.dumps(record.get("reference"), sort_keys=True))
            if key in seen_refs:
                continue
            seen_refs.add(key)
            for which, ref_metrics in (record.get("reference") or {}).items():
                metric_names.update(dict.fromkeys(ref_metrics))
                rows.append(_row(record, path) | {"run_id": f"{record['run_id']}:{which}", "method": which,
                                                  "params": {}, "kind": "reference"} | ref_metrics)
    frame = pd.DataFrame(rows, columns=FIXED_COLUMNS + [m for m in metric_names if m not in FIXED_COLUMNS])
    for name in metric_names:
        frame[name] = pd.to_numeric(frame[name], errors="coerce")
    order = frame.assign(_runs_first=frame["kind"] != "run")
    order = order.sort_values(["task", "_runs_first", "method", "seed", "run_id"], kind="stable")
    return frame.loc[order.index].reset_index(drop=True)
