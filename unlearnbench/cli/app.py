"""``unlearnbench``: evaluate, list, show, prepare, cache, report, submit, leaderboard; and the commands
task families add (e.g. ``forgetset``). Progress on stderr, results on stdout.

Nothing here knows a task kind: options that belong to a family or a lens (``--forget-indices``,
``--concepts``, ...) are declared there and passed through to the runner, which checks them
against the task before any model is loaded."""

from __future__ import annotations

import json
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from unlearnbench.errors import Terminated, UserError

app = typer.Typer(
    name="unlearnbench",
    help="A machine-unlearning benchmark: run a method on a task and score it against an oracle.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# results are read in logs and notebooks too: never squeeze the table below 120 columns
out_console = Console(width=None if sys.stdout.isatty() else 120)
_err = Console(stderr=True)


class Format(str, Enum):
    table = "table"
    json = "json"


class Kind(str, Enum):
    tasks = "tasks"
    methods = "methods"
    formats = "formats"
    metrics = "metrics"
    lenses = "lenses"
    options = "options"


def fail(message: str, code: int = 2) -> None:
    """Print an error for people (no traceback) and exit."""
    _err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _parse_params(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            fail(f"--param {pair!r} is not key=value (e.g. --param lr=1e-4).")
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


def _by_lens(rows) -> list:
    from unlearnbench.lenses import all_lenses

    order = {name: i for i, name in enumerate(all_lenses())}
    return sorted(rows, key=lambda r: order.get(r.lens, len(order)))  # stable: suite order within a lens


def result_table(result) -> Table:
    record = result.record
    mode = "" if record.mode == "standard" else f" · {record.mode} (last step)"
    table = Table(title=Text(f"{record.task['name']} · {record.method['name']} · seed {record.seed}{mode}"))
    table.add_column("lens", no_wrap=True, style="dim")
    table.add_column("metric", no_wrap=True)
    for col, justify in ( ("dir", "center"), ("unlearned", "right"), ("original", "right"),
                         ("oracle", "right"), ("95% CI", "right")):
        table.add_column(col, justify=justify)
    original, oracle = record.reference.get("original", {}), record.reference.get("oracle", {})
    lens = None
    for row in _by_lens(result.rows):
        if row.name not in record.metrics or row.count:
            continue
        first = row.lens != lens
        if first:
            if lens is not None:
                table.add_section()
            lens = row.lens
        ci = record.ci.get(row.name)
        table.add_row(*map(Text, (row.lens if first else "", row.name, ARROWS.get(row.direction, row.direction),
                                  _fmt(record.metrics[row.name]), _fmt(original.get(row.name)), _fmt(oracle.get(row.name)),
                                  f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")))
    return table


def _count(value) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else _fmt(value)


def _table_footer(result) -> str:
    """The counts behind the metrics, the legend of the directions, and the verdict."""
    from unlearnbench.verdict import LEGEND, verdict

    record = result.record
    counts = [f"{row.name} {_count(record.metrics[row.name])}" for row in result.rows
              if row.count and row.name in record.metrics]
    lines = [escape(f"counts: {', '.join(counts)}")] if counts else []
    lines.append(LEGEND)
    line = verdict(record.metrics, record.reference, result.rows)
    if line:
        lines.append(f"[bold]verdict:[/] {escape(line)}")
    return "\n".join(lines)


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
        table.add_row(*map(Text, (str(step["step"]), str(step["forget"]), str(step["n_forget"]),
                                  *(_fmt(step["metrics"].get(n)) for n in names))))
    return table


TRAJECTORY_ROWS = 12  # at most this many points in the terminal (the record and the report hold all)
TRAJECTORY_COLUMNS = 6


def trajectory_table(trajectory) -> Table:
    """A few points of an ``--eval-every`` trajectory (evenly spaced, first and last always),
    one column per metric (the first few)."""
    points = trajectory.points
    if len(points) > TRAJECTORY_ROWS:
        picks = sorted({round(i * (len(points) - 1) / (TRAJECTORY_ROWS - 1)) for i in range(TRAJECTORY_ROWS)})
        points = [points[i] for i in picks]
    names = list(dict.fromkeys(n for p in trajectory.points for n in p.metrics))[:TRAJECTORY_COLUMNS]
    shown = "" if len(points) == len(trajectory.points) else f", {len(points)} of {len(trajectory.points)} points"
    table = Table(title=Text(f"trajectory: every {trajectory.every} steps{shown} (reported: {trajectory.reported})"))
    table.add_column("step", justify="right")
    for name in names:
        table.add_column(Text(name), justify="right")  # text from a record: never markup
    for point in points:
        table.add_row(*map(Text, (str(point.step), *(_fmt(point.metrics.get(n)) for n in names))))
    return table


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
             epilog="Task-kind and lens options (--forget-indices FILE, --concepts FILE, --mia-feature F, "
                    "--strong-models N, ...) go after the others; `unlearnbench list options` lists them.")
def evaluate(
    ctx: typer.Context,
    task: Annotated[str, typer.Option(help="Task name (see `unlearnbench list tasks`).")] = "tofu-synth/forget10",
    method: Annotated[Optional[str], typer.Option(help="Method name (see `unlearnbench list methods`); default npo.")] = None,
    model: Annotated[Optional[str], typer.Option(help="Target model: hub id (hub:org/name\\[@rev]) or folder.")] = None,
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
    lens: Annotated[Optional[str], typer.Option(help="Comma-separated lenses (see `unlearnbench list lenses`): names "
                                                     "replace the defaults, +name adds one, -name leaves one out. "
                                                     "Default: behavior,privacy,utility.")] = None,
    unlearned: Annotated[Optional[str], typer.Option(help="Score a model unlearned elsewhere (a folder or "
                                                          "hub:org/name) against the task's target and oracle; "
                                                          "implies --method external.")] = None,
    save_model: Annotated[bool, typer.Option("--save-model", help="Keep the unlearned weights in runs/<id>/model "
                                                                   "(reload with --unlearned).")] = False,
    eval_every: Annotated[Optional[int], typer.Option(help="Score the model every N optimisation steps with the "
                                                           "suite's cheap metrics and keep the curve in the record "
                                                           "(its trajectory).")] = None,
) -> None:
    """Apply a method to a task's target model and score it against the oracle."""
    from unlearnbench.runner import DEFAULT_METHOD, EXTERNAL, RunSpec, run

    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        fail(f"--device {device!r}: use auto, cpu or cuda.")
    if unlearned is not None and method not in (None, EXTERNAL):
        fail(f"--unlearned scores a model unlearned elsewhere (method {EXTERNAL}); it cannot go with --method {method}.")
    method = method or (EXTERNAL if unlearned is not None else DEFAULT_METHOD)
    spec = RunSpec(task=task, method=method, params=_parse_params(param), seed=seed, model=model, oracle=oracle,
                   data_dir=str(data_dir) if data_dir else None, device=device, out=out,
                   metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()) if metrics else (), quiet=quiet,
                   mode=mode, lenses=tuple(lens.split(",")) if lens is not None else None,
                   options=_extra_options(ctx.args), unlearned=unlearned, save_model=save_model, eval_every=eval_every)
    try:
        result = run(spec)
    except UserError as exc:
        fail(str(exc))
    except Terminated as exc:
        _err.print(f"[yellow]terminated[/] by {exc.signal_name}: the record is marked 'interrupted' (a run of the "
                   "same id that had succeeded is kept as it was).")
        raise typer.Exit(128 + getattr(signal, exc.signal_name, signal.SIGTERM))
    except KeyboardInterrupt:
        _err.print("[yellow]interrupted[/]: the record is marked 'interrupted' (a run of the same id that had "
                   "succeeded is kept as it was).")
        raise typer.Exit(130)
    record = result.record
    _report_beside(result, quiet)
    if format is Format.json:
        print(json.dumps(record.to_json(), indent=2))
    else:
        if record.status == "succeeded":
            if record.steps:
                out_console.print(steps_table(result))
            if record.trajectory is not None and record.trajectory.points:
                out_console.print(trajectory_table(record.trajectory))
            out_console.print(result_table(result))
            out_console.print(_table_footer(result), highlight=False)
        if not quiet:
            _err.print(escape(f"record: {result.run_dir / 'record.json'}"), highlight=False)
            if result.left_out and lens is None:
                _err.print(f"left out: the {' and '.join(result.left_out)} lenses (slower); add them with "
                           f"--lens {','.join('+' + n for n in result.left_out)}", highlight=False)
    if record.status != "succeeded":
        _err.print(f"[bold red]run {record.status}:[/] {escape(str(record.error))}", highlight=False)
        if result.kept is not None:
            _err.print(escape(f"the run of this id that succeeded before is kept in {result.kept}; this attempt's "
                              f"record: {result.run_dir / 'record.json'}"), highlight=False)
        raise typer.Exit(1)


def _extra_options(args: list[str]) -> dict[str, str]:
    """``--name value`` / ``--name=value`` pairs after the common options: the options that task
    families and lenses declare; the runner checks them against the task."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            fail(f"Unexpected argument {arg!r}; options look like --name VALUE (see `unlearnbench evaluate --help`).")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                fail(f"{arg} needs a value (e.g. {arg} VALUE).")
            value = args[i + 1]
            i += 1
        out[name.replace("-", "_")] = value
        i += 1
    return out


@app.command("list")
def list_(
    kind: Annotated[Kind, typer.Argument(help="tasks, methods, metrics, lenses, options or formats (prompt formats)")],
    task_kind: Annotated[Optional[str], typer.Option("--kind", help="Only tasks / methods / options of this task kind "
                                                                    "(the kind column of `unlearnbench list tasks`).")] = None,
    task: Annotated[Optional[str], typer.Option("--task", help="methods: show the hyperparameter preset this task "
                                                               "starts them from (its literature's recipe).")] = None,
    format: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """List the registered tasks, methods, metrics, lenses, prompt formats, or the options of
    task kinds and lenses."""
    from unlearnbench import registry

    wanted = task_kind.replace("-", "_") if task_kind else None
    if wanted is not None and wanted not in registry.entries("family"):
        fail(f"--kind {task_kind!r}: task kinds are "
             f"{', '.join(registry.kind_label(k) for k in registry.entries('family'))}.")
    if task is not None:
        if kind is not Kind.methods:
            fail("--task goes with `unlearnbench list methods` (it shows the task's hyperparameter presets).")
        try:
            entry = registry.get("task", task)
        except UserError as exc:
            fail(str(exc))
        wanted = entry.info.get("kind", "language_model")
    rows = {Kind.tasks: _task_rows, Kind.methods: lambda k: _method_rows(k, task), Kind.metrics: _metric_rows,
            Kind.lenses: _lens_rows, Kind.options: _option_rows, Kind.formats: _format_rows}[kind](wanted)
    if format is Format.json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=kind.value + (f" ({task_kind})" if task_kind else ""))
    columns = list(dict.fromkeys(k for row in rows for k in row))
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(escape(str(row.get(c, ""))) for c in columns))
    out_console.print(table)


def _task_rows(kind: str | None) -> list[dict]:
    from unlearnbench import registry

    return [{"name": e.name, "kind": registry.kind_label(e.info.get("kind", "language_model")), "suite": e.info.get("suite", ""),
             "modes": e.info.get("modes", "-"), "summary": e.summary}
            for e in registry.entries("task").values() if kind in (None, e.info.get("kind", "language_model"))]


def _method_rows(kind: str | None, task: str | None = None) -> list[dict]:
    from dataclasses import fields

    from unlearnbench import registry
    from unlearnbench.runner import method_preset

    entry = registry.get("task", task) if task else None
    rows = []
    for name in registry.entries("method"):
        by_kind = {k: e for k, e in registry.method_kinds(name).items() if kind in (None, k)}
        if not by_kind:
            continue
        blocks = [f"{registry.kind_label(k)}: " + (", ".join(f"{f.name}={f.default}" for f in fields(e.obj.params_class(k))) or "-")
                  for k, e in by_kind.items()]
        row = {"name": name, "task_kinds": " / ".join(registry.kind_label(k) for k in by_kind),
               "hyperparameters (defaults, per kind)": "; ".join(blocks)}
        if entry is not None:
            cls = by_kind[kind].obj
            preset = method_preset(entry, name, cls.params_class(kind))
            row[f"preset on {task}"] = ", ".join(f"{k}={v}" for k, v in preset.items()) or "(the defaults)"
        summaries = {k: e.summary for k, e in by_kind.items()}
        summary = (next(iter(summaries.values())) if len(set(summaries.values())) == 1 else
                   "; ".join(f"{registry.kind_label(k)}: {text}" for k, text in summaries.items()))
        rows.append(row | {"summary": summary})
    return rows


def _format_rows(kind: str | None) -> list[dict]:
    from unlearnbench.lm.prompts import PRESETS

    return [{"name": name, "prompt": "the tokenizer's chat template" if f.chat_template else repr(f.template),
             "answer prefix": repr(f.answer_prefix), "end of answer": f.end_token or "EOS",
             "system prompt": f.system_prompt or "", "BOS": str(f.add_bos)} for name, f in PRESETS.items()]


def _metric_rows(kind: str | None) -> list[dict]:
    from unlearnbench import registry

    return [{"name": e.name, **{k: str(v) for k, v in e.info.items()}, "summary": e.summary}
            for e in registry.entries("metric").values()]


def _lens_rows(kind: str | None) -> list[dict]:
    from unlearnbench import registry
    from unlearnbench.lenses import all_lenses

    return [{"name": n, "default": "yes" if lens.default else "",
             "task kinds": "all (the suite's rows)" if not lens.model_lens else
             " / ".join(registry.kind_label(k) for k in lens.kinds or ()) or "all",
             "description": lens.description} for n, lens in all_lenses().items()
            if kind is None or not lens.model_lens or kind in (lens.kinds or (kind,))]


def _option_rows(kind: str | None) -> list[dict]:
    from unlearnbench import registry
    from unlearnbench.lenses import all_lenses

    rows = [{"option": o.flag, "for": f"{registry.kind_label(name)} tasks" + (f" ({', '.join(o.tasks)})" if o.tasks else ""),
             "default": "" if o.default is None else str(o.default), "help": o.help}
            for name, e in registry.entries("family").items() if kind in (None, name) for o in e.obj.options]
    rows += [{"option": o.flag, "for": f"--lens {n}", "default": "" if o.default is None else str(o.default),
              "help": o.help} for n, lens in all_lenses().items() if lens.options
             and (kind is None or kind in (lens.kinds or (kind,))) for o in lens.options]
    return rows


show_app = typer.Typer(help="Show what a task holds.", no_args_is_help=True)
app.add_typer(show_app, name="show")


@show_app.command("task")
def show_task(
    name: Annotated[str, typer.Argument(help="Task name (see `unlearnbench list tasks`).")],
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder with the task's data in hub layout.")] = None,
    format: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Build the task's data (not its models) and show its splits, sizes, forget and retain
    counts, fingerprint, suite, modes and the lenses and options that apply."""
    from unlearnbench import registry
    from unlearnbench.cache import cache_root
    from unlearnbench.runner import RunSpec, load_task, plan

    try:
        p = plan(RunSpec(task=name, method="original", data_dir=str(data_dir) if data_dir else None))
        task = load_task(p.spec)
    except UserError as exc:
        fail(str(exc))
    entry = registry.get("task", name)
    info = {"task": name, "summary": entry.summary, "kind": registry.kind_label(p.family.kind), "suite": p.suite.name,
            "version": task.spec.version, "fingerprint": task.fingerprint, "options": task.spec.to_json()["options"],
            **p.family.describe(task), "modes": entry.info.get("modes", "-"), "lenses that apply": ", ".join(p.applicable),
            "default lenses": ", ".join(p.lenses), "cache": str(cache_root())}
    if format is Format.json:
        print(json.dumps(info, indent=2, default=str))
        return
    table = Table(title=name, show_header=False)
    table.add_column("field", style="dim")
    table.add_column("value")
    for key, value in info.items():
        shown = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        table.add_row(key, escape(shown))
    out_console.print(table)


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
        fail(str(exc))
    out_console.print(escape(f"prepared {info['task']} (fingerprint {info['fingerprint']}) in {info['seconds']:.1f} s"))


cache_app = typer.Typer(help="Check or clear the cache of worlds, trained models and reference scores.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")


def _cache_task(task: str | None) -> None:
    from unlearnbench import registry

    if task is not None:
        try:
            registry.get("task", task)
        except UserError as exc:
            fail(str(exc))


@cache_app.command("verify")
def cache_verify(
    task: Annotated[Optional[str], typer.Option(help="Only the artefacts this task's runs used.")] = None,
) -> None:
    """Check every cached artefact against its checksums; exit 1 naming any that is damaged
    (the next run that uses it rebuilds it)."""
    from unlearnbench.cache import cache_root
    from unlearnbench.cachefiles import entries, human_size

    _cache_task(task)
    root = cache_root()
    found = entries(task)
    if not found:
        out_console.print(escape(f"No cached artefacts{' recorded for ' + task if task else ''} in {root}."))
        return
    table = Table(title=escape(f"cache {root}" + (f" ({task})" if task else "")))
    table.add_column("artefact")
    table.add_column("size", justify="right")
    table.add_column("status")
    for entry in found:
        style = "red" if entry.damaged else "green" if entry.status == "ok" else "yellow"
        table.add_row(escape(str(entry.path.relative_to(root))), human_size(entry.size), Text(entry.status, style=style))
    out_console.print(table)
    damaged = [e for e in found if e.damaged]
    if damaged:
        for entry in damaged:
            _err.print("[bold red]damaged:[/] " + escape(f"{entry.path}: {entry.status.removeprefix('damaged: ')}"),
                       highlight=False, soft_wrap=True)
        _err.print(escape("The next run that uses it rebuilds it; `unlearnbench cache clear` removes it now."),
                   highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@cache_app.command("clear")
def cache_clear(
    task: Annotated[Optional[str], typer.Option(help="Only the artefacts this task's runs used.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask (never asked without a terminal or under CI).")] = False,
) -> None:
    """Remove the cache, or only the artefacts of one task (rebuilt when next used)."""
    import os

    from unlearnbench.cache import cache_root
    from unlearnbench.cachefiles import clear, human_size

    _cache_task(task)
    root = cache_root()
    what = f"the cached artefacts of {task} in {root}" if task else f"the whole cache {root}"
    if not yes and sys.stdin.isatty() and not os.environ.get("CI") and not typer.confirm(f"Remove {what}?"):
        raise typer.Exit(1)
    removed = clear(task)
    for entry in removed:
        out_console.print(escape(f"removed {entry.path} ({human_size(entry.size)})"), highlight=False, soft_wrap=True)
    total = human_size(sum(e.size for e in removed))
    out_console.print(escape(f"removed {len(removed)} entries ({total}) of {what}." if removed else
                             f"Nothing to remove: no cached artefacts{' recorded for ' + task if task else ''} in {root}."),
                      highlight=False, soft_wrap=True)


# ------------------------------------------------------------------ reports and leaderboard


def _report_beside(result, quiet: bool) -> None:
    """Write report.html beside a succeeded run's record; a failed report only warns."""
    if result.record.status != "succeeded":
        return
    try:
        from unlearnbench.report.runs import REPORT_FILE, write_report

        path = write_report([result.run_dir], result.run_dir / REPORT_FILE)
        if not quiet:
            _err.print(escape(f"report: {path}"), highlight=False)
    except Exception as exc:  # the run itself succeeded; its record stands
        _err.print("[yellow]warning:[/] " + escape(f"could not write the report ({type(exc).__name__}: {exc}); "
                                                   f"try `unlearnbench report {result.run_dir}`."), highlight=False)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (runs/<run_id>) to report on.")],
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """Write one self-contained HTML page with the metric tables and plots of one or more runs."""
    from unlearnbench.records import check_writable_folder
    from unlearnbench.report.runs import write_report

    try:
        if out.is_dir():
            raise UserError(f"--out {str(out)!r} is a folder; pass the HTML file to write (e.g. {out / 'report.html'}).")
        check_writable_folder(out.parent, "--out's folder")
        path = write_report(runs, out)
    except UserError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"could not write {out}: {exc.strerror or exc}.")
    out_console.print(escape(f"report: {path}"), highlight=False)


@app.command()
def submit(
    run: Annotated[Path, typer.Argument(help="A run folder (runs/<run_id>) or its record.json.")],
    leaderboard: Annotated[Path, typer.Option(help="The leaderboard folder.")] = Path("leaderboards"),
    allow_dirty: Annotated[bool, typer.Option(help="Accept a run made from a harness with uncommitted changes (it is marked).")] = False,
    data_dir: Annotated[Optional[Path], typer.Option(help="The task's data folder, for tasks that do not build their own.")] = None,
    build: Annotated[bool, typer.Option(help="Rebuild the boards after accepting.")] = True,
    verify: Annotated[bool, typer.Option("--verify", help="Score the run again from its weights (a run saved with "
                                                          "--save-model, or one of --unlearned hub:ID) and mark it "
                                                          "verified; without it the run is marked recomputed.")] = False,
) -> None:
    """Validate a run (schema, task fingerprint, recomputed metrics, the task's reference scores, provenance) and
    add it to the leaderboard; --verify re-scores its saved weights."""
    from unlearnbench.leaderboard import boards
    from unlearnbench.leaderboard.submissions import SUBMISSION_FILE, submit as do_submit

    from unlearnbench.records import check_writable_folder

    try:
        check_writable_folder(leaderboard, "--leaderboard")  # before any check: they may take minutes
    except UserError as exc:
        fail(str(exc))
    try:
        stored = do_submit(run, board=leaderboard, allow_dirty=allow_dirty,
                           data_dir=str(data_dir) if data_dir else None, quiet=False, verify=verify)
    except UserError as exc:
        fail(f"submission refused: {exc}")
    except OSError as exc:
        fail(f"could not store the run in {leaderboard}: {exc.strerror or exc}.")
    meta = json.loads((stored / SUBMISSION_FILE).read_text())
    how = meta.get("verification", "recomputed") + (", references unverified: " + meta["references_note"]
                                                    if meta.get("references") == "unverified" else "")
    out_console.print(escape(f"accepted ({how}): {stored}"), highlight=False)
    if build:
        boards.build(leaderboard)
        out_console.print(escape(f"{boards.placement(leaderboard, stored.name)}; boards rebuilt in {leaderboard}/"),
                          highlight=False)


leaderboard_app = typer.Typer(help="Render and show the leaderboard built from the submitted runs.", no_args_is_help=True)
app.add_typer(leaderboard_app, name="leaderboard")


@leaderboard_app.command("build")
def leaderboard_build(
    leaderboard: Annotated[Path, typer.Option(help="The leaderboard folder.")] = Path("leaderboards"),
    check: Annotated[bool, typer.Option(help="Write nothing; exit 1 if the committed boards are out of date.")] = False,
) -> None:
    """Render README.md and index.html from the submissions (deterministic)."""
    from unlearnbench.leaderboard import boards

    if check:
        stale = boards.stale_files(leaderboard)
        if stale:
            _err.print("[bold red]out of date:[/] " + escape(f"{', '.join(stale)} in {leaderboard}/; run `unlearnbench "
                                                             "leaderboard build`."))
            raise typer.Exit(1)
        out_console.print(escape(f"{leaderboard}/ is up to date."))
        return
    files = boards.build(leaderboard)
    out_console.print(escape(f"wrote {', '.join(str(leaderboard / name) for name in files)}"), highlight=False)


@leaderboard_app.command("show")
def leaderboard_show(
    task: Annotated[Optional[str], typer.Option(help="Only this task.")] = None,
    leaderboard: Annotated[Path, typer.Option(help="The leaderboard folder.")] = Path("leaderboards"),
) -> None:
    """Print each task's ranking."""
    from unlearnbench.leaderboard import boards

    shown = boards.task_boards(boards.collect(leaderboard))
    if task is not None:
        known = sorted({b.name for b in shown})
        shown = [b for b in shown if b.task == task]
        if not shown:
            fail(f"No submissions for task {task!r} in {leaderboard}/. Tasks on the board: {', '.join(known) or '(none)'}.")
    if not shown:
        out_console.print(escape(f"No submissions in {leaderboard}/ yet; add one with `unlearnbench submit runs/<run_id>`."))
    for board in shown:
        out_console.print(boards.rich_table(board))
        if board.seeds is not None:
            from unlearnbench.leaderboard.seeds import rich_seed_table
            from unlearnbench.report.htmlpage import fmt, params_text

            out_console.print(rich_seed_table(board.seeds, board.name, fmt, params_text))


class Executor(str, Enum):
    local = "local"
    ray = "ray"


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="The sweep file (TOML): tasks, methods, params, seeds, ...")],
    out: Annotated[Path, typer.Option(help="Folder for run records.")] = Path("runs"),
    executor: Annotated[Executor, typer.Option(help="local (one job at a time, in this process) or ray.")] = Executor.local,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster to attach to (default: an embedded local Ray).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Ray: jobs side by side (default: cores / cores per job).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the jobs and which are finished; run nothing.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Run every job of a sweep (tasks x methods x params x seeds), each one `evaluate`; a re-run
    skips the jobs that succeeded."""
    from unlearnbench import sweep as sw

    if address is not None and executor is not Executor.ray:
        fail("--address attaches to a Ray cluster; add --executor ray.")
    try:
        sweep_spec = sw.load_spec(spec)
        if sweep_spec.select is not None:
            fail(f"{spec} has a [select] section: it is a tune file. Run it with `unlearnbench tune {spec}`.")
        jobs = sw.plan_jobs(sweep_spec, out)
        if dry_run:
            for job in jobs:
                out_console.print(f"{'finished' if sw.finished(job) else 'to run  '}  {job.run_id}  {escape(job.label)}",
                                  highlight=False)
            return
        runner = _executor(executor, address, workers, jobs[0].cpus if jobs else 1, quiet)
        state = sw.run_sweep(jobs, runner, display=sw.SweepDisplay(quiet))
    except UserError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        _err.print("[yellow]interrupted[/]: finished jobs keep their records; run the same command again to run "
                   "the rest.", highlight=False)
        raise typer.Exit(130)
    ran = state.done + state.failed
    out_console.print(f"{len(jobs)} jobs: ran {ran} ({state.done} succeeded, {state.failed} failed), "
                      f"skipped {state.skipped} already finished, in {sw.time.perf_counter() - state.t_start:.1f} s "
                      f"({runner.name} executor). Records in {out}/.", highlight=False)
    for run_id, reason in state.failures:
        out_console.print(f"failed: {run_id}: {escape(reason)}", highlight=False)
    if state.failed:
        raise typer.Exit(1)


def _executor(executor: "Executor", address: Optional[str], workers: Optional[int], cpus: int, quiet: bool):
    from unlearnbench import sweep as sw

    if address is not None and executor is not Executor.ray:
        fail("--address attaches to a Ray cluster; add --executor ray.")
    if executor is Executor.ray:
        from unlearnbench.sweep_ray import RayExecutor

        return RayExecutor(address, workers, cpus, log=(lambda m: None) if quiet else (lambda m: _err.print(m, highlight=False)))
    return sw.LocalExecutor()


@app.command()
def tune(
    spec: Annotated[Path, typer.Argument(help="A tune file: a sweep file with a \\[select] section (budget, seeds).")],
    out: Annotated[Path, typer.Option(help="Folder for run records and tune.json.")] = Path("runs"),
    executor: Annotated[Executor, typer.Option(help="local (one job at a time, in this process) or ray.")] = Executor.local,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster to attach to (default: an embedded local Ray).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Ray: jobs side by side (default: cores / cores per job).")] = None,
    quiet: Annotated[bool, typer.Option(help="No progress display.")] = False,
) -> None:
    """Fair selection: per method, choose hyperparameters on the task's validation split (the same
    budget for every method, by the family's ranking), then re-run the chosen point (and the
    defaults) on the test split with several seeds."""
    from unlearnbench import sweep as sw
    from unlearnbench import tune as tn

    try:
        tune_spec = sw.load_spec(spec)
        jobs = tn.validation_jobs(tune_spec, out)
        runner = _executor(executor, address, workers, jobs[0].cpus if jobs else 1, quiet)
        summary = tn.tune(tune_spec, out, runner, display=sw.SweepDisplay(quiet))
    except UserError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        _err.print("[yellow]interrupted[/]: finished jobs keep their records; run the same command again to run "
                   "the rest.", highlight=False)
        raise typer.Exit(130)
    for table in tn.rich_tables(summary):
        out_console.print(table)
    failed = summary["jobs"]["failed"]
    out_console.print(f"{summary['jobs']['validation']} validation and {summary['jobs']['test']} test jobs "
                      f"({len(failed)} failed). Summary in {out / tn.SUMMARY_FILE}.", highlight=False)
    for run_id, reason in failed:
        out_console.print(f"failed: {run_id}: {escape(reason)}", highlight=False)
    if failed:
        raise typer.Exit(1)


def _terminate(signum, frame) -> None:
    # `kill`, a job scheduler's time limit or a closed terminal: handled like Ctrl-C, so the
    # run's record is rewritten as 'interrupted' instead of being left at 'running', and
    # recorded as the signal it was
    raise Terminated(signal.Signals(signum).name)


def _family_commands() -> None:
    """Add the commands task families declare (``Family.commands``: "module:function")."""
    import importlib

    from unlearnbench import registry

    for entry in registry.entries("family").values():
        for path in entry.obj.commands:
            module, _, function = path.partition(":")
            fn = getattr(importlib.import_module(module), function)
            app.command(function.replace("_", "-"))(fn)


_family_commands()


def main() -> None:
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _terminate)
    app()


if __name__ == "__main__":
    main()
