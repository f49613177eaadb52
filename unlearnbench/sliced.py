"""Sharded, sliced training for exact unlearning: what SISA and S3T share, for every task kind.

**The layout** (Bourtoule et al., 2021): the training rows split at random into ``shards``
disjoint shards and each shard into ``slices`` slices (:func:`partition`).

**S3T** (Chowdhury et al., "Towards Scalable Exact Machine Unlearning Using Parameter-Efficient
Fine-Tuning", ICLR 2025): per shard, a frozen base model and a stack of ``L = slices`` LoRA
adapters (peft) trained in sequence, adapter ``i`` on slices ``1..i`` of the shard while the
adapters before it stay frozen (the paper trains "the i-th layer from the top using slices
S_1:i"). Adapter ``i`` has seen slices ``1..i`` only, so a deletion in slice ``j`` is served
exactly by *deactivating* adapters ``j..L``: what stays active never saw the deleted row, and
base + adapters ``1..j-1`` is the very model the stack was after step ``j - 1``. Training the
stack on several slice *orders* (permutations, :func:`cyclic_orders`: the paper's cyclic
rotations) lets a deletion pick the order whose deleted slice comes latest
(:func:`plan_deletion`), so more deletions are served before anything must be retrained.

Adapters are merged into the weights one after the other: training adapter ``i`` on
``base + merged(1..i-1)`` is the same function as training it with 1..i-1 active and frozen,
and re-merging the stored adapters ``1..k`` rebuilds that model (:func:`apply_adapter`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unlearnbench.errors import UserError

PLACEMENTS = ("stacked", "layerwise")


def partition(n: int, shards: int, slices: int, seed: int) -> list[list[np.ndarray]]:
    """``layout[s][r]``: the (sorted) training rows of slice ``r`` of shard ``s``, a random,
    seeded split of ``range(n)`` into near-equal parts."""
    order = np.random.default_rng([seed, 0x5157]).permutation(n)
    return [[np.sort(part) for part in np.array_split(shard, slices)] for shard in np.array_split(order, shards)]


def array_digest(*arrays) -> str:
    """The sha256 of arrays' dtypes, shapes and bytes (what a cache key says of training data)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def cache_folder(name: str, key: dict, device=None) -> Path:
    """``cache_root()/name/<fingerprint of key>``; off the CPU the device type joins the key (a
    GPU's kernels train another model; CPU keys stay as they are)."""
    from unlearnbench.arraytasks import device_kind
    from unlearnbench.cache import cache_root, fingerprint

    if device_kind(device):
        key = {**key, "device": device_kind(device)}
    return cache_root() / name / fingerprint(key)


def check_layout(n: int, shards: int, slices: int, method: str) -> None:
    if shards < 1 or slices < 1 or shards * slices > n:
        raise UserError(f"{method} needs shards >= 1, slices >= 1 and shards x slices <= {n} training rows; "
                        f"got shards={shards}, slices={slices}.")


def deleted_rows(data, shards: int, slices: int, method: str) -> tuple[int, np.ndarray]:
    """``(n, deleted)`` for a method that trains on an array task's whole training set: its
    number of rows and the sorted forget indices, or a UserError saying what is missing."""
    if data.x_train is None or data.y_train is None or data.forget_indices is None:
        raise UserError(f"{method} trains on the full training set: the task must provide x_train, y_train "
                        "and forget_indices.")
    n = len(data.y_train)
    check_layout(n, shards, slices, method)
    deleted = np.unique(np.asarray(data.forget_indices, dtype=np.int64))
    if len(deleted) and (deleted[0] < 0 or deleted[-1] >= n):
        raise UserError(f"{method}: forget indices must lie in 0..{n - 1}; got {deleted[0]}..{deleted[-1]}.")
    return n, deleted


def cyclic_orders(slices: int, count: int) -> list[tuple[int, ...]]:
    """The first ``count`` right rotations of ``(0, 1, ..., slices - 1)`` (S3T's cyclic
    rotation; the identity first): with ``count = slices`` every slice comes first in exactly
    one order and last in exactly one."""
    if not 1 <= count <= slices:
        raise UserError(f"s3t trains 1 to {slices} slice orders per shard (the cyclic rotations of its "
                        f"{slices} slices); got orders={count}.")
    base = list(range(slices))
    return [tuple(base[-k:] + base[:-k]) if k else tuple(base) for k in range(count)]


def surviving(sequence: Sequence[int], hit: set[int]) -> int:
    """How many adapters of an order stay active when the slices in ``hit`` lose rows: the
    length of the order's prefix before its first hit slice."""
    for position, slice_ in enumerate(sequence):
        if slice_ in hit:
            return position
    return len(sequence)


@dataclass(frozen=True)
class ShardPlan:
    """How one shard serves a deletion: the order it switches to (``sequence``, slice ids in
    training order), how many of that order's adapters stay active (``kept``; adapters
    ``kept..L-1`` are deactivated) and whether the deactivated ones are retrained."""

    shard: int
    order: int
    sequence: tuple[int, ...]
    kept: int
    retrain: bool
    hit_slices: tuple[int, ...]
    kept_by_order: tuple[int, ...]

    @property
    def deactivated(self) -> int:
        return len(self.sequence) - self.kept


def plan_deletion(layout: list[list[np.ndarray]], orders: list[tuple[int, ...]], deleted,
                  min_active: int) -> list[ShardPlan]:
    """Per shard: the order that keeps the most adapters active (the first such order on a
    tie; with nothing deleted, order 0, the model served before), and a retraining of its
    deactivated adapters when fewer than ``min_active`` stay active (``min_active = 0``:
    never retrain)."""
    deleted = np.asarray(deleted, dtype=np.int64)
    plans = []
    for s, slices in enumerate(layout):
        hit = {r for r, rows in enumerate(slices) if len(deleted) and np.isin(rows, deleted).any()}
        kept = tuple(surviving(sequence, hit) for sequence in orders)
        best = int(np.argmax(kept))
        plans.append(ShardPlan(shard=s, order=best, sequence=orders[best], kept=kept[best],
                               retrain=bool(hit) and kept[best] < min(min_active, len(orders[best])),
                               hit_slices=tuple(sorted(hit)), kept_by_order=kept))
    return plans


def adapter_rows(slices: list[np.ndarray], sequence: Sequence[int], position: int, deleted=None) -> np.ndarray:
    """The rows adapter ``position`` of an order trains on: its slices ``sequence[0..position]``
    (minus ``deleted``)."""
    rows = np.concatenate([slices[r] for r in sequence[: position + 1]])
    if deleted is not None and len(deleted):
        rows = rows[~np.isin(rows, deleted)]
    return rows


def adapter_targets(units: list[list[str]], slices: int, placement: str) -> list[list[str]]:
    """The module names each adapter position adapts. ``units`` are the model's adaptable
    layers from the input to the output, each a list of module names (one conv / linear layer,
    or one decoder block's projections). ``stacked``: every adapter spans all of them (a stack
    of full-model LoRA adapters); ``layerwise`` (the paper's): the layers from the top split
    into ``slices`` contiguous groups, adapter ``i`` on group ``i`` (the output end first)."""
    if placement not in PLACEMENTS:
        raise UserError(f"s3t placement {placement!r} is not known; use one of {', '.join(PLACEMENTS)}.")
    if placement == "stacked":
        every = [name for unit in units for name in unit]
        return [every for _ in range(slices)]
    if len(units) < slices:
        raise UserError(f"s3t placement=layerwise gives each of the {slices} adapters its own layers, but the "
                        f"model has {len(units)} adaptable layers; use placement=stacked or fewer slices.")
    top_down = units[::-1]
    return [[name for u in group for name in top_down[u]] for group in np.array_split(np.arange(len(units)), slices)]


# ------------------------------------------------------------------------------ LoRA adapters (peft)


@dataclass(frozen=True)
class LoraSpec:
    """The LoRA adapters of one S3T system: rank, scale and each position's target modules."""

    r: int
    alpha: int
    targets: tuple[tuple[str, ...], ...]

    def config(self, position: int):
        try:
            from peft import LoraConfig
        except ImportError:
            raise UserError("s3t trains LoRA adapters with the peft library: pip install 'unlearnbench[lora]'.") from None
        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=0.0, bias="none",
                          target_modules=list(self.targets[position]))


def _wrap(model, config, seed: int):
    """``model`` with a fresh LoRA adapter (peft); its random initialisation depends on ``seed``
    only (the global RNG is left alone)."""
    import torch
    from peft import get_peft_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, config)


def train_adapter(model, config, seed: int, fit: Callable[[object], None]):
    """Add one LoRA adapter to ``model``, train it with ``fit(peft_model)`` (only the adapter's
    weights are trainable) and merge it. Returns ``(merged model, the adapter's weights on the
    CPU)``."""
    from peft import get_peft_model_state_dict

    wrapped = _wrap(model, config, seed)
    fit(wrapped)
    # the adapter's own weights only (peft would add an output layer's base weights to it)
    state = {k: v.detach().to("cpu").clone()
             for k, v in get_peft_model_state_dict(wrapped, save_embedding_layers=False).items()}
    return _merged(wrapped), state


def apply_adapter(model, config, state: dict):
    """``model`` with a stored adapter merged into its weights."""
    from peft import set_peft_model_state_dict

    wrapped = _wrap(model, config, 0)
    loaded = set_peft_model_state_dict(wrapped, state)
    if loaded.unexpected_keys:
        raise RuntimeError(f"a stored S3T adapter does not fit the model: {loaded.unexpected_keys[:3]}")
    return _merged(wrapped)


def _merged(wrapped):
    model = wrapped.merge_and_unload()
    for p in model.parameters():  # as a plain model is: every weight trainable (GradNorm, relearning)
        p.requires_grad_(True)
    return model.eval()


def _adapter_file(folder: Path, shard: int, order: int, position: int) -> Path:
    return Path(folder) / f"shard{shard}" / f"order{order}" / f"adapter{position}.safetensors"


# ------------------------------------------------------------------------------ the system


@dataclass
class S3TSystem:
    """One S3T system: the layout, the orders, the adapters' spec, where the trained adapters
    are cached, and the two things that differ by task kind: ``base(shard)`` (a fresh copy of
    the frozen base model a shard's stacks start from) and ``fit(peft_model, rows, description,
    seed)`` (train the adapter on those training rows)."""

    layout: list[list[np.ndarray]]
    orders: list[tuple[int, ...]]
    lora: LoraSpec
    folder: Path
    base: Callable[[int], object]
    fit: Callable[[object, np.ndarray, str, int], None]
    seed: int

    def _seed(self, shard: int, order: int, position: int, retrain: bool = False) -> int:
        return int(np.random.SeedSequence([self.seed, shard, order, position, int(retrain), 0x53_3754])
                   .generate_state(1)[0])

    def _train(self, model, shard: int, order: int, position: int, rows: np.ndarray, what: str, retrain: bool = False):
        seed = self._seed(shard, order, position, retrain)
        description = f"s3t shard {shard + 1} order {order + 1} adapter {position + 1}{what}"
        return train_adapter(model, self.lora.config(position), seed,
                             lambda wrapped: self.fit(wrapped, rows, description, seed))

    def build(self, log: Callable[[str], None]) -> float | None:
        """Train every shard's stack on every order, once (cached in ``folder``); returns the
        seconds it took, or None when the adapters were already there."""
        from safetensors.torch import save_file

        from unlearnbench.cache import building, missing

        if not missing(self.folder):
            return None
        n = len(self.layout) * len(self.orders) * len(self.lora.targets)
        log(f"s3t: training {n} adapters ({len(self.layout)} shards x {len(self.orders)} orders x "
            f"{len(self.lora.targets)} slices; cached in {self.folder})")
        start = time.perf_counter()
        with building(self.folder) as tmp:
            for s, slices in enumerate(self.layout):
                for o, sequence in enumerate(self.orders):
                    model = self.base(s)
                    for p in range(len(sequence)):
                        model, state = self._train(model, s, o, p, adapter_rows(slices, sequence, p), "")
                        path = _adapter_file(tmp, s, o, p)
                        path.parent.mkdir(parents=True, exist_ok=True)
                        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        return time.perf_counter() - start

    def adapter(self, shard: int, order: int, position: int) -> dict:
        from safetensors.torch import load_file

        return load_file(str(_adapter_file(self.folder, shard, order, position)))

    def serve(self, deleted, min_active: int) -> tuple[list, list[ShardPlan], list[int], float]:
        """The models after deleting ``deleted``: per shard, the base with the surviving
        adapters of its chosen order merged (and, where the plan says so, the deactivated ones
        retrained on the shard's rows minus the deleted ones). Returns ``(models, plans,
        retrained adapters per shard, seconds)``."""
        start = time.perf_counter()
        deleted = np.unique(np.asarray(deleted, dtype=np.int64))
        plans = plan_deletion(self.layout, self.orders, deleted, min_active)
        models, retrained = [], []
        for plan in plans:
            model = self.base(plan.shard)
            for p in range(plan.kept):
                model = apply_adapter(model, self.lora.config(p), self.adapter(plan.shard, plan.order, p))
            count = 0
            if plan.retrain:
                for p in range(plan.kept, len(plan.sequence)):
                    rows = adapter_rows(self.layout[plan.shard], plan.sequence, p, deleted)
                    if len(rows):  # a prefix of slices can be deleted whole: the stack waits for data
                        model, _ = self._train(model, plan.shard, plan.order, p, rows, " (retraining)", retrain=True)
                        count += 1
            models.append(model)
            retrained.append(count)
        return models, plans, retrained, time.perf_counter() - start


def deletion_info(plans: list[ShardPlan], retrained: list[int], *, orders: int, placement: str, seconds: float,
                  build_seconds: float | None) -> dict:
    """What ``ctx.info`` (the record) says about an S3T deletion: per shard the order used, how
    many adapters were deactivated, retrained and are active; the totals and the cost."""
    slices = len(plans[0].sequence)
    per_shard = [{"shard": p.shard, "order": list(p.sequence), "hit_slices": list(p.hit_slices),
                  "kept": p.kept, "deactivated": p.deactivated, "retrained": r, "active": p.kept + r,
                  "kept_by_order": list(p.kept_by_order)} for p, r in zip(plans, retrained)]
    info = {
        "shards": len(plans), "slices": slices, "orders": orders, "placement": placement,
        "adapters_trained": len(plans) * orders * slices, "adapters_per_model": len(plans) * slices,
        "deactivated_adapters": sum(p.deactivated for p in plans), "retrained_adapters": sum(retrained),
        "active_adapters": sum(s["active"] for s in per_shard),
        "affected_shards": [p.shard for p in plans if p.hit_slices],
        "deletion_seconds": round(seconds, 3), "checkpoints": "built" if build_seconds is not None else "reused",
        "per_shard": per_shard,
    }
    if build_seconds is not None:
        info["build_seconds"] = round(build_seconds, 3)
    return info
