"""``unlearnbench``: evaluate, list, prepare. Progress on stderr, results on stdout."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from unlearnbench.errors import UserError

app = typer.Typer(
    name="unlearnbench",
    help="A machine-unlearning benchmark: run a method on a task and score it against an oracle.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# results are read in logs and notebooks too: never squeeze the table below 120 columns
_out = Console(width=None if sys.stdout.isatty() else 120)
_err = Console(stderr=True)


class Format(str, Enum):
    table = "table"
    json = "json"


class Kind(str, Enum):
    tasks = "tasks"
    methods = "methods"
    metrics = "metrics"


def _fail(message: str, code: int = 2) -> None:
    _err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _parse_params(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            _fail(f"--param {pair!r} is not key=value (e.g. --param lr=1e-4).")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
            return f"{value:.3e}"
        return f"{value:.4f}"
    return str(value)


ARROWS = {"higher": "↑", "lower": "↓", "info": "", "oracle": "≈oracle", "zero": "→0"}
LENSES = ("behavior", "privacy", "parametric", "robustness", "utility")


def _by_lens(rows) -> list:
    order = {lens: i for i, lens in enumerate(LENSES)}
    return sorted(rows, key=lambda r: order.get(r.lens, len(order)))  # stable: suite order within a lens


def result_table(result) -> Table:
    record = result.record
    mode = "" if record.mode == "standard" else f" · {record.mode} (last step)"
    table = Table(title=f"{record.task['name']} · {record.method['name']} · seed {record.seed}{mode}")
    table.add_column("lens", no_wrap=True, style="dim")
    table.add_column("metric", no_wrap=True)
    for col, justify in ( ("dir", "center"), ("unlearned", "right"), ("original", "right"),
                         ("oracle", "right"), ("95% CI", "right")):
        table.add_column(col, justify=justify)
    original, oracle = record.reference.get("original", {}), record.reference.get("oracle", {})
    lens = None
    for row in _by_lens(result.rows):
        if row.name not in record.metrics:
            continue
        first = row.lens != lens
        if first:
            if lens is not None:
                table.add_section()
            lens = row.lens
        ci = record.ci.get(row.name)
        table.add_row(row.lens if first else "", f"{row.name}", ARROWS.get(row.direction, row.direction), _fmt(record.metrics[row.name]),
                      _fmt(original.get(row.name)), _fmt(oracle.get(row.name)),
                      f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
    return table


def steps_table(result) -> Table:
    """One row per step of a scalability / sustainability run, one column per metric."""
    record = result.record
    names = [r.name for r in _by_lens(result.rows) if r.name in record.metrics and r.direction != "info"]
    table = Table(title=f"{record.mode}: every step")
    table.add_column("step")
    table.add_column("forget")
    table.add_column("n", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for step in record.steps:
        table.add_row(str(step["step"]), step["forget"], str(step["n_forget"]),
                      *(_fmt(step["metrics"].get(n)) for n in names))
    return table


@app.command()
def evaluate(
    task: Annotated[str, typer.Option(help="Task name (see `unlearnbench list tasks`).")] = "tofu-synth/forget10",
    method: Annotated[str, typer.Option(help="Method name (see `unlearnbench list methods`).")] = "npo",
    model: Annotated[Optional[str], typer.Option(help="Target model: hub id (hub:org/name[@rev]) or folder.")] = None,
    oracle: Annotated[Optional[str], typer.Option(help="Oracle (retain-only) model: hub id or folder.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder with the task's data in hub layout.")] = None,
    param: Annotated[list[str], typer.Option("--param", help="Method hyperparameter key=value (repeatable).")] = [],
    seed: Annotated[int, typer.Option(help="Run seed (methods and the retrain recipe).")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for run records.")] = Path("runs"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    metrics: Annotated[Optional[str], typer.Option(help="Comma-separated metric names to report (default: all).")] = None,
    format: Annotated[Format, typer.Option("--format", help="table or json (the record).")] = Format.table,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    mode: Annotated[str, typer.Option(help="standard; scalability (growing forget sets) or sustainability "
                                           "(sequential requests) on tasks that have them.")] = "standard",
    lens: Annotated[str, typer.Option(help="Comma-separated lenses: behavior, privacy, utility; parametric, "
                                           "robustness (language models); privacy-strong (classifiers). "
                                           "Default: behavior,privacy,utility.")] = "behavior,privacy,utility",
    strong_models: Annotated[int, typer.Option(help="Models per side for --lens privacy-strong.")] = 32,
    mia_feature: Annotated[str, typer.Option(help="Classifiers: MIA-Efficacy attacker feature: confidence, "
                                                  "correctness, entropy, modified_entropy or probability_vector.")] = "confidence",
    forget_indices: Annotated[Optional[Path], typer.Option(help="Classifier / regression tasks: a forget-index file (from "
                                                                "`unlearnbench forgetset`) replacing the built-in forget set.")] = None,
    concepts: Annotated[Optional[str], typer.Option(help="Language-model tasks: a ConceptVectors JSON file (or "
                                                          "hub:<owner>/<dataset>/<file>) naming the concept vectors "
                                                          "the parametric lens validates and compares.")] = None,
    data_file: Annotated[Optional[Path], typer.Option(help="tabular-regression: your table (.csv or .parquet).")] = None,
    target: Annotated[Optional[str], typer.Option(help="tabular-regression: the column to predict.")] = None,
    forget: Annotated[Optional[str], typer.Option(help="tabular-regression: random-<p> (default random-10) or "
                                                        "range-<lo>-<hi> (rows whose target is in [lo, hi]).")] = None,
) -> None:
    """Apply a method to a task's target model and score it against the oracle."""
    from unlearnbench.runner import DEFAULT_LENSES, LENSES as ALL_LENSES, RunSpec, run

    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        _fail(f"--device {device!r}: use auto, cpu or cuda.")
    spec = RunSpec(task=task, method=method, params=_parse_params(param), seed=seed, model=model, oracle=oracle,
                   data_dir=str(data_dir) if data_dir else None, device=device, out=out,
                   metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()) if metrics else (), quiet=quiet,
                   mode=mode, lenses=tuple(lens.split(",")), strong_privacy_models=strong_models, mia_feature=mia_feature,
                   task_options=_task_options(forget_indices=forget_indices, data_file=data_file, target=target,
                                              forget=forget, concepts=concepts))
    try:
        result = run(spec)
    except UserError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _err.print("[yellow]interrupted[/]: the record is marked 'interrupted'.")
        raise typer.Exit(130)
    record = result.record
    _report_beside(result, quiet)
    if format is Format.json:
        print(json.dumps(record.to_json(), indent=2))
    else:
        if record.status == "succeeded":
            if record.steps:
                _out.print(steps_table(result))
            _out.print(result_table(result))
        if not quiet:
            _err.print(f"record: {result.run_dir / 'record.json'}", highlight=False)
            optional = {"classifier": ("privacy-strong",), "regression": ("robustness",)}.get(
                record.task.get("suite"), ("parametric", "robustness"))
            left_out = [name for name in ALL_LENSES if name in optional and name not in record.lenses]
            if left_out and tuple(record.lenses) == DEFAULT_LENSES:
                _err.print(f"left out: the {' and '.join(left_out)} lenses (slower); add them with "
                           f"--lens {','.join(record.lenses + left_out)}", highlight=False)
    if record.status != "succeeded":
        _err.print(f"[bold red]run {record.status}:[/] {record.error}", highlight=False)
        raise typer.Exit(1)


def _task_options(**given) -> dict:
    """The task options given on the command line (paths as strings); a task that takes none of
    them refuses them in the runner."""
    return {k: str(v) for k, v in given.items() if v is not None}


@app.command("list")
def list_(
    kind: Annotated[Kind, typer.Argument(help="tasks, methods or metrics")],
    format: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """List the registered tasks, methods or metrics."""
    from unlearnbench import registry

    entries = registry.entries(kind.value.rstrip("s"))
    if format is Format.json:
        print(json.dumps([{"name": e.name, "summary": e.summary, **e.info} for e in entries.values()], indent=2))
        return
    table = Table(title=kind.value)
    table.add_column("name")
    extra = sorted({k for e in entries.values() for k in e.info})
    for k in extra:
        table.add_column(k)
    if kind is Kind.methods:
        table.add_column("task kinds")
        table.add_column("hyperparameters (defaults; per kind)")
    table.add_column("summary")
    for e in entries.values():
        cells = [e.name] + [str(e.info.get(k, "")) for k in extra]
        if kind is Kind.methods:
            from dataclasses import fields

            kinds = getattr(e.obj, "kinds", ("language_model",))
            cells.append(" / ".join(k.replace("_", "-") for k in kinds))
            cells.append("; ".join(", ".join(f"{f.name}={f.default}" for f in fields(e.obj.params_class(k))) or "-"
                                   for k in dict.fromkeys(kinds)))
        table.add_row(*cells, e.summary)
    _out.print(table)


@app.command()
def prepare(
    task: Annotated[str, typer.Option(help="Task name.")] = "tofu-synth/forget10",
    model: Annotated[Optional[str], typer.Option()] = None,
    oracle: Annotated[Optional[str], typer.Option()] = None,
    data_dir: Annotated[Optional[Path], typer.Option()] = None,
    device: Annotated[str, typer.Option()] = "auto",
) -> None:
    """Build and cache what a task needs (data, target, oracle, reference scores)."""
    from unlearnbench.runner import prepare as do_prepare

    try:
        info = do_prepare(task, data_dir=str(data_dir) if data_dir else None, model=model, oracle=oracle, device=device)
    except UserError as exc:
        _fail(str(exc))
    _out.print(f"prepared {info['task']} (fingerprint {info['fingerprint']}) in {info['seconds']:.1f} s")


@app.command()
def forgetset(
    task: Annotated[str, typer.Option(help="A classifier task (e.g. digits/random-10): its data and target model.")],
    strategy: Annotated[str, typer.Option(help="random, class, worst, proxy-loss or proxy-gradnorm.")],
    size: Annotated[float, typer.Option(help="Forget-set size in percent of the training set (ignored by class).")] = 10.0,
    out: Annotated[Path, typer.Option(help="The index file to write (JSON).")] = Path("forget.json"),
    forget_class: Annotated[Optional[int], typer.Option("--class", help="The class to forget (strategy class).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the selection.")] = 0,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Select a forget set (worst-case, proxies, random, class) and write a versioned index file
    for `unlearnbench evaluate --forget-indices FILE`."""
    from unlearnbench import forgetsets, registry
    from unlearnbench.classifier import write_forget_indices
    from unlearnbench.runner import RunSpec, load_task

    try:
        if registry.get("task", task).info.get("kind") != "classifier":
            raise UserError(f"Forget-set selection is for classifier tasks; {task!r} is not one.")
        loaded = load_task(RunSpec(task=task, quiet=quiet))
        target = loaded.load_target()
        indices, info = forgetsets.select(strategy, model=target.model, x=loaded.x_train, y=loaded.y_train,
                                          size_fraction=size / 100.0, seed=seed, forget_class=forget_class, quiet=quiet)
        write_forget_indices(out, indices, task=task, strategy=strategy, size=size, cost_s=info.get("wall_seconds"))
    except UserError as exc:
        _fail(str(exc))
    cost = ", ".join(f"{k} {v}" for k, v in info.items() if k in ("wall_seconds", "outer_steps", "forward_examples",
                                                                      "backward_examples") and v is not None)
    _out.print(f"{len(indices)} of {len(loaded.y_train)} training rows ({strategy}) -> {out}" + (f"  [{cost}]" if cost else ""),
               highlight=False)


# ------------------------------------------------------------------ reports and leaderboard


def _report_beside(result, quiet: bool) -> None:
    """Write report.html beside a succeeded run's record; a failed report only warns."""
    if result.record.status != "succeeded":
        return
    try:
        from unlearnbench.report import REPORT_FILE, write_report

        path = write_report([result.run_dir], result.run_dir / REPORT_FILE)
        if not quiet:
            _err.print(f"report: {path}", highlight=False)
    except Exception as exc:  # the run itself succeeded; its record stands
        _err.print(f"[yellow]warning:[/] could not write the report ({type(exc).__name__}: {exc}); "
                   f"try `unlearnbench report {result.run_dir}`.", highlight=False)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (runs/<run_id>) to report on.")],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """Write one self-contained HTML page with the metric tables and plots of one or more runs."""
    from unlearnbench.report import write_report

    try:
        path = write_report(runs, out)
    except UserError as exc:
        _fail(str(exc))
    _out.print(f"report: {path}", highlight=False)


@app.command()
def submit(
    run: Annotated[Path, typer.Argument(help="A run folder (runs/<run_id>) or its record.json.")],
    leaderboard: Annotated[Path, typer.Option(help="The leaderboard folder.")] = Path("leaderboards"),
    allow_dirty: Annotated[bool, typer.Option(help="Accept a run made from a harness with uncommitted changes (it is marked).")] = False,
    data_dir: Annotated[Optional[Path], typer.Option(help="The task's data folder, for tasks that do not build their own.")] = None,
    build: Annotated[bool, typer.Option(help="Rebuild the boards after accepting.")] = True,
) -> None:
    """Validate a run (schema, task fingerprint, recomputed metrics, provenance) and add it to the leaderboard."""
    from unlearnbench import boards
    from unlearnbench.leaderboard import submit as do_submit

    try:
        stored = do_submit(run, board=leaderboard, allow_dirty=allow_dirty,
                           data_dir=str(data_dir) if data_dir else None, quiet=False)
    except UserError as exc:
        _fail(f"submission refused: {exc}")
    _out.print(f"accepted: {stored}", highlight=False)
    if build:
        boards.build(leaderboard)
        _out.print(f"{boards.placement(leaderboard, stored.name)}; boards rebuilt in {leaderboard}/", highlight=False)


leaderboard_app = typer.Typer(help="Render and show the leaderboard built from the submitted runs.", no_args_is_help=True)
app.add_typer(leaderboard_app, name="leaderboard")


@leaderboard_app.command("build")
def leaderboard_build(
    leaderboard: Annotated[Path, typer.Option(help="The leaderboard folder.")] = Path("leaderboards"),
    check: Annotated[bool, typer.Option(help="Write nothing; exit 1 if the committed boards are out of date.")] = False,
) -> None:
    """Render README.md and index.html from the submissions (deterministic)."""
    from unlearnbench import boards

    if check:
        stale = boards.stale_files(leaderboard)
        if stale:
            _err.print(f"[bold red]out of date:[/] {', '.join(stale)} in {leaderboard}/; run `unlearnbench leaderboard build`.")
            raise typer.Exit(1)
        _out.print(f"{leaderboard}/ is up to date.")
        return
    files = boards.build(leaderboard)
    _out.print(f"wrote {', '.join(str(leaderboard / name) for name in files)}", highlight=False)


@leaderboard_app.command("show")
def leaderboard_show(
    task: Annotated[Optional[str], typer.Option(help="Only this task.")] = None,
    leaderboard: Annotated[Path, typer.Option(help="The leaderboard folder.")] = Path("leaderboards"),
) -> None:
    """Print each task's ranking."""
    from unlearnbench import boards

    shown = boards.task_boards(boards.collect(leaderboard))
    if task is not None:
        known = sorted({b.name for b in shown})
        shown = [b for b in shown if b.task == task]
        if not shown:
            _fail(f"No submissions for task {task!r} in {leaderboard}/. Tasks on the board: {', '.join(known) or '(none)'}.")
    if not shown:
        _out.print(f"No submissions in {leaderboard}/ yet; add one with `unlearnbench submit runs/<run_id>`.")
    for board in shown:
        _out.print(boards.rich_table(board))


def _terminate(signum, frame) -> None:
    # `kill`, a job scheduler's time limit or a closed terminal: treated like Ctrl-C, so the
    # run's record is rewritten as 'interrupted' instead of being left at 'running'.
    raise KeyboardInterrupt


def main() -> None:
    import signal

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _terminate)
    app()


if __name__ == "__main__":
    main()
