"""Every diffusion method on digits-diffusion/class-<k>: the generation table and its times.

    python benchmarks/diffusion_digits.py [--forget-class 3] [--methods original,retrain,...] [--fresh]
    python benchmarks/diffusion_digits.py --param sfd:steps=2000 --param salun:lr=3e-4

It first prints what each part of the world cost (target, oracle, judge, the original's and
oracle's reference samples: trained here, or found in ``UNLEARNBENCH_CACHE``; ``--fresh``
builds them in an empty temporary cache); then each method runs once
(the world cached) and one line per method gives UA, the kept classes' judge accuracy,
Fréchet distance, precision / recall, the unlearning time (rte), the sampling time of the
method's model and the run's wall time, with the original's and the oracle's rows.
``retrain`` reads the cached oracle (its training cost is the oracle's line of the build;
``--param retrain:fresh=true`` trains one). ``--param method:key=value`` overrides a method's
hyperparameter. Not a test: wall-clock numbers only mean something on a quiet machine (run it
under the shared lock).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

METHODS = ("original", "retrain", "ft", "rl", "salun", "esd", "sfd")
COLUMNS = ("ua", "kept_accuracy", "avg_gap", "kept_fd", "kept_precision", "kept_recall", "rte", "sampling_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--forget-class", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="build the world in an empty cache first")
    parser.add_argument("--param", action="append", default=[], help="method:key=value")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.fresh:
        os.environ["UNLEARNBENCH_CACHE"] = tempfile.mkdtemp(prefix="unlearnbench-bench-")
    os.environ.setdefault("UNLEARNBENCH_QUIET", "1")
    from unlearnbench.runner import RunSpec, load_task, prepare, run

    task = f"digits-diffusion/class-{args.forget_class}"
    built = load_task(RunSpec(task=task, method="original", device=args.device, quiet=True))
    total = 0.0
    for part, load in (("target", built.load_target), ("oracle", built.load_oracle), ("judge", built.load_judge)):
        t = time.perf_counter()
        load()
        total += time.perf_counter() - t
        print(f"== the {part}, trained or found cached: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    prepared = prepare(task, device=args.device, quiet=True)
    seconds = time.perf_counter() - t
    print(f"== the original's and oracle's reference samples, scored or found cached: {seconds:.1f} s")
    print(f"== world of {task} (target, oracle, judge, references): {total + seconds:.1f} s")
    params: dict[str, dict[str, str]] = {}
    for item in args.param:
        method, _, kv = item.partition(":")
        key, _, value = kv.partition("=")
        params.setdefault(method, {})[key] = value
    out = tempfile.mkdtemp(prefix="unlearnbench-bench-runs-")
    print(f"{'model':<10}" + "".join(f"{c:>15}" for c in COLUMNS) + f"{'wall_s':>10}")
    for which in ("original", "oracle"):
        row = prepared[which]
        print(f"{which:<10}" + "".join(f"{row.get(c, float('nan')):>15.2f}" for c in COLUMNS))
    for method in filter(None, args.methods.split(",")):
        t = time.perf_counter()
        result = run(RunSpec(task=task, method=method, params=params.get(method, {}), seed=args.seed, out=out,
                             quiet=True, device=args.device))
        wall = time.perf_counter() - t
        m = result.record.metrics
        if result.record.status != "succeeded":
            print(f"{method:<10} {result.record.status}: {result.record.error}")
            continue
        print(f"{method:<10}" + "".join(f"{m.get(c, float('nan')):>15.2f}" for c in COLUMNS) + f"{wall:>10.1f}")
    print(f"runs in {out}")


if __name__ == "__main__":
    main()
