"""Leaderboard submissions: a run is checked before it is accepted, then stored as plain files.

A submission is a run folder (``record.json`` with ``per_example.json`` beside it). Everything
that can be checked is checked, cheapest first: the record's schema and version (validated by
the RunRecord model); provenance (package versions, and a git revision with a clean tree, or an
installed distribution whose files match its RECORD, unless ``allow_dirty``); duplicates of a run
already on the board; the task's name, version and fingerprint against the registry's; and
every aggregate metric, CI and reference row recomputed from the per-example scores by the
suite's pure ``aggregate``; then the reference scores against the task's own models, and with
``verify`` the unlearned scores against the run's weights (:mod:`unlearnbench.leaderboard.verify`:
the entry is marked verified, else recomputed). Nothing in a submission is executed or unpickled: it is read as
JSON, symbolic links are refused, and every name that becomes a path is checked or sanitised.

Accepted submissions live under ``<board>/<task folder>/<run_id>/`` (record, per-example
scores, and ``submission.json`` with what was checked); :mod:`unlearnbench.leaderboard.boards` renders the
boards from them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from unlearnbench.errors import UnknownNameError, UserError
from unlearnbench.leaderboard.ranking import number
from unlearnbench.records import PER_EXAMPLE_FILE, READABLE_SCHEMA_VERSIONS, RECORD_FILE, RunRecord, harness_dirty

DEFAULT_BOARD = Path("leaderboards")
SUBMISSION_FILE = "submission.json"
MAX_RECORD_BYTES = 16 << 20
MAX_PER_EXAMPLE_BYTES = 512 << 20
# What parsing one file may cost in memory at most, estimated from its bytes before parsing
# (see :func:`parse_cost`): a file of small objects ("[{},{},...]") costs 30 times its size
# as Python objects, one of floats 3 times, so the byte limit alone bounds nothing.
MAX_PARSE_BYTES = 1 << 30
_VALUE_BYTES, _CONTAINER_BYTES = 64, 120  # a parsed value (object + list slot), an empty dict or list
# Recomputed numbers must agree to this relative tolerance (the same code on the same
# numbers; the slack only absorbs summation order across numpy builds).
REL_TOL, ABS_TOL = 1e-9, 1e-12
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]{0,199}$")
# what a registered method's name may look like (the board shows it; it must be a name, not markup)
METHOD_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


class SubmissionError(UserError):
    """A submission that cannot be accepted; the message says which check refused it and why."""


# ----------------------------------------------------------------------- reading safely


def task_folder(task_name: str) -> str:
    """A safe folder name for a task: ``tofu-synth/forget10`` -> ``tofu-synth__forget10``."""
    name = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "_", str(task_name).replace("/", "__"))).lstrip(".")
    if not name:
        raise SubmissionError(f"Task name {task_name!r} gives no usable folder name.")
    return name[:200]


def read_json(path: Path, limit: int, what: str) -> Any:
    """Parse a JSON file that came from someone else: no symlinks, bounded size, JSON only."""
    path = Path(path)
    if path.is_symlink():
        raise SubmissionError(f"{path} is a symbolic link; submit the file itself (links are refused so a "
                              "submission cannot point at files outside it).")
    if not path.is_file():
        raise SubmissionError(f"The {what} {path} does not exist. A run folder holds {RECORD_FILE} and {PER_EXAMPLE_FILE}.")
    size = path.stat().st_size
    if size > limit:
        raise SubmissionError(f"The {what} {path} is {size} bytes, over the limit of {limit} bytes.")
    with open(path, "rb") as fh:  # no more than the limit, even if the file grew since it was measured
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise SubmissionError(f"The {what} {path} is over the limit of {limit} bytes.")
    cost = parse_cost(raw)
    if cost > MAX_PARSE_BYTES:
        raise SubmissionError(f"The {what} {path} would take about {cost >> 20} MB of memory to parse (it holds "
                              f"{raw.count(b',') + 1} values or more), over the limit of {MAX_PARSE_BYTES >> 20} MB; "
                              "per-example scores are lists of numbers, a few bytes of memory per byte of JSON.")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubmissionError(f"The {what} {path} is not valid JSON ({exc}).") from None
    except RecursionError:
        raise SubmissionError(f"The {what} {path} is nested too deeply to be a record.") from None


def parse_cost(raw: bytes) -> int:
    """An upper estimate of the memory ``json.loads`` takes for ``raw``: the bytes and their
    decoded text, plus every value (at most one per comma, and one) and every object or array
    as Python objects. Counted on the bytes, in C (``bytes.count``): no parsing."""
    values = raw.count(b",") + 1
    containers = raw.count(b"{") + raw.count(b"[")
    return 2 * len(raw) + _VALUE_BYTES * values + _CONTAINER_BYTES * containers


def _no_constants(name: str):
    # records write NaN and infinities as null; a bare NaN means the file was made by other means
    raise json.JSONDecodeError(f"{name} is not JSON (records write non-finite numbers as null)", name, 0)


def locate(path: Path) -> tuple[Path, Path]:
    """(record.json, per_example.json) of a run folder or of a record file."""
    path = Path(path)
    if path.is_symlink():
        raise SubmissionError(f"{path} is a symbolic link; submit the run folder itself.")
    if path.is_dir():
        return path / RECORD_FILE, path / PER_EXAMPLE_FILE
    if path.is_file():
        return path, path.parent / PER_EXAMPLE_FILE
    raise SubmissionError(f"{path} does not exist. Submit a run folder (runs/<run_id>) or its {RECORD_FILE}.")


# ---------------------------------------------------------------------------- validation

# A record file carries every field to_json writes; these are the ones the board relies on
# (records of schema 1 made before lenses existed have no 'lenses', so it is not required).
_REQUIRED = ("schema_version", "run_id", "status", "task", "method", "model", "seed", "metrics", "ci", "reference",
             "provenance")
# What a pydantic error type expects, in the words of the messages before the record was a model.
_EXPECTED = {"int_type": "int", "int_parsing": "int", "int_from_float": "int", "string_type": "str",
             "float_type": "number", "bool_type": "bool", "dict_type": "dict", "model_type": "dict",
             "model_attributes_type": "dict", "list_type": "list", "number_type": "number or null"}
_MAX_PROBLEMS = 20


def _where(loc: tuple) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else (f".{part}" if i else str(part))
                   for i, part in enumerate(loc))


def _schema_problem(error: dict) -> str:
    loc, kind, given = error["loc"], error["type"], error.get("input")
    if kind == "missing":
        return f"'{_where(loc)}' is missing"
    if kind == "number_type" and len(loc) == 2 and loc[0] == "metrics":
        return f"metric {loc[1]!r} is {given!r}, not a number"
    if kind in _EXPECTED:
        return f"'{_where(loc)}' should be a {_EXPECTED[kind]}, not {type(given).__name__}"
    return f"'{_where(loc)}': {error['msg']}"


def check_schema(record: Any) -> None:
    """The record validated by the RunRecord model itself (strictly: a string is not a seed),
    then what a submission needs beyond a valid record: a succeeded run with the task's version
    and fingerprint, both reference rows, a safe run id and a printable method name."""
    if not isinstance(record, dict):
        raise SubmissionError(f"The record is a JSON {type(record).__name__}, not an object: is this a {RECORD_FILE}?")
    version = record.get("schema_version")
    if type(version) is not int or version not in READABLE_SCHEMA_VERSIONS:
        readable = ", ".join(map(str, sorted(READABLE_SCHEMA_VERSIONS)))
        raise SubmissionError(f"Record schema version {version!r} is not a version this unlearnbench reads "
                              f"({readable}); re-run the evaluation with this version.")
    problems = [f"'{k}' is missing" for k in _REQUIRED if k not in record] + _unknown_fields(record)
    try:
        RunRecord.model_validate(record, strict=True)
    except ValidationError as exc:
        problems += [p for p in dict.fromkeys(map(_schema_problem, exc.errors(include_url=False))) if p not in problems]
    if not problems:
        task, method = record["task"], record["method"]
        problems += [f"'task.{k}' is missing or not a string" for k in ("version", "fingerprint")
                     if not isinstance(task.get(k), str)]
        if not METHOD_NAME_PATTERN.match(method["name"]):
            problems.append(f"'method.name' {method['name'][:80]!r} is not a method name (letters, digits and "
                            ". _ + - only, at most 64 characters)")
        for which in ("original", "oracle"):
            if which not in record["reference"]:
                problems.append(f"'reference.{which}' (the {which} model's metrics) is missing")
    if problems:
        more = f"; and {len(problems) - _MAX_PROBLEMS} more" if len(problems) > _MAX_PROBLEMS else ""
        raise SubmissionError("The record does not follow the RunRecord schema: "
                              + "; ".join(problems[:_MAX_PROBLEMS]) + more + ".")
    if record["status"] != "succeeded":
        raise SubmissionError(f"Run {record['run_id']} has status {record['status']!r}; only succeeded runs can be submitted.")
    if not RUN_ID_PATTERN.match(record["run_id"]) or ".." in record["run_id"]:
        raise SubmissionError(f"run_id {record['run_id']!r} is not a safe name (letters, digits and . _ + = - only, "
                              "no '..', at most 200 characters); run ids made by `unlearnbench evaluate` always are.")


# The sections whose keys are closed (a submission is data of a known shape: a field the
# schema does not name is refused, not stored on the board), and the free-form ones (what a
# method reported, the prompt format, ...), which are bounded in size instead.
_STEP_KEYS = {"step", "forget", "n_forget", "metrics", "ci", "unlearn_s", "evaluate_s"}
_FREE_FORM = ("method.info", "model.prompt_format", "model.scoring", "model.unlearned", "model.judge", "provenance.lenses")
MAX_FREE_FORM_BYTES = 64 << 10


def _unknown_fields(record: dict) -> list[str]:
    """Problems with keys the RunRecord schema does not declare, at the top and in each section."""
    from unlearnbench.records import Distribution, MethodInfo, ModelInfo, Provenance, TaskInfo

    problems = [f"'{k}' is not a field of the RunRecord schema" for k in record if k not in RunRecord.model_fields]
    sections = {"task": TaskInfo, "method": MethodInfo, "model": ModelInfo, "provenance": Provenance}
    for name, model in sections.items():
        section = record.get(name)
        if isinstance(section, dict):
            problems += [f"'{name}.{k}' is not a field of the RunRecord schema" for k in section if k not in model.model_fields]
    dist = (record.get("provenance") or {}).get("distribution") if isinstance(record.get("provenance"), dict) else None
    if isinstance(dist, dict):
        problems += [f"'provenance.distribution.{k}' is not a field of the RunRecord schema"
                     for k in dist if k not in Distribution.model_fields]
    for i, step in enumerate(record.get("steps") or [] if isinstance(record.get("steps"), list) else []):
        if isinstance(step, dict):
            problems += [f"'steps[{i}].{k}' is not a field of a step" for k in step if k not in _STEP_KEYS]
    for where in _FREE_FORM:
        section, _, key = where.partition(".")
        value = record.get(section, {}).get(key) if isinstance(record.get(section), dict) else None
        if value is not None and len(json.dumps(value)) > MAX_FREE_FORM_BYTES:
            problems.append(f"'{where}' is over {MAX_FREE_FORM_BYTES >> 10} KB")
    return problems


def check_per_example(per_example: Any) -> None:
    if not isinstance(per_example, dict):
        raise SubmissionError(f"{PER_EXAMPLE_FILE} should be an object with 'unlearned', 'original' and 'oracle'.")
    missing = [k for k in ("unlearned", "original", "oracle") if not isinstance(per_example.get(k), dict)]
    if missing:
        raise SubmissionError(f"{PER_EXAMPLE_FILE} lacks the per-example scores of {', '.join(missing)}: "
                              "the board recomputes every number from them.")


def check_provenance(record: dict, allow_dirty: bool) -> None:
    """The harness must be named: a git revision (clean unless ``allow_dirty``), or an installed
    distribution with the hashes of its files (unmodified unless ``allow_dirty``)."""
    prov = record["provenance"]
    packages = prov.get("packages")
    if not isinstance(packages, dict) or not packages:
        raise SubmissionError("The record's provenance has no package versions ('provenance.packages'); "
                              "records written by `unlearnbench evaluate` carry them.")
    if isinstance(prov.get("distribution"), dict):
        _check_distribution(record, prov["distribution"], allow_dirty)
        return
    if not isinstance(prov.get("git_sha"), str) or not prov["git_sha"]:
        raise SubmissionError("The record's provenance has no git revision ('provenance.git_sha') and no installed "
                              "distribution ('provenance.distribution'): run the evaluation from a git checkout of "
                              "unlearnbench, or from an installed wheel, so the board can name the harness.")
    dirty = prov.get("git_dirty")
    if dirty is not False and not allow_dirty:
        state = "had uncommitted changes" if dirty is True else "may have had uncommitted changes (git_dirty is unknown)"
        raise SubmissionError(f"The harness {state} when run {record['run_id']} was made (revision {prov['git_sha'][:12]}). "
                              "Commit and re-run, or pass --allow-dirty to submit it marked as made from a dirty tree.")


def _check_distribution(record: dict, dist: dict, allow_dirty: bool) -> None:
    # check_schema has validated the block (name, version, a sha256 over the files' hashes)
    name = f"{dist['name']} {dist['version']}"
    modified, files = dist.get("modified"), dist.get("modified_files") or []
    if modified is False or allow_dirty:
        return
    if modified is True:
        shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
        what = (f"{len(files)} of its files differed from the hashes in its RECORD ({shown})" if files
                else "its files differed from the hashes in its RECORD")
        raise SubmissionError(f"The installed harness ({name}) had been modified when run {record['run_id']} was made: "
                              f"{what}. Reinstall the wheel (pip install --force-reinstall --no-deps <wheel>) and "
                              "re-run, or pass --allow-dirty to submit it marked as made from a modified harness.")
    raise SubmissionError(f"The installed harness ({name}) may have been modified when run {record['run_id']} was made "
                          "(distribution.modified is unknown). Re-run it with this unlearnbench, or pass --allow-dirty "
                          "to submit it marked as made from a modified harness.")


def per_example_digest(per_example: dict) -> str:
    blob = json.dumps(per_example.get("unlearned"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def check_not_on_board(record: dict, digest: str, board: Path) -> None:
    folder = Path(board) / task_folder(record["task"]["name"])
    if (folder / record["run_id"]).exists():
        raise SubmissionError(f"Run {record['run_id']} is already on the board ({folder / record['run_id']}).")
    config = record["provenance"].get("config_hash")
    for other in stored_runs(folder):
        mine = read_quiet(other / SUBMISSION_FILE) or {}
        theirs = read_quiet(other / RECORD_FILE) or {}
        if config and theirs.get("provenance", {}).get("config_hash") == config:
            raise SubmissionError(f"Run {record['run_id']} duplicates {other.name} already on the board "
                                  "(same task, method, parameters and seed).")
        if mine.get("per_example_sha256") == digest:
            raise SubmissionError(f"Run {record['run_id']} has exactly the per-example scores of {other.name}, "
                                  "already on the board.")


def read_quiet(path: Path) -> Any:
    try:
        return None if path.is_symlink() else json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def portable_options(name: str) -> dict[str, Any]:
    """The task options a submission of task ``name`` may carry: those its family declares
    ``portable`` (plain data that re-creates the task anywhere, never a path)."""
    from unlearnbench import registry
    from unlearnbench.family import get_family

    family = get_family(registry.get("task", name).info.get("kind", "language_model"))
    return {o.name: o for o in family.options if o.task and o.portable}


def registry_task(name: str, options: dict, data_dir: str | None = None, quiet: bool = True,
                  trusted: dict | None = None):
    """Re-create a task from its registered name and the portable options recorded with it
    (:func:`portable_options`); every other recorded option must be one the registry's task
    reproduces by itself (``forget_split``, ...). Nothing a submission names is opened: a task
    recorded with a file of the machine that made it (``tabular-regression``'s ``data_file``)
    is refused, and the refusal names the options, never what a file holds. ``trusted``: task
    options from the caller, not from the submission (a test's world config)."""
    from unlearnbench import registry
    from unlearnbench.runner import RunSpec, load_task

    try:
        registry.get("task", name)
    except UnknownNameError as exc:
        raise SubmissionError(f"The record's task is not registered here: {exc}") from None
    if not isinstance(options, dict):
        raise SubmissionError("The record's 'task.options' is not an object.")
    portable = portable_options(name)
    given = {k: v for k, v in options.items() if k in portable}
    for key, value in given.items():
        if isinstance(value, str):
            raise SubmissionError(f"The record's task option {key!r} is text; a submission carries it as data "
                                  f"(e.g. the list of indices), never as the path of a file.")
    try:
        task = load_task(RunSpec(task=name, task_options={**given, **(trusted or {})}, data_dir=data_dir, quiet=quiet))
    except UserError:
        others = sorted(set(options) - set(given))
        raise SubmissionError(f"Task {name!r} cannot be re-created by the board from what its record holds: the board "
                              f"builds a task from its name and its portable options ({', '.join(portable) or 'none'}) "
                              f"only, and never opens a file a submission names"
                              f"{' (the record also names ' + ', '.join(others) + ')' if others else ''}.") from None
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise SubmissionError(f"Task {name!r} could not be re-created from the portable options in the record "
                              f"({', '.join(sorted(given)) or 'none'}): {type(exc).__name__}.") from None
    recreated = json.loads(json.dumps(task.spec.to_json()["options"], default=str))
    differ = sorted(k for k in set(recreated) | set(options) if recreated.get(k) != options.get(k))
    if differ:
        raise SubmissionError(f"Task {name!r}: the record's task option(s) {', '.join(differ)} are not what the "
                              f"registry's task has; the board takes only options it re-creates the task from "
                              f"(portable: {', '.join(portable) or 'none'}).")
    return task


def check_task(record: dict, task) -> str:
    """Name, version and fingerprint against the registry's; returns the suite name."""
    recorded = record["task"]
    theirs = {"version": recorded["version"], "fingerprint": recorded["fingerprint"]}
    ours = {"version": str(task.spec.version), "fingerprint": task.fingerprint}
    for key in ("version", "fingerprint"):
        if theirs[key] != ours[key]:
            what = "made on different data or a different task definition" if key == "fingerprint" else "made with another version of the task"
            raise SubmissionError(f"Task {recorded['name']}: the record's {key} {theirs[key]!r} differs from the "
                                  f"registry's {ours[key]!r}; the run was {what}. Re-run it with this unlearnbench.")
    if recorded.get("suite", task.suite) != task.suite:
        raise SubmissionError(f"Task {recorded['name']}: the record names suite {recorded['suite']!r} but the task "
                              f"is scored by {task.suite!r}.")
    return task.suite


def check_names(record: dict) -> None:
    """The task is registered here, and the method is one registered for its kind (a plugin's
    methods are known once the plugin is installed)."""
    from unlearnbench import registry

    try:
        entry = registry.get("task", record["task"]["name"])
    except UnknownNameError as exc:
        raise SubmissionError(f"The record's task is not registered here: {exc}") from None
    try:
        registry.method(record["method"]["name"], entry.info.get("kind", "language_model"))
    except UserError as exc:
        raise SubmissionError(f"The record's method is not one this unlearnbench knows for this task: {exc}") from None


def check_method(record: dict, task) -> None:
    """The method's params and preset are its own hyperparameters, typed and complete."""
    from dataclasses import asdict

    from unlearnbench import registry
    from unlearnbench.method import parse_params

    entry = registry.method(record["method"]["name"], task.kind)
    params_cls = entry.obj.params_class(task.kind)
    for key in ("params", "preset"):
        given = record["method"].get(key) or {}
        try:
            parsed = asdict(parse_params(params_cls, given))
        except UserError as exc:
            raise SubmissionError(f"The record's method.{key} are not {record['method']['name']}'s: {exc}") from None
        if key == "params" and json.loads(json.dumps(parsed)) != given:
            raise SubmissionError(f"The record's method.params are not the full, typed hyperparameters of "
                                  f"{record['method']['name']} (a run records every one of them).")


def check_identity(record: dict) -> None:
    """The run id, the config hash and the config (what defines the run) agree with each other
    and with the record: the id is made from the hash, the hash is the config's, and the
    config names this task, method, params, seed, mode and lenses. (Records made before
    ``provenance.config`` existed are checked by their id and hash alone.)"""
    from unlearnbench.lenses import default_lenses
    from unlearnbench.records import config_hash, make_run_id

    prov = record["provenance"]
    digest, config = prov.get("config_hash"), prov.get("config")
    expected_prefix = f"{str(record['task']['name']).replace('/', '-')}__{record['method']['name']}__s{record['seed']}__"
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise SubmissionError("The record has no config hash ('provenance.config_hash'); runs made by "
                              "`unlearnbench evaluate` carry it.")
    if record["run_id"] != expected_prefix + digest[:10]:
        raise SubmissionError(f"run_id {record['run_id']!r} is not the id of this task, method, seed and config hash "
                              f"({expected_prefix + digest[:10]!r}).")
    if config is None:
        return
    if not isinstance(config, dict) or config_hash(config) != digest:
        raise SubmissionError("The record's config ('provenance.config') does not hash to its config_hash.")
    if make_run_id(config) != record["run_id"]:
        raise SubmissionError("The record's run_id is not the one its config gives.")
    lenses = config.get("lenses", list(default_lenses()))
    facts = {"task": record["task"]["name"], "method": record["method"]["name"], "seed": record["seed"],
             "params": record["method"].get("params"), "mode": record.get("mode", "standard"),
             "lenses": record.get("lenses") or lenses}
    theirs = {"task": config.get("task"), "method": config.get("method"), "seed": config.get("seed"),
              "params": config.get("params"), "mode": config.get("mode", "standard"), "lenses": lenses}
    differ = [k for k in facts if facts[k] != theirs[k]]
    if differ:
        raise SubmissionError(f"The record's {', '.join(differ)} differ(s) from its config ('provenance.config'): "
                              "the record was edited after the run.")


def _same(a: Any, b: Any) -> bool:
    a, b = number(a), number(b)
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _compare(recorded: dict, recomputed: dict, where: str) -> None:
    for name, value in recorded.items():
        if name not in recomputed:
            raise SubmissionError(f"{where}: metric {name!r} is in the record but the suite does not compute it "
                                  "from the per-example scores.")
        if isinstance(value, list):  # a CI
            if len(value) != 2 or not all(_same(v, w) for v, w in zip(value, recomputed[name])):
                raise SubmissionError(f"{where}: the CI of metric {name!r} is {value} in the record but "
                                      f"{list(recomputed[name])} recomputed from the per-example scores.")
        elif not _same(value, recomputed[name]):
            raise SubmissionError(f"{where}: metric {name!r} is {value!r} in the record but {recomputed[name]!r} "
                                  "recomputed from the per-example scores; the record was altered or the scores "
                                  "are not this run's.")


def check_recomputed(record: dict, per_example: dict, suite_name: str) -> dict[str, Any]:
    """Every aggregate of the record (metrics, CIs, reference rows, and steps where their
    per-example scores come along) recomputed by the suite's pure ``aggregate``."""
    from unlearnbench import registry

    known = registry.entries("suite")
    if suite_name not in known:
        raise SubmissionError(f"Suite {suite_name!r} is not known to this unlearnbench (known: {', '.join(known)}).")
    aggregate = known[suite_name].obj().aggregate
    seed = record["seed"]

    def run_aggregate(scores, oracle, what):
        try:
            return aggregate(scores, oracle, seed=seed)
        except Exception as exc:  # malformed scores surface as whatever numpy raises
            raise SubmissionError(f"The per-example scores of the {what} model do not have the layout suite "
                                  f"{suite_name!r} expects ({type(exc).__name__}: {exc}).") from None

    lenses = record.get("lenses") or ["behavior"]
    if "behavior" not in lenses:
        raise SubmissionError(f"The run measured only the {', '.join(lenses)} lens(es); the board ranks by the "
                              "behavior lens, so re-run with it (the default lenses include it).")
    metrics, ci = run_aggregate(per_example["unlearned"], per_example["oracle"], "unlearned")
    references = {which: run_aggregate(per_example[which], per_example["oracle"], which)[0] for which in ("original", "oracle")}
    for name, scores in _lens_scores(per_example).items():
        # the parametric / robustness lenses: their own pure aggregate over their own scores
        metrics.update(_lens_aggregate(name, scores, "unlearned")[0])
        for which in references:
            if which in scores:  # privacy-strong has no reference rows
                references[which].update(_lens_aggregate(name, scores, which)[0])
    _compare(record["metrics"], metrics, "metrics")
    _compare(record["ci"], ci, "ci")
    for which in ("original", "oracle"):
        _compare(record["reference"][which], references[which], f"reference.{which}")
    return {"steps_checked": _check_steps(record, per_example, run_aggregate)}


def _lens_scores(per_example: dict) -> dict:
    from unlearnbench.lenses import all_lenses

    known = {name for name, lens in all_lenses().items() if lens.model_lens}
    lenses = per_example.get("lenses") or {}
    if not isinstance(lenses, dict) or not all(isinstance(v, dict) for v in lenses.values()):
        raise SubmissionError(f"{PER_EXAMPLE_FILE}: 'lenses' must map a lens name to its per-example scores.")
    for name in lenses:
        if name not in known:
            raise SubmissionError(f"{PER_EXAMPLE_FILE}: lens {name!r} is not known to this unlearnbench "
                                  f"(known: {', '.join(sorted(known))}).")
    return lenses


def _lens_aggregate(name: str, scores: dict, which: str) -> tuple[dict, dict]:
    from unlearnbench.lenses import get_lens

    try:
        return get_lens(name).aggregate(scores[which], scores)
    except Exception as exc:
        raise SubmissionError(f"The {name} lens scores of the {which} model do not have the layout the lens "
                              f"expects ({type(exc).__name__}: {exc}).") from None


def _check_steps(record: dict, per_example: dict, run_aggregate: Callable) -> int:
    """Scalability / sustainability runs carry ``steps`` (each with its ``metrics`` and ``ci``)
    and ``per_example["steps"]`` (each step's per-example scores of the unlearned model, or an
    object with them under ``unlearned``); each step is recomputed like the final metrics.
    Returns the number of steps checked."""
    steps = record.get("steps") or []
    if not steps:
        return 0
    scores = per_example.get("steps")
    if not isinstance(steps, list) or not isinstance(scores, list) or len(scores) != len(steps):
        raise SubmissionError(f"The record has {len(steps) if isinstance(steps, list) else 'malformed'} steps but "
                              f"{PER_EXAMPLE_FILE} does not hold one set of per-example scores per step ('steps'); "
                              "every step's metrics must be recomputable.")
    for i, (step, step_scores) in enumerate(zip(steps, scores)):
        if not isinstance(step, dict) or not isinstance(step.get("metrics"), dict) or not isinstance(step_scores, dict):
            raise SubmissionError(f"Step {i + 1} of the record has no 'metrics' object, or its per-example scores are missing.")
        unlearned = step_scores["unlearned"] if isinstance(step_scores.get("unlearned"), dict) else step_scores
        metrics, ci = run_aggregate(unlearned, per_example["oracle"], f"step {i + 1}")
        _compare(step["metrics"], metrics, f"steps[{i}].metrics")
        if isinstance(step.get("ci"), dict):
            _compare(step["ci"], ci, f"steps[{i}].ci")
    return len(steps)


@dataclass
class Submission:
    record: dict
    per_example: dict
    digest: str
    suite: str
    notes: dict = field(default_factory=dict)


def validate(path: Path, *, board: Path = DEFAULT_BOARD, allow_dirty: bool = False, data_dir: str | None = None,
             task_loader: Callable | None = None, quiet: bool = True, verify: bool = False,
             scores: Callable | None = None) -> Submission:
    """Every check, cheapest first; raises :class:`SubmissionError` naming what was refused.
    Last, the references are scored from the task's own models and, with ``verify``, the
    unlearned scores from the run's weights (:mod:`unlearnbench.leaderboard.verify`; ``scores``
    stands in for :func:`unlearnbench.runner.board_scores`)."""
    from unlearnbench.leaderboard.verify import check_against_models

    record_path, per_example_path = locate(path)
    record = read_json(record_path, MAX_RECORD_BYTES, "record")
    check_schema(record)
    check_names(record)
    check_identity(record)
    check_provenance(record, allow_dirty)
    per_example = read_json(per_example_path, MAX_PER_EXAMPLE_BYTES, "per-example scores")
    check_per_example(per_example)
    digest = per_example_digest(per_example)
    check_not_on_board(record, digest, board)
    loader = task_loader or registry_task
    task = loader(record["task"]["name"], record["task"].get("options", {}), data_dir, quiet)
    suite = check_task(record, task)
    check_method(record, task)
    notes = check_recomputed(record, per_example, suite)
    notes |= check_against_models(record, per_example, task, record_path.parent, verify=verify, scores=scores)
    return Submission(record, per_example, digest, suite, notes)


def store(submission: Submission, board: Path = DEFAULT_BOARD) -> Path:
    """Write the accepted files under ``<board>/<task folder>/<run_id>/`` (all or nothing)."""
    record = submission.record
    folder = Path(board) / task_folder(record["task"]["name"])
    final = folder / record["run_id"]
    if final.resolve().parent != folder.resolve():  # belt and braces behind the run-id check
        raise SubmissionError(f"run_id {record['run_id']!r} would be stored outside {folder}.")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=".incoming-"))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the run from a web server serving the board
        (tmp / RECORD_FILE).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
        (tmp / PER_EXAMPLE_FILE).write_text(json.dumps(submission.per_example, separators=(",", ":"), allow_nan=False) + "\n")
        meta = {"run_id": record["run_id"], "task": record["task"]["name"], "suite": submission.suite,
                "per_example_sha256": submission.digest, "dirty": harness_dirty(record),
                **submission.notes}
        (tmp / SUBMISSION_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def submit(path: Path, *, board: Path = DEFAULT_BOARD, allow_dirty: bool = False, data_dir: str | None = None,
           task_loader: Callable | None = None, quiet: bool = True, verify: bool = False,
           scores: Callable | None = None) -> Path:
    """Validate a run and store it on the board (marked verified with ``verify``, else
    recomputed); returns the stored folder."""
    sub = validate(path, board=board, allow_dirty=allow_dirty, data_dir=data_dir, task_loader=task_loader, quiet=quiet,
                   verify=verify, scores=scores)
    return store(sub, board)


# -------------------------------------------------------------------------------- boards


def stored_runs(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))

