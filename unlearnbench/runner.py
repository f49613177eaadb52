"""The runner: the only place that wires a task, a method and a metric suite together.

task ──► target ──► method.unlearn ──► unlearned ──► suite statistics ──► RunRecord
  └────► oracle ─────────────────────────────────────► (reference statistics, cached)

A record with status ``running`` is written before any work starts and rewritten at the end
with ``succeeded``, ``failed`` (diverged training, with the reason) or ``interrupted``, so a
run that stops half-way still leaves a truthful record.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnbench import registry
from unlearnbench.cache import cache_root, fingerprint
from unlearnbench.errors import TrainingDivergedError, UnknownNameError, UserError
from unlearnbench.method import RunContext, UnlearnData, parse_params
from unlearnbench.records import RunRecord, make_run_id, provenance, save_record, write_json_atomic

DEFAULT_TASK = "tofu-synth/forget10"
DEFAULT_METHOD = "npo"
MODES = {
    "standard": "unlearn the task's forget set once",
    "scalability": "unlearn growing forget sets (scal/forget_1..4), each from the original target",
    "sustainability": "unlearn sequential requests (sust/forget_1..4), each on the previous result",
}
MODE_STEPS = {"scalability": "scal", "sustainability": "sust"}
N_STEPS = 4
# The lenses a run can measure. behavior, privacy and utility come from the task's suite
# (one scoring pass); parametric and robustness need the models themselves (see
# unlearnbench.suites.LENSES) and are off by default because they cost more.
LENSES = {
    "behavior": "what the model says: the suite's forget metrics",
    "privacy": "membership inference on forget vs holdout (six attacks)",
    "utility": "what the model still knows outside the forget set",
    "parametric": "concept vectors and linear probes: is the knowledge still in the weights?",
    "robustness": "relearning and quantization attacks: does the knowledge come back?",
    "privacy-strong": "classifiers: N retrained vs N unlearned models, the NeurIPS 2023 challenge's forgetting score",
}
DEFAULT_LENSES = ("behavior", "privacy", "utility")
SUITE_LENSES = ("behavior", "privacy", "utility")  # computed by the task's suite in one scoring pass


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
    strong_privacy_models: int = 32  # N retrained and N unlearned models of --lens privacy-strong
    mia_feature: str = "confidence"  # classifiers: the MIA-Efficacy attacker's feature
    mode: str = "standard"  # see MODES
    lenses: tuple[str, ...] = DEFAULT_LENSES  # see LENSES
    task_options: dict[str, Any] = field(default_factory=dict)  # for tests and library users


@dataclass
class RunResult:
    record: RunRecord
    run_dir: Path
    rows: list  # suite MetricRow objects, in display order
    token_counts: dict[str, Any] = field(default_factory=dict)


def load_task(spec: RunSpec):
    entry = registry.get("task", spec.task)
    task = entry.obj(data_dir=spec.data_dir, model=spec.model, oracle=spec.oracle, quiet=spec.quiet, **spec.task_options)
    source = spec.task_options.get("concepts")
    if source:  # a ConceptVectors file names the concept vectors of a real model
        if task.kind != "language_model":
            raise UserError("--concepts (a ConceptVectors file) is for language-model tasks.")
        from unlearnbench.concepts import read_concept_vectors

        task.concepts = read_concept_vectors(str(source))
    return task


def _reference_stats(suite, task, which: str, loaded, device, quiet: bool, counters: dict, privacy: bool = True) -> dict:
    """Per-example scores of the original target or the oracle, cached on disk by fingerprint."""
    from unlearnbench.scoring import ScoringEngine
    from unlearnbench.suites import SUITE_VERSION

    key = {"task": task.fingerprint, "model": loaded.fingerprint, "suite": task.suite, "suite_version": SUITE_VERSION}
    if not privacy:  # runs with the privacy lens keep the keys they always had
        key["privacy"] = False
    path = cache_root() / "scores" / f"{fingerprint(key)}.json"
    if path.exists():
        return json.loads(path.read_text())
    engine = ScoringEngine(loaded.model, loaded.tokenizer, task.prompt_format, device, quiet=quiet, label=which)
    per_example = suite["per_example"](suite["statistics"](engine, task.splits, privacy=privacy))
    counters[which] = _counts(engine)
    write_json_atomic(path, per_example)
    return per_example


def _references(suite, task, target, oracle, device, quiet: bool, seed: int, counters: dict, privacy: bool = True):
    """Per-example scores of the oracle and the original target, and their aggregate metrics."""
    oracle_scores = _reference_stats(suite, task, "oracle", oracle, device, quiet, counters, privacy)
    original_scores = _reference_stats(suite, task, "original", target, device, quiet, counters, privacy)
    reference = {"original": suite["aggregate"](original_scores, oracle_scores, seed=seed)[0],
                 "oracle": suite["aggregate"](oracle_scores, oracle_scores, seed=seed)[0]}
    return oracle_scores, original_scores, reference


def _counts(engine) -> dict[str, Any]:
    c = engine.counter
    return {"forwarded": c.forwarded, "unique": c.unique, "by_kind": {k: list(v) for k, v in c.by_kind.items()}}


def _select(metrics: dict, ci: dict, wanted: tuple[str, ...], rows) -> tuple[dict, dict, list]:
    if not wanted:
        return metrics, ci, rows
    known = registry.entries("metric")
    for name in wanted:
        if name not in known:
            raise UnknownNameError("metric", name, known)
    keep = {name for name in metrics for w in wanted if name == w or name.endswith("_" + w) or name.startswith(w + "_")}
    return ({k: v for k, v in metrics.items() if k in keep}, {k: v for k, v in ci.items() if k in keep},
            [r for r in rows if r.name in keep])


def run(spec: RunSpec) -> RunResult:
    """Evaluate one (task, method, params, seed). Raises UserError for bad input before any
    work; returns a result whose record says whether the method succeeded."""
    from unlearnbench.lm import clone_model, resolve_device
    from unlearnbench.suites import SUITES

    t_start = time.perf_counter()
    method_entry = registry.get("method", spec.method)
    method = method_entry.obj()
    kind = registry.get("task", spec.task).info.get("kind", "language_model")  # fail on an unknown task early
    _check_kind(method, kind)
    params = parse_params(method.params_class(kind), spec.params)
    if kind != "regression" or spec.task != "tabular-regression":
        extra = [f"--{k.replace('_', '-')}" for k in ("data_file", "target", "forget") if spec.task_options.get(k)]
        if extra:
            raise UserError(f"{', '.join(extra)} are for the tabular-regression task (your own table); "
                            f"{spec.task!r} brings its own data.")
    if kind == "language_model" and spec.task_options.get("forget_indices"):
        raise UserError("--forget-indices is for classifier and regression tasks (digits/..., cifar10/..., diabetes/...); "
                        f"{spec.task!r} defines its forget set by its split.")
    if spec.metrics:
        _select({}, {}, spec.metrics, [])
    if spec.mode not in MODES:
        raise UnknownNameError("mode", spec.mode, MODES)
    lenses = check_lenses(spec.lenses)
    device = resolve_device(spec.device)

    params_json = _params_json(params)
    config = {"task": spec.task, "method": spec.method, "params": params_json, "seed": spec.seed,
              "model": spec.model, "oracle": spec.oracle, "data_dir": spec.data_dir, "task_options": spec.task_options}
    if spec.mode != "standard":  # standard runs keep the ids they always had
        config["mode"] = spec.mode
    if tuple(lenses) != DEFAULT_LENSES:
        config["lenses"] = list(lenses)
    if spec.mia_feature != "confidence":
        from unlearnbench.metrics.classifier import MIA_FEATURES

        if kind != "classifier":
            raise UserError("--mia-feature chooses the MIA-Efficacy attacker of classifier tasks.")
        if spec.mia_feature not in MIA_FEATURES:
            raise UnknownNameError("MIA feature", spec.mia_feature, MIA_FEATURES)
        config["mia_feature"] = spec.mia_feature
    run_id = make_run_id(config)
    run_dir = Path(spec.out) / run_id
    record = RunRecord(
        run_id=run_id, status="running", task={"name": spec.task}, method={"name": spec.method, "params": params_json},
        model={"target": spec.model, "oracle": spec.oracle}, seed=spec.seed, provenance=provenance(config, str(device)),
        mode=spec.mode, lenses=list(lenses),
    )
    save_record(run_dir, record)
    timing: dict[str, float] = {}

    def finish(status: str, error: str) -> None:
        record.status, record.error = status, error
        record.timing = timing | {"total_s": time.perf_counter() - t_start}
        save_record(run_dir, record)

    try:
        t = time.perf_counter()
        task = load_task(spec)
        if task.kind in ("classifier", "regression"):
            timing["prepare_task_s"] = time.perf_counter() - t
            return _run_array_task(spec, task, method, params, record, run_dir, timing, t_start, device, lenses)
        suite = SUITES[task.suite]
        record.task = {"name": spec.task, "version": task.spec.version, "fingerprint": task.fingerprint,
                       "options": task.spec.to_json()["options"], "suite": task.suite}
        timing["prepare_task_s"] = time.perf_counter() - t

        t = time.perf_counter()
        target = task.load_target()
        oracle = task.load_oracle()
        record.model = {"target": target.source, "oracle": oracle.source,
                        "target_fingerprint": target.fingerprint, "oracle_fingerprint": oracle.fingerprint}
        timing["load_models_s"] = time.perf_counter() - t

        t = time.perf_counter()
        counters: dict[str, Any] = {}
        privacy = "privacy" in lenses
        use_suite = bool(set(lenses) & set(SUITE_LENSES))  # else only the model lenses run
        oracle_scores, original_scores, record.reference = (_references(
            suite, task, target, oracle, device, spec.quiet, spec.seed, counters, privacy)
            if use_suite else ({}, {}, {"original": {}, "oracle": {}}))
        timing["reference_scores_s"] = time.perf_counter() - t
        model_lenses = _model_lenses(task, lenses)
        if not model_lenses:
            del oracle

        _check_mode(spec, task)
        ctx = RunContext(seed=spec.seed, device=device, quiet=spec.quiet, task_name=spec.task, recipe=task.recipe)

        def evaluate(model, label: str):
            from unlearnbench.scoring import ScoringEngine

            if not use_suite:
                return {}, {}, {}
            engine = ScoringEngine(model, target.tokenizer, task.prompt_format, device, quiet=spec.quiet, label=label)
            per_example = suite["per_example"](suite["statistics"](engine, task.splits, privacy=privacy))
            counters[label] = _counts(engine)
            return per_example, *suite["aggregate"](per_example, oracle_scores, seed=spec.seed)

        timing["unlearn_s"] = timing["evaluate_s"] = 0.0
        model, steps_per_example = None, []
        for step, forget_role in enumerate(_forget_roles(spec.mode)):
            forget = task.splits[forget_role]
            data = _unlearn_data(task, forget, target.tokenizer)
            start = target.model if model is None or spec.mode != "sustainability" else model
            t = time.perf_counter()
            model = method.unlearn(clone_model(start), data, params, ctx)
            unlearn_s = time.perf_counter() - t
            t = time.perf_counter()
            label = "unlearned" if spec.mode == "standard" else f"unlearned step {step + 1}"
            per_example, metrics, ci = evaluate(model, label)
            evaluate_s = time.perf_counter() - t
            timing["unlearn_s"] += unlearn_s
            timing["evaluate_s"] += evaluate_s
            if spec.mode != "standard":
                steps_per_example.append(per_example)
                record.steps.append({"step": step + 1, "forget": forget_role, "n_forget": len(forget),
                                     "metrics": metrics, "ci": ci, "unlearn_s": unlearn_s, "evaluate_s": evaluate_s})
                save_record(run_dir, record)  # a run stopped half-way keeps the steps it finished

        rows = [r for r in suite["rows"]() if r.lens in lenses]
        keep = {r.name for r in rows}
        metrics, ci = {k: v for k, v in metrics.items() if k in keep}, {k: v for k, v in ci.items() if k in keep}
        for which in record.reference:
            record.reference[which] = {k: v for k, v in record.reference[which].items() if k in keep}
        lens_scores = {}
        for name, lens in model_lenses.items():
            t = time.perf_counter()
            lens_scores[name] = _run_lens(lens, task, target, oracle, model, device, spec)
            m, c = lens["aggregate"](lens_scores[name]["unlearned"], lens_scores[name])
            metrics.update(m)
            ci.update(c)
            for which in ("original", "oracle"):
                record.reference.setdefault(which, {}).update(
                    lens["aggregate"](lens_scores[name][which], lens_scores[name])[0])
            rows += lens["rows"]()
            timing[f"{name}_s"] = time.perf_counter() - t
        metrics, ci, rows = _select(metrics, ci, spec.metrics, rows)
        record.metrics, record.ci, record.status = metrics, ci, "succeeded"
        timing["total_s"] = time.perf_counter() - t_start
        record.timing = timing
        extra = {"steps": steps_per_example} if steps_per_example else {}
        if lens_scores:
            extra["lenses"] = lens_scores
        save_record(run_dir, record, {"unlearned": per_example, "original": original_scores, "oracle": oracle_scores, **extra})
        return RunResult(record, run_dir, rows, counters)
    except TrainingDivergedError as exc:
        finish("failed", str(exc))
        return RunResult(record, run_dir, [], {})
    except UserError:
        # bad input found while loading: nothing ran, so no record is left behind
        (run_dir / "record.json").unlink(missing_ok=True)
        _rmdir_if_empty(run_dir)
        raise
    except KeyboardInterrupt:
        finish("interrupted", "interrupted by the user (Ctrl-C)")
        raise
    except Exception as exc:
        finish("failed", f"{type(exc).__name__}: {exc}")
        raise


def _check_kind(method, kind: str) -> None:
    if kind in method.kinds:
        return
    fitting = [name for name, e in registry.entries("method").items() if kind in getattr(e.obj, "kinds", ())]
    raise UserError(f"Method {method.name!r} does not apply to {kind.replace('_', '-')} tasks. "
                    f"Methods that do: {', '.join(fitting)}.")


def _array_data(task):
    """What a classifier or regression method sees of the task."""
    from unlearnbench.method import ClassifierData, RegressionData

    f, r = task.forget_indices, task.retain_indices
    if task.kind == "regression":
        return RegressionData(x_forget=task.x_train[f], y_forget=task.y_train[f], x_retain=task.x_train[r],
                              y_retain=task.y_train[r], model_config=task.model_config, train_config=task.train_config)
    return ClassifierData(
        x_forget=task.x_train[f], y_forget=task.y_train[f], x_retain=task.x_train[r], y_retain=task.y_train[r],
        num_classes=task.num_classes, model_config=task.model_config, train_config=task.train_config,
        x_train=task.x_train, y_train=task.y_train, forget_indices=f, forget_class=task.forget_class)


def _run_array_task(spec: RunSpec, task, method, params, record, run_dir: Path, timing: dict, t_start: float,
                    device, lenses) -> RunResult:
    """Classifier and regression tasks: their suite (predictions on forget, retain and test),
    and for classifiers the strong privacy tier if asked for."""
    import copy

    from unlearnbench.method import RunContext
    from unlearnbench.suites import SUITES, strong_privacy

    regression = task.kind == "regression"
    allowed = ("behavior", "privacy", "utility") + (("robustness",) if regression else ("privacy-strong",))
    unsupported = [name for name in lenses if name not in allowed]
    if unsupported:
        raise UserError(f"The {' and '.join(unsupported)} lens(es) do not apply to {task.kind} tasks; they have "
                        f"{', '.join(allowed)}.")
    suite = SUITES[task.suite]
    record.task = {"name": spec.task, "version": task.spec.version, "fingerprint": task.fingerprint,
                   "options": task.spec.to_json()["options"], "suite": task.suite}
    t = time.perf_counter()
    target, oracle = task.load_target(), task.load_oracle()
    record.model = {"target": target.source, "oracle": oracle.source,
                    "target_fingerprint": target.fingerprint, "oracle_fingerprint": oracle.fingerprint}
    timing["load_models_s"] = time.perf_counter() - t

    def statistics(model):
        if regression:  # the anamnesis index (robustness) relearns towards the original's forget loss
            return suite["statistics"](model, task, original=target.model, device=device, seed=spec.seed,
                                       relearn="robustness" in lenses)
        return suite["statistics"](model, task, device=device)

    t = time.perf_counter()
    features = {} if regression else {"mia_feature": spec.mia_feature}
    scores = {which: suite["per_example"](statistics(m.model), **features)
              for which, m in (("oracle", oracle), ("original", target))}
    record.reference = {which: suite["aggregate"](scores[which], scores["oracle"], seed=spec.seed)[0]
                        for which in ("original", "oracle")}
    timing["reference_scores_s"] = time.perf_counter() - t

    data = _array_data(task)
    apply = method.unlearn_regressor if regression else method.unlearn_classifier

    def unlearn(model, seed: int, quiet: bool = True):
        ctx = RunContext(seed=seed, device=device, quiet=quiet, task_name=spec.task)
        return apply(model.to(device), data, params, ctx), ctx

    t = time.perf_counter()
    model, ctx = unlearn(copy.deepcopy(target.model), spec.seed, spec.quiet)
    timing["unlearn_s"] = rte = time.perf_counter() - t
    if ctx.info:
        record.method["info"] = ctx.info
    t = time.perf_counter()
    per_example = suite["per_example"](statistics(model), rte_s=rte, **features)
    metrics, ci = suite["aggregate"](per_example, scores["oracle"], seed=spec.seed)
    timing["evaluate_s"] = time.perf_counter() - t
    rows = [r for r in suite["rows"]() if r.lens in lenses]
    keep = {r.name for r in rows}
    metrics = {k: v for k, v in metrics.items() if k in keep}
    for which in record.reference:
        record.reference[which] = {k: v for k, v in record.reference[which].items() if k in keep}
    extra: dict[str, Any] = {}
    if "privacy-strong" in lenses:
        t = time.perf_counter()
        n = spec.strong_privacy_models
        retrained = strong_privacy.retrained_stats(task, n, device=device, quiet=spec.quiet)
        unlearned = strong_privacy.unlearned_stats(task, target.model, lambda m, s: unlearn(m, s)[0], n,
                                                   device=device, quiet=spec.quiet)
        extra["lenses"] = {"privacy-strong": {"unlearned": strong_privacy.per_example(unlearned, retrained)}}
        metrics.update(strong_privacy.aggregate(extra["lenses"]["privacy-strong"]["unlearned"])[0])
        rows += strong_privacy.rows()
        timing["privacy_strong_s"] = time.perf_counter() - t
    metrics, ci, rows = _select(metrics, ci, spec.metrics, rows)
    record.metrics, record.ci, record.status = metrics, ci, "succeeded"
    timing["total_s"] = time.perf_counter() - t_start
    record.timing = timing
    save_record(run_dir, record, {"unlearned": per_example, "original": scores["original"], "oracle": scores["oracle"],
                                  **extra})
    return RunResult(record, run_dir, rows, {})


def check_lenses(names) -> tuple[str, ...]:
    """The requested lenses in canonical order; unknown names fail with the known ones."""
    names = [n.strip() for n in names if n.strip()]
    for name in names:
        if name not in LENSES:
            raise UnknownNameError("lens", name, LENSES)
    if not names:
        raise UserError(f"--lens needs at least one lens (known: {', '.join(LENSES)}).")
    return tuple(n for n in LENSES if n in names)


def _model_lenses(task, lenses) -> dict:
    """The parametric / robustness lenses asked for that the task can feed."""
    from unlearnbench.suites import LENSES as MODEL_LENSES

    out = {}
    for name in lenses:
        if name == "privacy-strong":
            raise UserError("The privacy-strong lens is for classifier tasks (N retrained vs N unlearned models); "
                            "language-model tasks have the privacy lens.")
        if name in ("parametric", "robustness"):
            lens = MODEL_LENSES[name]
            if not lens["available"](task):
                raise UserError(f"The {name} lens needs data that task {task.spec.name!r} does not provide "
                                f"(concepts, probe questions or a forget set of two rows or more); run without it.")
            out[name] = lens
    return out


def _run_lens(lens, task, target, oracle, model, device, spec: RunSpec) -> dict:
    """Per-example scores of one model lens for the unlearned model and both references;
    the references are cached on disk by model, task, lens version and seed."""
    ctx = lens["context"](task=task, tokenizer=target.tokenizer, device=device, original=target.model,
                          quiet=spec.quiet, seed=spec.seed)
    out = {}
    for which, loaded in (("original", target), ("oracle", oracle)):
        key = fingerprint({"task": task.fingerprint, "model": loaded.fingerprint, "lens": lens["version"],
                           "rows": [r.name for r in lens["rows"]()], "which": which, "seed": spec.seed,
                           "original": target.fingerprint, "concepts": task.concepts, "probes": task.probes})
        path = cache_root() / "lenses" / f"{key}.json"
        if path.exists():
            out[which] = json.loads(path.read_text())
        else:
            out[which] = lens["per_example"](ctx, loaded.model, which)
            write_json_atomic(path, out[which])
    out["unlearned"] = lens["per_example"](ctx, model, "unlearned")
    return out


def _forget_roles(mode: str) -> list[str]:
    if mode == "standard":
        return ["forget"]
    return [f"{MODE_STEPS[mode]}/forget_{k}" for k in range(1, N_STEPS + 1)]


def _check_mode(spec: RunSpec, task) -> None:
    if spec.mode == "standard" or spec.mode in task.modes:
        return
    having = [name for name, e in registry.entries("task").items() if spec.mode in str(e.info.get("modes", ""))]
    raise UserError(
        f"--mode {spec.mode} needs the task's {MODE_STEPS[spec.mode]}/forget_1..{N_STEPS} splits, and {spec.task!r} has none. "
        f"Tasks that have them: {', '.join(having) or 'none'}."
    )


def _unlearn_data(task, forget, tokenizer) -> UnlearnData:
    from unlearnbench.lm import chunk_text_rows

    retain = task.splits["retain"]
    if task.max_train_tokens:
        forget = chunk_text_rows(tokenizer, forget, task.max_train_tokens)
        retain = chunk_text_rows(tokenizer, retain, task.max_train_tokens)
    return UnlearnData(forget=forget, retain=retain, tokenizer=tokenizer, prompt_format=task.prompt_format,
                       concepts=task.concepts)


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _params_json(params) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(params)


def prepare(task_name: str, *, data_dir: str | None = None, model: str | None = None, oracle: str | None = None,
            device: str = "auto", quiet: bool = False, task_options: dict | None = None) -> dict[str, Any]:
    """Build and cache what a task needs: data, target, oracle and their reference scores."""
    from unlearnbench.lm import resolve_device
    from unlearnbench.suites import SUITES

    spec = RunSpec(task=task_name, data_dir=data_dir, model=model, oracle=oracle, device=device, quiet=quiet,
                   task_options=task_options or {})
    t = time.perf_counter()
    task = load_task(spec)
    if task.kind in ("classifier", "regression"):  # data, target and oracle; reference scores are seconds
        task.load_target(), task.load_oracle()
        return {"task": task_name, "fingerprint": task.fingerprint, "seconds": time.perf_counter() - t}
    suite = SUITES[task.suite]
    dev = resolve_device(device)
    counters: dict[str, Any] = {}
    _, _, reference = _references(suite, task, task.load_target(), task.load_oracle(), dev, quiet, 0, counters)
    return {"task": task_name, "fingerprint": task.fingerprint, "seconds": time.perf_counter() - t,
            **reference, "token_counts": counters}
