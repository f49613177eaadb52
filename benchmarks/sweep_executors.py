"""The two executors on one 27-job sweep: identical records, and a kill half-way that a re-run
finishes (issue 17, done-when 1).

    python benchmarks/sweep_executors.py [--task tofu-synth/forget01] [--workers 2] [--out DIR]

The sweep: ga, npo and simnpo x 3 learning rates x 3 seeds (27 jobs, default lenses). First
in-process (``unlearnbench sweep``, a subprocess): it is killed (SIGTERM, as a scheduler's time
limit) once about half the jobs have succeeded, then run again, which must run only the jobs
that had not succeeded and skip the others. Then on an embedded Ray with ``--workers`` workers,
in a fresh folder. Every record is compared between the two: status, task, method, seed,
metrics (the unlearning time ``rte`` left out), intervals, references and per-example scores
(times left out) must be equal. Prints the times and the counts; exits 1 when anything differs.
Not a test: its wall-clock figures mean something only on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """\
tasks = ["{task}"]
methods = ["ga", "npo", "simnpo"]
seeds = [0, 1, 2]
device = "cpu"
[params."*"]
lr = [1e-4, 3e-4, 1e-3]
"""


def _succeeded(out: Path) -> set[str]:
    done = set()
    for p in out.glob("*/record.json"):
        try:
            if json.loads(p.read_text()).get("status") == "succeeded":
                done.add(p.parent.name)
        except (OSError, ValueError):
            pass  # being written
    return done


def _comparable(run_dir: Path):
    record = json.loads((run_dir / "record.json").read_text())
    kept = {k: record.get(k) for k in ("run_id", "status", "task", "method", "model", "seed", "ci", "reference",
                                       "lenses", "steps")}
    kept["metrics"] = {k: v for k, v in record["metrics"].items() if k != "rte"}  # seconds of unlearning
    return kept, _without_times(json.loads((run_dir / "per_example.json").read_text()))


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k not in ("rte", "rte_s")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _sweep(spec: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "unlearnbench", "sweep", str(spec), "--out", str(out), "--quiet",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="tofu-synth/forget01")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    os.environ.setdefault("UNLEARNBENCH_QUIET", "1")
    root = Path(args.out or tempfile.mkdtemp(prefix="unlearnbench-sweep-executors-"))
    root.mkdir(parents=True, exist_ok=True)
    spec = root / "sweep.toml"
    spec.write_text(SPEC.format(task=args.task))
    local, ray = root / "local", root / "ray"
    from unlearnbench.runner import prepare

    t = time.perf_counter()
    prepare(args.task, device="cpu", quiet=True)
    print(f"world and references ready in {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    proc = _sweep(spec, local)
    while len(_succeeded(local)) < 13 and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    first = time.perf_counter() - t
    before = _succeeded(local)
    print(f"in-process: killed after {first:.1f} s (exit {proc.returncode}) with {len(before)} of 27 succeeded")
    t = time.perf_counter()
    proc = _sweep(spec, local)
    output, err = proc.communicate()
    second = time.perf_counter() - t
    print(f"in-process re-run: {output.strip()} [{second:.1f} s]")
    ran = re.search(r"ran (\d+) \((\d+) succeeded, (\d+) failed\), skipped (\d+)", output)
    resumed = bool(ran) and int(ran.group(4)) == len(before) and int(ran.group(1)) == 27 - len(before)
    print(f"re-run ran only the missing jobs: {resumed}")

    t = time.perf_counter()
    proc = _sweep(spec, ray, "--executor", "ray", "--workers", str(args.workers))
    output, err = proc.communicate()
    print(f"ray ({args.workers} workers): {output.strip()} [{time.perf_counter() - t:.1f} s]")
    if proc.returncode != 0:
        print(err[-3000:])

    ids = sorted(p.parent.name for p in local.glob("*/record.json"))
    differ = [i for i in ids if not (ray / i / "record.json").exists() or _comparable(local / i) != _comparable(ray / i)]
    print(f"records compared: {len(ids)}; identical (metrics and per-example scores): {len(ids) - len(differ)}; "
          f"differ: {differ or 'none'}")
    sys.exit(0 if resumed and not differ and len(ids) == 27 else 1)


if __name__ == "__main__":
    main()
