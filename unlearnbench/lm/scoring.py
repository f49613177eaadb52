"""The scoring engine: per-example statistics of (model, split), each computed once.

Metrics never touch a model. The evaluator asks this engine for teacher-forced token
statistics of (question, answer) pairs (log-probability of each answer token, whether the
argmax hits it, and the mean and standard deviation of log p(v) under the model's full
next-token distribution, which Min-K%++ needs), for greedy generations and for per-example
gradient norms. The engine deduplicates requests across splits and metrics, batches
sequences of similar length together (length buckets whose padding stays within
``max_padding`` of their tokens: right padding, masked, for teacher forcing and GradNorm; left
padding for generation; ``max_padding=0`` batches equal lengths only), and keeps the results
for the rest of the evaluation.

The vocabulary projection is applied only at the answer positions and in chunks over the
vocabulary (:func:`next_token_statistics`), so no batch x length x vocabulary tensor is held
whole: what a 7B model with a 128k vocabulary needs on one GPU.

Counters record how many tokens went through the model (padding included) and how many
distinct tokens the requests needed, the forward calls and the wall time of each kind of
work; ``benchmarks/default_run.py`` prints them. GradNorm's backward passes are counted under
their own kind and kept out of the forwarded / unique totals.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from unlearnbench.lm.modeling import IGNORE_INDEX, decoder_and_head, sequence_logprobs
from unlearnbench.lm.prompts import PromptFormat, encode_prompt, encode_qa, stop_ids
from unlearnbench.errors import UserError
from unlearnbench.progress import progress_bar


# Kinds of work that need more than one forward pass by nature (GradNorm's backward), kept
# out of the forwarded/unique ratio and reported on their own.
EXTRA_KINDS = ("gradnorm", "hidden_states")


def next_token_statistics(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                          targets: torch.Tensor, *, max_elements: int = 1 << 24):
    """Token statistics of ``softmax(hidden @ weight.T + bias)`` without the full logits.

    ``hidden`` (N, H) holds the final hidden states at N positions, ``weight`` (V, H) the
    output embedding, ``targets`` (N,) the next tokens. With ``weight=None``, ``hidden`` is
    taken to be the logits themselves (N, V) and is only visited in chunks. Returns float64 tensors
    ``(logp_target, hit, mu, sigma)``: log p of the target, whether it is the argmax,
    ``mu = E_{v~p}[log p(v)]`` and ``sigma = std_{v~p}[log p(v)]`` (Min-K%++, Zhang et al.,
    2024). The vocabulary is visited in chunks of at most ``max_elements / N`` columns with
    an online log-sum-exp: per position we keep the running maximum ``m`` and the sums
    ``s_j = sum_v e^{l_v - m} (l_v - m)^j`` for j = 0, 1, 2, rescaled when ``m`` grows. Then
    ``log Z = m + log s0``, ``mu = s1/s0 - log s0`` and ``sigma^2 = s2/s0 - (s1/s0)^2``.
    """
    n, vocab = hidden.shape[0], (weight.shape[0] if weight is not None else hidden.shape[1])
    chunk = max(1, min(vocab, max_elements // max(1, n)))
    h = hidden.float()
    m = s0 = s1 = s2 = best = best_idx = target_logit = None
    for start in range(0, vocab, chunk):
        if weight is None:
            logits = h[:, start : start + chunk]
        else:
            logits = h @ weight[start : start + chunk].float().T
        if bias is not None:
            logits = logits + bias[start : start + chunk].float()
        logits = logits.double()
        chunk_max, chunk_arg = logits.max(-1)
        in_chunk = (targets >= start) & (targets < start + logits.shape[1])
        picked = logits.gather(-1, (targets - start).clamp(0, logits.shape[1] - 1).unsqueeze(-1)).squeeze(-1)
        if m is None:
            m = chunk_max
            x = logits - m.unsqueeze(-1)
            e = x.exp()
            s0, s1, s2 = e.sum(-1), (e * x).sum(-1), (e * x * x).sum(-1)
            best, best_idx = chunk_max, chunk_arg + start
            target_logit = torch.where(in_chunk, picked, torch.zeros_like(picked))
            continue
        new_m = torch.maximum(m, chunk_max)
        d = m - new_m  # <= 0: shift the old sums to the new maximum
        scale = d.exp()
        s2 = scale * (s2 + 2 * d * s1 + d * d * s0)
        s1 = scale * (s1 + d * s0)
        s0 = scale * s0
        x = logits - new_m.unsqueeze(-1)
        e = x.exp()
        s0, s1, s2 = s0 + e.sum(-1), s1 + (e * x).sum(-1), s2 + (e * x * x).sum(-1)
        m = new_m
        better = chunk_max > best  # strict: the first maximum wins, as in torch.argmax
        best, best_idx = torch.where(better, chunk_max, best), torch.where(better, chunk_arg + start, best_idx)
        target_logit = torch.where(in_chunk, picked, target_logit)
    log_s0 = s0.log()
    logp_target = target_logit - m - log_s0
    mean_x = s1 / s0
    mu = mean_x - log_s0
    sigma = (s2 / s0 - mean_x * mean_x).clamp(min=0).sqrt()
    return logp_target, best_idx == targets, mu, sigma


def _cache_keyword(model) -> str:
    """The keyword a model's forward takes its key/value cache by: transformers 5 renamed
    ``past_key_values`` to ``cache`` (the old name is deprecated and warns on every call)."""
    try:
        return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    except (TypeError, ValueError):
        return "past_key_values"


def _returned_cache(out):
    return out["cache"] if "cache" in out.keys() else out.past_key_values


@dataclass(frozen=True)
class SequenceScores:
    """Teacher-forced statistics of one answer given its prompt: every answer token and the
    end token(s) after it (``n_end`` of them at the end: the format's end-of-turn / EOS ids).

    The NLL (probability, truth ratio, the LOSS attack) covers the end token, as TOFU defines
    it; the ``text_*`` views leave it out, for what is defined over the answer's own tokens
    (exact memorization, extraction strength, Min-K%, Min-K%++)."""

    logprobs: np.ndarray  # log p(y_t | x, y_<t), float64
    hits: np.ndarray  # argmax p(. | x, y_<t) == y_t
    mu: np.ndarray | None = None  # E_{v~p}[log p(v)] of the same next-token distribution
    sigma: np.ndarray | None = None  # std of log p(v) under p
    n_end: int = 0  # trailing end tokens (0 when the text was cut at the model's context)

    @property
    def nll(self) -> float:
        """Mean per-token negative log-likelihood L(a|q)."""
        return float(-self.logprobs.mean()) if self.logprobs.size else 0.0

    def _text(self, values):
        return None if values is None else values[: len(values) - self.n_end]

    @property
    def text_logprobs(self) -> np.ndarray:
        return self._text(self.logprobs)

    @property
    def text_hits(self) -> np.ndarray:
        return self._text(self.hits)

    @property
    def text_mu(self):
        return self._text(self.mu)

    @property
    def text_sigma(self):
        return self._text(self.sigma)


@dataclass
class TokenCounter:
    forwarded: int = 0  # tokens that went through the model, padding included
    unique: int = 0  # tokens of the distinct sequences the requests needed
    by_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # forward calls (batches) per kind
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # wall time per kind

    def add(self, kind: str, forwarded: int, unique: int, calls: int = 0) -> None:
        if kind not in EXTRA_KINDS:
            self.forwarded += forwarded
            self.unique += unique
        self.by_kind[kind][0] += forwarded
        self.by_kind[kind][1] += unique
        if calls:
            self.calls[kind] += calls

    @contextlib.contextmanager
    def timed(self, kind: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[kind] += time.perf_counter() - start

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
        max_head_elements: int = 1 << 24,
        max_gradient_elements: int = 1 << 26,
        gradnorm_params: str = "auto",
        gradnorm_norm: str = "mean-tensor",
        max_padding: float = 0.25,
        quiet: bool = False,
        label: str = "model",
    ):
        # scoring runs in the weights' own dtype (--dtype): nothing is cast on the fly
        self.model, self.tokenizer, self.fmt, self.device = model.to(device).eval(), tokenizer, fmt, device
        self.max_batch_tokens, self.max_batch_rows = max_batch_tokens, max_batch_rows
        self.max_padding = max_padding  # at most this share of a batch's tokens is padding (0: equal lengths only)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.quiet, self.label = quiet, label
        self.counter = TokenCounter()
        self._scores: dict[tuple[str, str], SequenceScores] = {}
        self._generations: dict[tuple[str, int], str] = {}
        self.max_positions = getattr(model.config, "max_position_embeddings", None) or 2048
        self.max_head_elements = max_head_elements
        self._plain_head: bool | None = None  # decided on the first batch
        self._gradnorms: dict[tuple[str, str], float] = {}
        self.batched_gradients = True  # switched off if the model cannot go through torch.func.vmap
        self.max_gradient_elements = max_gradient_elements
        self.gradnorm_params = gradnorm_params
        if gradnorm_norm not in GRADNORM_NORMS:
            raise UserError(f"--gradnorm-norm {gradnorm_norm!r}: use {' or '.join(GRADNORM_NORMS)}.")
        self.gradnorm_norm = gradnorm_norm
        self.stop = stop_ids(tokenizer, fmt, getattr(model, "generation_config", None))

    # -- batching -------------------------------------------------------------------------
    def _length_batches(self, lengths: dict[int, list[int]], max_rows: int | None = None) -> list[list[int]]:
        """Group item indices of equal length into batches within the token budget."""
        batches = []
        for length in sorted(lengths, reverse=True):
            items = lengths[length]
            rows = max(1, min(self.max_batch_rows, max_rows or self.max_batch_rows, self.max_batch_tokens // max(1, length)))
            batches.extend(items[i : i + rows] for i in range(0, len(items), rows))
        return batches

    def _buckets(self, lengths: Sequence[int], max_rows: int | None = None) -> list[list[int]]:
        """Item indices in batches of similar length: longest first, a batch grows while its
        padded size fits the token budget and its padding stays within ``max_padding`` of its
        tokens. Fewer, fuller forward calls than equal-length batches; ``max_padding=0`` gives
        equal-length batches (no padding at all)."""
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        limit = max_rows or self.max_batch_rows
        batches: list[list[int]] = []
        batch: list[int] = []
        width = total = 0
        for i in order:
            n = lengths[i]
            if batch:
                rows = len(batch) + 1
                fits = rows <= min(limit, self.max_batch_rows) and rows * width <= self.max_batch_tokens
                padding = rows * width - (total + n)
                if fits and padding <= self.max_padding * rows * width:
                    batch.append(i)
                    total += n
                    continue
                batches.append(batch)
            batch, width, total = [i], n, n
        if batch:
            batches.append(batch)
        return batches

    def _right_padded(self, seqs: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(ids, attention mask) with padding on the right; the mask is None when no row is
        padded (the forward pass then is exactly the unpadded one)."""
        width = max(len(q) for q in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, q in enumerate(seqs):
            ids[row, : len(q)] = torch.tensor(q)
            mask[row, : len(q)] = 1
        padded = bool((mask == 0).any())
        return ids.to(self.device), (mask.to(self.device) if padded else None)

    def _out_of_memory(self, what: str) -> UserError:
        return UserError(f"Out of {self.device.type.upper()} memory while {what} ({self.label}). Lower "
                         f"--score-batch-tokens (now {self.max_batch_tokens}) or use --dtype bf16.")

    # -- teacher forcing ------------------------------------------------------------------
    def score(self, pairs: Sequence[tuple[str, str]], description: str = "scoring") -> list[SequenceScores]:
        """Statistics for each (question, answer) pair; pairs seen before are not recomputed."""
        todo = list(dict.fromkeys(p for p in pairs if p not in self._scores))
        if todo:
            encoded = [self._encode(q, a) for q, a in todo]
            # what the requests need: every distinct sequence once
            self.counter.add("teacher_forced", 0, sum(len(ids) for ids, _ in encoded))
            batches = self._buckets([len(ids) for ids, _ in encoded])
            with progress_bar(f"{description} ({self.label})", total=len(todo), quiet=self.quiet) as advance, \
                    self.counter.timed("teacher_forced"):
                for batch in batches:
                    try:
                        self._score_batch([todo[i] for i in batch], [encoded[i] for i in batch])
                    except torch.OutOfMemoryError:
                        raise self._out_of_memory("scoring") from None
                    advance(len(batch))
        return [self._scores[p] for p in pairs]

    def _final_hidden(self, ids: torch.Tensor, mask: torch.Tensor | None = None):
        """``(last hidden state, head)`` when the logits are a plain linear map of the
        decoder's output (:func:`~unlearnbench.lm.modeling.decoder_and_head`, the check the
        training losses use, done once per model); None for heads with soft-capping, logit
        scaling or anything else, which then go through the full forward."""
        if self._plain_head is False:
            return None
        parts = decoder_and_head(self.model, ids[:1])  # row 0 is the batch's longest: no padding
        self._plain_head = parts is not None
        if parts is None:
            return None
        decoder, head = parts
        return decoder(input_ids=ids, attention_mask=mask).last_hidden_state, head

    def _n_end(self, seq: list[int], n_prompt: int) -> int:
        """How many of the answer's last tokens are end tokens (stop ids)."""
        n = 0
        while n < len(seq) - n_prompt and seq[len(seq) - 1 - n] in self.stop:
            n += 1
        return n

    def _encode(self, question: str, answer: str) -> tuple[list[int], int]:
        ids, n_prompt = encode_qa(self.tokenizer, self.fmt, question, answer)
        if n_prompt >= self.max_positions:
            raise ValueError(f"A prompt of {n_prompt} tokens does not fit the model's "
                             f"{self.max_positions} positions: {question[:60]!r}...")
        # texts longer than the model's context are scored on their first max_positions tokens
        return ids[: self.max_positions], n_prompt

    @torch.no_grad()
    def _score_batch(self, keys, encoded) -> None:
        # right padding: a causal model's real positions never see it; the mask keeps it out of
        # attention anyway, and only real answer positions are read below
        ids, mask = self._right_padded([e[0] for e in encoded])
        found = self._final_hidden(ids, mask)
        if found is None:
            # any other head: full logits, then the same statistics from an identity "head"
            hidden = self.model(input_ids=ids, attention_mask=mask).logits.float()
            weight, bias = None, None
        else:
            hidden, head = found
            weight, bias = head.weight, head.bias
        self.counter.add("teacher_forced", ids.numel(), 0, calls=1)  # what went through the model, padding included
        # position t predicts token t+1: answer tokens are predicted from n_prompt-1 onward
        spans = [(n_prompt - 1, len(seq) - 1) for seq, n_prompt in encoded]
        positions = torch.cat([hidden[row, a:b] for row, (a, b) in enumerate(spans)])
        targets = torch.cat([ids[row, a + 1 : b + 1] for row, (a, b) in enumerate(spans)])
        stats = next_token_statistics(positions, weight, bias, targets, max_elements=self.max_head_elements)
        logp, hits, mu, sigma = (t.cpu().numpy() for t in stats)
        offset = 0
        for key, (a, b), (seq, n_prompt) in zip(keys, spans, encoded):
            n = b - a
            part = slice(offset, offset + n)
            self._scores[key] = SequenceScores(logp[part], hits[part], mu[part], sigma[part],
                                               n_end=self._n_end(seq, n_prompt))
            offset += n

    # -- gradient norms ---------------------------------------------------------------
    def gradient_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The parameters GradNorm differentiates, by name (:func:`gradnorm_subset`)."""
        return gradnorm_subset(self.model, self.gradnorm_params)

    def gradnorms(self, pairs: Sequence[tuple[str, str]], description: str = "gradient norms") -> list[float]:
        """Per-example L2 norm of the gradient of the mean answer NLL w.r.t. the parameters of
        :meth:`gradient_parameters` (the GradNorm attack). Equal-length examples share one
        vectorised ``torch.func`` call (per-example gradients at once) when the model allows it
        and the gradients fit the memory budget; otherwise one backward pass per example.
        Running out of memory is an error that says what to lower, never a silent fallback."""
        todo = list(dict.fromkeys(p for p in pairs if p not in self._gradnorms))
        if todo:
            encoded = [self._encode(q, a) for q, a in todo]
            n_params = sum(p.numel() for p in self.gradient_parameters().values())
            # per-example gradients of a whole batch are held at once: rows x parameters
            batches = self._buckets([len(ids) for ids, _ in encoded], max(1, self.max_gradient_elements // max(1, n_params)))
            self.counter.add("gradnorm", 0, sum(len(ids) for ids, _ in encoded))
            with progress_bar(f"{description} ({self.label})", total=len(todo), quiet=self.quiet) as advance, \
                    self.counter.timed("gradnorm"):
                for batch in batches:
                    try:
                        norms = self._gradnorm_batch([encoded[i] for i in batch])
                    except torch.OutOfMemoryError:
                        raise UserError(f"Out of {self.device.type.upper()} memory while computing GradNorm's "
                                        f"per-example gradients ({self.label}, parameters {self.gradnorm_params!r}). "
                                        "Restrict them with --gradnorm-params last-block (or head), or leave the "
                                        "privacy lens out (--lens -privacy).") from None
                    for i, norm in zip(batch, norms):
                        self._gradnorms[todo[i]] = norm
                    advance(len(batch))
        return [self._gradnorms[p] for p in pairs]

    def _gradnorm_batch(self, encoded) -> list[float]:
        # right padding needs no attention mask here: the loss reads answer positions only, and
        # a causal model's real positions never see the padding after them
        ids, _ = self._right_padded([e[0] for e in encoded])
        mask = torch.zeros(ids.shape[0], ids.shape[1] - 1, device=self.device)
        for row, (seq, n_prompt) in enumerate(encoded):  # the answer's own tokens: end tokens left out
            mask[row, n_prompt - 1 : len(seq) - 1 - self._n_end(seq, n_prompt)] = 1.0
        self.counter.add("gradnorm", ids.numel(), 0, calls=1)
        if self.batched_gradients and len(encoded) > 1:
            try:
                return self._gradnorm_vmap(ids, mask)
            except torch.OutOfMemoryError:
                raise
            except (RuntimeError, NotImplementedError, TypeError, ValueError):
                # an op without a batching rule, data-dependent control flow: one backward per
                # example from now on (same numbers, slower); memory errors are not caught here
                self.batched_gradients = False
        return [self._gradnorm_single(ids[r : r + 1, : len(seq)], mask[r : r + 1, : len(seq) - 1])
                for r, (seq, _) in enumerate(encoded)]

    def _nll(self, logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(logits[..., :-1, :].float(), -1).gather(-1, ids[..., 1:].unsqueeze(-1)).squeeze(-1)
        return -(logp * mask).sum(-1) / mask.sum(-1)

    def _gradnorm_vmap(self, ids: torch.Tensor, mask: torch.Tensor) -> list[float]:
        from torch.func import functional_call, grad, vmap

        chosen = self.gradient_parameters()
        params = {k: v.detach() for k, v in chosen.items()}
        frozen = {k: v.detach() for k, v in self.model.named_parameters() if k not in chosen}
        buffers = {**dict(self.model.named_buffers()), **frozen}

        def loss(p, row_ids, row_mask):
            logits = functional_call(self.model, (p, buffers), (row_ids.unsqueeze(0),)).logits[0]
            return self._nll(logits, row_ids, row_mask)

        with warnings.catch_warnings():
            # attention kernels without a batching rule fall back to a loop inside vmap: slower, still right
            warnings.filterwarnings("ignore", message="There is a performance drop")
            grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, ids, mask)
        per_tensor = torch.stack([g.float().pow(2).flatten(1).sum(1) for g in grads.values()])  # [tensors, rows]
        return self._norm(per_tensor).tolist()

    def _norm(self, squared: torch.Tensor) -> torch.Tensor:
        """The gradient's size from each parameter tensor's squared L2 norm (dim 0: tensors):
        ``mean-tensor`` (the default): the mean over tensors of each tensor's L2 norm, as the
        attack's reference code (MIMIR, after Duan et al. 2024) and open-unlearning take it;
        ``global``: the L2 norm of all parameters at once."""
        if self.gradnorm_norm == "global":
            return squared.sum(0).sqrt()
        return squared.sqrt().mean(0)

    def _gradnorm_single(self, ids: torch.Tensor, mask: torch.Tensor) -> float:
        """One backward pass; the loss goes through the answer-position, chunked head of
        :func:`~unlearnbench.lm.modeling.sequence_logprobs` (no T x V log-softmax)."""
        params = list(self.gradient_parameters().values())
        labels = torch.full_like(ids, IGNORE_INDEX)
        labels[:, 1:] = torch.where(mask.bool(), ids[:, 1:], labels[:, 1:])
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
        with torch.enable_grad():
            total, count = sequence_logprobs(self.model, batch)
            grads = torch.autograd.grad(-(total / count).sum(), params)
        return float(self._norm(torch.stack([g.float().pow(2).sum() for g in grads])))

    # -- hidden states ------------------------------------------------------------------
    @torch.no_grad()
    def hidden_states(self, items: Sequence[tuple[str, str]], description: str = "hidden states") -> np.ndarray:
        """The residual stream at the last token of each (question, answer prefix), every
        layer: ``[n, n_layers + 1, hidden]`` float32 (index 0 is the embedding output). What a
        probe reads: the state from which the model would say what comes next (an empty
        prefix: the start of its answer). Equal-length inputs share a forward pass; counted
        outside the forward-token ratio."""
        prompts = [encode_prompt(self.tokenizer, self.fmt, q)
                   + (self.tokenizer(self.fmt.answer_prefix + p, add_special_tokens=False)["input_ids"] if p else [])
                   for q, p in items]
        by_length: dict[int, list[int]] = defaultdict(list)
        for i, p in enumerate(prompts):
            by_length[len(p)].append(i)
        out: list[np.ndarray | None] = [None] * len(prompts)
        with progress_bar(f"{description} ({self.label})", total=len(prompts), quiet=self.quiet) as advance:
            for batch in self._length_batches(by_length):
                ids = torch.tensor([prompts[i] for i in batch], device=self.device)
                states = self.model(input_ids=ids, output_hidden_states=True).hidden_states
                last = torch.stack([h[:, -1].float() for h in states], dim=1).cpu().numpy()
                self.counter.add("hidden_states", ids.numel(), ids.numel())
                for row, i in enumerate(batch):
                    out[i] = last[row]
                advance(len(batch))
        return np.stack(out) if out else np.zeros((0, 0, 0), dtype=np.float32)

    # -- generation -----------------------------------------------------------------------
    def generate(self, questions: Sequence[str], max_new_tokens: int = 200, description: str = "generating") -> list[str]:
        """Greedy answers. Prompts of similar length are decoded together with a KV cache (left
        padded, masked, with positions counted from each row's first real token), and a row
        leaves the batch as soon as it emits one of the stop ids (:func:`stop_ids`: the
        format's end-of-turn token, EOS and every ``generation_config.eos_token_id``)."""
        todo = list(dict.fromkeys(q for q in questions if (q, max_new_tokens) not in self._generations))
        if todo:
            prompts = [encode_prompt(self.tokenizer, self.fmt, q) for q in todo]
            with progress_bar(f"{description} ({self.label})", total=len(todo), quiet=self.quiet) as advance, \
                    self.counter.timed("generation"):
                for batch in self._buckets([len(p) for p in prompts]):
                    outs = self._generate_batch([prompts[i] for i in batch], max_new_tokens)
                    for i, out in zip(batch, outs):
                        self._generations[(todo[i], max_new_tokens)] = out
                    advance(len(batch))
        return [self._generations[(q, max_new_tokens)] for q in questions]

    @torch.no_grad()
    def _generate_batch(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        try:
            return self._greedy(prompts, max_new_tokens)
        except torch.OutOfMemoryError:
            raise self._out_of_memory("generating") from None

    def _greedy(self, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
        stop = torch.tensor(sorted(self.stop), device=self.device)
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):  # left padding: every row's next token is at the end
            ids[row, width - len(p):] = torch.tensor(p)
            mask[row, width - len(p):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        padded = bool((mask == 0).any())
        budget = max(0, min(max_new_tokens, self.max_positions - width))
        generated: list[list[int]] = [[] for _ in prompts]
        if budget == 0:
            return ["" for _ in prompts]
        extra = {}
        if padded:  # equal lengths go through exactly the unpadded call
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            extra = {"attention_mask": mask, "position_ids": positions}
            next_position = positions[:, -1] + 1
        out = self.model(input_ids=ids, use_cache=True, **extra)
        forwarded, calls = ids.numel(), 1
        cache_keyword = _cache_keyword(self.model)
        cache, active = _returned_cache(out), torch.arange(len(prompts), device=self.device)
        next_tokens = out.logits[:, -1].argmax(-1)
        for step in range(budget):
            for row, tok in zip(active.tolist(), next_tokens.tolist()):
                generated[row].append(tok)
            keep = ~torch.isin(next_tokens, stop)
            if step == budget - 1 or not bool(keep.any()):
                break
            if not bool(keep.all()):
                index = keep.nonzero().squeeze(-1)
                cache.batch_select_indices(index)
                active, next_tokens = active[index], next_tokens[index]
                if padded:
                    mask, next_position = mask[index], next_position[index]
            if padded:
                mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
                extra = {"attention_mask": mask, "position_ids": next_position.unsqueeze(-1)}
                next_position = next_position + 1
            out = self.model(input_ids=next_tokens.unsqueeze(-1), use_cache=True, **{cache_keyword: cache}, **extra)
            forwarded, calls = forwarded + next_tokens.numel(), calls + 1
            cache, next_tokens = _returned_cache(out), out.logits[:, -1].argmax(-1)
        # every token but the last one of a row had to be forwarded: prompt + generated - 1
        unique = sum(len(p) + len(g) - 1 for p, g in zip(prompts, generated))
        self.counter.add("generation", forwarded, unique, calls=calls)
        texts = []
        for g in generated:
            if g and g[-1] in self.stop:
                g = g[:-1]
            texts.append(self.tokenizer.decode(g, skip_special_tokens=True).strip())
        return texts


GRADNORM_NORMS = ("mean-tensor", "global")

# parameters above which "auto" restricts GradNorm to the last decoder block (a full per-example
# gradient of an 8B model is 16 GB in bf16, one backward pass each)
GRADNORM_ALL_LIMIT = 2_000_000_000


def gradnorm_subset(model, spec: str = "auto") -> dict[str, torch.nn.Parameter]:
    """The trainable parameters GradNorm differentiates: ``all``; ``last-block`` (the last
    decoder layer and the final norm); ``head`` (the output embedding); ``re:<pattern>``
    (names matching a regular expression); ``auto``: ``all`` up to
    :data:`GRADNORM_ALL_LIMIT` parameters, ``last-block`` above. The choice is part of the
    reference-score cache key and of the record (``model.scoring``)."""
    import re

    named = {k: v for k, v in model.named_parameters() if v.requires_grad}
    if not named:
        raise UserError("GradNorm needs trainable parameters, and this model has none (requires_grad is off "
                        "everywhere): leave the privacy lens out (--lens -privacy) or load it as trainable.")
    if spec == "auto":
        spec = "all" if sum(v.numel() for v in named.values()) <= GRADNORM_ALL_LIMIT else "last-block"
    if spec == "all":
        return named
    if spec == "head":
        head = model.get_output_embeddings()
        chosen = {k: v for k, v in named.items() if any(v is p for p in head.parameters())}
    elif spec == "last-block":
        layers = sorted({int(m.group(1)) for k in named for m in [re.search(r"\.layers\.(\d+)\.", k)] if m})
        if not layers:
            raise UserError("--gradnorm-params last-block: the model has no '.layers.<n>.' parameters; "
                            "use all, head or re:<pattern>.")
        last = f".layers.{layers[-1]}."
        chosen = {k: v for k, v in named.items() if last in k or re.search(r"(^|\.)norm\.weight$", k)}
    elif spec.startswith("re:"):
        pattern = re.compile(spec[3:])
        chosen = {k: v for k, v in named.items() if pattern.search(k)}
    else:
        raise UserError(f"--gradnorm-params {spec!r}: use auto, all, last-block, head or re:<pattern>.")
    if not chosen:
        raise UserError(f"--gradnorm-params {spec!r} selects no trainable parameter of this model.")
    return chosen
