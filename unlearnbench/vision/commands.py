"""Commands the classifier family adds to ``unlearnbench`` (imported when the CLI starts:
nothing heavy at the top)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


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
    from rich.markup import escape

    from unlearnbench import registry
    from unlearnbench.cli.app import fail, out_console
    from unlearnbench.errors import UserError
    from unlearnbench.runner import RunSpec, load_task
    from unlearnbench.vision import forgetsets
    from unlearnbench.vision.classifier import write_forget_indices

    try:
        if registry.get("task", task).info.get("kind") != "classifier":
            raise UserError(f"Forget-set selection is for classifier tasks; {task!r} is not one.")
        loaded = load_task(RunSpec(task=task, quiet=quiet))
        target = loaded.load_target()
        indices, info = forgetsets.select(strategy, model=target.model, x=loaded.x_train, y=loaded.y_train,
                                          size_fraction=size / 100.0, seed=seed, forget_class=forget_class, quiet=quiet)
        write_forget_indices(out, indices, task=task, strategy=strategy, size=size, cost_s=info.get("wall_seconds"),
                             data=loaded.extra.get("data"))
    except UserError as exc:
        fail(str(exc))
    cost = ", ".join(f"{k} {v}" for k, v in info.items() if k in ("wall_seconds", "outer_steps", "forward_examples",
                                                                      "backward_examples") and v is not None)
    out_console.print(escape(f"{len(indices)} of {len(loaded.y_train)} training rows ({strategy}) -> {out}"
                             + (f"  [{cost}]" if cost else "")), highlight=False)
