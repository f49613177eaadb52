"""Stage times of the default evaluation and the scoring engine's token ratio.

    python benchmarks/default_run.py [--task T] [--method M] [--fresh]
    python benchmarks/default_run.py --task muse-synth/news
    python benchmarks/default_run.py --lens parametric,robustness   # the model lenses' cost

``--fresh`` builds the world in an empty cache first (what a new machine pays); without it
the user cache is used. Prints the stage times of a cold and a cached run, and the ratio of
tokens forwarded through the model to the distinct tokens the task's suite needs (goal 1.0:
no padding, nothing scored twice), overall and by kind of work. GradNorm's backward passes
(and the engine's one-row check of the output head) are listed on their own, outside the
ratio. With ``--lens``, the record's per-lens stages (``parametric_s``, ``robustness_s``)
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
    args = parser.parse_args()
    if args.fresh:
        os.environ["UNLEARNBENCH_CACHE"] = tempfile.mkdtemp(prefix="unlearnbench-bench-")
    os.environ.setdefault("UNLEARNBENCH_QUIET", "1")
    from unlearnbench.runner import RunSpec, run

    out = tempfile.mkdtemp(prefix="unlearnbench-bench-runs-")
    for label in ("first run" + (" (fresh cache)" if args.fresh else ""), "second run (cached)"):
        t = time.perf_counter()
        result = run(RunSpec(task=args.task, method=args.method, out=out, quiet=True, lenses=tuple(args.lens.split(","))))
        wall = time.perf_counter() - t
        print(f"== {label}: {wall:.1f} s wall, status {result.record.status}")
        for stage, seconds in result.record.timing.items():
            print(f"   {stage:<22}{seconds:8.2f} s")
        for model, counts in result.token_counts.items():
            ratio = counts["forwarded"] / counts["unique"] if counts["unique"] else float("nan")
            kinds = ", ".join(f"{k} {f}/{u}" for k, (f, u) in counts["by_kind"].items())
            kinds += "  (gradnorm, head_check and hidden_states are outside the ratio)" if "gradnorm" in counts["by_kind"] else ""
            print(f"   tokens ({model}): forwarded {counts['forwarded']} / unique {counts['unique']} = {ratio:.3f}  [{kinds}]")


if __name__ == "__main__":
    main()
