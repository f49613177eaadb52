"""``s3t``: Sequence-aware Sharded Sliced Training (Chowdhury et al., ICLR 2025), classifiers.

Exact unlearning with parameter-efficient fine-tuning (the bookkeeping is
:mod:`unlearnbench.sliced`). The *full* training set is split into ``shards`` x ``slices``
as SISA splits it; per shard, ``orders`` slice orders (the cyclic rotations), and per order
a stack of ``L = slices`` LoRA adapters (peft) on a frozen base, adapter ``i`` trained on the
order's slices ``1..i`` with the adapters before it frozen. Every adapter is trained once and
cached (``cache_root()/"s3t"/<fingerprint of the data, architecture, settings and seed>``).

A deletion is served without training: each shard switches to the order whose first hit slice
comes latest and deactivates that order's adapters from there on; what stays active never saw
a deleted row. Only a shard left with fewer than ``min_active`` active adapters retrains the
deactivated ones (on its rows minus the deleted ones; ``min_active=0`` never retrains).
``ctx.info`` (the record) says per shard which order was used, how many adapters were
deactivated, retrained and are active, and what the deletion cost (``deletion_seconds``;
``build_seconds`` when the adapters were trained in this run).

The paper adapts pretrained transformers. A classifier task here has no data-free pretrained
backbone, so the closest analogue is used: the base is the task's architecture at its seeded
random initialisation (it has seen no data, so it holds nothing to forget) and each adapter is
a LoRA of rank ``lora_r`` on every conv and linear layer (``placement=stacked``; peft's Conv2d
LoRA for the convs), or, with ``placement=layerwise`` (the paper's: adapter ``i`` on the
``i``-th group of layers from the output), on its own layers. Biases and normalisation weights
stay at their initial values (training them would put every slice's data into the base).
A model with BatchNorm is refused: its running statistics would keep every slice's data.
Each adapter step trains ``round(2 E / (L + 1))`` epochs with Adam (SISA's rule, ``E`` the
task recipe's epochs unless ``epochs`` is set), the recipe's batch size and augmentation.

The model returned averages the shards' probabilities (SISA's
:class:`~unlearnbench.vision.classifier.ShardEnsemble`, saved by ``--save-model`` as SISA's
ensemble is); each shard's model is its base with its active adapters merged. The target
handed to ``unlearn`` is ignored: S3T replaces the model, as SISA does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
from torch import nn

from unlearnbench.errors import UserError
from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.sliced import (
    LoraSpec, S3TSystem, adapter_targets, array_digest, cache_folder, cyclic_orders, deleted_rows, deletion_info,
    partition,
)
from unlearnbench.vision.classifier import ShardEnsemble, build_classifier, classifier_train_config, train_classifier

FORMAT_VERSION = 1


@register_method("s3t", summary="S3T: exact unlearning by deactivating sliced LoRA adapter stacks")
class ClassifierS3T(Method):
    name = "s3t"
    needs = ("train",)
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params:
        shards: int = 4
        slices: int = 4
        orders: int = 4  # slice orders per shard (cyclic rotations), 1..slices
        min_active: int = 1  # a shard left with fewer active adapters retrains the deactivated ones
        placement: str = "stacked"  # or "layerwise" (the paper's: adapter i on the i-th layers from the top)
        lora_r: int = 8
        lora_alpha: int = 16
        lr: float = 0.01
        epochs: int | None = None  # E, epochs over a shard; None: the task recipe's

    def unlearn(self, model, data, params, ctx):
        n, deleted = deleted_rows(data, params.shards, params.slices, "s3t")
        orders = cyclic_orders(params.slices, params.orders)
        probe = build_classifier(data.model_config, seed=0)
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in probe.modules()):
            raise UserError("s3t keeps its base model frozen, but this architecture has BatchNorm, whose running "
                            "statistics would keep every slice's data; use one with GroupNorm (digits' small_cnn, "
                            "or resnet18 with norm=group).")
        units = [[name] for name, m in probe.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        lora = LoraSpec(params.lora_r, params.lora_alpha,
                        tuple(tuple(t) for t in adapter_targets(units, params.slices, params.placement)))
        step = step_config(data.train_config, params)
        key = {"version": FORMAT_VERSION, "data": array_digest(data.x_train, data.y_train), "model": data.model_config,
               "recipe": asdict(step), "lora": asdict(lora), "shards": params.shards, "slices": params.slices,
               "orders": params.orders, "seed": ctx.seed}

        def fit(wrapped, rows, description, seed):
            train_classifier(wrapped, data.x_train[rows], data.y_train[rows], step, seed,
                             parameters=[p for p in wrapped.parameters() if p.requires_grad], device=ctx.device,
                             quiet=ctx.quiet, description=description)

        system = S3TSystem(layout=partition(n, params.shards, params.slices, ctx.seed), orders=orders, lora=lora,
                           folder=cache_folder("s3t", key, ctx.device),
                           base=lambda s: build_classifier(data.model_config, seed=_seed(ctx.seed, s)), fit=fit,
                           seed=ctx.seed)
        build_seconds = system.build(ctx.log)
        models, plans, retrained, seconds = system.serve(deleted, params.min_active)
        ctx.info.update(deletion_info(plans, retrained, orders=params.orders, placement=params.placement,
                                      seconds=seconds, build_seconds=build_seconds))
        ctx.log(f"s3t: {ctx.info['deactivated_adapters']} adapters deactivated, {ctx.info['retrained_adapters']} "
                f"retrained, {ctx.info['active_adapters']}/{ctx.info['adapters_per_model']} active "
                f"({seconds:.1f} s)")
        return ShardEnsemble([m.to(ctx.device) for m in models]).to(ctx.device).eval()


def step_config(train_config, params):
    """One adapter step: Adam at ``lr``, no weight decay (it would pull the adapter, not the
    base, towards zero), cosine schedule, ``round(2 E / (L + 1))`` epochs (SISA's rule)."""
    recipe = classifier_train_config(train_config)
    epochs = recipe.epochs if params.epochs is None else params.epochs
    return replace(recipe, epochs=max(1, round(2 * epochs / (params.slices + 1))), lr=params.lr, optimizer="adam",
                   weight_decay=0.0, schedule="cosine")


def _seed(seed: int, shard: int) -> int:
    """Seed of a shard's base (its random initialisation)."""
    return int(np.random.SeedSequence([seed, shard, 0x533754]).generate_state(1)[0])
