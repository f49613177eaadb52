"""Sweeps: tasks x methods x hyperparameters x seeds, each job one ``evaluate``.

A sweep file (TOML) names what to run; :func:`load_spec` validates it (pydantic, every key
checked), :func:`expand` turns it into jobs and :func:`plan_jobs` plans each through the
runner, so a bad name or parameter fails before anything runs. Every job's run id is the one
``evaluate`` gives it (a hash of what defines the run), so a re-run skips the jobs whose record
says ``succeeded`` and runs the others again (interrupted, failed or never started).

::

    tasks = ["digits/random-10"]
    methods = ["ft", "rl"]
    seeds = [0, 1]
    [params.rl]
    lr = [0.005, 0.01]              # a grid axis; a plain value is fixed; "*" sets every method's

gives 6 jobs: ft x 2 seeds and rl x 2 learning rates x 2 seeds. A parameter may instead be
drawn from a distribution, ``lr = {log_uniform = [1e-4, 1e-2]}`` (also ``uniform``,
``int_uniform``): ``samples`` points (default 4) are drawn per method with ``sample_seed``,
jointly over the drawn parameters, and crossed with the grid.

Executors run the jobs: :class:`LocalExecutor` one at a time in this process,
:class:`unlearnbench.sweep_ray.RayExecutor` as Ray tasks (``--executor ray``).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from unlearnbench.errors import UserError
from unlearnbench.records import RECORD_FILE, load_record
from unlearnbench.runner import RunSpec

ALL_METHODS = "*"


# ------------------------------------------------------------------------------ the file
class Distribution(BaseModel):
    """A parameter drawn at random: exactly one of the three, each ``[low, high]``."""

    model_config = ConfigDict(extra="forbid")

    uniform: Optional[tuple[float, float]] = None
    log_uniform: Optional[tuple[float, float]] = None
    int_uniform: Optional[tuple[int, int]] = None

    @model_validator(mode="after")
    def _one(self):
        given = [k for k in ("uniform", "log_uniform", "int_uniform") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a distribution is exactly one of uniform, log_uniform, int_uniform = [low, high]")
        low, high = getattr(self, given[0])
        if not low < high or (given[0] == "log_uniform" and low <= 0):
            raise ValueError(f"{given[0]} = [{low}, {high}] needs low < high" +
                             (" and low > 0" if given[0] == "log_uniform" else ""))
        return self

    def draw(self, rng) -> float | int:
        import math

        if self.uniform is not None:
            return float(rng.uniform(*self.uniform))
        if self.log_uniform is not None:
            low, high = self.log_uniform
            return float(math.exp(rng.uniform(math.log(low), math.log(high))))
        low, high = self.int_uniform
        return int(rng.integers(low, high + 1))


Scalar = Union[bool, int, float, str]
ParamValue = Union[Scalar, list[Scalar], Distribution]


class Resources(BaseModel):
    """What one job asks of an executor: CPU cores (also its torch threads) and GPUs."""

    model_config = ConfigDict(extra="forbid")

    cpus: int = Field(default=1, ge=1, description="Cores per job; the job's torch threads.")
    gpus: Optional[float] = Field(default=None, ge=0, description="GPUs per job (Ray); default 1 where CUDA is "
                                                                  "available and device is not cpu, else 0.")


class SelectSpec(BaseModel):
    """A tune file's ``[select]`` section (``unlearnbench tune``, :mod:`unlearnbench.tune`)."""

    model_config = ConfigDict(extra="forbid")

    budget: int = Field(ge=1, description="Points tried per method on the validation split: the same for every method.")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1,
                             description="Seeds the chosen point (and the default) is re-run with on the test split.")
    defaults: bool = Field(default=True, description="Also run each method's default hyperparameters on the test split.")


class SweepSpec(BaseModel):
    """A sweep file, validated: unknown keys and wrong types are refused."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(min_length=1)
    methods: list[str] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    params: dict[str, dict[str, ParamValue]] = Field(default_factory=dict,
                                                     description='Per method (or "*" for all): name -> value, '
                                                                 "list (grid) or distribution.")
    samples: int = Field(default=4, ge=1, description="Points drawn per method when a parameter is a distribution.")
    sample_seed: int = 0
    lenses: Optional[list[str]] = None
    options: dict[str, Scalar] = Field(default_factory=dict, description="Task-kind and lens options (mia_feature, ...).")
    device: str = "auto"
    mode: str = "standard"
    eval_every: Optional[int] = Field(default=None, ge=1, description="Each run's trajectory: its metrics every N "
                                                                       "optimisation steps (evaluate --eval-every).")
    data_dir: Optional[str] = None
    model: Optional[str] = None
    oracle: Optional[str] = None
    resources: Resources = Field(default_factory=Resources)
    select: Optional[SelectSpec] = Field(default=None, description="Fair selection (unlearnbench tune); the top-level "
                                                                   "seeds are then the validation seeds.")

    @field_validator("params")
    @classmethod
    def _params_of_named_methods(cls, value, info):
        methods = set(info.data.get("methods") or ())
        stray = [m for m in value if m != ALL_METHODS and m not in methods]
        if stray:
            raise ValueError(f"params for {', '.join(map(repr, stray))}, which the sweep's methods "
                             f"({', '.join(sorted(methods))}) do not include")
        for method, grid in value.items():
            for name, v in grid.items():
                if isinstance(v, list) and not v:
                    raise ValueError(f"params.{method}.{name} is an empty list")
        return value


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a sweep file; a UserError says what is wrong, where."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such sweep file.") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML: {exc}.") from None
    return parse_spec(data, str(path))


def parse_spec(data: dict[str, Any], where: str = "the sweep") -> SweepSpec:
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise UserError(f"{where}: {problems}.") from None


# ------------------------------------------------------------------------------ the jobs
@dataclass(frozen=True)
class Job:
    spec: RunSpec
    run_id: str
    cpus: int = 1
    gpus: float = 0.0

    @property
    def label(self) -> str:
        params = " ".join(f"{k}={v}" for k, v in self.spec.params.items())
        return f"{self.spec.task} {self.spec.method}{' ' + params if params else ''} s{self.spec.seed}"

    @property
    def record_path(self) -> Path:
        return Path(self.spec.out) / self.run_id / RECORD_FILE


def _text(value: Scalar) -> str:
    """A value as ``--param`` spells it, so a sweep's run ids are the command line's."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _points(grid: dict[str, ParamValue], samples: int, rng) -> list[dict[str, str]]:
    fixed = {k: v for k, v in grid.items() if not isinstance(v, (list, Distribution))}
    axes = {k: v for k, v in grid.items() if isinstance(v, list)}
    drawn = {k: v for k, v in grid.items() if isinstance(v, Distribution)}
    draws = [{k: d.draw(rng) for k, d in drawn.items()} for _ in range(samples)] if drawn else [{}]
    points = []
    for combo in itertools.product(*axes.values()):
        for draw in draws:
            point = {**fixed, **dict(zip(axes, combo)), **draw}
            points.append({k: _text(point[k]) for k in grid})  # the file's order
    return points


def _param_names(method: str, task: str) -> set[str]:
    from dataclasses import fields

    from unlearnbench import registry
    from unlearnbench.runner import _task_parts

    _, family, _ = _task_parts(task)
    return {f.name for f in fields(registry.method(method, family.kind).obj().params_class(family.kind))}


def expand(spec: SweepSpec, out: Path, *, quiet: bool = True) -> list[RunSpec]:
    """The sweep's runs in order: task, method, parameter point, seed."""
    import numpy as np

    runs = []
    for task in spec.tasks:
        for method in spec.methods:
            grid = dict(spec.params.get(method, {}))
            if ALL_METHODS in spec.params:  # "*" fills in what the method takes and its own table does not set
                names = _param_names(method, task)
                grid = {k: v for k, v in spec.params[ALL_METHODS].items() if k in names and k not in grid} | grid
            rng = np.random.default_rng([spec.sample_seed, spec.methods.index(method)])
            for point in _points(grid, spec.samples, rng):
                for seed in spec.seeds:
                    runs.append(RunSpec(task=task, method=method, params=point, seed=seed, model=spec.model,
                                        oracle=spec.oracle, data_dir=spec.data_dir, device=spec.device, out=Path(out),
                                        quiet=quiet, mode=spec.mode, eval_every=spec.eval_every,
                                        lenses=tuple(spec.lenses) if spec.lenses is not None else None,
                                        options={k: _text(v) for k, v in spec.options.items()}))
    return runs


def default_gpus(spec: SweepSpec) -> float:
    if spec.resources.gpus is not None:
        return spec.resources.gpus
    if spec.device == "cpu":
        return 0.0
    import torch

    return 1.0 if torch.cuda.is_available() else 0.0


def plan_jobs(spec: SweepSpec, out: Path) -> list[Job]:
    """Every run planned (validated, its run id computed) before any runs; every problem is
    reported at once. Identical runs (the same id) are kept once."""
    return jobs_of(expand(spec, out), spec)


def jobs_of(runs: list[RunSpec], spec: SweepSpec) -> list[Job]:
    """:func:`plan_jobs` for runs given one by one (with the sweep's resources)."""
    from unlearnbench.records import make_run_id
    from unlearnbench.runner import plan

    jobs, problems, seen = [], [], set()
    gpus = default_gpus(spec)
    for run_spec in runs:
        try:
            run_id = make_run_id(plan(run_spec).config)
        except UserError as exc:
            problem = f"{run_spec.task} {run_spec.method}: {exc}"
            if problem not in problems:
                problems.append(problem)
            continue
        if run_id not in seen:
            seen.add(run_id)
            jobs.append(Job(run_spec, run_id, spec.resources.cpus, gpus))
    if problems:
        raise UserError("the sweep has jobs that cannot run:\n  " + "\n  ".join(problems))
    return jobs


def finished(job: Job) -> bool:
    """Whether the job's record says it succeeded (a re-run skips it)."""
    try:
        return load_record(job.record_path).get("status") == "succeeded"
    except (OSError, ValueError):
        return False


# ---------------------------------------------------------------------------- running one
@dataclass
class Outcome:
    run_id: str
    status: str  # succeeded | failed | interrupted
    error: Optional[str] = None
    seconds: float = 0.0


def run_job(job: Job) -> Outcome:
    """One job, as ``evaluate`` runs it, with the job's cores as torch threads (the same in
    every executor, so their records agree). A failure is an outcome, not an exception (but
    Ctrl-C is)."""
    import torch

    from unlearnbench.runner import run

    threads = torch.get_num_threads()
    torch.set_num_threads(job.cpus)
    t = time.perf_counter()
    try:
        result = run(job.spec)
        return Outcome(job.run_id, result.record.status, result.record.error, time.perf_counter() - t)
    except UserError as exc:
        return Outcome(job.run_id, "failed", str(exc), time.perf_counter() - t)
    except Exception as exc:  # the runner has written the failed record; the sweep goes on
        return Outcome(job.run_id, "failed", f"{type(exc).__name__}: {exc}", time.perf_counter() - t)
    finally:
        torch.set_num_threads(threads)


def prepare_worlds(jobs: list[Job], log: Callable[[str], None] = lambda m: None) -> None:
    """Build each task's data, target and oracle once (and the references' scores), before jobs
    fan out, so no two workers build the same world."""
    from unlearnbench.runner import prepare

    seen = set()
    for job in jobs:
        s = job.spec
        key = (s.task, s.data_dir, s.model, s.oracle, s.device, tuple(sorted(s.options.items())))
        if key in seen:
            continue
        seen.add(key)
        log(f"preparing {s.task}")
        prepare(s.task, data_dir=s.data_dir, model=s.model, oracle=s.oracle, device=s.device, quiet=True,
                options=dict(s.options))


class LocalExecutor:
    """One job at a time, in this process."""

    name = "local"
    workers = 1

    def run(self, jobs: list[Job], started: Callable[[Job], None], done: Callable[[Job, Outcome], None]) -> None:
        for job in jobs:
            started(job)
            done(job, run_job(job))


# ------------------------------------------------------------------------- the whole sweep
@dataclass
class SweepState:
    """Counts for the progress display and the summary."""

    total: int
    skipped: int
    done: int = 0
    failed: int = 0
    running: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (run id, reason)
    t_start: float = field(default_factory=time.perf_counter)

    @property
    def left(self) -> int:
        return self.total - self.skipped - self.done - self.failed - len(self.running)

    def eta_s(self, workers: int) -> float | None:
        """Seconds until the last job ends: the jobs finished so far took this long each, and
        ``workers`` run side by side."""
        if not self.seconds:
            return None
        mean = sum(self.seconds) / len(self.seconds)
        return mean * (self.left + len(self.running)) / max(1, workers)

    def line(self, workers: int) -> str:
        eta = self.eta_s(workers)
        return (f"done {self.done + self.skipped}/{self.total} (skipped {self.skipped}) · running {len(self.running)} · "
                f"failed {self.failed} · left {self.left}" + (f" · ETA {eta:.0f} s" if eta is not None else ""))


def run_sweep(jobs: list[Job], executor, *, display=None) -> SweepState:
    """Run the jobs whose records are not ``succeeded``; returns the counts. ``display``
    (see :class:`SweepDisplay`) is told each start and end."""
    todo = [job for job in jobs if not finished(job)]
    state = SweepState(total=len(jobs), skipped=len(jobs) - len(todo))
    display = display or _Silent()

    def started(job: Job) -> None:
        state.running.append(job.run_id)
        display.update(state, f"started {job.label}")

    def done(job: Job, outcome: Outcome) -> None:
        state.running.remove(job.run_id)
        state.seconds.append(outcome.seconds)
        if outcome.status == "succeeded":
            state.done += 1
            display.update(state, f"done {job.label} ({outcome.seconds:.1f} s)")
        else:
            state.failed += 1
            state.failures.append((job.run_id, outcome.error or outcome.status))
            display.update(state, f"failed {job.label}: {outcome.error or outcome.status}")

    with display.live(state, executor):
        executor.run(todo, started, done)
    return state


class _Silent:
    def update(self, state: SweepState, event: str) -> None:
        pass

    def live(self, state, executor):
        import contextlib

        return contextlib.nullcontext()


class SweepDisplay:
    """The progress display on stderr (rich): a bar with done / running / failed / left and the
    ETA on a terminal; one line per finished job in a log file."""

    def __init__(self, quiet: bool = False):
        self.quiet, self.executor = quiet, None
        self._progress = self._task = None

    @property
    def workers(self) -> int:
        return getattr(self.executor, "workers", 1)

    def live(self, state: SweepState, executor):
        import contextlib
        import sys

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from unlearnbench.progress import stderr_console

        self.executor = executor
        if self.quiet or not sys.stderr.isatty():
            return contextlib.nullcontext()
        self._progress = Progress(TextColumn("[bold blue]sweep"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.fields[status]}"), console=stderr_console())
        self._task = self._progress.add_task("sweep", total=state.total, completed=state.skipped,
                                             status=state.line(self.workers))
        return self._progress

    def update(self, state: SweepState, event: str) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.update(self._task, completed=state.done + state.failed + state.skipped,
                                  status=state.line(self.workers))
            if not event.startswith("started"):
                self._progress.console.print(event, highlight=False, markup=False)
        elif not event.startswith("started"):
            from unlearnbench.progress import stderr_console

            stderr_console().print(f"{event} | {state.line(self.workers)}", highlight=False, markup=False)


EXECUTORS = ("local", "ray")
ExecutorName = Literal["local", "ray"]
