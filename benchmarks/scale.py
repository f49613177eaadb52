"""Peak memory and time of scoring and of one NPO step at real vocabulary sizes and lengths.

    python benchmarks/scale.py            # vocabularies 32,000 and 128,256 x lengths 256 and 2048
    python benchmarks/scale.py --naive    # also the naive full log-softmax loss, where it fits

A random-initialised Llama (hidden 256, 2 layers: small enough for a CPU, with a real-sized
vocabulary) scores a batch of 2 sequences whose tokens are all answer tokens (MUSE's text
windows) through the scoring engine, and takes one NPO step (reference log-probabilities
computed once beforehand, the loss at answer positions through the chunked head, backward,
AdamW; a warm-up step first, so that the gradients and the optimiser state, which scale with
the parameters, already exist and the peak is what the loss itself needs).
Each measurement runs in its own process; the peak is the largest resident set sampled every
2 ms during the measured work, less the resident set just before it (the model, its data and
the interpreter). The last column is what one float32 batch x length x vocabulary tensor
would take: a full log-softmax loss holds several (logits, log-probabilities, their
gradients). Figures are printed, never asserted; run nothing else heavy meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

BATCH = 2
PROMPT = 16
SHAPES = [(32_000, 256), (32_000, 2048), (128_256, 256), (128_256, 2048)]
NAIVE_LIMIT = 2 * 10**9  # bytes of one full B x T x V float32 tensor above which the naive loss is not run


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """The largest resident set seen while the block runs, sampled from a thread."""

    def __enter__(self):
        self.start, self.peak, self._stop = _rss(), _rss(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def _model(vocab: int, length: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=length + 8,
                      tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval()


def _encoded(vocab: int, length: int):
    import torch

    gen = torch.Generator().manual_seed(1)
    return [(torch.randint(3, vocab, (length,), generator=gen).tolist(), PROMPT) for _ in range(BATCH)]


def child(job: str, vocab: int, length: int) -> dict:
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model, encoded = _model(vocab, length), _encoded(vocab, length)
    cpu = torch.device("cpu")
    if job == "score":
        from unlearnbench.lm.prompts import PromptFormat
        from unlearnbench.lm.scoring import ScoringEngine

        class _Tok:  # the engine only needs ids here; nothing is tokenized
            eos_token_id, bos_token_id, unk_token_id, unk_token = 2, 1, 0, "<unk>"

            def convert_tokens_to_ids(self, token):
                return 0

        engine = ScoringEngine(model, _Tok(), PromptFormat(), cpu, quiet=True)
        engine._score_batch([("warm-up", "")], encoded[:1])  # the engine checks the head once, on its first batch
        with PeakRSS() as peak:
            t = time.perf_counter()
            engine._score_batch([(str(i), "") for i in range(BATCH)], encoded)
            seconds = time.perf_counter() - t
    else:
        from unlearnbench.lm.modeling import collate
        from unlearnbench.method import ReferenceLogprobs
        from unlearnbench.registry import method

        npo = method("npo", "language_model").obj()
        params = npo.Params(alpha=0.0)
        batch = collate(encoded, 0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def naive_loss(m, b):  # the full B x T x V log-softmax this harness avoids
            logits = m(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
            labels = b["labels"][:, 1:]
            logp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            return -(logp * (labels != -100)).sum()

        reference = ReferenceLogprobs(model, encoded, cpu, BATCH, 0)
        model.train()

        def step():
            loss = npo.loss(model, batch, None, reference, params) if job == "npo_step" else naive_loss(model, batch)
            optimizer.zero_grad(set_to_none=False)
            loss.backward()
            optimizer.step()

        step()  # warm-up: gradients and AdamW's state exist before the measured step (they scale with the
        # parameters, not with batch x length x vocabulary)
        with PeakRSS() as peak:
            t = time.perf_counter()
            step()
            seconds = time.perf_counter() - t
    return {"job": job, "vocab": vocab, "length": length, "seconds": seconds, "peak_mb": peak.delta_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--naive", action="store_true", help="also measure the naive full log-softmax loss")
    parser.add_argument("--child", nargs=3, metavar=("JOB", "VOCAB", "LENGTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job, vocab, length = args.child
        print(json.dumps(child(job, int(vocab), int(length))))
        return
    root = Path(__file__).resolve().parent.parent
    jobs = ["score", "npo_step"] + (["naive_step"] if args.naive else [])
    print(f"random Llama (hidden 256, 2 layers), batch {BATCH}, every token but the first {PROMPT} an answer token; "
          f"{os.cpu_count()} CPU threads")
    header = f"{'vocab':>8} {'length':>6} {'job':>10} {'seconds':>8} {'peak MB':>8} {'one B*T*V fp32 MB':>18}"
    print(header)
    print("-" * len(header))
    for vocab, length in SHAPES:
        full_mb = BATCH * length * vocab * 4 / 2**20
        for job in jobs:
            if job == "naive_step" and full_mb * 2**20 > NAIVE_LIMIT:
                print(f"{vocab:>8} {length:>6} {job:>10} {'-':>8} {'-':>8} {full_mb:>18.0f}  (not run: several such tensors)")
                continue
            out = subprocess.run([sys.executable, __file__, "--child", job, str(vocab), str(length)], cwd=root,
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{vocab:>8} {length:>6} {job:>10} {r['seconds']:>8.2f} {r['peak_mb']:>8.0f} {full_mb:>18.0f}", flush=True)


if __name__ == "__main__":
    main()
