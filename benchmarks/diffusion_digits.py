"""Every diffusion method on digits-diffusion/class-<k>: the generation table and its times.

    python benchmarks/diffusion_digits.py [--forget-class 3] [--methods original,retrain,...] [--fresh]
    python benchmarks/diffusion_digits.py --param sfd:steps=2000 --param salun:lr=3e-4

``--fresh`` builds the world (target, oracle, judge) in an empty cache first and prints what
that cost; then each method runs once (the world cached) and one line per method gives UA,
the kept classes' judge accuracy, Fréchet distance, precision / recall, the unlearning time
(rte) and the sampling time of the method's model, with the original's and the oracle's
rows. ``--param method:key=value`` overrides a method's hyperparameter. Not a test:
wall-clock numbers only mean something on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

METHODS = ("original", "retrain", "ft", "rl", "salun", "esd", "sfd")
COLUMNS = ("ua", "kept_accuracy", "kept_fd", "kept_precision", "kept_recall", "rte", "sampling_s")


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
    from unlearnbench.runner import RunSpec, prepare, run

    task = f"digits-diffusion/class-{args.forget_class}"
    t = time.perf_counter()
    prepared = prepare(task, device=args.device, quiet=True)
    print(f"== world and references of {task}: {time.perf_counter() - t:.1f} s wall "
          f"(target, oracle and judge trained or found cached; the original's and oracle's samples scored)")
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
    for method in args.methods.split(","):
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
