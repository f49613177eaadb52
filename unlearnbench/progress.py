"""Progress bars on stderr (rich). Results go to stdout and files, never here."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

_stderr = Console(stderr=True)
HEARTBEAT_S = 30.0


def heartbeat(description: str, done: int, total: int, elapsed_s: float) -> str:
    """``description: 40/120 after 61 s, about 122 s left`` (the rate so far, extrapolated)."""
    left = f", about {elapsed_s * (total - done) / done:.0f} s left" if done else ""
    return f"{description}: {done}/{total} after {elapsed_s:.0f} s{left}"


def stderr_console() -> Console:
    return _stderr


def _quiet_default() -> bool:
    return os.environ.get("UNLEARNBENCH_QUIET", "") not in ("", "0")


@contextlib.contextmanager
def progress_bar(description: str, total: int, *, quiet: bool = False) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, **fields)``; a loss field, when given, is shown beside the bar."""
    if quiet or _quiet_default():
        yield lambda n=1, **fields: None
        return
    if not sys.stderr.isatty():
        # a log file gets one line per stage instead of redrawn bars, and a heartbeat with an
        # ETA every HEARTBEAT_S seconds on long stages (so a batch job's log shows it is alive)
        start, done, last = time.perf_counter(), [0], [time.perf_counter()]

        def count(n: int = 1, **fields) -> None:
            done[0] += n
            now = time.perf_counter()
            if now - last[0] >= HEARTBEAT_S and done[0] < total:
                last[0] = now
                _stderr.print(heartbeat(description, done[0], total, now - start), highlight=False)

        yield count
        _stderr.print(f"{description}: {done[0]}/{total} in {time.perf_counter() - start:.1f} s", highlight=False)
        return
    columns = [
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[extra]}"),
    ]
    with Progress(*columns, console=_stderr) as progress:
        task = progress.add_task(description, total=total, extra="")

        def advance(n: int = 1, **fields) -> None:
            extra = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
            progress.update(task, advance=n, extra=extra)

        yield advance
