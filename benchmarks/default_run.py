"""Stage times of the default evaluation and the scoring engine's token ratio.

    python benchmarks/default_run.py [--task T] [--method M] [--fresh]
    python benchmarks/default_run.py --task muse-synth/news
    python benchmarks/default_run.py --lens parametric,robustness   # the model lenses' cost

``--fresh`` builds the world in an empty cache first (what a new machine pays); without it
the user cache is used. Prints the stage times of a cold and a cached run and, for every
model scored, the wall time, forward calls, tokens forwarded and the padding share of each
kind of work (teacher forcing, generation, GradNorm). ``--score-padding 0`` batches equal
lengths only (no padding: the engine before length buckets), for before/after figures. With ``--lens``, the record's per-lens stages (``parametric_s``, ``robustness_s``)
show what each lens costs; the second run reuses their cached reference scores. Not a test: wall-clock numbers only mean something on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="tofu-synth/forget10")
    parser.add_argument("--method", default="npo")
    parser.add_argument("--fresh", action="store_true", help="build everything in an empty cache first")
    parser.add_argument("--lens", default="behavior,privacy,utility", help="comma-separated lenses to run")
    parser.add_argument("--score-padding", type=float, default=None, help="largest padding share of a scoring batch")
    args = parser.parse_args()
    if args.fresh:
        os.environ["UNLEARNBENCH_CACHE"] = tempfile.mkdtemp(prefix="unlearnbench-bench-")
    os.environ.setdefault("UNLEARNBENCH_QUIET", "1")
    from unlearnbench.runner import RunSpec, run

    out = tempfile.mkdtemp(prefix="unlearnbench-bench-runs-")
    for label in ("first run" + (" (fresh cache)" if args.fresh else ""), "second run (cached)"):
        t = time.perf_counter()
        options = {} if args.score_padding is None else {"score_padding": args.score_padding}
        result = run(RunSpec(task=args.task, method=args.method, out=out, quiet=True, lenses=tuple(args.lens.split(",")),
                             options=options))
        wall = time.perf_counter() - t
        print(f"== {label}: {wall:.1f} s wall, status {result.record.status}")
        for stage, seconds in result.record.timing.items():
            print(f"   {stage:<22}{seconds:8.2f} s")
        for model, counts in result.token_counts.items():
            print(f"   {model}:")
            for kind, (forwarded, unique) in counts["by_kind"].items():
                padding = 1 - unique / forwarded if forwarded else 0.0
                print(f"     {kind:<15}{counts['seconds'].get(kind, 0.0):8.2f} s  {counts['calls'].get(kind, 0):6d} calls  "
                      f"{forwarded:8d} tokens forwarded, {padding:6.1%} padding")


if __name__ == "__main__":
    main()
