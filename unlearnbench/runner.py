"""The runner: the only place that wires a task, a method, a suite and lenses together. One
path for every task kind; whatever is kind-specific it asks the task's family
(:mod:`unlearnbench.family`).

::

    RunSpec ──► plan(): task, family, method, params, lenses, mode, options, metrics ── no model loaded
    task ──► family.load_models ──► target, oracle ──► references (suite and lens scores, cached)
                                      └──► family.unlearn(method) ──► unlearned ──► suite.score, lens.per_example
                                                                                  └──► RunRecord

Bad input fails in :func:`plan`, before any data or model is loaded, and leaves nothing
behind; so does bad data or a missing model folder found while the task and its models load.
A record with status ``running`` is written before that, and rewritten at the end with ``succeeded``, ``failed`` (with the reason) or
``interrupted``, so a run that stops half-way still leaves a truthful record. What a method
says through ``ctx.log`` goes to ``run.log`` beside the record (and to stderr unless quiet);
what it reports in ``ctx.info`` lands in the record's ``method.info``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from unlearnbench import registry
from unlearnbench.cache import cache_root, cached_json, fingerprint, used_by
from unlearnbench.errors import Terminated, TrainingDivergedError, UnknownNameError, UserError
from unlearnbench.family import flag
from unlearnbench.records import (RECORD_FILE, RunRecord, check_writable_folder, live_owner, make_run_id, provenance,
                                  read_record_quietly, save_record, this_process)

DEFAULT_TASK = "tofu-synth/forget10"
DEFAULT_METHOD = "npo"
EXTERNAL = "external"  # the method --unlearned runs
MODEL_DIR = "model"  # where --save-model writes the unlearned weights, beside the record
MODES = {
    "standard": "unlearn the task's forget set once",
    "scalability": "unlearn growing forget sets (scal/forget_1..4), each from the original target",
    "sustainability": "unlearn sequential requests (sust/forget_1..4), each on the previous result",
}
MODE_STEPS = {"scalability": "scal", "sustainability": "sust"}
N_STEPS = 4
LOG_FILE = "run.log"
ATTEMPTS_DIR = ".attempts"  # reruns of a succeeded run, until they succeed too (hidden from load_runs)


@dataclass(frozen=True)
class RunSpec:
    task: str = DEFAULT_TASK
    method: str = DEFAULT_METHOD
    params: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    model: str | None = None
    oracle: str | None = None
    data_dir: str | None = None
    device: str = "auto"
    out: Path = Path("runs")
    metrics: tuple[str, ...] = ()  # report only these registered metrics (empty: all)
    quiet: bool = False
    mode: str = "standard"  # see MODES
    lenses: tuple[str, ...] | None = None  # None: the default lenses; "+name" adds to them
    options: dict[str, Any] = field(default_factory=dict)  # the family's and the lenses' declared options
    task_options: dict[str, Any] = field(default_factory=dict)  # passed to the task factory as they are (library use)
    unlearned: str | None = None  # score a model unlearned elsewhere (method "external"; a folder or hub:<id>)
    save_model: bool = False  # keep the unlearned weights beside the record (runs/<id>/model)
    eval_every: int | None = None  # score the model every N optimisation steps (its trajectory); None: not at all


@dataclass
class RunResult:
    record: RunRecord
    run_dir: Path
    rows: list  # suite MetricRow objects, in display order
    token_counts: dict[str, Any] = field(default_factory=dict)
    left_out: tuple[str, ...] = ()  # lenses that apply to the task but were not measured
    kept: Path | None = None  # a run of this id that succeeded before, kept because this attempt did not


@dataclass
class Plan:
    """A validated RunSpec: everything is known to exist and fit before any model loads."""

    spec: RunSpec
    family: Any
    suite: Any
    method: Any
    params: Any
    lenses: tuple[str, ...]  # in canonical order
    model_lenses: dict[str, Any]  # name -> Lens, the ones that need the models
    applicable: tuple[str, ...]  # every lens that applies to the task, in display order
    options: dict[str, Any]  # run options (family and lenses), converted, defaults filled in
    task_options: dict[str, Any]  # what the task factory gets
    config: dict[str, Any]  # what defines the run (its id)
    preset: dict[str, Any] = field(default_factory=dict)  # the task's hyperparameters the params started from

    @property
    def suite_lenses(self) -> frozenset[str]:
        return frozenset(n for n in self.lenses if n in self.suite.lenses())


# ------------------------------------------------------------------------------ planning
def plan(spec: RunSpec) -> Plan:
    """Validate the whole spec (task, method, params, lenses, mode, options, metrics) without
    loading data or models; raises :class:`UserError` naming what to change."""
    from unlearnbench.method import parse_params

    entry, family, suite = _task_parts(spec.task)
    _check_run_inputs(spec)
    raw_params = dict(spec.params)
    if spec.unlearned is not None:
        if spec.method != EXTERNAL:
            raise UserError(f"--unlearned scores a model unlearned elsewhere: it implies the method {EXTERNAL}, "
                            f"so it cannot go with --method {spec.method}. Drop one of them.")
        if not str(spec.unlearned).strip():
            raise UserError("--unlearned needs a folder or hub:<org>/<name>.")
        if spec.mode != "standard":
            raise UserError(f"--unlearned scores one model; --mode {spec.mode} unlearns several requests. "
                            "Run it with --mode standard.")
        raw_params["source"] = str(spec.unlearned)
        local = Path(str(spec.unlearned)).expanduser()
        if not str(spec.unlearned).startswith("hub:") and (str(spec.unlearned).startswith((".", "/", "~")) or
                                                            local.exists()) and not local.is_dir():
            raise UserError(f"--unlearned {spec.unlearned}: no such folder. Pass the folder the model was saved to "
                            "(save_pretrained or --save-model) or hub:<org>/<name>.")
    method = registry.method(spec.method, family.kind).obj()
    preset = method_preset(entry, spec.method, method.params_class(family.kind))
    params = parse_params(method.params_class(family.kind), {**preset, **raw_params})
    if spec.mode not in MODES:
        raise UnknownNameError("mode", spec.mode, MODES)
    if spec.mode != "standard" and spec.mode not in task_modes(entry):
        having = [n for n, e in registry.entries("task").items() if spec.mode in task_modes(e)]
        raise UserError(f"--mode {spec.mode} needs the task's {MODE_STEPS[spec.mode]}/forget_1..{N_STEPS} splits, "
                        f"and {spec.task!r} has none. Tasks that have them: {', '.join(having) or 'none'}.")
    lenses, model_lenses, applicable = _check_lenses(spec.lenses, family, suite)
    if spec.metrics:
        known = registry.entries("metric")
        for name in spec.metrics:
            if name not in known:
                raise UnknownNameError("metric", name, known)
    options, task_options = _check_options(spec, family, model_lenses.values())
    _check_eval_every(spec, suite, method)
    config = {"task": spec.task, "method": spec.method, "params": asdict(params), "seed": spec.seed,
              "model": spec.model, "oracle": spec.oracle, "data_dir": spec.data_dir, "task_options": task_options}
    if spec.mode != "standard":  # standard runs keep the ids they always had
        config["mode"] = spec.mode
    if spec.eval_every is not None:  # its record holds a trajectory; runs without one keep their ids
        config["eval_every"] = spec.eval_every
    from unlearnbench.lenses import default_lenses

    if lenses != default_lenses():
        config["lenses"] = list(lenses)
    for option in _declared(family, model_lenses.values()):
        if option.in_run_id and options.get(option.name) != option.default:
            config[option.name] = options[option.name]
    return Plan(spec, family, suite, method, params, lenses, model_lenses, applicable, options, task_options, config,
                preset)


MAX_SEED = 2**32 - 1  # what every seeded library (numpy, torch, random) takes as it is


def _check_run_inputs(spec: RunSpec) -> None:
    """The seed and the device: each must be usable here, before any work."""
    from unlearnbench.lm.modeling import resolve_device

    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or not 0 <= spec.seed <= MAX_SEED:
        raise UserError(f"--seed {spec.seed!r}: a seed is a whole number from 0 to {MAX_SEED}.")
    resolve_device(str(spec.device))


def _check_eval_every(spec: RunSpec, suite, method) -> None:
    """``--eval-every N``: a whole number >= 1, on a suite with per-step metrics, in the
    standard mode, for a method that trains the model it is given."""
    n = spec.eval_every
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UserError(f"--eval-every {n!r}: give a whole number of optimisation steps >= 1.")
    if spec.mode != "standard":
        raise UserError(f"--eval-every traces one unlearning run; --mode {spec.mode} runs several. "
                        "Run it with --mode standard.")
    if not suite.trajectory_rows():
        from unlearnbench.suites import get_suite

        having = [name for name in registry.entries("suite") if get_suite(name).trajectory_rows()]
        raise UserError(f"--eval-every: the {suite.name} suite has no metrics cheap enough to measure during "
                        f"unlearning (suites that have: {', '.join(having)}). Run without --eval-every.")
    if method.loads_model:
        raise UserError(f"--eval-every traces the method's training; --method {spec.method} trains nothing here. "
                        "Run without --eval-every.")


def _task_parts(name: str):
    """The task's registry entry, its family and its suite (instances)."""
    from unlearnbench.family import get_family
    from unlearnbench.suites import get_suite

    entry = registry.get("task", name)
    return entry, get_family(entry.info.get("kind", "language_model")), get_suite(entry.info["suite"])


def method_preset(entry, method: str, params_cls) -> dict[str, Any]:
    """The hyperparameters a task's literature uses for ``method``: the task registers
    ``presets={"*": {...}, "<method>": {...}}`` (``*``: every method, for the fields its
    Params has); ``--param`` overrides them."""
    from dataclasses import fields

    presets = entry.info.get("presets") or {}
    names = {f.name for f in fields(params_cls)}
    merged = {**presets.get("*", {}), **presets.get(method, {})}
    return {k: v for k, v in merged.items() if k in names}


def task_modes(entry) -> tuple[str, ...]:
    """The evaluation modes beyond ``standard`` that a registered task declares."""
    return tuple(m.strip() for m in str(entry.info.get("modes", "")).split(",") if m.strip() not in ("", "-"))


def _canonical(names, known: dict) -> tuple[str, ...]:
    """Default lenses first, then the others, each in display order (the record's order)."""
    return tuple(sorted(dict.fromkeys(names), key=lambda n: (not known[n].default, known[n].order, n)))


def resolve_lenses(requested, known: dict | None = None) -> tuple[str, ...]:
    """``--lens`` as given: names replace the defaults, ``+name`` adds to them, ``-name``
    leaves one out; unknown names fail with the known ones (``known``: the lens registry)."""
    from unlearnbench.lenses import all_lenses

    known = known if known is not None else all_lenses()
    defaults = [name for name, lens in known.items() if lens.default]
    if requested is None:
        return _canonical(defaults, known)
    names = [n.strip() for n in requested if n.strip()]
    if not names:
        raise UserError(f"--lens needs at least one lens (known: {', '.join(known)}).")
    relative = [n for n in names if n[0] in "+-"]
    chosen = list(defaults) if len(relative) == len(names) else []
    for name in names:
        bare = name.lstrip("+-")
        if bare not in known:
            raise UnknownNameError("lens", bare, known)
        if name.startswith("-"):
            chosen = [n for n in chosen if n != bare]
        elif bare not in chosen:
            chosen.append(bare)
    if not chosen:
        raise UserError(f"--lens {','.join(names)} leaves no lens to measure.")
    return _canonical(chosen, known)


def _check_lenses(requested, family, suite) -> tuple[tuple[str, ...], dict, tuple[str, ...]]:
    from unlearnbench.lenses import all_lenses

    known = all_lenses()
    lenses = resolve_lenses(requested, known)
    on_suite = set(suite.lenses())
    fitting = [n for n, lens in known.items() if n in on_suite or (lens.model_lens and family.kind in (lens.kinds or (family.kind,)))]
    # a default lens the task's suite does not measure is left out; a lens asked for by name must fit
    named = {n.strip().lstrip("+") for n in requested or () if not n.strip().startswith("-")}
    wrong = [n for n in lenses if n not in fitting and n in named]
    lenses = tuple(n for n in lenses if n in fitting)
    if wrong:
        kinds = {n: known[n].kinds for n in wrong if known[n].kinds}
        where = "; ".join(f"{n} is for {', '.join(registry.kind_label(k) for k in ks)} tasks" for n, ks in kinds.items())
        raise UserError(f"The {' and '.join(wrong)} lens(es) do not apply to {registry.kind_label(family.kind)} tasks"
                        f"{' (' + where + ')' if where else ''}; they have {', '.join(fitting)}.")
    model_lenses = {n: known[n] for n in lenses if known[n].model_lens and n not in on_suite}
    return lenses, model_lenses, tuple(fitting)


def _declared(family, lenses) -> list:
    return list(family.options) + [o for lens in lenses for o in lens.options]


def _check_options(spec: RunSpec, family, lenses) -> tuple[dict, dict]:
    """Declared options: each must belong to this task's family (or a lens it measures) and
    to this task; returns (run options with defaults, task options for the factory)."""
    from unlearnbench.lenses import all_lenses

    declared = {o.name: o for o in _declared(family, lenses)}
    options: dict[str, Any] = {o.name: o.default for o in declared.values() if not o.task}
    task_options = dict(spec.task_options)  # the factory's own keywords, as they are (library use, re-created tasks)
    for name, value in spec.options.items():
        if value is None:
            continue
        option = declared.get(name)
        if option is None:
            elsewhere = _owners(name, all_lenses().values())
            raise UserError(f"{flag(name)} is not an option of {spec.task!r} ({registry.kind_label(family.kind)} task"
                            f"{' with the lenses asked for' if lenses else ''}); "
                            + (f"it is for {elsewhere}." if elsewhere else f"known options: "
                               f"{', '.join(o.flag for o in declared.values()) or 'none'}."))
        if option.tasks and spec.task not in option.tasks:
            raise UserError(f"{option.flag} is for the {', '.join(option.tasks)} task; {spec.task!r} brings its own data.")
        value = option.convert(value)
        if option.task:
            task_options[name] = value
        else:
            options[name] = value
    return options, task_options


def _owners(name: str, lenses) -> str:
    """Which task kinds or lenses declare option ``name`` (for an error message)."""
    kinds = sorted(registry.kind_label(e.name) + (f" ({', '.join(o.tasks)})" if o.tasks else "")
                   for e in registry.entries("family").values() for o in e.obj.options if o.name == name)
    owners = [" and ".join(kinds) + " tasks"] if kinds else []
    owners += [f"the {lens.name} lens" for lens in lenses for o in lens.options if o.name == name]
    return " and ".join(owners)


# ------------------------------------------------------------------------------- running
def load_task(spec: RunSpec):
    """The task of ``spec``, built by its family (data only: no model is loaded); the method,
    lenses and mode of ``spec`` are not looked at."""
    entry, family, _ = _task_parts(spec.task)
    _, task_options = _check_options(spec, family, [])
    with used_by(spec.task):
        return _build_task(spec, family, task_options)


def _build_task(spec: RunSpec, family, task_options: dict):
    from unlearnbench.family import SPLIT

    task_options = dict(task_options)
    split = task_options.pop(SPLIT, None) or "all"  # the family slices what its factory built
    task = family.load_task(registry.get("task", spec.task).obj, data_dir=spec.data_dir, model=spec.model,
                            oracle=spec.oracle, quiet=spec.quiet, task_options=task_options, device=spec.device)
    return task if split == "all" else family.split_task(task, split)


class _Run:
    """The state of one run between its steps: the record, timings, counters, log."""

    def __init__(self, p: Plan, device):
        self.p, self.spec, self.device = p, p.spec, device
        self.t_start = time.perf_counter()
        self.run_id = make_run_id(p.config)
        self.dir = Path(self.spec.out) / self.run_id
        self.timing: dict[str, float] = {}
        self.counters: dict[str, Any] = {}
        self.unlearning = False  # set once the method starts: a UserError after that fails the run
        self.final: Path | None = None  # set when this run is an attempt beside a succeeded run of the same id
        self.record = RunRecord(
            run_id=self.run_id, status="running", task={"name": self.spec.task},
            method={"name": self.spec.method, "params": p.config["params"], "preset": p.preset},
            model={"target": self.spec.model, "oracle": self.spec.oracle}, seed=self.spec.seed,
            provenance=provenance(p.config, str(device)) | {"process": this_process()}, mode=self.spec.mode,
            lenses=list(p.lenses))

    def begin(self) -> None:
        """Write the ``running`` record. Where a run of this id already succeeded, this run is
        an attempt in ``<out>/.attempts/<run_id>/<stamp>`` that replaces it only if it succeeds
        too (:meth:`promote`): a rerun that fails or is interrupted leaves the succeeded run as
        it was. A record left ``running`` by a live process is refused (two processes would
        write one folder); one left by a process that is gone (killed) is reported and replaced."""
        previous = read_record_quietly(self.dir)
        owner = live_owner(previous)
        if owner is not None:
            raise UserError(f"Run {self.run_id} is already running ({owner}, record {self.dir / RECORD_FILE}). "
                            "Wait for it to finish, or stop that process and run again.")
        if isinstance(previous, dict) and previous.get("status") == "running":
            process = (previous.get("provenance") or {}).get("process") or {}
            who = f"process {process['pid']} on {process['host']}" if process.get("pid") else "a process that is not named"
            self.warn(f"note: {self.dir / RECORD_FILE} was left 'running' by {who}, which is not running here any "
                      "more (killed?); it is replaced by this run.")
        if isinstance(previous, dict) and previous.get("status") == "succeeded":
            self.final = self.dir
            attempts = Path(self.spec.out) / ATTEMPTS_DIR / self.run_id
            attempts.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(dir=attempts, prefix=time.strftime("%Y%m%dT%H%M%S-", time.gmtime())))
            self.dir.chmod(0o755)  # as the run folder it may become
        save_record(self.dir, self.record)

    def promote(self) -> None:
        """A succeeded attempt takes the place of the succeeded run it reran."""
        if self.final is None:
            return
        old = self.dir.parent / f"{self.dir.name}-replaced"
        if self.final.exists():
            os.replace(self.final, old)
        os.replace(self.dir, self.final)
        shutil.rmtree(old, ignore_errors=True)
        _rmdir_if_empty(self.dir.parent)
        _rmdir_if_empty(self.dir.parent.parent)
        self.dir, self.final = self.final, None

    def discard(self) -> None:
        """Bad input found before the method ran: the run leaves nothing behind."""
        if self.final is not None:  # an attempt folder holds only this run's files
            shutil.rmtree(self.dir, ignore_errors=True)
            _rmdir_if_empty(self.dir.parent)
            _rmdir_if_empty(self.dir.parent.parent)
            return
        (self.dir / RECORD_FILE).unlink(missing_ok=True)
        _rmdir_if_empty(self.dir)

    def warn(self, message: str) -> None:
        if not self.spec.quiet:
            print(message, file=sys.stderr, flush=True)

    def log(self, message: str) -> None:
        """A method's or the runner's message: into run.log, and to stderr unless quiet."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / LOG_FILE, "a", encoding="utf-8") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")
        if not self.spec.quiet:
            print(message, file=sys.stderr, flush=True)

    def stage(self, name: str):
        return _Stage(self.timing, name)

    def finish(self, status: str, error: str | None = None, per_example: dict | None = None) -> None:
        self.record.status, self.record.error = status, error
        self.record.timing = self.timing | {"total_s": time.perf_counter() - self.t_start}
        self.record.provenance.pop("process")  # no longer running: who ran it is not part of the result
        save_record(self.dir, self.record, per_example)
        if status == "succeeded":
            self.promote()


class _Stage:
    def __init__(self, timing: dict, name: str):
        self.timing, self.name = timing, name

    def __enter__(self):
        self.t = time.perf_counter()

    def __exit__(self, *exc):
        self.timing[self.name] = self.timing.get(self.name, 0.0) + time.perf_counter() - self.t


def run(spec: RunSpec) -> RunResult:
    """Evaluate one (task, method, params, seed). Raises UserError for bad input (before any
    model is loaded where the spec alone shows it); returns a result whose record says whether
    the method succeeded."""
    with used_by(spec.task):  # the cached artefacts it uses are the task's (`unlearnbench cache --task`)
        return _run(spec)


def _run(spec: RunSpec) -> RunResult:
    from unlearnbench.lm.modeling import resolve_device

    p = plan(spec)
    check_writable_folder(spec.out, "--out")
    r = _Run(p, resolve_device(spec.device))
    r.begin()
    try:
        with r.stage("prepare_task_s"):
            task = _build_task(spec, p.family, p.task_options)
            _check_task(p, task)
        per_example, rows = _evaluate(p, r, task)
        r.finish("succeeded", None, per_example)
        return RunResult(r.record, r.dir, rows, r.counters, tuple(n for n in p.applicable if n not in p.lenses))
    except TrainingDivergedError as exc:
        r.finish("failed", str(exc))
        return RunResult(r.record, r.dir, [], {}, kept=r.final)
    except UserError as exc:
        if not r.unlearning:  # bad input (data, model folders) found before the method ran: no record is left
            r.discard()
            raise
        r.finish("failed", str(exc))  # found during the work (e.g. a method that finds nothing to act on)
        return RunResult(r.record, r.dir, [], {}, kept=r.final)
    except Terminated as exc:
        r.finish("interrupted", f"terminated by {exc.signal_name} (kill, a closed terminal or a scheduler's time limit)")
        raise
    except KeyboardInterrupt:
        r.finish("interrupted", "interrupted by the user (Ctrl-C)")
        raise
    except Exception as exc:
        r.finish("failed", f"{type(exc).__name__}: {exc}")
        raise


def _check_task(p: Plan, task) -> None:
    """What needs the task's data: the model lenses' inputs."""
    for name, lens in p.model_lenses.items():
        why = lens.check(task, p.options)
        if why:
            raise UserError(f"The {name} lens cannot measure this task: {why}. Run without it.")


def _evaluate(p: Plan, r: _Run, task) -> tuple[dict, list]:
    """Models, references, unlearning and every lens: (per-example scores, rows shown)."""
    spec, family, suite = p.spec, p.family, p.suite
    r.record.task = {"name": spec.task, "version": task.spec.version, "fingerprint": task.fingerprint,
                     "options": task.spec.to_json()["options"], "suite": suite.name}
    with r.stage("load_models_s"):
        target, oracle = family.load_models(task, device=r.device, options=p.options)
    r.record.model = {"target": target.source, "oracle": oracle.source if oracle else None,
                      "target_fingerprint": target.fingerprint, "oracle_fingerprint": oracle.fingerprint if oracle else None,
                      **family.model_info(task)}
    scoring = _Scoring(p, task, target, r.device, r.counters)
    with r.stage("reference_scores_s"):  # without a suite lens only the model lenses run
        references, r.record.reference = (scoring.references(oracle) if p.suite_lenses else
                                          ({"original": {}, "oracle": {}}, {"original": {}, "oracle": {}}))
    if not p.model_lenses:
        oracle = None  # nothing reads the oracle again: let its memory go before unlearning
    family.offload(target.model, oracle.model if oracle is not None else None)  # the device is the method's now
    model, data, per_example, metrics, ci, steps = _unlearn_steps(p, r, task, target, scoring, references)

    rows = [row for row in suite.rows() if row.lens in p.lenses]
    keep = {row.name for row in rows}
    metrics, ci = {k: v for k, v in metrics.items() if k in keep}, {k: v for k, v in ci.items() if k in keep}
    for which in r.record.reference:
        r.record.reference[which] = {k: v for k, v in r.record.reference[which].items() if k in keep}
    lens_scores = _measure_lenses(p, r, task, target, oracle, model, data, metrics, ci, rows)
    r.record.metrics, r.record.ci, rows = _select(metrics, ci, spec.metrics, rows)
    per_example_all: dict[str, Any] = {"unlearned": per_example, "original": references["original"],
                                       "oracle": references["oracle"]}
    if steps:
        per_example_all["steps"] = steps
    if lens_scores:
        per_example_all["lenses"] = lens_scores
    return per_example_all, rows


def _context(p: Plan, r: _Run, task, seed: int, quiet: bool, target=None):
    from unlearnbench.method import RunContext

    def load_unlearned(source: str):
        return p.family.load_unlearned(source, task, target, device=r.device, options=p.options)

    return RunContext(seed=seed, device=r.device, quiet=quiet, task_name=p.spec.task,
                      recipe=getattr(task, "recipe", None), log=r.log, load_unlearned=load_unlearned)


def _unlearn_steps(p: Plan, r: _Run, task, target, scoring, references):
    """Apply the method once per step of the mode and score each result; returns (the last
    model, its method data, per-example scores, metrics, CIs, each step's per-example scores)."""
    spec = p.spec
    ctx = _context(p, r, task, spec.seed, spec.quiet, target)
    ctx.trajectory = _trajectory(p, r, task, target, scoring, references)
    r.unlearning = not p.method.loads_model  # a model that cannot be loaded is bad input: no record is left
    model, steps, per_example, metrics, ci, data = None, [], {}, {}, {}, None
    for step, forget_role in enumerate(forget_roles(spec.mode)):
        data = p.family.method_data(task, forget_role, target)
        start = target.model if model is None or spec.mode != "sustainability" else model
        t = time.perf_counter()
        try:
            model = p.family.unlearn(p.method, start, data, p.params, ctx)
        finally:
            if ctx.trajectory is not None:  # a run that fails or is stopped keeps the points it reached
                r.record.trajectory = ctx.trajectory.record()
        r.unlearning = True
        unlearn_s = time.perf_counter() - t
        if ctx.trajectory is not None:  # its last point is the model the method returned
            ctx.trajectory.finish(model)
            unlearn_s -= ctx.trajectory.seconds  # scoring along the way is not unlearning time
            r.timing["trajectory_s"] = ctx.trajectory.seconds
            r.record.trajectory = ctx.trajectory.record()
        r.timing["unlearn_s"] = r.timing.get("unlearn_s", 0.0) + unlearn_s
        t = time.perf_counter()
        if p.suite_lenses:
            per_example = scoring.score(model, "unlearned" if spec.mode == "standard" else f"unlearned step {step + 1}",
                                        rte_s=unlearn_s)
            metrics, ci = p.suite.aggregate(per_example, references["oracle"], seed=spec.seed)
        evaluate_s = time.perf_counter() - t
        r.timing["evaluate_s"] = r.timing.get("evaluate_s", 0.0) + evaluate_s
        if spec.mode != "standard":
            steps.append(per_example)
            r.record.steps.append({"step": step + 1, "forget": forget_role, "n_forget": len(task.splits[forget_role]),
                                   "metrics": metrics, "ci": ci, "unlearn_s": unlearn_s, "evaluate_s": evaluate_s})
            save_record(r.dir, r.record)  # a run stopped half-way keeps the steps it finished
    if ctx.info:
        r.record.method["info"] = ctx.info
    if spec.save_model:  # kept now, before the lenses: a lens that fails does not lose the weights
        with r.stage("save_model_s"):
            # sequential requests compose every step's change: the last step's artifacts (an
            # adapter) do not describe the model, its full weights do
            artifacts = ctx.artifacts if spec.mode != "sustainability" else {}
            saved = p.family.save_model(model, r.dir / MODEL_DIR, task=task, target=target, artifacts=artifacts)
        r.record.model["unlearned"] = {"path": MODEL_DIR, **saved}
        save_record(r.dir, r.record)
    return model, data, per_example, metrics, ci, steps


def _trajectory(p: Plan, r: _Run, task, target, scoring, references):
    """``--eval-every N``: the suite's cheap metrics of the model being unlearned, every N of
    its optimisation steps (:mod:`unlearnbench.trajectory`); None without the option."""
    from unlearnbench.trajectory import Trajectory

    if p.spec.eval_every is None:
        return None
    oracle = references["oracle"] or None

    def point(model) -> dict[str, float]:
        scorer = p.family.scorer(model, target, task, r.device, quiet=True, label="trajectory")
        return p.suite.trajectory_point(scorer, scoring.ctx, oracle)

    return Trajectory(p.spec.eval_every, point)


def _measure_lenses(p: Plan, r: _Run, task, target, oracle, model, data, metrics: dict, ci: dict, rows: list) -> dict:
    """Run the model lenses; their metrics, reference rows and rows join the run's. Returns
    their per-example scores by lens."""
    from unlearnbench.progress import progress_bar

    spec, family = p.spec, p.family
    if not p.model_lenses:
        return {}

    def unlearn_again(model_, seed: int):  # lenses that run the method again (quiet, own seed)
        return family.unlearn(p.method, model_, data, p.params, _context(p, r, task, seed, True, target))

    # one progress line per lens and model, not one per inner pass (quiet inner engines)
    ctx = family.lens_context(task, target, r.device, quiet=spec.quiet, seed=spec.seed, options=p.options,
                              unlearn=unlearn_again)
    scores: dict[str, dict] = {}
    score_key = family.score_key(task, r.device, p.options)
    for name, lens in p.model_lenses.items():
        with r.stage(f"{name.replace('-', '_')}_s"), \
                progress_bar(f"{name} lens", total=3 if lens.references else 1, quiet=spec.quiet) as advance:
            scores[name] = _lens_scores(lens, ctx, task, target, oracle, model, spec.seed, advance, score_key)
            m, c = lens.aggregate(scores[name]["unlearned"], scores[name])
            metrics.update(m)
            ci.update(c)
            if lens.references:
                for which in ("original", "oracle"):
                    if which in scores[name]:
                        r.record.reference.setdefault(which, {}).update(lens.aggregate(scores[name][which], scores[name])[0])
            rows += lens.rows_for(scores[name]["unlearned"])
            kept = lens.provenance(scores[name]["unlearned"])
            if kept:
                r.record.provenance["lenses"] = {**(r.record.provenance.get("lenses") or {}), name: kept}
    return scores


class _Scoring:
    """Scores models of one task through its family's scorer and its suite; the references
    (the original target and the oracle) are cached on disk by task, model, suite and what
    else changes their scores."""

    def __init__(self, p: Plan, task, target, device, counters: dict):
        from unlearnbench.suites.base import ScoreContext

        self.p, self.task, self.target, self.device, self.counters = p, task, target, device, counters
        self.ctx = ScoreContext(task=task, lenses=p.suite_lenses, seed=p.spec.seed, device=device,
                                original=target.model, options=p.options)

    def score(self, model, label: str, rte_s: float | None = None) -> dict:
        from dataclasses import replace

        family = self.p.family
        scorer = family.scorer(model, self.target, self.task, self.device, quiet=self.p.spec.quiet, label=label)
        per_example = self.p.suite.score(scorer, replace(self.ctx, rte_s=rte_s))
        counts = family.counts(scorer)
        if counts is not None:
            self.counters[label] = counts
        return per_example

    def reference(self, loaded, which: str) -> dict:
        from unlearnbench.suites import SUITE_VERSION

        key = {"task": self.task.fingerprint, "model": loaded.fingerprint, "suite": self.p.suite.name,
               "suite_version": SUITE_VERSION, **self.p.suite.reference_key(self.ctx),
               **self.p.family.score_key(self.task, self.device, self.p.options)}
        return cached_json(cache_root() / "scores" / fingerprint(key), lambda: self.score(loaded.model, which))

    def references(self, oracle) -> tuple[dict, dict]:
        """(per-example scores, aggregate rows) of the oracle and the original target; a task
        without an oracle (WMDP) has empty oracle scores, and its suite leaves out what needs them."""
        scores = {which: self.reference(loaded, which) if loaded is not None else {}
                  for which, loaded in (("oracle", oracle), ("original", self.target))}
        rows = {which: self.p.suite.aggregate(scores[which], scores["oracle"], seed=self.p.spec.seed)[0]
                if scores[which] else {} for which in ("original", "oracle")}
        return scores, rows


def _lens_scores(lens, ctx, task, target, oracle, model, seed: int, advance=lambda n=1: None,
                 score_key: dict | None = None) -> dict:
    """Per-example scores of one model lens for the unlearned model and (where the lens has
    them) both references; the references are cached on disk by model, task, lens and seed."""
    out = {}
    if lens.references:
        for which, loaded in (("original", target), ("oracle", oracle)):
            if loaded is None:  # a task without an oracle
                continue
            key = fingerprint({"task": task.fingerprint, "model": loaded.fingerprint, "lens": lens.version,
                               "rows": [row.name for row in lens.rows()], "which": which, "seed": seed,
                               "original": target.fingerprint, **lens.reference_key(task), **(score_key or {}),
                               # the lens's own options that are not the default (e.g. --relearn-lr)
                               **{o.name: ctx.options.get(o.name) for o in lens.options
                                  if ctx.options.get(o.name, o.default) != o.default}})
            out[which] = cached_json(cache_root() / "lenses" / key,
                                     lambda: lens.per_example(ctx, loaded.model, which))
            advance(1)
    out["unlearned"] = lens.per_example(ctx, model, "unlearned")
    advance(1)
    return out


def _select(metrics: dict, ci: dict, wanted: tuple[str, ...], rows) -> tuple[dict, dict, list]:
    if not wanted:
        return metrics, ci, rows
    keep = {name for name in metrics for w in wanted if name == w or name.endswith("_" + w) or name.startswith(w + "_")}
    return ({k: v for k, v in metrics.items() if k in keep}, {k: v for k, v in ci.items() if k in keep},
            [row for row in rows if row.name in keep])


def forget_roles(mode: str) -> list[str]:
    if mode == "standard":
        return ["forget"]
    return [f"{MODE_STEPS[mode]}/forget_{k}" for k in range(1, N_STEPS + 1)]


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def board_scores(spec: RunSpec, task, *, unlearned: str | None = None, rte_s: float | None = None) -> dict[str, Any]:
    """What the leaderboard compares a submission with, through the path every run takes: the
    per-example suite scores of ``task``'s original target and oracle (the reference scores,
    cached as every run's are) and, with ``unlearned`` (a folder or hub id, read by the family's
    ``--unlearned`` loader: no unlearning), of that model too. ``spec`` names the run's seed,
    lenses, options and device (its method is not looked at); ``rte_s`` is the unlearning time
    the run reported (a suite that shows it takes it as it is: no model can re-measure it).
    Returns ``{"original", "oracle", "target_fingerprint", "oracle_fingerprint"}`` (+ ``"unlearned"``)."""
    from dataclasses import replace

    from unlearnbench.lm.modeling import resolve_device

    p = plan(replace(spec, method="original", unlearned=None, mode="standard"))
    device = resolve_device(spec.device)
    target, oracle = p.family.load_models(task, device=device, options=p.options)
    scoring = _Scoring(p, task, target, device, {})
    scores, _ = scoring.references(oracle)
    out = {**scores, "target_fingerprint": target.fingerprint,
           "oracle_fingerprint": oracle.fingerprint if oracle is not None else None}
    if unlearned is not None:
        p.family.offload(target.model, oracle.model if oracle is not None else None)  # as a run does
        loaded = p.family.load_unlearned(unlearned, task, target, device=device, options=p.options)
        out["unlearned"] = scoring.score(loaded.model, "unlearned", rte_s=rte_s)
    return out


def prepare(task_name: str, *, data_dir: str | None = None, model: str | None = None, oracle: str | None = None,
            device: str = "auto", quiet: bool = False, options: dict | None = None) -> dict[str, Any]:
    """Build and cache what a task needs: data, target, oracle and their reference scores."""
    from unlearnbench.lm.modeling import resolve_device

    with used_by(task_name):
        p = plan(RunSpec(task=task_name, method="original", data_dir=data_dir, model=model, oracle=oracle, device=device,
                         quiet=quiet, options=options or {}))
        t = time.perf_counter()
        task = _build_task(p.spec, p.family, p.task_options)
        target, oracle_model = p.family.load_models(task, device=resolve_device(device), options=p.options)
        counters: dict[str, Any] = {}
        _, reference = _Scoring(p, task, target, resolve_device(device), counters).references(oracle_model)
        return {"task": task_name, "fingerprint": task.fingerprint, "seconds": time.perf_counter() - t, **reference,
                "token_counts": counters}
