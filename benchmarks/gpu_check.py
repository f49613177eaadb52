"""The GPU check of real-model scale (one script, under 10 minutes on one H200):

1. the full TOFU suite (the default lenses) through the real ``tofu/forget10`` task on a
   random-initialised 1B-shaped Llama (Llama-3.2-1B's shape, vocabulary 128,256) in bf16,
   with the llama3-chat prompt preset; the data are the synthetic TOFU world's files, read
   through ``--data-dir`` as the real task reads the hub's;
2. NPO with the memory policy (bf16, reference log-probabilities computed once, loss at
   answer positions through the chunked head, gradient checkpointing, 8 x 4 accumulation) on
   an 8B-shaped Llama (Llama-3.1-8B's shape) for a few optimiser steps.

Each prints its wall time and ``torch.cuda.max_memory_allocated``.

    python benchmarks/gpu_check.py            # on a GPU
    python benchmarks/gpu_check.py --smoke    # the same code paths on the CPU with tiny shapes
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

VOCAB = 128_256
SHAPES = {  # hidden, layers, heads, kv heads, intermediate
    "1b": (2048, 16, 32, 8, 8192),
    "8b": (4096, 32, 32, 8, 14336),
    "smoke": (64, 2, 4, 2, 128),
}
SPECIAL = {128_000: "<|begin_of_text|>", 128_001: "<|end_of_text|>", 128_006: "<|start_header_id|>",
           128_007: "<|end_header_id|>", 128_009: "<|eot_id|>"}


def llama3_tokenizer(words):
    """A word-level tokenizer with Llama-3's vocabulary size and special-token ids."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(dict.fromkeys(["<unk>", *words]))}
    for i in range(len(vocab), VOCAB):
        vocab.setdefault(SPECIAL.get(i, f"<|reserved_{i}|>"), i)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL.values()])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SPECIAL[128_000], eos_token=SPECIAL[128_009],
                                   pad_token=SPECIAL[128_001], unk_token="<unk>")


def llama(shape: str, seed: int, dtype, device: str = "cpu"):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, layers, heads, kv, inter = SHAPES[shape]
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv, intermediate_size=inter, max_position_embeddings=2048,
                      tie_word_embeddings=False, bos_token_id=128_000, eos_token_id=[128_001, 128_009],
                      pad_token_id=128_001)
    torch.manual_seed(seed)
    with torch.device(device):  # built where it runs: an 8B model is not copied over
        return LlamaForCausalLM(cfg).to(dtype)


def words_of(data: Path) -> list[str]:
    import json
    import re

    text = " ".join(json.dumps(json.loads(line)) for f in sorted(data.glob("*.json")) for line in f.open())
    return sorted(set(re.findall(r"\w+|[^\w\s]", text)))


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU (checks the script itself)")
    args = parser.parse_args()
    device = "cpu" if args.smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --smoke on a CPU")
    small, large = ("smoke", "smoke") if args.smoke else ("1b", "8b")
    dtype = torch.float32 if args.smoke else torch.bfloat16

    from unlearnbench.runner import RunSpec, run
    from unlearnbench.tasks.tofu import SynthConfig, ensure_synth_world

    world = ensure_synth_world(SynthConfig(), "forget10", quiet=True)
    data = world / "data"
    tokenizer = llama3_tokenizer(words_of(data))
    with tempfile.TemporaryDirectory() as tmp:
        for name, seed in (("target", 0), ("oracle", 1)):
            model = llama(small, seed, dtype)
            model.save_pretrained(Path(tmp) / name, safe_serialization=True)
            tokenizer.save_pretrained(Path(tmp) / name)
            del model
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        result = run(RunSpec(task="tofu/forget10", method="original", data_dir=str(data), model=str(Path(tmp) / "target"),
                             oracle=str(Path(tmp) / "oracle"), device=device, out=Path(tmp) / "runs", quiet=True,
                             options={"prompt_format": "llama3-chat", "dtype": "fp32" if args.smoke else "bf16"}))
        wall = time.perf_counter() - t
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
        print(f"[1] TOFU suite ({result.record.status}), {small}-shaped Llama, vocab {VOCAB}: {wall:.1f} s, "
              f"max_memory_allocated {peak:.1f} GiB; timing {dict((k, round(v, 1)) for k, v in result.record.timing.items())}")
        print(f"    forget_probability {result.record.metrics.get('forget_probability')}, "
              f"model_utility {result.record.metrics.get('model_utility')}")

    # [2] NPO with the memory policy on an 8B-shaped model, a few optimiser steps
    from unlearnbench.data import load_splits
    from unlearnbench.lm.prompts import PRESETS
    from unlearnbench.method import RunContext, UnlearnData
    from unlearnbench.registry import method
    from unlearnbench.tasks.tofu import QA

    rows = load_splits(data, {"forget10": QA, "retain90": QA}, layout_name="TOFU")
    model = llama(large, 0, dtype, device)
    n_params = sum(p.numel() for p in model.parameters())
    npo = method("npo", "language_model").obj()
    params = npo.Params(lr=1e-5, epochs=1, batch_size=8, grad_accum=4, gradient_checkpointing=True)
    forget = UnlearnData(forget=rows["forget10"].select(range(128)), retain=rows["retain90"].select(range(128)),
                         tokenizer=tokenizer, prompt_format=PRESETS["llama3-chat"])
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    npo.unlearn(model, forget, params, RunContext(seed=0, device=torch.device(device), quiet=True))
    if device == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    print(f"[2] NPO, {large}-shaped Llama ({n_params / 1e9:.2f}B parameters, {dtype}), 4 optimiser steps of 8 x 4 rows, "
          f"gradient checkpointing: {wall:.1f} s, max_memory_allocated {peak:.1f} GiB")


if __name__ == "__main__":
    main()
