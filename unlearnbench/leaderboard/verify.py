"""What the board checks against models, not only against the numbers a submission sends.

Recomputing every aggregate (:mod:`unlearnbench.leaderboard.submissions`) proves that the
numbers follow from the per-example scores sent with them, not that the scores are a model's.
Two checks close that gap, both through the runner's one path (:func:`unlearnbench.runner.board_scores`):

- **References.** The board scores the task's own original target and oracle (cached, as every
  run's references are) and refuses a submission whose reference per-example scores differ,
  naming the first example that differs. Where the board cannot have those models (a hub
  model it cannot reach, a target or oracle of the submitter's own, a device it lacks), the
  entry is marked *references unverified*.
- **Weights** (``submit --verify``). A run saved with ``--save-model`` (its ``model/`` folder)
  or one that scored a hub model (``--unlearned hub:<id>``) is scored again from those weights
  (no unlearning) and its unlearned per-example scores must be the ones submitted. Such an
  entry is **verified**; one with scores only is **recomputed**, and ranks below every verified
  run of its board (:func:`unlearnbench.leaderboard.ranking.rank_tiers`).

A model folder from a submission is data: regular files of the formats the loaders read
(safetensors weights, JSON configs and tokenizers), no links, nothing executable or pickled.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unlearnbench.errors import UserError
from unlearnbench.leaderboard.submissions import SubmissionError

VERIFIED, RECOMPUTED = "verified", "recomputed"
# Scores of the same weights through the same code on the same kind of device agree to far
# better than this; what moves them is summation order (thread counts, batch composition: the
# scoring engine's padded batches keep log-probabilities within 1e-5, see --score-padding).
# A swapped or edited score moves by orders of magnitude more (an oracle's forget-set NLL
# differs from the target's by whole nats).
SCORE_REL_TOL, SCORE_ABS_TOL = 1e-4, 1e-5
# Per-example entries that are wall-clock seconds (``rte_s``, the generation suite's ``sampling_s``):
# a machine's timing, not a score of the weights, so scoring again cannot reproduce them. They
# are informational metrics, never a ranking criterion, and are not compared.
SECONDS_SUFFIX = "_s"
MODEL_DIR = "model"  # where --save-model keeps the weights, beside the record
# what a saved model folder may hold: weights as safetensors, configuration and tokenizer as text
MODEL_SUFFIXES = (".safetensors", ".json", ".txt", ".jinja", ".model")
MAX_MODEL_FILES = 10_000


class VerificationError(SubmissionError):
    """A submission whose scores are not what its task's or its own models give."""


def first_difference(submitted: Any, ours: Any, where: str) -> str | None:
    """Where two per-example score trees first differ (``oracle.forget.truth_ratio[17]: 0.53
    submitted, 0.61 here``), or None when they agree within the tolerance. Timings
    (:data:`SECONDS_SUFFIX`) must be present on both sides but may differ."""
    if isinstance(ours, dict):
        if not isinstance(submitted, dict):
            return f"{where}: submitted as {type(submitted).__name__}, not an object"
        for key in sorted(set(ours) | set(submitted), key=str):
            if str(key).endswith(SECONDS_SUFFIX) and key in ours and key in submitted:
                continue
            if key not in submitted:
                return f"{where}.{key}: missing from the submission"
            if key not in ours:
                return f"{where}.{key}: not a score this task's suite gives"
            found = first_difference(submitted[key], ours[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(ours, list):
        if not isinstance(submitted, list) or len(submitted) != len(ours):
            size = len(submitted) if isinstance(submitted, list) else type(submitted).__name__
            return f"{where}: {size} submitted, {len(ours)} examples here"
        for i, (a, b) in enumerate(zip(submitted, ours)):
            found = first_difference(a, b, f"{where}[{i}]")
            if found:
                return found
        return None
    if _same_score(submitted, ours):
        return None
    return f"{where}: {_short(submitted)} submitted, {_short(ours)} here"


def _same_score(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        if not (math.isfinite(a) and math.isfinite(b)):
            return a == b
        return math.isclose(a, b, rel_tol=SCORE_REL_TOL, abs_tol=SCORE_ABS_TOL)
    # records write non-finite numbers as null: a score computed here as nan is one submitted as None
    if a is None and isinstance(b, float) and not math.isfinite(b):
        return True
    return type(a) is type(b) and a == b


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------- what the board can redo


def board_spec(record: dict, device: str):
    """The RunSpec whose scoring path the run took: its task, seed, lenses and the run options
    that changed its id (a language model's dtype, ...), on ``device``."""
    from unlearnbench.runner import RunSpec

    config = record["provenance"].get("config") or {}
    known = {"task", "method", "params", "seed", "model", "oracle", "data_dir", "task_options", "mode", "lenses"}
    options = {k: v for k, v in config.items() if k not in known}
    return RunSpec(task=record["task"]["name"], seed=record["seed"], lenses=tuple(record.get("lenses") or ()) or None,
                   options=options, device=device, quiet=True)


def unreachable(record: dict) -> str | None:
    """Why the board cannot score this run's own references, or None. A target or oracle the
    submitter named (``--model`` / ``--oracle``) is not the task's: a folder of theirs is never
    opened here. A run made on a GPU is scored on one (dtype and kernels follow the device)."""
    import torch

    config = record["provenance"].get("config") or {}
    named = [f"--{k} {config[k]}" for k in ("model", "oracle") if config.get(k)]
    if named:
        return (f"the run was scored against its own {' and '.join(named)}, not the task's models; "
                "the board compares references of the task's own models only")
    device = str(record["provenance"].get("device") or "cpu").split(":")[0]
    if device == "cuda" and not torch.cuda.is_available():
        return "the run was made on a CUDA device and this machine has none (scores follow the device's dtype and kernels)"
    if device not in ("cpu", "cuda"):
        return f"the run was made on device {device!r}, which the board does not score on"
    return None


def saved_weights(run_folder: Path, record: dict) -> str | None:
    """What ``--verify`` re-scores: the run's ``model/`` folder (``--save-model``), or the hub id
    it scored (``--unlearned hub:<id>``); None when the run carries neither. Refuses a folder
    that holds anything but data files or a link."""
    unlearned = (record.get("model") or {}).get("unlearned") or {}
    if unlearned:
        if unlearned.get("path") != MODEL_DIR:
            raise VerificationError(f"The record's model.unlearned.path is {str(unlearned.get('path'))[:80]!r}; a run "
                                    f"keeps its weights in {MODEL_DIR}/ beside the record (--save-model).")
        folder = Path(run_folder) / MODEL_DIR
        if folder.is_symlink() or not folder.is_dir():
            raise VerificationError(f"The record says the weights were saved, but {folder} is not a folder beside it; "
                                    f"submit the run folder with its {MODEL_DIR}/ (as --save-model left it).")
        check_model_folder(folder)
        return str(folder)
    source = str(((record.get("method") or {}).get("params") or {}).get("source") or "")
    if record["method"]["name"] == "external" and source.startswith("hub:"):
        return source
    return None


def check_model_folder(folder: Path) -> None:
    """Only regular data files (:data:`MODEL_SUFFIXES`) in folders, no links: what a loader
    reads from it cannot run code or point outside it."""
    entries = list(Path(folder).rglob("*"))
    if len(entries) > MAX_MODEL_FILES:
        raise VerificationError(f"{folder} holds {len(entries)} entries; a saved model has a few files.")
    for path in entries:
        name = path.relative_to(folder)
        if path.is_symlink():
            raise VerificationError(f"{MODEL_DIR}/{name} is a symbolic link; a saved model holds its files themselves.")
        if path.is_dir():
            continue
        if not path.is_file() or path.suffix not in MODEL_SUFFIXES:
            raise VerificationError(f"{MODEL_DIR}/{name} is not a file a saved model holds (weights in safetensors, "
                                    f"configuration as JSON: {', '.join(MODEL_SUFFIXES)}); nothing else is read.")


def weights_sha256(source: str) -> str:
    """A content hash of a saved model folder (names and bytes; a hub id hashes its name)."""
    digest = hashlib.sha256()
    folder = Path(source)
    if source.startswith("hub:") or not folder.is_dir():
        digest.update(source.encode())
        return digest.hexdigest()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _unlearn_seconds(record: dict) -> float | None:
    """The unlearning time the run reported for the model it scored (the last step's, in a mode
    with steps): a suite that shows run time takes it as it is."""
    steps = record.get("steps") or []
    if steps and isinstance(steps[-1], dict):
        return steps[-1].get("unlearn_s")
    return (record.get("timing") or {}).get("unlearn_s")


def check_against_models(record: dict, per_example: dict, task, run_folder: Path, *, verify: bool = False,
                         scores: Callable | None = None) -> dict[str, Any]:
    """The references (always) and, with ``verify``, the unlearned scores from the run's weights,
    against what the board's own scoring gives. Returns what ``submission.json`` records:
    ``verification`` (verified | recomputed), ``references`` (board | unverified) and why."""
    from unlearnbench.runner import board_scores

    scores = scores or board_scores
    weights = saved_weights(run_folder, record) if verify else None
    if verify and weights is None:
        raise VerificationError("--verify re-scores the run from its weights, and this run carries none: re-run it with "
                                "--save-model (its model/ folder travels with the run), or evaluate a hub model with "
                                "--unlearned hub:<id>; without --verify it is accepted as recomputed.")
    why = unreachable(record)
    if why is None:
        device = str(record["provenance"].get("device") or "cpu").split(":")[0]
        try:
            ours = scores(board_spec(record, device), task, unlearned=weights, rte_s=_unlearn_seconds(record))
        except UserError as exc:  # a hub model out of reach, a model folder the loader refuses
            if weights is not None:
                raise VerificationError(f"--verify could not score the run here ({exc}). Submit without --verify "
                                        "to be marked recomputed.") from None
            why = f"the board could not load the task's models ({exc})"
    if why is not None:
        if verify:
            raise VerificationError(f"--verify needs the task's own models and the board cannot score them: {why}. "
                                    "Submit without --verify to be marked recomputed, references unverified.")
        return {"verification": RECOMPUTED, "references": "unverified", "references_note": why}
    for which in ("original", "oracle"):
        found = first_difference(per_example[which], ours[which], which)
        if found:
            raise VerificationError(
                f"The {which} model's per-example scores are not the ones this task's {which} gives here "
                f"(first difference: {found}){_fingerprints(record, ours, which)}. The board ranks runs scored "
                "against the task's own target and oracle only: re-run the evaluation with this unlearnbench.")
    notes = {"verification": RECOMPUTED, "references": "board"}
    if weights is not None:
        found = first_difference(per_example["unlearned"], ours["unlearned"], "unlearned")
        if found:
            raise VerificationError(f"The unlearned per-example scores are not what the run's weights ({weights_name(weights)}) "
                                    f"give when scored here (first difference: {found}): the scores were not made by "
                                    "this model.")
        notes |= {"verification": VERIFIED, "weights": weights_name(weights), "weights_sha256": weights_sha256(weights)}
    return notes


def weights_name(source: str) -> str:
    return source if source.startswith("hub:") else f"{MODEL_DIR}/"


def _fingerprints(record: dict, ours: dict, which: str) -> str:
    key = "target_fingerprint" if which == "original" else "oracle_fingerprint"
    theirs = (record.get("model") or {}).get(key)
    if theirs and ours.get(key) and theirs != ours[key]:
        return f"; the run's {which} model has fingerprint {theirs}, the board's {ours[key]}"
    return ""


def mark(record: dict) -> str:
    """The board's mark of a stored run: verified, recomputed, or recomputed with its references
    unverified (a run stored before the marks existed is recomputed)."""
    meta = record.get("_submission") or {}
    if meta.get("verification") == VERIFIED and meta.get("references") == "board":
        return VERIFIED
    return RECOMPUTED + (", references unverified" if meta.get("references") == "unverified" else "")


def tier(record: dict) -> int:
    """0 for a verified run, 1 for every other: a recomputed run never ranks above a verified one."""
    return 0 if mark(record) == VERIFIED else 1
