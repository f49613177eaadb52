"""What a deletion costs S3T and SISA on a classifier task: adapters deactivated / retrained, slices
retrained, seconds.

    python benchmarks/deletions.py [--task digits/random-10] [--requests 1,5,20] [--repeats 3] [--fresh]
                                   [--param-s3t key=value ...] [--param-sisa key=value ...]

Both methods at their defaults (S3T: 4 shards x 4 slices, 4 slice orders, LoRA rank 8; SISA:
4 shards x 4 slices) on the task's full training set. Their checkpoints are trained first (the
one-off cost, printed apart; ``--fresh`` trains them in an empty cache so that it is measured);
then for each number of deletion requests ``k``, ``k`` training
rows drawn at random (``--repeats`` draws, means shown) are deleted at once through each
method's ``unlearn``, and the table shows what that cost: S3T's adapters deactivated,
retrained and still active (of shards x slices), SISA's slices retrained, the wall seconds
of each (serving the deletion and assembling the model) and the test accuracy of the model
served (what S3T's deactivated adapters cost).

A second table follows requests arriving one at a time: how many are served before the first
retraining (S3T: until some shard's best order keeps no adapter; SISA retrains on every
request), from the bookkeeping alone, over 200 random request sequences. Not a test:
wall-clock numbers only mean something on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _params(pairs):
    return dict(pair.split("=", 1) for pair in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="digits/random-10")
    parser.add_argument("--requests", default="1,5,20")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--param-s3t", nargs="*", default=[])
    parser.add_argument("--param-sisa", nargs="*", default=[])
    parser.add_argument("--fresh", action="store_true", help="train the task's models and the checkpoints anew")
    args = parser.parse_args()
    if args.fresh:
        import tempfile

        os.environ["UNLEARNBENCH_CACHE"] = tempfile.mkdtemp(prefix="unlearnbench-deletions-")
    os.environ.setdefault("UNLEARNBENCH_QUIET", "1")
    import torch

    from unlearnbench import registry
    from unlearnbench.family import get_family
    from unlearnbench.method import ClassifierData, RunContext, parse_params
    from unlearnbench.runner import RunSpec, load_task
    from unlearnbench.sliced import cyclic_orders, partition, plan_deletion
    from unlearnbench.vision.classifier import predict_proba

    task = load_task(RunSpec(task=args.task, method="original", quiet=True))
    full = get_family("classifier").method_data(task, "forget", None)
    n = len(full.y_train)
    methods = {name: registry.method(name, "classifier").obj() for name in ("s3t", "sisa")}
    params = {name: parse_params(m.Params, _params(getattr(args, f"param_{name}"))) for name, m in methods.items()}

    def delete(name, rows):
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        keep = np.setdiff1d(np.arange(n), rows)
        data = ClassifierData(full.x_train[rows], full.y_train[rows], full.x_train[keep], full.y_train[keep],
                              full.num_classes, full.model_config, full.train_config, x_train=full.x_train,
                              y_train=full.y_train, forget_indices=rows)
        ctx = RunContext(seed=args.seed, device=torch.device("cpu"), quiet=True)
        start = time.perf_counter()
        model = methods[name].unlearn(None, data, params[name], ctx)
        seconds = time.perf_counter() - start
        accuracy = float((predict_proba(model, task.x_test).argmax(1) == task.y_test).mean())
        return {**ctx.info, "test_accuracy": 100 * accuracy}, seconds

    print(f"task {args.task}: {n} training rows; s3t {params['s3t']}; sisa {params['sisa']}")
    for name in methods:
        info, seconds = delete(name, [])
        print(f"  {name} with nothing deleted: test accuracy {info['test_accuracy']:.2f}")
        what = f"{info['adapters_trained']} adapters" if name == "s3t" else f"{info['total_slices']} slice checkpoints"
        print(f"  {name}: {what} " + (f"trained in {seconds:.1f} s" if info["checkpoints"] == "built" else
                                      "reused from the cache (--fresh measures their training)"))

    rng = np.random.default_rng([args.seed, 0xDE1])
    header = (f"{'requests':>8} | {'s3t deactivated':>15} {'s3t retrained':>13} {'s3t active':>10} {'s3t s':>7} "
              f"{'test acc':>8} | {'sisa slices retrained':>21} {'sisa s':>7} {'test acc':>8}")
    print("\nbatch deletions (mean of %d random draws)\n" % args.repeats + header + "\n" + "-" * len(header))
    for k in (int(v) for v in args.requests.split(",")):
        rows = [rng.choice(n, k, replace=False) for _ in range(args.repeats)]
        s3t = [delete("s3t", r) for r in rows]
        sisa = [delete("sisa", r) for r in rows]
        total = s3t[0][0]["adapters_per_model"]
        mean = lambda runs, key: float(np.mean([info[key] for info, _ in runs]))  # noqa: E731
        seconds = lambda runs: float(np.mean([s for _, s in runs]))  # noqa: E731
        print(f"{k:>8} | {mean(s3t, 'deactivated_adapters'):>15.1f} {mean(s3t, 'retrained_adapters'):>13.1f} "
              f"{mean(s3t, 'active_adapters'):>6.1f}/{total:<3} {seconds(s3t):>7.2f} {mean(s3t, 'test_accuracy'):>8.2f} | "
              f"{mean(sisa, 'retrained_slices'):>15.1f}/{sisa[0][0]['total_slices']:<5} {seconds(sisa):>7.2f} "
              f"{mean(sisa, 'test_accuracy'):>8.2f}")

    p = params["s3t"]
    layout = partition(n, p.shards, p.slices, args.seed)
    served = []
    for _ in range(200):
        sequence = rng.permutation(n)
        for count in range(1, n + 1):
            plans = plan_deletion(layout, cyclic_orders(p.slices, p.orders), sequence[:count], min_active=1)
            if any(plan.retrain for plan in plans):
                break
        served.append(count - 1)
    print(f"\nrequests one at a time (200 random sequences): s3t serves {np.mean(served):.1f} on average "
          f"(min {min(served)}, max {max(served)}) before its first retraining; sisa retrains on every request")


if __name__ == "__main__":
    main()
