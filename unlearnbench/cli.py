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


ARROWS = {"higher": "↑", "lower": "↓", "info": "", "oracle": "≈oracle"}


def result_table(result) -> Table:
    record = result.record
    table = Table(title=f"{record.task['name']} · {record.method['name']} · seed {record.seed}")
    table.add_column("metric", no_wrap=True)
    for col, justify in ( ("dir", "center"), ("unlearned", "right"), ("original", "right"),
                         ("oracle", "right"), ("95% CI", "right")):
        table.add_column(col, justify=justify)
    original, oracle = record.reference.get("original", {}), record.reference.get("oracle", {})
    lens = None
    for row in result.rows:
        if row.name not in record.metrics:
            continue
        if row.lens != lens:
            if lens is not None:
                table.add_section()
            lens = row.lens
        ci = record.ci.get(row.name)
        table.add_row(f"{row.name}", ARROWS.get(row.direction, row.direction), _fmt(record.metrics[row.name]),
                      _fmt(original.get(row.name)), _fmt(oracle.get(row.name)),
                      f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
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
) -> None:
    """Apply a method to a task's target model and score it against the oracle."""
    from unlearnbench.runner import RunSpec, run

    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        _fail(f"--device {device!r}: use auto, cpu or cuda.")
    spec = RunSpec(task=task, method=method, params=_parse_params(param), seed=seed, model=model, oracle=oracle,
                   data_dir=str(data_dir) if data_dir else None, device=device, out=out,
                   metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()) if metrics else (), quiet=quiet)
    try:
        result = run(spec)
    except UserError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _err.print("[yellow]interrupted[/]: the record is marked 'interrupted'.")
        raise typer.Exit(130)
    record = result.record
    if format is Format.json:
        print(json.dumps(record.to_json(), indent=2))
    else:
        if record.status == "succeeded":
            _out.print(result_table(result))
        if not quiet:
            _err.print(f"record: {result.run_dir / 'record.json'}", highlight=False)
    if record.status != "succeeded":
        _err.print(f"[bold red]run {record.status}:[/] {record.error}", highlight=False)
        raise typer.Exit(1)


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
        table.add_column("hyperparameters (defaults)")
    table.add_column("summary")
    for e in entries.values():
        cells = [e.name] + [str(e.info.get(k, "")) for k in extra]
        if kind is Kind.methods:
            from dataclasses import fields

            cells.append(", ".join(f"{f.name}={f.default}" for f in fields(e.obj.Params)))
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
