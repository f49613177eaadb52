"""On a GPU (marker ``gpu``; skipped elsewhere): bf16 on CUDA scores what float32 on the CPU
does, to bf16 precision. ``benchmarks/gpu_check.py`` is the
real-scale check (a 1B-shaped TOFU run and NPO on an 8B-shaped model)."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=4, bos_token_id=1, eos_token_id=2,
                                        pad_token_id=0)).eval()


def test_bf16_on_cuda_scores_like_fp32_on_the_cpu():
    from unlearnbench.lm.modeling import collate, sequence_logprobs

    model = _llama()
    batch = collate([([1, 5, 6, 7, 8, 9, 2], 3), ([1, 10, 11, 12, 2], 2)], 0)
    with torch.no_grad():
        cpu, _ = sequence_logprobs(model, batch)
        gpu_model = _llama().to("cuda", torch.bfloat16)
        gpu, _ = sequence_logprobs(gpu_model, {k: v.cuda() for k, v in batch.items()})
    torch.testing.assert_close(gpu.float().cpu(), cpu, rtol=3e-2, atol=3e-2)
