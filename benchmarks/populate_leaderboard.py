"""Populate ``leaderboards/`` with real runs of the synthetic tasks, so a newcomer sees a filled board.

    python benchmarks/populate_leaderboard.py                       # every synthetic task x every method
    python benchmarks/populate_leaderboard.py --tasks tofu-synth/forget10 --methods original,npo
    python benchmarks/populate_leaderboard.py --dry-run             # list what would run

Runs ``original``, ``retrain`` and every registered method at its defaults, seed 0, on every
registered ``*-synth/*`` task and the offline classifier / regression tasks in
:data:`OFFLINE_TASKS` (standard mode; each task gets the methods of its kind), into ``--runs`` (default ``runs/``), each
keeping its unlearned weights (``--save-model``); then submits each succeeded run through the
same validation as ``unlearnbench submit --verify`` (the weights scored again: the entry is
marked verified) and rebuilds the boards. All runs come first and all submissions after, so that writing to the (tracked) board
never makes the harness look dirty to a run still to come: commit your code, then run this on a
clean tree, then commit ``leaderboards/``. A run already in ``--runs`` (same task, method, seed,
defaults, succeeded, same git revision, weights saved) is reused, and one already on the board is skipped, so
an interrupted population resumes. CPU-heavy: expect minutes per run on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


# Tasks built offline from bundled data (no hub), besides the synthetic language-model worlds
# (the diffusion world takes about 8 minutes to build on 2 cores).
OFFLINE_TASKS = ("digits/random-10", "digits/random-20", "digits/class-3", "diabetes/random-10", "diabetes/random-30",
                 "diabetes/range-200-350", "digits-diffusion/class-3")


def _kind(task: str) -> str:
    from unlearnbench import registry

    return registry.get("task", task).info.get("kind", "language_model")


def _defaults(method: str, task: str) -> dict:
    from dataclasses import asdict

    from unlearnbench import registry

    kind = _kind(task)
    return asdict(registry.method(method, kind).obj.params_class(kind)())


def _existing_run(runs: Path, task: str, method: str, seed: int, git_sha: str | None) -> Path | None:
    for record_path in sorted(runs.glob("*/record.json")):
        try:
            r = json.loads(record_path.read_text())
        except ValueError:
            continue
        if (r.get("status") == "succeeded" and r["task"]["name"] == task and r["method"]["name"] == method
                and r.get("seed") == seed and r.get("mode", "standard") == "standard"
                and r["method"].get("params") == _defaults(method, task)
                and r.get("provenance", {}).get("git_sha") == git_sha
                and (record_path.parent / "model").is_dir()):  # --verify re-scores the saved weights
            return record_path.parent
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", help="comma-separated task names (default: every registered *-synth/* task)")
    parser.add_argument("--methods", help="comma-separated method names (default: every registered method)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="where the runs are written")
    parser.add_argument("--leaderboard", type=Path, default=Path("leaderboards"))
    parser.add_argument("--allow-dirty", action="store_true", help="submit runs made from a dirty tree (marked)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    args = parser.parse_args()
    os.environ.setdefault("UNLEARNBENCH_QUIET", "1")

    from unlearnbench import registry
    from unlearnbench.leaderboard import boards
    from unlearnbench.errors import UserError
    from unlearnbench.leaderboard.submissions import SubmissionError, stored_runs, submit, task_folder
    from unlearnbench.records import _git_state
    from unlearnbench.runner import RunSpec, run

    known_tasks = registry.entries("task")
    tasks = args.tasks.split(",") if args.tasks else [t for t in known_tasks
                                                       if "-synth/" in t or t in OFFLINE_TASKS]
    # every method that unlearns (external only scores a model made elsewhere: it needs --unlearned)
    methods = args.methods.split(",") if args.methods else [
        name for name, entry in registry.entries("method").items() if not entry.obj.loads_model]
    for name in tasks:
        registry.get("task", name)
    for name in methods:
        registry.get("method", name)
    git = _git_state()
    if git["git_dirty"] and not args.allow_dirty:
        print("note: the working tree has uncommitted changes; submissions will be refused unless you commit "
              "first or pass --allow-dirty.", file=sys.stderr)
    plan = [(t, m) for t in tasks for m in methods
            if _kind(t) in registry.method_kinds(m)]
    print(f"{len(plan)} runs: {len(tasks)} task(s) x the method(s) of their kind, seed {args.seed}")
    if args.dry_run:
        for t, m in plan:
            print(f"  {t}  {m}")
        return 0

    done: list[tuple[str, str, Path]] = []
    failed: list[str] = []
    for i, (task, method) in enumerate(plan, start=1):
        on_board = {p.name for p in stored_runs(args.leaderboard / task_folder(task))}
        existing = _existing_run(args.runs, task, method, args.seed, git["git_sha"])
        if existing is not None:
            print(f"[{i}/{len(plan)}] {task} {method}: reusing {existing}")
            done.append((task, method, existing))
            continue
        t = time.perf_counter()
        try:
            result = run(RunSpec(task=task, method=method, seed=args.seed, out=args.runs, quiet=True, save_model=True))
        except UserError as exc:
            failed.append(f"{task} {method}: {exc}")
            print(f"[{i}/{len(plan)}] {task} {method}: refused ({exc})")
            continue
        status = result.record.status
        print(f"[{i}/{len(plan)}] {task} {method}: {status} in {time.perf_counter() - t:.0f} s"
              + (" (already on the board)" if result.record.run_id in on_board else ""))
        if status == "succeeded":
            done.append((task, method, result.run_dir))
        else:
            failed.append(f"{task} {method}: {result.record.error}")

    accepted = 0
    for task, method, run_dir in done:
        if run_dir.name in {p.name for p in stored_runs(args.leaderboard / task_folder(task))}:
            continue
        try:
            submit(run_dir, board=args.leaderboard, allow_dirty=args.allow_dirty, verify=True)
            accepted += 1
        except SubmissionError as exc:
            failed.append(f"{task} {method}: submission refused: {exc}")
    boards.build(args.leaderboard)
    print(f"accepted {accepted} new submission(s); boards rebuilt in {args.leaderboard}/")
    for line in failed:
        print(f"  not on the board: {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
