"""lm-evaluation-harness, as the lm-eval lens and the WMDP suite call it.

:func:`evaluate` runs lm-eval's own evaluator (``simple_evaluate`` on ``HFLM(pretrained=model,
tokenizer=tok, batch_size=...)``); :func:`sample_scores` reads each question's metric from its
logged samples, so that a suite can keep per-question scores (its aggregate is then the mean
lm-eval reports, recomputable without the model). :func:`write_task` writes a task
configuration that ``TaskManager(include_path=...)`` reads: JSON, which is YAML, so no value
needs YAML quoting; ``include`` names one of lm-eval's own configurations (by absolute path)
whose prompt, choices and metrics it keeps, with only the data moved to local files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from unlearnbench.errors import UserError


@contextlib.contextmanager
def _no_tqdm():
    """lm-eval's own tqdm bars off: tqdm reads ``TQDM_DISABLE`` when it is imported, so the bars
    (written to ``sys.stderr``) go to the null device instead; lm-eval's log handlers keep the
    stream they were made with, so its warnings still show."""
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its notes on being handed a model object are not the user's concern
    try:
        with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
            yield
    finally:
        logger.setLevel(level)


def _lm_eval():
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise UserError("This needs lm-eval: pip install 'unlearnbench[lm-eval]'.") from None
    return lm_eval, HFLM, TaskManager


def evaluate(model, tokenizer, tasks, *, device, include_path: str | None = None, include_defaults: bool = True,
             batch_size: int = 16, limit: int | None = None, seed: int = 0, log_samples: bool = False) -> dict:
    """lm-eval's ``simple_evaluate`` output for ``tasks`` (names from lm-eval's registry when
    ``include_defaults``, and from the configurations under ``include_path``)."""
    lm_eval, HFLM, TaskManager = _lm_eval()
    manager = TaskManager(include_path=include_path, include_defaults=include_defaults) if include_path else TaskManager()
    model = model.to(device).eval()
    with _no_tqdm():  # the runner shows one progress line per model
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=int(batch_size), device=str(device))
        out = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, limit=limit,
                                      log_samples=log_samples, verbosity="ERROR", random_seed=seed,
                                      numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed)
    if out is None:
        raise UserError("lm-eval returned no results (a distributed launch?): run it in one process.")
    out.setdefault("lm_eval_version", getattr(lm_eval, "__version__", None))
    return out


def sample_scores(out: dict, metric: str = "acc") -> dict[str, list[float]]:
    """Each leaf task's per-question ``metric`` from the logged samples, in document order."""
    samples = out.get("samples")
    if not samples:
        raise UserError("lm-eval logged no samples: call evaluate(..., log_samples=True).")
    return {task: [float(s[metric]) for s in sorted(rows, key=lambda s: s["doc_id"])] for task, rows in samples.items()}


def lm_eval_task_file(*parts: str) -> Path:
    """A configuration file of lm-eval's own tasks (e.g. ``"wmdp", "wmdp_bio.yaml"``)."""
    import lm_eval.tasks

    path = Path(lm_eval.tasks.__file__).parent.joinpath(*parts)
    if not path.is_file():
        raise UserError(f"This lm-eval has no task file {'/'.join(parts)}; install lm-eval>=0.4.")
    return path


def write_task(folder: Path, name: str, config: dict[str, Any]) -> Path:
    """Write ``<folder>/<name>.yaml`` (whole or not at all; unchanged files are left alone)."""
    return _write_if_changed(folder / f"{name}.yaml", json.dumps({"task": name, **config}, indent=1) + "\n")


def _write_if_changed(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all, whoever reads it meanwhile; a file that
    already holds it is left alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path


def local_data(files: list[Path], split: str = "test") -> dict[str, Any]:
    """The dataset keys that point a configuration at local parquet or JSON files."""
    kind = "parquet" if all(f.suffix == ".parquet" for f in files) else "json"
    return {"dataset_path": kind, "dataset_name": None, "dataset_kwargs": {"data_files": {split: [str(f) for f in files]}},
            "test_split": split}


def write_choice_task(folder: Path, name: str, rows: list[dict], *, doc_to_text: str) -> Path:
    """A multiple-choice task of ``rows`` (``question``, ``choices``, ``label``) as JSONL plus its
    configuration: the choices' texts scored as continuations of ``doc_to_text``, ``acc``."""
    data = _write_if_changed(folder / f"{name}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return write_task(folder, name, {
        "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test",
        "output_type": "multiple_choice", "doc_to_text": doc_to_text, "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{label}}", "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0}})
