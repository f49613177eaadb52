"""Block-wise symmetric fake quantization of linear weights (round-to-nearest, absmax scale).

"Fake" quantization: the weights are rounded to what a ``bits``-bit integer format
can hold and immediately dequantized back to floating point, so the model runs as
usual but with the quantized values. The integer codes are returned too, so two
models can be compared code by code (:func:`unlearnbench.metrics.robustness.quantized_agreement`).

Scheme, per block of ``block_size`` consecutive entries along the last dimension::

    qmax  = 2**(bits - 1) - 1                  # 127 for 8 bits, 7 for 4 bits
    scale = max(|w| in block) / qmax           # 1 for an all-zero block
    code  = clamp(round(w / scale), -qmax, qmax)
    w_q   = code * scale

``round`` is round-half-to-even (``torch.round``). The grid is symmetric (``-qmax``
.. ``qmax``; the extra negative code ``-2**(bits-1)`` is unused), so a block takes at
most ``2**bits - 1`` distinct values. The absmax entry maps exactly to ``+-qmax``;
the clamp only guards against floating-point rounding there.

Quantizing an unlearned model to 4 bits can restore much of the forgotten
knowledge (Zhang et al., 2025, "Catastrophic Failure of LLM Unlearning via
Quantization", ICLR). Differences from that paper's setup: only round-to-nearest
with an absmax scale per block (no GPTQ / AWQ calibration, no NF4 grid), and the
scales stay in float32 (not themselves quantized).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["fake_quantize", "quantize_linear_weights", "quantizable_weights"]


def _check_args(bits: int, block_size: int) -> tuple[int, int]:
    if isinstance(bits, bool) or not isinstance(bits, int) or not (2 <= bits <= 8):
        raise ValueError(f"bits must be an integer from 2 to 8 (e.g. 8 or 4), got {bits!r}.")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size must be a positive integer (e.g. 64), got {block_size!r}.")
    return bits, block_size


def fake_quantize(weight: torch.Tensor, bits: int, block_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-wise symmetric fake quantization along the last dimension.

    Blocks are ``block_size`` consecutive entries of each row of the last
    dimension (the last block of a row is shorter when the row length is not a
    multiple of ``block_size``: it is padded virtually, the shape never changes).
    See the module docstring for the formula.

    Returns ``(dequantized, codes)``: the dequantized weight in the input's dtype
    and device, and the integer codes (``torch.int8``, values in ``[-qmax, qmax]``,
    ``qmax = 2**(bits-1) - 1``), both of the input's shape. Arithmetic runs in
    float32 (float64 for float64 input). An all-zero block gets scale 1 and
    stays zero. ``bits`` must be in 2..8; non-finite weights raise ``ValueError``.
    """
    bits, block_size = _check_args(bits, block_size)
    if not isinstance(weight, torch.Tensor) or not weight.is_floating_point():
        raise ValueError(f"weight must be a floating-point torch.Tensor, got {type(weight).__name__}"
                         + (f" of dtype {weight.dtype}" if isinstance(weight, torch.Tensor) else "") + ".")
    if weight.ndim == 0:
        raise ValueError("weight must have at least one dimension (blocks run along the last one).")
    if not torch.isfinite(weight).all():
        raise ValueError("weight holds NaN or inf entries: quantize a finite weight (did training diverge?).")
    qmax = 2 ** (bits - 1) - 1
    shape = weight.shape
    work_dtype = torch.float64 if weight.dtype == torch.float64 else torch.float32
    if weight.numel() == 0:
        return weight.detach().clone(), torch.zeros(shape, dtype=torch.int8, device=weight.device)
    w = weight.detach().to(work_dtype).reshape(-1, shape[-1])
    rows, cols = w.shape
    n_blocks = -(-cols // block_size)
    pad = n_blocks * block_size - cols
    if pad:
        w = torch.nn.functional.pad(w, (0, pad))  # zeros: they do not change a block's max |w|
    blocks = w.reshape(rows, n_blocks, block_size)
    scale = blocks.abs().amax(dim=-1, keepdim=True) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    codes = torch.clamp(torch.round(blocks / scale), -qmax, qmax)
    deq = (codes * scale).reshape(rows, -1)[:, :cols].reshape(shape).to(weight.dtype)
    codes = codes.reshape(rows, -1)[:, :cols].reshape(shape).to(torch.int8)
    return deq, codes


def _conv1d_class():
    try:
        from transformers.pytorch_utils import Conv1D
    except Exception:  # transformers missing or reorganised: only nn.Linear then
        return None
    return Conv1D


def _embedding_weights(model: nn.Module) -> set[int]:
    """ids of every embedding matrix, so a linear layer tied to one is skipped."""
    ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    get_in = getattr(model, "get_input_embeddings", None)
    if callable(get_in):
        try:
            emb = get_in()
        except (NotImplementedError, AttributeError):
            emb = None
        if emb is not None and getattr(emb, "weight", None) is not None:
            ids.add(id(emb.weight))
    return ids


def quantizable_weights(model: nn.Module) -> list[tuple[str, nn.Parameter, bool]]:
    """The weights :func:`quantize_linear_weights` quantizes: ``(name, parameter, is_conv1d)``.

    Every ``nn.Linear`` and transformers ``Conv1D`` weight, each parameter once,
    except a weight that IS an embedding matrix (the output embedding tied to
    the input embedding, ``model.get_output_embeddings().weight is
    model.get_input_embeddings().weight``). An untied ``lm_head`` is included.
    Embeddings, norms and biases are never included.
    """
    conv1d = _conv1d_class()
    kinds = (nn.Linear,) + ((conv1d,) if conv1d is not None else ())
    skip = _embedding_weights(model)
    seen: set[int] = set()
    out = []
    for module_name, module in model.named_modules():
        if not isinstance(module, kinds):
            continue
        weight = getattr(module, "weight", None)
        if weight is None or id(weight) in skip or id(weight) in seen:
            continue
        seen.add(id(weight))
        name = f"{module_name}.weight" if module_name else "weight"
        out.append((name, weight, conv1d is not None and isinstance(module, conv1d)))
    return out


@torch.no_grad()
def quantize_linear_weights(model: nn.Module, bits: int, block_size: int = 64) -> dict[str, torch.Tensor]:
    """Fake-quantize every linear weight of ``model`` IN PLACE; return the integer codes by name.

    Pass a copy (``copy.deepcopy(model)``) if you need the original. Quantized:
    the weight of every ``nn.Linear`` and transformers ``Conv1D`` (GPT-2), an
    untied ``lm_head`` included. Left alone: embeddings, norms, biases, and an
    output embedding tied to the input embedding (quantizing it would quantize
    the input embedding too). See :func:`quantizable_weights`.

    Blocks run along the INPUT features of each layer, as in group-wise weight
    quantization: along the last dimension of an ``nn.Linear`` weight
    (``[out, in]``) and along the first of a ``Conv1D`` weight (``[in, out]``,
    which is transposed for quantization and back), so GPT-2 and Llama models
    are quantized alike.

    Returns ``{parameter name: int8 codes}`` on the CPU, each with the shape of
    its parameter (``Conv1D`` codes in the ``[in, out]`` layout), ready for
    :func:`unlearnbench.metrics.robustness.quantized_agreement`.
    """
    bits, block_size = _check_args(bits, block_size)
    codes_by_name: dict[str, torch.Tensor] = {}
    for name, weight, is_conv1d in quantizable_weights(model):
        w = weight.detach()
        if is_conv1d:
            deq, codes = fake_quantize(w.t(), bits, block_size)
            deq, codes = deq.t(), codes.t()
        else:
            deq, codes = fake_quantize(w, bits, block_size)
        weight.copy_(deq)
        codes_by_name[name] = codes.contiguous().cpu()
    return codes_by_name
