"""Language-model plumbing shared by tasks, methods and the scoring engine.

Prompt formatting and QA encoding, padded training batches, the tiny Llama the synthetic
worlds train, device choice, loading from the hub or a folder, and the one training loop
every recipe and every LLM method uses (a method is a loss plus hyperparameters).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unlearnbench.errors import ModelSourceError, TrainingDivergedError
from unlearnbench.progress import progress_bar
from unlearnbench.trajectory import step_done

IGNORE_INDEX = -100


# Prompt formats live in unlearnbench.lm.prompts; these names stay importable from here.
from unlearnbench.lm.prompts import PromptFormat, encode_answer, encode_prompt, encode_qa  # noqa: E402,F401


def collate(encoded: Sequence[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels are the answer tokens only (prompt and padding ignored)."""
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, (ids, n_prompt) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, n_prompt : len(ids)] = torch.tensor(ids[n_prompt:])
        mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


class QABatches:
    """Shuffled mini-batches of encoded QA pairs; the order depends only on ``seed`` and epoch."""

    def __init__(self, encoded: Sequence[tuple[list[int], int]], batch_size: int, pad_id: int, seed: int):
        if not encoded:
            raise ValueError("QABatches needs at least one example.")
        self.encoded, self.batch_size, self.pad_id, self.seed = list(encoded), batch_size, pad_id, seed

    def __len__(self) -> int:
        return math.ceil(len(self.encoded) / self.batch_size)

    def epoch(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        order = list(range(len(self.encoded)))
        random.Random(self.seed * 100_003 + epoch).shuffle(order)
        for start in range(0, len(order), self.batch_size):
            yield collate([self.encoded[i] for i in order[start : start + self.batch_size]], self.pad_id)

    def forever(self) -> Iterator[dict[str, torch.Tensor]]:
        epoch = 0
        while True:
            yield from self.epoch(epoch)
            epoch += 1


def encode_rows(tokenizer, fmt: PromptFormat, rows, answer_field: str = "answer") -> list[tuple[list[int], int]]:
    return [encode_qa(tokenizer, fmt, r["question"], r[answer_field]) for r in rows]


def chunk_text_rows(tokenizer, rows, max_tokens: int) -> list[dict]:
    """Rows whose answer is longer than ``max_tokens`` tokens, cut into consecutive windows of
    that many tokens (MUSE trains and unlearns raw documents in fixed-length chunks)."""
    out = []
    for row in rows:
        ids = tokenizer(row["answer"], add_special_tokens=False)["input_ids"]
        if len(ids) <= max_tokens:
            out.append(dict(row))
            continue
        out.extend({**row, "answer": tokenizer.decode(ids[i : i + max_tokens])} for i in range(0, len(ids), max_tokens))
    return out


# ---------------------------------------------------------------------------- devices & models


def resolve_device(device: str = "auto") -> torch.device:
    """``--device`` as a torch device: ``auto`` (a GPU where one is visible, else the CPU),
    ``cpu``, ``cuda`` or ``cuda:<index>``; a device this machine does not have is a
    :class:`ModelSourceError` (bad input), found before anything runs on it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ModelSourceError(f"--device {device!r}: use auto, cpu, cuda or cuda:<index>.") from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ModelSourceError(f"--device {device} was asked for but no CUDA device is visible; "
                                   "use --device cpu or auto.")
        if resolved.index is not None and resolved.index >= count:
            raise ModelSourceError(f"--device {device}: this machine has {count} CUDA device(s) "
                                   f"(cuda:0..cuda:{count - 1}).")
    elif resolved.type != "cpu" and not (resolved.type == "mps" and torch.backends.mps.is_available()):
        raise ModelSourceError(f"--device {device!r}: use auto, cpu, cuda or cuda:<index>.")
    return resolved


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_dtype(name: str | None, device: torch.device) -> torch.dtype:
    """``--dtype``: ``auto`` is bf16 on a GPU that supports it and float32 elsewhere (the CPU,
    older GPUs); ``bf16`` / ``fp16`` / ``fp32`` as asked. Weights are loaded, trained and
    scored in it; scores are accumulated in float32 or float64 whatever it is."""
    if name in (None, "auto"):
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name not in DTYPES:
        raise ModelSourceError(f"--dtype {name!r}: use auto, bf16, fp16 or fp32.")
    return DTYPES[name]


def dtype_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in DTYPES.items()}.get(dtype, str(dtype).removeprefix("torch."))


@contextlib.contextmanager
def seeded(seed: int):
    """Seed torch inside the block only; the caller's global RNG state is restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass(frozen=True)
class TinyLlamaConfig:
    """The tiny Llama the synthetic worlds train (about 0.6M parameters at the defaults)."""

    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 256


def build_tiny_llama(vocab_size: int, tokenizer, config: TinyLlamaConfig, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with seeded(seed):
        return LlamaForCausalLM(cfg)


def load_causal_lm(source: str, *, offline_hint: str = "", dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """Load (model, tokenizer) from a hub id (``hub:org/name[@rev]`` or ``org/name``) or a folder,
    through the same ``from_pretrained`` call, with weights in ``dtype`` (on the CPU: the runner
    moves a model to the device when it is used, and back when it is done with it)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own rich bars report progress
    ref, revision = source.removeprefix("hub:"), None
    if "@" in ref and not Path(ref).exists():
        ref, revision = ref.rsplit("@", 1)
    looks_local = ref.startswith((".", "/", "~")) or Path(ref).expanduser().exists()
    if looks_local:
        path = Path(ref).expanduser()
        if not path.is_dir():
            raise ModelSourceError(f"Model folder {str(path)!r} does not exist. Pass an existing folder or a hub id.")
        if not (path / "config.json").exists():
            raise ModelSourceError(
                f"Model folder {str(path)!r} has no config.json; it is not a save_pretrained folder."
            )
        ref = str(path)
    from unlearnbench.task import hub_unreachable

    local_only = not looks_local and hub_unreachable()  # the local hub cache only: no minute of retries
    try:
        tokenizer = AutoTokenizer.from_pretrained(ref, revision=revision, local_files_only=local_only)
        model = AutoModelForCausalLM.from_pretrained(ref, revision=revision, dtype=dtype, local_files_only=local_only)
    except OSError as exc:
        raise ModelSourceError(
            f"Could not load model {source!r}: {exc}. {offline_hint}".strip()
        ) from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


@dataclass
class LoraAdapter:
    """A trained LoRA adapter apart from its base model (a CPU copy of the adapter's weights
    and its peft config), kept for ``--save-model`` after the adapter is merged."""

    config: Any  # peft.LoraConfig
    state: dict[str, torch.Tensor]

    @classmethod
    def of(cls, peft_model) -> "LoraAdapter":
        from peft import get_peft_model_state_dict

        state = {k: v.detach().to("cpu").clone() for k, v in get_peft_model_state_dict(peft_model).items()}
        return cls(peft_model.peft_config["default"], state)

    def save_pretrained(self, folder) -> None:
        """peft's layout: ``adapter_config.json`` and ``adapter_model.safetensors``."""
        from safetensors.torch import save_file

        self.config.save_pretrained(str(folder))
        save_file({k: v.contiguous() for k, v in self.state.items()}, str(Path(folder) / "adapter_model.safetensors"))


def clone_model(model):
    """A deep copy on the same device (methods never modify the model they are given)."""
    import copy

    return copy.deepcopy(model)


# ---------------------------------------------------------------------------- training loop


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 3e-3
    epochs: int = 20
    batch_size: int = 32
    warmup_fraction: float = 0.05
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    schedule: str = "cosine"  # "cosine" | "constant"


def model_config(options: dict) -> TinyLlamaConfig:
    """A TinyLlamaConfig from its JSON form (as records store it)."""
    return TinyLlamaConfig(**options)


def train_config(options: dict) -> TrainConfig:
    """A TrainConfig from its JSON form (lists back to tuples)."""
    return TrainConfig(**{**options, "betas": tuple(options.get("betas", TrainConfig.betas))})


def _lr_lambda(total: int, warmup: int, schedule: str) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        if schedule != "cosine":
            raise ValueError(f"Unknown learning-rate schedule {schedule!r}; use constant, linear or cosine.")
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return f


def train_loop(
    model,
    steps: Iterator[Any],
    n_steps: int,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    config: TrainConfig,
    *,
    description: str,
    parameters: Sequence[torch.nn.Parameter] | None = None,
    quiet: bool = False,
    accumulate: int = 1,
) -> list[float]:
    """Run ``n_steps`` optimiser steps of ``loss_fn(model, item)`` over ``steps``, each step
    accumulating the gradients of ``accumulate`` items (each loss divided by ``accumulate``:
    the step is that of the mean over the items).

    AdamW with warmup and cosine, linear or constant schedule and gradient clipping. A
    non-finite loss stops training with :class:`TrainingDivergedError` so the run is recorded
    as failed rather than silently producing a broken model. Returns the loss per step (the
    mean over its items).
    """
    params = list(parameters) if parameters is not None else [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    warmup = int(round(config.warmup_fraction * n_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(n_steps, warmup, config.schedule))
    model.train()
    losses: list[float] = []
    items = iter(steps)
    with progress_bar(description, total=n_steps, quiet=quiet) as advance:
        for step in range(n_steps):
            optimizer.zero_grad(set_to_none=True)
            total, seen = 0.0, 0
            for item in itertools.islice(items, accumulate):
                loss = loss_fn(model, item)
                value = float(loss.detach())
                if not math.isfinite(value):
                    model.eval()
                    raise TrainingDivergedError(description, step, value)
                (loss / accumulate if accumulate > 1 else loss).backward()
                total, seen = total + value / accumulate, seen + 1
            if not seen:  # the items ran out
                break
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            scheduler.step()
            step_done(model)  # --eval-every scores the model here (unlearnbench.trajectory)
            losses.append(total)
            advance(1, loss=total)
    model.eval()
    return losses


# at most this many logits (positions x vocabulary) exist at once in a training loss: 128 MB
# in float32, whatever the vocabulary and the sequence length
MAX_HEAD_ELEMENTS = 1 << 25
_HEADS: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()


def decoder_and_head(model, probe: torch.Tensor | None = None):
    """``(decoder, head)`` when the model's logits are ``head(decoder(x).last_hidden_state)``
    with a plain ``nn.Linear`` head (checked numerically once per model on ``probe``, a few
    token ids), else None (soft-capped or scaled logits, a custom head: use the full forward).
    A peft model is looked through (``get_base_model``)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = getattr(inner, "base_model", None)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if decoder is None or decoder is inner or not isinstance(head, torch.nn.Linear):
        return None
    plain = _HEADS.get(model)
    if plain is None:
        if probe is None:
            return None
        ids = probe[:1, :8]
        with torch.no_grad():
            full = model(input_ids=ids).logits.float()
            ours = head(decoder(input_ids=ids).last_hidden_state).float()
        plain = bool((ours - full).abs().max() <= 2e-2 * (1.0 + float(full.abs().max())))
        _HEADS[model] = plain
    return (decoder, head) if plain else None


def _target_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def _on_logits(fn: Callable[..., torch.Tensor], hidden: torch.Tensor, weight: torch.Tensor | None,
               bias: torch.Tensor | None, *args: torch.Tensor) -> torch.Tensor:
    logits = (hidden if weight is None else torch.nn.functional.linear(hidden, weight, bias)).float()
    return fn(logits, *args)


def head_map(fn: Callable[..., torch.Tensor], hidden: torch.Tensor, weight: torch.Tensor | None,
             bias: torch.Tensor | None, *args: torch.Tensor, max_elements: int = MAX_HEAD_ELEMENTS) -> torch.Tensor:
    """``fn(logits, *args)`` for N positions, where ``logits = hidden @ weight.T + bias`` in
    float32 (``weight=None``: ``hidden`` are the logits) and ``fn`` returns one value per
    position; ``args`` are per-position tensors ([N, ...]) sliced alongside. Computed over
    chunks of positions so that at most ``max_elements`` logits exist at once. Under autograd
    each chunk is checkpointed: its logits are freed after the forward and recomputed in the
    backward, so a loss over B x T answer tokens never holds a B x T x V tensor."""
    vocab = hidden.shape[-1] if weight is None else weight.shape[0]
    chunk = max(1, max_elements // max(1, vocab))
    grad = torch.is_grad_enabled() and (hidden.requires_grad or (weight is not None and weight.requires_grad))
    parts = []
    for start in range(0, hidden.shape[0], chunk):
        sliced = (hidden[start : start + chunk], weight, bias, *(a[start : start + chunk] for a in args))
        if grad and hidden.shape[0] > chunk:
            from torch.utils.checkpoint import checkpoint

            parts.append(checkpoint(_on_logits, fn, *sliced, use_reentrant=False))
        else:
            parts.append(_on_logits(fn, *sliced))
    return torch.cat(parts) if parts else hidden.new_zeros(0, dtype=torch.float32)


def target_logprobs(hidden: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                    targets: torch.Tensor, *, max_elements: int = MAX_HEAD_ELEMENTS) -> torch.Tensor:
    """``log softmax(hidden @ weight.T + bias)[targets]`` for N positions, in chunks
    (:func:`head_map`)."""
    return head_map(_target_logprobs, hidden, weight, bias, targets, max_elements=max_elements)


@dataclass
class AnswerStates:
    """A batch's answer positions as the output layer sees them: ``hidden`` [N, H] (the
    logits [N, V] when the model's head is not a plain linear layer; ``weight`` is then
    None), the head's ``weight`` and ``bias``, the token each position predicts
    (``targets`` [N]), the batch row it belongs to (``rows`` [N]) and its index within that
    row's answer (``index`` [N], 0 for the first answer token). Positions run row by row."""

    hidden: torch.Tensor
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    targets: torch.Tensor
    rows: torch.Tensor
    index: torch.Tensor
    counts: torch.Tensor  # answer tokens per row [B]

    def map(self, fn: Callable[..., torch.Tensor], *args: torch.Tensor,
            max_elements: int = MAX_HEAD_ELEMENTS) -> torch.Tensor:
        """``fn(logits, targets, *args)`` per answer position, in chunks (:func:`head_map`)."""
        return head_map(fn, self.hidden, self.weight, self.bias, self.targets, *args, max_elements=max_elements)

    def per_row(self, values: torch.Tensor) -> torch.Tensor:
        """The sum of per-position ``values`` over each row's answer [B]."""
        return torch.zeros(self.counts.shape[0], dtype=values.dtype, device=values.device).index_add(0, self.rows, values)


def answer_states(model, batch: dict[str, torch.Tensor]) -> AnswerStates:
    """The model's states at the batch's answer positions, before the output layer (teacher
    forced): the decoder runs once, the hidden states are sliced to the answer positions, and
    the vocabulary projection is left to :meth:`AnswerStates.map`, in chunks."""
    ids, attention = batch["input_ids"], batch["attention_mask"]
    labels = batch["labels"][:, 1:]
    mask = labels != IGNORE_INDEX
    rows, cols = mask.nonzero(as_tuple=True)
    parts = decoder_and_head(model, ids)
    if parts is None:
        states, weight, bias = model(input_ids=ids, attention_mask=attention).logits[:, :-1], None, None
    else:
        decoder, head = parts
        states, weight, bias = decoder(input_ids=ids, attention_mask=attention).last_hidden_state[:, :-1], head.weight, head.bias
    counts = mask.sum(-1)
    starts = torch.cumsum(counts, 0) - counts
    index = torch.arange(rows.shape[0], device=rows.device) - starts[rows]
    return AnswerStates(states[rows, cols], weight, bias, labels[rows, cols], rows, index, counts)


def token_logprobs(model, batch: dict[str, torch.Tensor], *,
                   max_elements: int = MAX_HEAD_ELEMENTS) -> tuple[torch.Tensor, AnswerStates]:
    """(log-probability of every answer token [N], the batch's :class:`AnswerStates`)."""
    states = answer_states(model, batch)
    return states.map(_target_logprobs, max_elements=max_elements), states


def sequence_logprobs(model, batch: dict[str, torch.Tensor], *,
                      max_elements: int = MAX_HEAD_ELEMENTS) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of answer-token log-probs, number of answer tokens) per row, teacher forced.

    The vocabulary projection is applied at the answer positions only (the hidden states are
    sliced before the head) and in checkpointed chunks (:func:`head_map`): memory grows with
    the number of answer tokens times ``max_elements``, not with B x T x V."""
    logp, states = token_logprobs(model, batch, max_elements=max_elements)
    return states.per_row(logp), states.counts


def answer_nll(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over all answer tokens of the batch (the usual LM loss)."""
    total, count = sequence_logprobs(model, batch)
    return -total.sum() / count.sum().clamp(min=1)


def tiny_llama_recipe(tokenizer, fmt: PromptFormat, model_config: TinyLlamaConfig, train_config: TrainConfig,
                      extra_rows: Sequence[dict] = (), quiet: bool = False) -> Callable[..., Any]:
    """A synthetic world's training recipe: ``train(rows, seed) -> model`` trains a tiny Llama
    from scratch on ``rows`` plus ``extra_rows`` (what every model of the world sees)."""

    def train(rows, seed: int, quiet: bool = quiet, description: str = "training", device=None):
        """``device`` (the run's, for ``retrain``): where it trains; the worlds' own target and
        oracle are built without one, on the CPU, so that every machine builds the same bytes
        (the world's folder name is part of its tasks' fingerprint)."""
        encoded = encode_rows(tokenizer, fmt, list(rows) + list(extra_rows))
        batches = QABatches(encoded, train_config.batch_size, tokenizer.pad_token_id, seed=seed)
        model = build_tiny_llama(len(tokenizer), tokenizer, model_config, seed)
        n_steps = train_config.epochs * len(batches)
        if device is None or torch.device(device).type == "cpu":
            train_loop(model, batches.forever(), n_steps, answer_nll, train_config, description=description, quiet=quiet)
            return model
        model.to(device)
        steps = ({k: v.to(device) for k, v in batch.items()} for batch in batches.forever())
        train_loop(model, steps, n_steps, answer_nll, train_config, description=description, quiet=quiet)
        return model

    return train
