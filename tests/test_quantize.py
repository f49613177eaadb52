"""Block-wise symmetric fake quantization: hand-worked examples, and tiny GPT-2 / Llama models
checked structurally (what is quantized, what is left alone, how many values a block holds)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from unlearnbench.metrics.robustness import quantized_agreement
from unlearnbench.lm.quantize import fake_quantize, quantize_linear_weights

# ---------------------------------------------------------------- fake_quantize


def test_fake_quantize_hand_worked_4_bit():
    # 4 bits -> qmax = 7, block_size 4; the row of 10 has blocks [0:4], [4:8], [8:10].
    w = torch.tensor([[0.7, -0.26, 0.13, 0.0, 0.0, 0.0, 0.0, 0.0, -1.4, 0.45]])
    deq, codes = fake_quantize(w, bits=4, block_size=4)
    # block 1: scale 0.7/7 = 0.1 -> 7, -2.6 -> -3, 1.3 -> 1, 0
    # block 2: all zero -> codes 0, stays 0 (no NaN)
    # block 3 (short, padded virtually): scale 1.4/7 = 0.2 -> -7 (symmetric: never -8), 2.25 -> 2
    assert codes.tolist() == [[7, -3, 1, 0, 0, 0, 0, 0, -7, 2]]
    assert codes.dtype == torch.int8
    expected = [[0.7, -0.3, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, -1.4, 0.4]]
    assert np.allclose(deq.numpy(), expected, atol=1e-6)
    assert deq.shape == w.shape and deq.dtype == torch.float32
    assert torch.isfinite(deq).all()


def test_fake_quantize_codes_stay_in_the_symmetric_range():
    # The extreme of each block maps to +-qmax and nothing goes beyond: with bits = 2
    # (qmax = 1) the grid is {-s, 0, s}; -1.0 -> -1 (not -2), -0.2/1.0 -> 0, 0.6 -> 1.
    deq, codes = fake_quantize(torch.tensor([-1.0, -0.2, 0.6, 0.45]), bits=2, block_size=4)
    assert codes.tolist() == [-1, 0, 1, 0]
    assert np.allclose(deq.numpy(), [-1.0, 0.0, 1.0, 0.0])
    rng = np.random.default_rng(0)
    for bits in (2, 3, 4, 8):
        qmax = 2 ** (bits - 1) - 1
        _, c = fake_quantize(torch.tensor(rng.normal(size=(3, 50)) * 10, dtype=torch.float32), bits, 16)
        assert int(c.min()) >= -qmax and int(c.max()) <= qmax
        assert int(c.abs().max()) == qmax


def test_fake_quantize_8_bit_hand_worked():
    # qmax = 127; block max 2.54 -> scale 0.02: 1.0 -> 50, -0.333 -> -16.65 -> -17 -> -0.34.
    deq, codes = fake_quantize(torch.tensor([2.54, 1.0, -0.333], dtype=torch.float64), bits=8, block_size=64)
    assert codes.tolist() == [127, 50, -17]
    assert deq.dtype == torch.float64 and np.allclose(deq.numpy(), [2.54, 1.0, -0.34])


def test_fake_quantize_keeps_shape_dtype_and_blocks_along_the_last_dim():
    w = torch.randn(2, 3, 20, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    deq, codes = fake_quantize(w, bits=4, block_size=8)
    assert deq.shape == w.shape and codes.shape == w.shape and deq.dtype == torch.bfloat16
    # Independent per-block reference: rows of the last dimension, blocks [0:8], [8:16], [16:20].
    x = w.float().numpy().reshape(-1, 20)
    c = codes.numpy().reshape(-1, 20)
    for row in range(x.shape[0]):
        for start in (0, 8, 16):
            block = x[row, start:start + 8]
            scale = np.abs(block).max() / 7
            assert np.array_equal(c[row, start:start + 8], np.clip(np.rint(block / scale), -7, 7))


def test_fake_quantize_rejects_bad_arguments():
    w = torch.ones(4)
    for bits in (1, 9, 4.0, True):
        with pytest.raises(ValueError, match="bits"):
            fake_quantize(w, bits)
    with pytest.raises(ValueError, match="block_size"):
        fake_quantize(w, 4, block_size=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        fake_quantize(torch.tensor([1.0, float("nan")]), 4)
    with pytest.raises(ValueError, match="floating-point"):
        fake_quantize(torch.ones(4, dtype=torch.int64), 4)


# ---------------------------------------------------------------- whole models


def _tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=1)
    return GPT2LMHeadModel(cfg).eval()


def _tiny_llama(tied: bool):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=tied,
                      bos_token_id=0, eos_token_id=1, pad_token_id=2)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # norms start at 1: make them distinctive so "untouched" means something
        for m in model.modules():
            if type(m).__name__.endswith("RMSNorm"):
                m.weight.uniform_(0.5, 1.5)
    return model


def _check_blocks(w_q: np.ndarray, codes: np.ndarray, bits: int, block_size: int) -> None:
    """Rows = output units, columns = input features; every block of ``block_size``
    input features holds at most 2**bits - 1 values, all multiples of one scale."""
    qmax = 2 ** (bits - 1) - 1
    assert w_q.shape == codes.shape
    for row in range(w_q.shape[0]):
        for start in range(0, w_q.shape[1], block_size):
            block, cblock = w_q[row, start:start + block_size], codes[row, start:start + block_size]
            assert len(np.unique(block)) <= 2 ** bits - 1
            assert np.abs(cblock).max() == qmax  # the block's absmax sits on the grid's end
            scales = block[cblock != 0] / cblock[cblock != 0]
            assert np.allclose(scales, scales[0], rtol=1e-5)
            assert np.all(block[cblock == 0] == 0)


BITS, BLOCK = 3, 16  # 3 bits: at most 7 values in blocks of 16 entries


def test_gpt2_quantizes_conv1d_only_and_leaves_tied_head_embeddings_norms_and_biases():
    from transformers.pytorch_utils import Conv1D

    model = _tiny_gpt2()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    codes = quantize_linear_weights(model, BITS, BLOCK)
    assert set(codes) == {
        "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_proj.weight",
        "transformer.h.0.mlp.c_fc.weight", "transformer.h.0.mlp.c_proj.weight",
    }  # lm_head is tied to wte: skipped
    assert model.lm_head.weight is model.transformer.wte.weight
    params = dict(model.named_parameters())
    for name, p in params.items():
        if name in codes:
            assert not torch.equal(p, before[name])
        else:  # wte (= lm_head), wpe, ln_1, ln_2, ln_f, biases
            assert torch.equal(p, before[name]), name
    for name, module in model.named_modules():
        if isinstance(module, Conv1D):
            # Conv1D weight is [in, out]: blocks run along the input features (dim 0).
            w_q = module.weight.detach().numpy().T
            c = codes[f"{name}.weight"]
            assert c.shape == module.weight.shape and c.dtype == torch.int8 and c.device.type == "cpu"
            _check_blocks(w_q, c.numpy().T, BITS, BLOCK)


@pytest.mark.parametrize("tied", [False, True])
def test_llama_quantizes_linear_and_untied_lm_head_only(tied):
    model = _tiny_llama(tied)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    codes = quantize_linear_weights(model, BITS, BLOCK)
    layer = "model.layers.0"
    expected = {f"{layer}.self_attn.{p}_proj.weight" for p in "qkvo"}
    expected |= {f"{layer}.mlp.{p}_proj.weight" for p in ("gate", "up", "down")}
    if not tied:
        expected.add("lm_head.weight")
    assert set(codes) == expected
    for name, p in model.named_parameters():
        if name in codes:
            assert not torch.equal(p, before[name]), name
            _check_blocks(p.detach().numpy(), codes[name].numpy(), BITS, BLOCK)
        else:  # embed_tokens (and the tied head), every RMSNorm
            assert torch.equal(p, before[name]), name
    assert any("norm" in n for n in before) and any("embed_tokens" in n for n in before)


def test_codes_agree_fully_with_a_deep_copy_and_less_after_an_edit():
    model = _tiny_llama(tied=False)
    twin = copy.deepcopy(model)
    edited = copy.deepcopy(model)
    with torch.no_grad():
        edited.model.layers[0].mlp.down_proj.weight[:, 0] *= -1  # flip one column (one concept vector)
    codes_model = quantize_linear_weights(model, 4, BLOCK)
    assert quantized_agreement(codes_model, quantize_linear_weights(twin, 4, BLOCK)) == 1.0
    codes_edited = quantize_linear_weights(edited, 4, BLOCK)
    changed = codes_model["model.layers.0.mlp.down_proj.weight"][:, 0]
    n_total = sum(c.numel() for c in codes_model.values())
    n_diff = int((changed != 0).sum())  # negating a column negates its nonzero codes only
    assert quantized_agreement(codes_model, codes_edited) == pytest.approx(1 - n_diff / n_total)


def test_quantize_linear_weights_handles_a_plain_module_and_rejects_bad_bits():
    net = nn.Sequential(nn.Embedding(5, 8), nn.Linear(8, 8), nn.LayerNorm(8))
    emb, norm = net[0].weight.detach().clone(), net[2].weight.detach().clone()
    codes = quantize_linear_weights(net, 8, 4)
    assert set(codes) == {"1.weight"}
    assert torch.equal(net[0].weight, emb) and torch.equal(net[2].weight, norm)
    with pytest.raises(ValueError, match="bits"):
        quantize_linear_weights(net, 16)
