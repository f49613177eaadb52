"""Which tasks separate forgetting from noise: retrain over seeds against the original target.

    python benchmarks/signal_check.py [--tasks digits/random-10,...] [--seeds 0,1,2] [--out DIR]

Runs ``retrain`` with each seed on each task (a sweep, in-process; a re-run with the same
``--out`` skips finished runs) and prints, per task, the board's signal check
(:func:`unlearnbench.leaderboard.seeds.signal_check`): on the ranking's forgetting criterion,
does the original target lie within retrain's seed spread ("no signal") or outside it?
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

OFFLINE = ("digits/random-10", "digits/class-3", "diabetes/random-10", "diabetes/range-200-350",
           "tofu-synth/forget01", "tofu-synth/forget05", "tofu-synth/forget10", "muse-synth/news")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(OFFLINE))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default=None, help="records folder (default: a fresh temporary one)")
    args = parser.parse_args()
    os.environ.setdefault("UNLEARNBENCH_QUIET", "1")
    from unlearnbench.leaderboard.ranking import ranking_for, suite_rows
    from unlearnbench.leaderboard.seeds import signal_check
    from unlearnbench.records import load_record
    from unlearnbench.sweep import LocalExecutor, parse_spec, plan_jobs, run_sweep

    out = Path(args.out or tempfile.mkdtemp(prefix="unlearnbench-signal-"))
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"| task | fingerprint | criterion | original | retrain (mean ± std over {len(seeds)} seeds) | "
          "retrain range | verdict |")
    print("|---|---|---|---:|---:|---:|---|")
    for task in args.tasks.split(","):
        spec = parse_spec({"tasks": [task], "methods": ["retrain"], "seeds": seeds, "device": "cpu"})
        jobs = plan_jobs(spec, out)
        state = run_sweep(jobs, LocalExecutor())
        records = [load_record(j.record_path) for j in jobs]
        records = [r for r in records if r.get("status") == "succeeded"]
        if state.failed or not records:
            print(f"| {task} | - | - | - | - | - | failed: {state.failures} |")
            continue
        suite = records[0]["task"]["suite"]
        ranking = ranking_for(suite, suite_rows(suite), {m for r in records for m in r["metrics"]})
        s = signal_check(records, ranking)
        if s is None:
            print(f"| {task} | {records[0]['task']['fingerprint']} | - | - | - | - | no check |")
            continue
        low, high = s.retrain_range
        print(f"| {task} | {records[0]['task']['fingerprint']} | {s.criterion} | {s.original:.4g} | "
              f"{s.retrain.mean:.4g} ± {s.retrain.std:.2g} | {low:.4g} to {high:.4g} | "
              f"{'**no signal**' if s.no_signal else 'signal'} |", flush=True)


if __name__ == "__main__":
    main()
