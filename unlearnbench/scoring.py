"""The scoring engine: per-example statistics of (model, split), each computed once.

Metrics never touch a model. The evaluator asks this engine for teacher-forced token
statistics of (question, answer) pairs and for greedy generations; the engine deduplicates
requests across splits and metrics, batches sequences of *equal length* together (so no
padding token is ever forwarded), and keeps the results for the rest of the evaluation.

Counters record how many tokens went through the model and how many distinct tokens the
requests needed; their ratio (goal 1.0) is reported by ``benchmarks/``.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from unlearnbench.lm import PromptFormat, encode_answer, encode_prompt, scoring_dtype
from unlearnbench.progress import progress_bar


@dataclass(frozen=True)
class SequenceScores:
    """Teacher-forced statistics of one answer given its prompt (answer and end tokens only)."""

    logprobs: np.ndarray  # log p(y_t | x, y_<t), float64
    hits: np.ndarray  # argmax p(. | x, y_<t) == y_t

    @property
    def nll(self) -> float:
        """Mean per-token negative log-likelihood L(a|q)."""
        return float(-self.logprobs.mean()) if self.logprobs.size else 0.0


@dataclass
class TokenCounter:
    forwarded: int = 0  # tokens that went through the model, padding included
    unique: int = 0  # tokens of the distinct sequences the requests needed
    by_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))

    def add(self, kind: str, forwarded: int, unique: int) -> None:
        self.forwarded += forwarded
        self.unique += unique
        self.by_kind[kind][0] += forwarded
        self.by_kind[kind][1] += unique

    @property
    def ratio(self) -> float:
        return self.forwarded / self.unique if self.unique else float("nan")


class ScoringEngine:
    """Per-example statistics for one model, cached for the life of the engine."""

    def __init__(
        self,
        model,
        tokenizer,
        fmt: PromptFormat,
        device: torch.device,
        *,
        max_batch_tokens: int = 16384,
        max_batch_rows: int = 128,
        quiet: bool = False,
        label: str = "model",
    ):
        self.model, self.tokenizer, self.fmt, self.device = model.to(device).eval(), tokenizer, fmt, device
        self.max_batch_tokens, self.max_batch_rows = max_batch_tokens, max_batch_rows
        self.quiet, self.label = quiet, label
        self.counter = TokenCounter()
        self._scores: dict[tuple[str, str], SequenceScores] = {}
        self._generations: dict[tuple[str, int], str] = {}
        self.max_positions = getattr(model.config, "max_position_embeddings", None) or 2048

    # -- batching -------------------------------------------------------------------------
    def _length_batches(self, lengths: dict[int, list[int]]) -> list[list[int]]:
        """Group item indices of equal length into batches within the token budget."""
        batches = []
        for length in sorted(lengths, reverse=True):
            items = lengths[length]
            rows = max(1, min(self.max_batch_rows, self.max_batch_tokens // max(1, length)))
            batches.extend(items[i : i + rows] for i in range(0, len(items), rows))
        return batches

    def _autocast(self):
        dtype = scoring_dtype(self.device)
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    # -- teacher forcing ------------------------------------------------------------------
    def score(self, pairs: Sequence[tuple[str, str]], description: str = "scoring") -> list[SequenceScores]:
        """Statistics for each (question, answer) pair; pairs seen before are not recomputed."""
        todo = list(dict.fromkeys(p for p in pairs if p not in self._scores))
        if todo:
            encoded = []
            for question, answer in todo:
                prompt = encode_prompt(self.tokenizer, self.fmt, question)
                encoded.append((prompt + encode_answer(self.tokenizer, self.fmt, answer), len(prompt)))
            by_length: dict[int, list[int]] = defaultdict(list)
            for i, (ids, _) in enumerate(encoded):
                by_length[len(ids)].append(i)
            # what the requests need: every distinct sequence once
            self.counter.add("teacher_forced", 0, sum(len(ids) for ids, _ in encoded))
            batches = self._length_batches(by_length)
            with progress_bar(f"{description} ({self.label})", total=len(todo), quiet=self.quiet) as advance:
                for batch in batches:
                    self._score_batch([todo[i] for i in batch], [encoded[i] for i in batch])
                    advance(len(batch))
        return [self._scores[p] for p in pairs]

    @torch.no_grad()
    def _score_batch(self, keys, encoded) -> None:
        ids = torch.tensor([e[0] for e in encoded], device=self.device)
        with self._autocast():
            logits = self.model(input_ids=ids).logits
        self.counter.add("teacher_forced", ids.numel(), 0)  # what went through the model
        for row, (key, (seq, n_prompt)) in enumerate(zip(keys, encoded)):
            # position t predicts token t+1: answer tokens are predicted from n_prompt-1 onward
            pred = logits[row, n_prompt - 1 : len(seq) - 1].float()
            target = ids[row, n_prompt:]
            logp = torch.log_softmax(pred, dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
            hits = pred.argmax(-1) == target
            self._scores[key] = SequenceScores(logp.double().cpu().numpy(), hits.cpu().numpy())

    # -- generation -----------------------------------------------------------------------
    def generate(self, questions: Sequence[str], max_new_tokens: int = 200, description: str = "generating") -> list[str]:
        """Greedy answers. Prompts of equal length are decoded together with a KV cache, and a
        row leaves the batch as soon as it emits the end token."""
        todo = list(dict.fromkeys(q for q in questions if (q, max_new_tokens) not in self._generations))
        if todo:
            prompts = [encode_prompt(self.tokenizer, self.fmt, q) for q in todo]
            by_length: dict[int, list[int]] = defaultdict(list)
            for i, p in enumerate(prompts):
                by_length[len(p)].append(i)
            with progress_bar(f"{description} ({self.label})", total=len(todo), quiet=self.quiet) as advance:
                for batch in self._length_batches(by_length):
                    outs = self._generate_batch([prompts[i] for i in batch], max_new_tokens)
                    for i, out in zip(batch, outs):
                        self._generations[(todo[i], max_new_tokens)] = out
                    advance(len(batch))
        return [self._generations[(q, max_new_tokens)] for q in questions]

    @torch.no_grad()
    def _generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        eos = self.tokenizer.eos_token_id
        ids = torch.tensor(prompts, device=self.device)
        budget = max(0, min(max_new_tokens, self.max_positions - ids.shape[1]))
        generated: list[list[int]] = [[] for _ in prompts]
        if budget == 0:
            return ["" for _ in prompts]
        with self._autocast():
            out = self.model(input_ids=ids, use_cache=True)
        forwarded = ids.numel()
        cache, active = out.past_key_values, torch.arange(len(prompts), device=self.device)
        next_tokens = out.logits[:, -1].argmax(-1)
        for step in range(budget):
            for row, tok in zip(active.tolist(), next_tokens.tolist()):
                generated[row].append(tok)
            keep = next_tokens != eos
            if step == budget - 1 or not bool(keep.any()):
                break
            if not bool(keep.all()):
                index = keep.nonzero().squeeze(-1)
                cache.batch_select_indices(index)
                active, next_tokens = active[index], next_tokens[index]
            with self._autocast():
                out = self.model(input_ids=next_tokens.unsqueeze(-1), past_key_values=cache, use_cache=True)
            forwarded += next_tokens.numel()
            cache, next_tokens = out.past_key_values, out.logits[:, -1].argmax(-1)
        # every token but the last one of a row had to be forwarded: prompt + generated - 1
        unique = sum(len(p) + len(g) - 1 for p, g in zip(prompts, generated))
        self.counter.add("generation", forwarded, unique)
        texts = []
        for g in generated:
            if g and g[-1] == eos:
                g = g[:-1]
            texts.append(self.tokenizer.decode(g, skip_special_tokens=True).strip())
        return texts
