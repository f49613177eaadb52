"""The Ray executor of sweeps (``unlearnbench sweep --executor ray``; ``pip install
'unlearnbench[ray]'``).

Without an address it starts an embedded local Ray with as many job slots as asked
(``--workers``, default: the machine's cores over the cores a job takes); with ``--address`` it
attaches to a running cluster. Every job is one Ray task that asks for the job's resources
(``num_cpus``, ``num_gpus``) and runs :func:`unlearnbench.sweep.run_job`, exactly what the
in-process executor runs. The worlds (data, target, oracle, reference scores) are built in the
driver before any task starts, so no two workers build the same world; the workers read them
from the shared cache (``UNLEARNBENCH_CACHE``, which the tasks are given; on a cluster it must
be a folder every node sees).
"""

from __future__ import annotations

import os
from typing import Callable

from unlearnbench.errors import UserError
from unlearnbench.sweep import Job, Outcome, prepare_worlds, run_job

FORWARDED_ENV = ("UNLEARNBENCH_CACHE", "UNLEARNBENCH_QUIET", "HF_HOME", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                 "TRANSFORMERS_OFFLINE")


def _ray():
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'unlearnbench[ray]' (or run with --executor local).") from None
    return ray


def _remote_job(job: Job, cwd: str) -> Outcome:
    """What a Ray worker runs: the job, from the driver's folder where this node has it (the
    job's relative paths, ``--out runs`` included, mean what they meant to the driver)."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return run_job(job)


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, cpus_per_job: int = 1,
                 log: Callable[[str], None] = lambda m: None):
        if workers is not None and workers < 1:
            raise UserError(f"--workers {workers}: at least 1.")
        self.address, self.cpus_per_job, self.log = address, cpus_per_job, log
        self._asked = workers
        # a cluster's slots are known once attached (see _init); locally, the cores
        self.workers = workers or max(1, (os.cpu_count() or 1) // cpus_per_job)
        self._started_ray = False

    def _init(self, ray) -> None:
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        kwargs = dict(log_to_driver=False, runtime_env={"env_vars": env} if env else None)
        if ray.is_initialized():
            return
        if self.address:
            ray.init(address=self.address, **kwargs)
            if self._asked is None:
                self.workers = max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_job))
        else:
            ray.init(num_cpus=self.workers * self.cpus_per_job, include_dashboard=False, configure_logging=False, **kwargs)
        self._started_ray = True

    def run(self, jobs: list[Job], started: Callable[[Job], None], done: Callable[[Job, Outcome], None]) -> None:
        if not jobs:
            return
        ray = _ray()
        prepare_worlds(jobs, self.log)  # before any worker starts: each world is built once, here
        self._init(ray)
        remote = ray.remote(_remote_job)
        pending, in_flight = list(jobs), {}
        try:
            while pending or in_flight:
                # no more in flight than there are slots: "running" means running, and the
                # jobs start in the sweep's order
                while pending and len(in_flight) < self.workers:
                    job = pending.pop(0)
                    ref = remote.options(num_cpus=job.cpus, num_gpus=job.gpus, max_retries=0).remote(job, os.getcwd())
                    in_flight[ref] = job
                    started(job)
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in ready:
                    job = in_flight.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the worker died (memory, a node lost)
                        outcome = Outcome(job.run_id, "failed", f"Ray: {type(exc).__name__}: {exc}")
                    done(job, outcome)
        except KeyboardInterrupt:
            for ref in in_flight:  # their records stay "running"; a re-run runs them again
                ray.cancel(ref, force=True)
            raise
        finally:
            if self._started_ray:
                ray.shutdown()
                self._started_ray = False
