"""``s3t``: Sequence-aware Sharded Sliced Training (Chowdhury et al., ICLR 2025), language models.

Exact unlearning with parameter-efficient fine-tuning, as the paper fine-tunes Llama models
(the bookkeeping is :mod:`unlearnbench.sliced`). The fine-tuning set is every forget and
retain row (in a canonical order, so that one trained system serves every forget split of a
task); it is split into ``slices`` slices, and ``orders`` slice orders (cyclic rotations) each
train a stack of ``L = slices`` LoRA adapters (peft) on a frozen base, adapter ``i`` on the
order's slices ``1..i`` with the adapters before it frozen. The adapters are trained once and
cached under ``cache_root()/"s3t"/...``.

A deletion picks the order whose first slice holding a deleted row comes latest and
deactivates that order's adapters from there on: what stays active never saw a deleted row.
When fewer than ``min_active`` adapters survive, the deactivated ones are retrained on the
remaining rows. ``ctx.info`` (the record) says which order was used, how many adapters were
deactivated, retrained and are active, and the cost in seconds.

**The base** must never have seen the fine-tuning set, or nothing would be exact: ``base`` (a
hub id or ``save_pretrained`` folder: for a real task, the pretrained model before its TOFU /
MUSE fine-tuning), else the task's recipe trained on its background rows only (the synthetic
worlds' real authors and world facts, which every model of the world sees), cached. A tied
output layer is untied first: the adapters adapt the output projection (``lm_head``, which
the fictitious names' never-trained embeddings need) without moving the input embeddings.
With the recipe's base, every adapter step also trains on the recipe's background rows
(``background``; they are in no forget set), as the recipe trains every model of the task on
them: without them the adapters would wash out the base's general knowledge.
Adapters cover every linear layer (``placement=stacked``), or the paper's layout
(``placement=layerwise``: adapter ``i`` on the ``i``-th group of decoder blocks from the top,
the output layer with the top group), which needs at least ``slices`` blocks.

**One shard.** SISA and S3T aggregate shards by an ensemble; an ensemble of language models
has no one set of weights for what the scoring engine reads (hidden states for the probes,
generation, GradNorm's gradients), and averaging the shards' adapters would be a model no
shard trained. So on language models S3T trains one shard (``shards=1``, the only value
accepted) and the unlearned model is a plain causal LM: the base with the active adapters
merged, scored like any other. It replaces the target (whose weights saw the forget set).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

import numpy as np
import torch

from unlearnbench.errors import UserError
from unlearnbench.lm.modeling import QABatches, TrainConfig, answer_nll, clone_model, encode_rows, train_loop
from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.sliced import (
    LoraSpec, S3TSystem, adapter_targets, cache_folder, check_layout, cyclic_orders, deletion_info, partition,
)

FORMAT_VERSION = 1


@register_method("s3t", summary="S3T: exact unlearning by deactivating sliced LoRA adapter stacks")
class LanguageModelS3T(Method):
    name = "s3t"
    needs = ("forget", "retain", "recipe")
    kinds = ("language_model",)

    @dataclass(frozen=True)
    class Params:
        shards: int = 1  # one shard: see the module docstring
        slices: int = 4
        orders: int = 2  # slice orders (cyclic rotations), 1..slices
        min_active: int = 1  # fewer active adapters than this: the deactivated ones are retrained
        placement: str = "stacked"  # or "layerwise" (the paper's)
        lora_r: int = 16
        lora_alpha: int = 32
        lr: float = 3e-3
        epochs: int = 20  # of each adapter step, over its slices (tuned on tofu-synth/forget10: 6 and 12 underfit)
        batch_size: int = 32
        base: str | None = None  # a model that never saw the fine-tuning set; None: the task recipe's background
        background: bool = True  # mix the recipe's background rows into every adapter step

    def unlearn(self, model, data, params, ctx):
        if params.shards != 1:
            raise UserError("s3t on language models trains one shard (an ensemble of language models has no one set "
                            "of weights to score); leave shards at 1.")
        rows, deleted = fine_tuning_set(data.forget, data.retain)
        check_layout(len(rows), 1, params.slices, "s3t")
        tokenizer = data.tokenizer
        encoded = encode_rows(tokenizer, data.prompt_format, rows)
        # what every model of the task sees (never deleted), mixed into every adapter step as the recipe mixes it
        background = encode_rows(tokenizer, data.prompt_format, getattr(ctx.recipe, "background", ())
                                 if params.background and params.base is None else ())
        dtype = next(model.parameters()).dtype
        base, base_id = self._base(rows, data, params, ctx, dtype)
        lora = LoraSpec(params.lora_r, params.lora_alpha,
                        tuple(tuple(t) for t in adapter_targets(layer_units(base), params.slices, params.placement)))
        key = {"version": FORMAT_VERSION, "rows": _digest(encoded), "background": _digest(background),
               "base": base_id, "lora": asdict(lora), "slices": params.slices, "orders": params.orders,
               "lr": params.lr, "epochs": params.epochs, "batch_size": params.batch_size, "dtype": str(dtype),
               "seed": ctx.seed}

        def fit(wrapped, rows_, description, seed):
            batches = QABatches([encoded[i] for i in rows_] + background, params.batch_size, tokenizer.pad_token_id,
                                seed=seed)
            steps = ({k: v.to(ctx.device) for k, v in batch.items()} for batch in batches.forever())
            config = TrainConfig(lr=params.lr, epochs=params.epochs, batch_size=params.batch_size,
                                 warmup_fraction=0.05, schedule="cosine")
            train_loop(wrapped.to(ctx.device), steps, params.epochs * len(batches), answer_nll, config,
                       description=description, quiet=ctx.quiet)

        system = S3TSystem(layout=partition(len(rows), 1, params.slices, ctx.seed),
                           orders=cyclic_orders(params.slices, params.orders), lora=lora,
                           folder=cache_folder("s3t", key, ctx.device), base=lambda s: clone_model(base), fit=fit,
                           seed=ctx.seed)
        build_seconds = system.build(ctx.log)
        models, plans, retrained, seconds = system.serve(deleted, params.min_active)
        ctx.info.update(deletion_info(plans, retrained, orders=params.orders, placement=params.placement,
                                      seconds=seconds, build_seconds=build_seconds))
        ctx.info["base"] = params.base or "the task recipe on its background rows"
        ctx.log(f"s3t: {ctx.info['deactivated_adapters']} of {params.slices} adapters deactivated, "
                f"{ctx.info['retrained_adapters']} retrained ({seconds:.1f} s)")
        return models[0].to(ctx.device).eval()

    @staticmethod
    def _base(rows, data, params, ctx, dtype):
        """The frozen base (on the CPU, output layer untied) and what identifies it in the cache key."""
        from unlearnbench.cache import building
        from unlearnbench.task import model_source

        if params.base is not None:
            loaded = model_source(params.base, dtype=dtype)
            if loaded.tokenizer.get_vocab() != data.tokenizer.get_vocab():
                raise UserError(f"s3t base {params.base} has another tokenizer than the task's target.")
            return untied(loaded.model), {"source": params.base, "fingerprint": loaded.fingerprint}
        if ctx.recipe is None:
            raise UserError(f"s3t needs a base model that never saw the forget or retain rows: task {ctx.task_name!r} "
                            "has no training recipe, so pass one (--param base=<hub id or folder>, e.g. the pretrained "
                            "model before its fine-tuning).")
        vocab = sorted(data.tokenizer.get_vocab().items())
        base_key = {"version": FORMAT_VERSION, "recipe": ctx.recipe.name, "description": ctx.recipe.description,
                    "vocab": hashlib.sha256(json.dumps(vocab).encode()).hexdigest(),
                    "world": _digest([[r["question"], r["answer"]] for r in rows]), "seed": ctx.seed}
        folder = cache_folder("s3t-base", base_key, ctx.device)
        if not folder.exists():
            ctx.log(f"s3t: training the base on the task recipe's background rows only (cached in {folder})")
            try:
                trained = ctx.recipe.train([], ctx.seed, quiet=ctx.quiet, description="s3t base (background rows)",
                                           device=ctx.device)
            except ValueError as exc:  # a recipe with no background rows has nothing to train on
                raise UserError(f"s3t: the recipe of {ctx.task_name!r} cannot train a base without the task's rows "
                                f"({exc}); pass --param base=<hub id or folder>.") from None
            with building(folder) as tmp:
                trained.to("cpu").save_pretrained(tmp, safe_serialization=True)
                data.tokenizer.save_pretrained(tmp)
        return untied(model_source(str(folder), dtype=dtype).model), base_key


def fine_tuning_set(forget, retain) -> tuple[list[dict], np.ndarray]:
    """Every forget and retain row, sorted by (question, answer): the same list for every forget
    split of a task. Returns the rows and the positions of the forget rows among them."""
    tagged = [(r["question"], r["answer"], True) for r in forget] + [(r["question"], r["answer"], False) for r in retain]
    tagged.sort()
    rows = [{"question": q, "answer": a} for q, a, _ in tagged]
    return rows, np.array([i for i, (_, _, is_forget) in enumerate(tagged) if is_forget], dtype=np.int64)


def untied(model):
    """The model with its output layer holding its own copy of the weights it shared with the
    input embeddings (a LoRA on ``lm_head`` then adapts the output alone)."""
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    if head is not None and embed is not None and head.weight is embed.weight:
        head.weight = torch.nn.Parameter(head.weight.detach().clone())
        model.config.tie_word_embeddings = False
        if hasattr(model.config, "get_text_config"):
            model.config.get_text_config().tie_word_embeddings = False
    return model.eval()


def layer_units(model) -> list[list[str]]:
    """The linear layers adapters may adapt, as units from the input to the output: one per
    decoder block (its projections), the output layer last."""
    head = model.get_output_embeddings()
    blocks: dict[int, list[str]] = {}
    top = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        if module is head:
            top.append(name)
            continue
        index = re.search(r"\.(\d+)\.", f".{name}.")
        if index is None:
            top.append(name)
        else:
            blocks.setdefault(int(index.group(1)), []).append(name)
    return [blocks[i] for i in sorted(blocks)] + ([top] if top else [])


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj).encode()).hexdigest()
