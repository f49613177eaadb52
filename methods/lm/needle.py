"""``needle``: edit only the concept vectors of the forget data (ConceptVectors oracle, Hong et al., 2024).

Locates and validates one MLP value vector per forget concept (the same search as the
parametric lens: :func:`unlearnbench.lm.concepts.find_concept_vectors`), adds Gaussian noise to them (``noise_scale`` times their
norm), then runs gradient ascent on the forget set (loss ``-CE(forget)``, as ``ga``) with the
gradient masked so that only those vectors move. Every other weight stays bit-identical: only
the down projections holding located vectors require gradients, a hook zeroes the gradient of
their other columns, and they sit in an AdamW group without weight decay (decay would shrink
the masked columns too).

Concepts come from ``data.concepts`` (``[{"name", "words", "prompts"}]``) when the task supplies them;
otherwise one concept per forget set, whose words are the answer tokens at least twice as
frequent (relative frequency) in the forget answers as in the retain answers, minus stopwords.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch

from unlearnbench.lm import concepts as cv
from unlearnbench.errors import UserError
from unlearnbench.lm.modeling import QABatches, TrainConfig, answer_nll, encode_rows, train_loop
from unlearnbench.method import Method, RunContext, UnlearnData
from unlearnbench.registry import register_method

UNRELATED = 64  # retain rows that serve as the unrelated control when validating vectors


def _answer_token_frequencies(tokenizer, fmt, rows) -> tuple[Counter, int]:
    counts: Counter = Counter()
    for row in rows or ():
        counts.update(tokenizer(fmt.answer_prefix + row["answer"], add_special_tokens=False)["input_ids"])
    return counts, sum(counts.values())


def derived_concept(data: UnlearnData) -> dict:
    """One concept for the forget set: the answer tokens at least twice as frequent in forget
    answers as in retain answers (tokens absent from retain qualify), stopwords and
    punctuation dropped (by :func:`concepts.concept_token_ids`, later)."""
    tok, fmt = data.tokenizer, data.prompt_format
    forget, n_forget = _answer_token_frequencies(tok, fmt, data.forget)
    retain, n_retain = _answer_token_frequencies(tok, fmt, data.retain)
    words = sorted(
        {tok.decode([i]).strip() for i, c in forget.items()
         if c / n_forget >= 2 * (retain[i] / n_retain if n_retain else 0.0)}
    )
    return {"name": "forget", "words": [w for w in words if w]}


@register_method("needle", summary="noise + gradient ascent on the located concept vectors only (oracle)")
class Needle(Method):
    name = "needle"
    needs = ("forget", "retain")  # retain only to derive the concept when the task gives none

    @dataclass(frozen=True)
    class Params:
        lr: float = 1e-2
        epochs: int = 5
        batch_size: int = 32
        noise_scale: float = 1.0  # noise norm relative to each located vector's norm
        min_overlap: int = 2  # concept tokens a vector's top-k must contain to count as located
        validate: bool = True  # keep only vectors whose noising hurts the concept more than unrelated text
        k: int | None = None  # top-k size; None: concepts.default_k(vocabulary size)

    def unlearn(self, model, data: UnlearnData, params, ctx: RunContext):
        model = model.to(ctx.device)
        pairs = lambda rows: [(r["question"], r["answer"]) for r in rows]  # noqa: E731
        if data.concepts is not None:
            concept_list = [{**c, "prompts": [tuple(p) for p in c.get("prompts") or pairs(data.forget)]} for c in data.concepts]
        else:
            concept_list = [{**derived_concept(data), "prompts": pairs(data.forget)}]
        unrelated = pairs(list(data.retain)[:UNRELATED])
        found = cv.find_concept_vectors(model, data.tokenizer, data.prompt_format, concept_list, unrelated,
                                        k=params.k, min_overlap=params.min_overlap, validate=params.validate,
                                        seed=ctx.seed)
        if not found["vectors"]:
            raise UserError(
                f"needle: no concept vector was found and validated for {len(concept_list)} concept(s) "
                f"({len(found['candidates'])} candidates tested; a candidate's top-{found['k']} tokens must "
                f"contain {params.min_overlap} or more concept tokens). Lower the threshold with "
                "--param min_overlap=1, or widen the top-k with --param k=..."
            )
        for hit in found["vectors"]:
            margin = "untested" if hit["margin"] is None else f"NLL margin {hit['margin']:.3f} under validation noise"
            ctx.log(f"needle: {hit['concept']!r} -> layer {hit['layer']} vector {hit['index']} ({margin})")
        matrices = cv.value_matrices(model)
        vectors = [(matrices[h["matrix"]], h["index"]) for h in found["vectors"]]
        model.train()
        cv.add_noise(model, vectors, params.noise_scale, seed=ctx.seed)
        self._ascend(model, data, params, ctx, vectors)
        return model

    @staticmethod
    def loss(model, forget: dict) -> torch.Tensor:
        """The ascent's objective on a forget batch: ``-CE(forget)``, as ``ga``'s."""
        return -answer_nll(model, forget)

    def _ascend(self, model, data: UnlearnData, params, ctx: RunContext, vectors) -> None:
        """Gradient ascent on the forget set that can move only ``vectors``.

        ``requires_grad`` flags are restored and hooks removed afterwards, so later gradient
        computations on the returned model (e.g. gradient-norm metrics) see every weight.
        """
        columns: dict[cv.ValueMatrix, set[int]] = {}
        for vm, j in vectors:
            columns.setdefault(vm, set()).add(j)
        flags = {p: p.requires_grad for p in model.parameters()}
        handles, trainable = [], []
        try:
            for p in model.parameters():
                p.requires_grad_(False)
            for vm, js in columns.items():
                weight = model.get_submodule(vm.name).weight
                shape = [1] * weight.dim()
                shape[vm.axis] = weight.shape[vm.axis]
                mask = torch.zeros(shape, dtype=weight.dtype, device=weight.device)
                mask.view(-1)[sorted(js)] = 1
                weight.requires_grad_(True)
                handles.append(weight.register_hook(lambda grad, mask=mask: grad * mask))
                trainable.append(weight)
            batches = QABatches(encode_rows(data.tokenizer, data.prompt_format, data.forget), params.batch_size,
                                data.tokenizer.pad_token_id, seed=ctx.seed)
            steps = ({key: t.to(ctx.device) for key, t in batch.items()} for batch in batches.forever())
            # train_loop puts `trainable` in one AdamW group; weight_decay=0.0 keeps masked columns exact
            config = TrainConfig(lr=params.lr, epochs=params.epochs, batch_size=params.batch_size,
                                 warmup_fraction=0.0, weight_decay=0.0, schedule="constant")
            train_loop(model, steps, params.epochs * len(batches), self.loss, config,
                       description="unlearning (needle)", parameters=trainable, quiet=ctx.quiet)
        finally:
            for handle in handles:
                handle.remove()
            for p, flag in flags.items():
                p.requires_grad_(flag)
