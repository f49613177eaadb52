"""The memory a submission's per_example.json takes to parse, against the estimate the validator
refuses it by before parsing (``unlearnbench.leaderboard.submissions.parse_cost``).

    python benchmarks/submission_memory.py [--mb 32]

One child process per shape of file (floats, small ints, empty objects, empty lists, short
strings), each ``--mb`` MB of JSON: prints the child's peak resident memory while
``json.loads`` parses it, the estimate, and whether the validator would parse it under its
budget (``MAX_PARSE_BYTES``). Not a test: peak memory depends on the Python build.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = r"""
import json, resource, sys
from unlearnbench.leaderboard.submissions import MAX_PARSE_BYTES, parse_cost
unit, mb = sys.argv[1], int(sys.argv[2])
raw = ('{"unlearned":{"x":[' + unit * ((mb << 20) // len(unit)) + '0]},"original":{},"oracle":{}}').encode()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
json.loads(raw.decode("utf-8"))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(raw) >> 20, base >> 10, peak >> 10, parse_cost(raw) >> 20, MAX_PARSE_BYTES >> 20)
"""
SHAPES = {"floats": "0.123456789012,", "small ints": "0,", "empty objects": "{},", "empty lists": "[],",
          "short strings": '"a",'}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=32, help="size of each file in MB")
    args = parser.parse_args()
    print(f"{'shape':14s} {'file MB':>8s} {'peak RSS MB':>12s} {'estimate MB':>12s}  parsed under the budget?")
    for name, unit in SHAPES.items():
        out = subprocess.run([sys.executable, "-c", CHILD, unit, str(args.mb)], capture_output=True, text=True,
                             check=True).stdout.split()
        size, _, peak, estimate, budget = map(int, out)
        verdict = "yes" if estimate <= budget else f"no (refused: over {budget} MB)"
        print(f"{name:14s} {size:8d} {peak:12d} {estimate:12d}  {verdict}")


if __name__ == "__main__":
    main()
