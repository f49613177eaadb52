"""Reproducible worlds: every model the harness trains itself (a synthetic world's target
and oracles, a classifier's or regressor's, the digits-diffusion world's) is built inside
:func:`reproducible_build`, and its weights get a content fingerprint (:func:`weights_fingerprint`)
written beside them at build time (:data:`FINGERPRINT_FILE`), which records carry.

On the CPU, the numbers a float32 kernel gives depend on how its reductions are split among
threads, so a world trained with 16 threads is not the world trained with 1, 2 or 4 (measured
on the default world's model; see CONTRIBUTING.md). Inside the block torch runs on
:data:`BUILD_THREADS` threads (a fixed count) and with deterministic algorithms (which matters on a GPU); seeds are the recipe's own (each recipe seeds its
initialisation, data order and dropout from the seed it is given), and the caller's torch
RNG state is restored after the block. What a fixed thread count cannot fix: torch's vectorised
kernels differ by instruction set (``ATEN_CPU_CAPABILITY``: an AVX2 machine trains other
weights than an AVX-512 one), so the fingerprint file also says which was used. See
CONTRIBUTING.md, "Reproducible worlds".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

# Part of every world's cache key: bump it when what a build does changes (the thread count,
# the kernels), so that caches built by other code are not reused under the new identity.
# 1: a fixed thread count (BUILD_THREADS) and deterministic algorithms while training (worlds
# before were built on every core, and differ from machine to machine).
BUILD_VERSION = "1"
# Fixed, not "as many as the machine has": the same count on every machine gives the same
# reduction order. Two rather than one: on 2 cores a build is about a third faster, and the
# default world's weights were the same with 1, 2 and 4 threads (they differ with 16).
BUILD_THREADS = 2
FINGERPRINT_FILE = "weights-fingerprint.json"


@contextlib.contextmanager
def reproducible_build(seed: int | None = None) -> Iterator[None]:
    """Train inside this block to get the same bytes on any machine with the same package
    versions, whatever ``torch.set_num_threads`` the caller chose. ``seed``, when given, seeds
    torch's global RNG inside the block. The thread count, the deterministic-algorithms flag
    and the RNG state are the caller's again after it."""
    import torch

    threads = torch.get_num_threads()
    deterministic, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    # cuBLAS is deterministic only with a fixed workspace (read when its handle is made); an op
    # with no deterministic kernel warns rather than stops a build (warn_only)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(BUILD_THREADS)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def tensors_fingerprint(tensors) -> str:
    """sha256 (first 16 hex digits) of named tensors: each name, dtype, shape and bytes, in
    name order. Any change to one weight changes it; how the tensors were saved does not."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        digest.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:16]


def weights_fingerprint(folder) -> str:
    """The content fingerprint of the safetensors files in ``folder`` (and its subfolders:
    an ensemble's shards), each tensor named by its file's relative path."""
    from safetensors.torch import load_file

    folder = Path(folder)
    tensors = {}
    for path in sorted(folder.rglob("*.safetensors")):
        rel = path.relative_to(folder).as_posix()
        tensors.update({f"{rel}:{k}": v for k, v in load_file(str(path)).items()})
    if not tensors:
        raise FileNotFoundError(f"{folder}: no .safetensors weights to fingerprint")
    return tensors_fingerprint(tensors)


def write_fingerprint(folder) -> str:
    """Fingerprint the weights saved in ``folder`` (a build's folder, before it is moved into
    place) and store it there; returns it."""
    import torch

    fp = weights_fingerprint(folder)
    built_with = {"torch": torch.__version__, "threads": BUILD_THREADS,
                  "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    (Path(folder) / FINGERPRINT_FILE).write_text(json.dumps({"weights_sha256_16": fp, "built_with": built_with}) + "\n")
    return fp


def stored_fingerprint(folder) -> str | None:
    """The fingerprint written at build time, or ``None`` where the folder has none (a model
    the harness did not build)."""
    path = Path(folder) / FINGERPRINT_FILE
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text()).get("weights_sha256_16")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, str) else None


def model_fingerprint(folder, fallback) -> str:
    """The fingerprint stored with a model the harness built, else ``fallback(folder)`` (the
    family's own, for a model given as a folder)."""
    return stored_fingerprint(folder) or fallback(folder)
