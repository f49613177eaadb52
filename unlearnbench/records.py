"""The RunRecord: the one result format, from the CLI to the leaderboard.

``runs/<run_id>/record.json`` holds the record; ``per_example.json`` beside it holds the
per-example scores every aggregate metric is computed from. Files are written atomically
(temporary file in the same folder, fsync, rename), so an interrupted run never leaves a
half-written record.

The record is a pydantic model (:class:`RunRecord`) whose JSON Schema ships with the package
(``unlearnbench/schema/record.schema.json``; regenerate it with
``python -m unlearnbench.records --schema --write``). Its sections (task, method, model,
provenance) are typed models that keep the extra keys records carry, and read and write like
the dicts they were (``record.task["name"]``, ``record.method["info"] = ...``). A section
writes only the keys it was given, so ``to_json()`` is exactly the file a run writes.

Schema versions: :data:`SCHEMA_VERSION` is the version new records carry. It changes when a
field changes meaning or a field that readers rely on goes away, not when an optional field
is added (``provenance.distribution`` came without a bump: a reader of version 1 that does
not know it still reads the record correctly). Every version in
:data:`READABLE_SCHEMA_VERSIONS` reads and validates; a bump adds the new one to that set,
so the records already on disk stay readable.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_serializer
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 1
READABLE_SCHEMA_VERSIONS = frozenset({1})
RECORD_FILE = "record.json"
PER_EXAMPLE_FILE = "per_example.json"
SCHEMA_FILE = Path(__file__).resolve().parent / "schema" / "record.schema.json"
DISTRIBUTION = "unlearnbench"


# ------------------------------------------------------------------------------- types


def _number(value: Any) -> int | float | None:
    """A metric value: an int or a float (NaN and infinities included: they are written as
    null), or None. numpy and torch scalars become Python numbers; nothing else is accepted
    (a string is not a number, and neither is a bool)."""
    if value is not None and not isinstance(value, (int, float, str, bytes)) and callable(getattr(value, "item", None)):
        try:
            value = value.item()
        except (TypeError, ValueError):  # an array of more than one element
            pass
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise PydanticCustomError("number_type", "should be a number or null, not {kind}", {"kind": type(value).__name__})


def _model_source(value: Any) -> str | None:
    """A model source is text (hub:<id>, a folder, recipe:<name>); a folder given as a Path is
    written as its text."""
    value = os.fspath(value) if isinstance(value, os.PathLike) else value
    if value is None or isinstance(value, str):
        return value
    raise PydanticCustomError("string_type", "should be a str, not {kind}", {"kind": type(value).__name__})


Number = Annotated[Optional[float], PlainValidator(_number), WithJsonSchema({"type": ["number", "null"]})]
Source = Annotated[Optional[str], PlainValidator(_model_source), WithJsonSchema({"type": ["string", "null"]})]
Status = Literal["running", "succeeded", "failed", "interrupted"]


class Section(BaseModel):
    """A part of the record: typed fields, any extra keys, and the dict interface records had.

    Only the keys given (at construction or later) are written, in the declared order of the
    fields and then the extra keys in the order they came; an unset field reads as missing
    (``"suite" in record.task`` is false until the runner sets it)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    def _given(self) -> list[str]:
        set_fields = [name for name in type(self).model_fields if name in self.model_fields_set]
        return set_fields + list(self.__pydantic_extra__ or {})

    @model_serializer(mode="wrap")
    def _only_given(self, handler):
        data = handler(self)
        return {key: data[key] for key in self._given() if key in data}

    def _value(self, key: str) -> Any:
        extra = self.__pydantic_extra__ or {}
        return extra[key] if key in extra else getattr(self, key)  # an extra key may be called "items"

    def __getitem__(self, key: str) -> Any:
        if key not in self._given():
            raise KeyError(key)
        return self._value(key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def __contains__(self, key: object) -> bool:
        return key in self._given()

    def __iter__(self):  # a mapping's keys, as the dicts these sections were (dict(section) works)
        return iter(self._given())

    def __len__(self) -> int:
        return len(self._given())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, dict):
            return self.model_dump() == other
        return super().__eq__(other)

    __hash__ = None  # mutable, like the dicts these sections were

    def __repr_args__(self):
        return [(key, self._value(key)) for key in self._given()]

    def keys(self):
        return self._given()

    def items(self):
        return [(key, self._value(key)) for key in self._given()]

    def values(self):
        return [self._value(key) for key in self._given()]

    def get(self, key: str, default: Any = None) -> Any:
        return self._value(key) if key in self._given() else default

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self._given():
            setattr(self, key, default)
        return self._value(key)

    def pop(self, key: str, default: Any = None) -> Any:
        """Remove a key (it is written no more) and return its value."""
        if key not in self._given():
            return default
        value = self._value(key)
        extra = self.__pydantic_extra__ or {}
        if key in extra:
            del extra[key]
        else:
            setattr(self, key, type(self).model_fields[key].get_default(call_default_factory=True))
            self.model_fields_set.discard(key)
        return value


class TaskInfo(Section):
    """What was forgotten: the registered task, its version, and the fingerprint of its
    resolved spec and data (see CONTRIBUTING.md, "Add a task")."""

    name: str
    version: Optional[str] = None
    fingerprint: Optional[str] = None
    options: dict[str, Any] = Field(default_factory=dict, description="The options the task was built with.")
    suite: Optional[str] = Field(default=None, description="The suite that scored it (tofu, muse, classifier, ...).")


class MethodInfo(Section):
    name: str
    params: dict[str, Any] = Field(default_factory=dict, description="The resolved hyperparameters.")
    info: dict[str, Any] = Field(default_factory=dict, description="What the method reported (ctx.info).")
    preset: dict[str, Any] = Field(default_factory=dict, description="The task's hyperparameter preset that the params "
                                                                     "started from (before --param).")


class ModelInfo(Section):
    """Where the target and the oracle came from (hub:<id>, a folder, recipe:<name>) and the
    fingerprints of their weights."""

    target: Source = None
    oracle: Source = None
    target_fingerprint: Optional[str] = None
    oracle_fingerprint: Optional[str] = None
    dtype: Optional[str] = Field(default=None, description="The weights' dtype for loading, training and scoring (language models).")
    prompt_format: Optional[dict[str, Any]] = Field(default=None, description="How questions became prompts (language models).")
    scoring: Optional[dict[str, Any]] = Field(default=None, description="The scoring engine's settings: batch budget, "
                                                                       "GradNorm's parameters and norm (language models).")
    unlearned: Optional[dict[str, Any]] = Field(default=None, description="Where --save-model kept the unlearned weights "
                                                                        "(path relative to the run folder), their layout and fingerprint.")
    judge: Optional[dict[str, Any]] = Field(default=None, description="The config of the classifier that judges generated "
                                                                    "samples (diffusion tasks).")


class Distribution(Section):
    """The installed unlearnbench that made the run, when it did not run from a git checkout.

    ``files_sha256`` is the sha256 of the sorted ``path<TAB>hash`` lines of the package files
    that the distribution's RECORD lists (bytecode in ``__pycache__`` left out: it is derived
    from the sources and differs between installs), so two installs of one wheel agree.
    ``modified`` says whether any of those files differed from its RECORD hash, was missing,
    or was added to the installed package; ``modified_files`` names them."""

    name: str
    version: str
    files_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    modified: Optional[bool] = None
    modified_files: list[str] = Field(default_factory=list)


class Provenance(Section):
    """What made the run: package versions, the harness (a git revision, or an installed
    distribution and its file hashes), the machine, and when."""

    packages: dict[str, Optional[str]] = Field(default_factory=dict)
    python: Optional[str] = None
    platform: Optional[str] = None
    git_sha: Optional[str] = None
    git_dirty: Optional[bool] = None
    distribution: Optional[Distribution] = None
    config_hash: Optional[str] = None
    config: Optional[dict[str, Any]] = Field(default=None, description="What defines the run (task, method, params, "
                                                                       "seed, ...): the run id is made from its hash "
                                                                       "(config_hash).")
    device: Optional[str] = None
    date: Optional[str] = None
    lenses: Optional[dict[str, Any]] = Field(default=None, description="What the model lenses add (lm-eval's "
                                                                       "version and task versions).")
    process: Optional[dict[str, Any]] = Field(default=None, description="While the run is running: the host and "
                                                                        "process id running it (a record left "
                                                                        "'running' by a killed process is told "
                                                                        "apart from a live one); removed at the end.")


class TrajectoryPoint(BaseModel):
    step: int = Field(description="Optimisation steps the model had taken (0: before unlearning).")
    metrics: dict[str, Number] = Field(default_factory=dict)
    error: Optional[str] = Field(default=None, description="Why the point has no metrics (a metric refused the "
                                                           "model's outputs, e.g. NaN predictions).")


class Trajectory(BaseModel):
    """``--eval-every N``: the suite's cheap metrics of the model during unlearning (see
    :mod:`unlearnbench.trajectory`): at step 0, every N optimisation steps, and the model the
    method returned (the last point, at ``steps``)."""

    every: int = Field(ge=1, description="Optimisation steps between points.")
    steps: int = Field(ge=0, description="Optimisation steps the model took in all.")
    points: list[TrajectoryPoint] = Field(default_factory=list)
    reported: str = Field(default="last", description='The rule that chose the point whose model the record\'s '
                                                      'metrics score: "last" (the model the method returned), or a '
                                                      'selection rule on a validation split named here.')
    reported_step: Optional[int] = Field(default=None, description="The step of the reported point.")
    seconds: Number = Field(default=None, description="Seconds spent scoring the points (not in unlearn_s).")
    note: Optional[str] = None


class RunRecord(BaseModel):
    """What a run produced (the record's JSON Schema: unlearnbench/schema/record.schema.json). ``to_json()`` is the file a run writes."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    run_id: str
    status: Status
    task: TaskInfo
    method: MethodInfo
    model: ModelInfo
    seed: int
    metrics: dict[str, Number] = Field(default_factory=dict)
    ci: dict[str, list[Number]] = Field(default_factory=dict, description="95% confidence interval [low, high] per metric.")
    reference: dict[str, dict[str, Number]] = Field(
        default_factory=dict, description='The same metrics for the "original" target and the "oracle".')
    timing: dict[str, Number] = Field(default_factory=dict, description="Seconds per stage.")
    provenance: Provenance = Field(default_factory=Provenance)
    error: Optional[str] = None
    mode: str = Field(default="standard", description='"standard", or "scalability" / "sustainability" with one entry per step in steps.')
    steps: list[dict[str, Any]] = Field(default_factory=list)
    lenses: list[str] = Field(default_factory=list, description="The lenses this run measured (others were left out).")
    trajectory: Optional[Trajectory] = Field(default=None, description="--eval-every: the metrics during unlearning "
                                                                       "(written only when measured).")
    schema_version: Literal[1] = SCHEMA_VERSION  # every version in READABLE_SCHEMA_VERSIONS

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="python")
        if data.get("trajectory") is None:  # an optional section: records without one stay as they were
            data.pop("trajectory", None)
        return {"schema_version": data.pop("schema_version"), **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """A record read back (any readable schema version); raises pydantic's ValidationError."""
        return cls.model_validate(data)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of record.json, as shipped in unlearnbench/schema/record.schema.json."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **RunRecord.model_json_schema()}


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


# ------------------------------------------------------------------------------- files


def _json_safe(value: Any, non_finite=lambda v: None) -> Any:
    """NaN and infinities are not JSON; they become null (``non_finite(v)``) so every reader
    can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return non_finite(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v, non_finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, non_finite) for v in value]
    if isinstance(value, RunRecord):
        return _json_safe(value.to_json(), non_finite)
    if isinstance(value, BaseModel):
        return _json_safe(value.model_dump(mode="python"), non_finite)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json_safe(dataclasses.asdict(value), non_finite)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _json_safe(value.item(), non_finite)
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist(), non_finite)
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


def this_process() -> dict[str, Any]:
    """Who is running a run: the host name and the process id."""
    import socket

    return {"host": socket.gethostname(), "pid": os.getpid()}


def live_owner(record: dict[str, Any]) -> str | None:
    """For a record left with status ``running``: a description of the live process still
    running it (on this host), or None when that process is gone, runs on another host (it
    cannot be asked from here), or the record does not say (made before records named it)."""
    if not isinstance(record, dict) or record.get("status") != "running":
        return None
    process = (record.get("provenance") or {}).get("process") or {}
    pid, host = process.get("pid"), process.get("host")
    if not isinstance(pid, int) or host != this_process()["host"] or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:  # it exists, as another user's process
        pass
    return f"process {pid} on {host}"


def check_writable_folder(path: Path, what: str) -> Path:
    """``path`` as a folder this process can write into (created later, where it does not exist
    yet), or a :class:`~unlearnbench.errors.UserError` saying why not: it is a file, or it lies
    under a file, or the nearest existing folder takes no new files (read-only, no permission).
    Checked by writing (and removing) a temporary file, so it holds for every user and mount."""
    from unlearnbench.errors import UserError

    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a file, not a folder; pass a folder (it is created if needed).")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{what} {str(path)!r} cannot be created: {str(existing)!r} is a file.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise UserError(f"{what} {str(path)!r} is not writable ({str(existing)!r}: {exc.strerror or exc}); "
                        "pass a folder you can write to.") from None
    return path


def save_record(run_dir: Path, record: RunRecord, per_example: dict[str, Any] | None = None) -> Path:
    """Write the per-example scores first, then the record, so a record never points at nothing."""
    run_dir = Path(run_dir)
    if per_example is not None:
        write_json_atomic(run_dir / PER_EXAMPLE_FILE, per_example)
    write_json_atomic(run_dir / RECORD_FILE, record.to_json())
    return run_dir / RECORD_FILE


def read_record_quietly(run_dir: Path) -> dict[str, Any] | None:
    """The record in ``run_dir`` as a dict, or None where there is none or it does not parse."""
    try:
        data = json.loads((Path(run_dir) / RECORD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_record(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_FILE
    return json.loads(path.read_text())


def config_hash(config: dict[str, Any]) -> str:
    # a non-finite number is hashed as its name (NaN, inf, -inf), not as the null a file gets:
    # two configs that differ only there must not share a run id
    blob = json.dumps(_json_safe(config, non_finite=lambda v: {"non_finite": repr(v)}), sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def make_run_id(config: dict[str, Any]) -> str:
    """Readable and idempotent: the same task, method, params and seed give the same id."""
    task = str(config["task"]).replace("/", "-")
    return f"{task}__{config['method']}__s{config['seed']}__{config_hash(config)[:10]}"


# -------------------------------------------------------------------------- provenance


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


def installed_distribution() -> metadata.Distribution | None:
    """The installed distribution whose RECORD lists this very file with its hash, or None when
    unlearnbench runs from a checkout: an editable install's RECORD lists only its finder, and
    the ``unlearnbench.egg-info`` a build leaves in a checkout lists sources without hashes."""
    here = Path(__file__).resolve()
    for dist in metadata.distributions(name=DISTRIBUTION):
        if dist.read_text("RECORD") is None:
            continue
        for file in dist.files or ():
            if (file.as_posix() == "unlearnbench/records.py" and file.hash is not None
                    and Path(dist.locate_file(file)).resolve() == here):
                return dist
    return None


def _package_file(path: str) -> bool:
    parts = path.split("/")
    return parts[0] == "unlearnbench" and "__pycache__" not in parts and not path.endswith((".pyc", ".pyo"))


def _file_hash(path: Path, mode: str) -> str | None:
    try:
        digest = hashlib.new(mode, path.read_bytes()).digest()
    except (OSError, ValueError):
        return None
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def distribution_state(dist: metadata.Distribution) -> dict[str, Any]:
    """Name, version and the hash of the package files of an installed distribution, each
    file checked against its RECORD hash (see :class:`Distribution`)."""
    pairs, modified, listed = [], [], set()
    for file in dist.files or ():
        path = file.as_posix()
        if not _package_file(path):
            continue
        listed.add(path)
        if file.hash is None:
            modified.append(path)  # a package file without a hash cannot be vouched for
            continue
        pairs.append(f"{path}\t{file.hash.mode}={file.hash.value}\n")
        if _file_hash(Path(dist.locate_file(file)), file.hash.mode) != file.hash.value:
            modified.append(path)
    package = Path(dist.locate_file("unlearnbench"))
    site = package.parent
    if package.is_dir():
        for path in package.rglob("*"):  # a module dropped into the package changes what runs
            relative = path.relative_to(site).as_posix()
            if path.is_file() and _package_file(relative) and relative not in listed:
                modified.append(relative)
    return {
        "name": dist.metadata["Name"],
        "version": dist.version,
        "files_sha256": hashlib.sha256("".join(sorted(pairs)).encode()).hexdigest(),
        "modified": bool(modified),
        "modified_files": sorted(modified),
    }


def harness_state() -> dict[str, Any]:
    """How the board names the harness: the installed distribution and its file hashes when
    unlearnbench runs from one (site-packages), else the git revision and whether the tree had
    uncommitted changes."""
    dist = installed_distribution()
    return {"distribution": distribution_state(dist)} if dist is not None else _git_state()


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
        **harness_state(),
        "config_hash": config_hash(config),
        "config": _json_safe(config),
        "device": device,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _main(argv: list[str]) -> int:
    if argv[:1] != ["--schema"] or argv[1:] not in ([], ["--write"]):
        print("usage: python -m unlearnbench.records --schema [--write]\n"
              f"  prints the RunRecord JSON Schema; --write stores it in {SCHEMA_FILE}", file=sys.stderr)
        return 2
    text = json_schema_text()
    if argv[1:] == ["--write"]:
        SCHEMA_FILE.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_FILE.write_text(text)
        print(f"wrote {SCHEMA_FILE}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))


def harness_dirty(record: dict) -> bool:
    """Whether the harness that made a run was not exactly a committed revision or an
    unmodified installed distribution (unknown counts as dirty)."""
    prov = record.get("provenance", {})
    dist = prov.get("distribution")
    if isinstance(dist, dict):
        return dist.get("modified") is not False
    return prov.get("git_dirty") is not False
