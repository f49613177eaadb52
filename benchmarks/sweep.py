"""Jobs per minute of a 24-job digits sweep: in-process, and on an embedded Ray with 1 and 2
workers; and Ray's overhead per job against in-process.

    python benchmarks/sweep.py [--workers 1,2] [--seeds 4]

The sweep is ft, rl and ga x two learning rates x 4 seeds on ``digits/random-10`` (24 jobs;
the behaviour and utility lenses). The world is built (and its references scored) before any
timing, as ``unlearnbench sweep`` does before fanning out. Each configuration writes to a fresh
folder, so every job runs. Ray's figures include starting the embedded Ray (reported apart
too). Overhead per job = (Ray with 1 worker, seconds per job) - (in-process, seconds per job):
what a job pays for being a Ray task (the process hop, the task's pickling, the worker's first
imports), start-up included. Not a test: wall-clock numbers only mean something on a quiet
machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,2", help="comma-separated Ray worker counts")
    parser.add_argument("--seeds", type=int, default=4, help="seeds per (method, lr): 4 gives 24 jobs")
    parser.add_argument("--task", default="digits/random-10")
    args = parser.parse_args()
    os.environ.setdefault("UNLEARNBENCH_QUIET", "1")
    from unlearnbench.sweep import LocalExecutor, parse_spec, plan_jobs, prepare_worlds, run_sweep
    from unlearnbench.sweep_ray import RayExecutor

    spec = parse_spec({"tasks": [args.task], "methods": ["ft", "rl", "ga"], "seeds": list(range(args.seeds)),
                       "params": {"ft": {"lr": [0.005, 0.01]}, "rl": {"lr": [0.005, 0.01]}, "ga": {"lr": [0.01, 0.02]}},
                       "lenses": ["behavior", "utility"]})
    root = Path(tempfile.mkdtemp(prefix="unlearnbench-bench-sweep-"))
    t = time.perf_counter()
    prepare_worlds(plan_jobs(spec, root / "prepare"))
    print(f"world ready in {time.perf_counter() - t:.1f} s; {os.cpu_count()} cores")

    rows = []

    def measure(label: str, executor, start_s: float = 0.0) -> float:
        """Seconds per job, Ray's start-up (``start_s``) included."""
        jobs = plan_jobs(spec, root / label.replace(" ", "-"))
        t = time.perf_counter()
        state = run_sweep(jobs, executor)
        seconds = time.perf_counter() - t + start_s
        assert state.done == len(jobs), state.failures
        rows.append((label, len(jobs), seconds, 60 * len(jobs) / seconds, seconds / len(jobs), start_s))
        return seconds / len(jobs)

    local = measure("in-process", LocalExecutor())
    ray_s = {}
    for workers in (int(w) for w in args.workers.split(",")):
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray_s[workers] = measure(f"ray {workers} worker{'s' if workers > 1 else ''}", RayExecutor(workers=workers),
                                 start_s=time.perf_counter() - t)
        ray.shutdown()
    print(f"\n{'executor':<16}{'jobs':>6}{'wall s':>10}{'jobs/min':>10}{'s/job':>8}{'ray start s':>13}")
    for label, n, seconds, per_min, per_job, start_s in rows:
        print(f"{label:<16}{n:>6}{seconds:>10.1f}{per_min:>10.2f}{per_job:>8.2f}{start_s:>13.1f}")
    if 1 in ray_s:
        start_s = next(r[5] for r in rows if r[0] == "ray 1 worker")
        n = rows[0][1]
        print(f"\nRay overhead per job (1 worker vs in-process): {ray_s[1] - local:+.2f} s "
              f"({ray_s[1] - start_s / n - local:+.2f} s without starting Ray)")

if __name__ == "__main__":
    main()
