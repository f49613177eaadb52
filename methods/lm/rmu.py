"""``rmu``: Representation Misdirection for Unlearning (Li et al., 2024, the WMDP paper).

At decoder layer ``layer``, push the activations of forget tokens towards a fixed random
direction and keep those of retain tokens where the model had them:

``L = mean_f ||h_theta(x_f) - c u||^2 + alpha * mean_r ||h_theta(x_r) - h_frozen(x_r)||^2``

with ``h`` the output of decoder layer ``layer`` (its residual stream), ``u`` a unit vector
drawn once (uniform in [0, 1)^d, normalised; seeded by the run seed), ``c`` the steering
coefficient, ``h_frozen`` the model before unlearning and the means over answer tokens and
hidden dimensions (``torch.nn.functional.mse_loss``, as the reference code). Only the
parameters named by ``update_params`` in the layers ``update_layers`` train (the paper: the
MLP down-projections of layers l-2, l-1, l).

Defaults are the paper's for Zephyr-7B (layer 7, layers 5,6,7, c = 6.5, alpha = 1200, lr
5e-5); a task's preset adapts them (``wmdp/*``: the paper's 150 batches of 4 forget documents;
the synthetic worlds' two-layer models: layer 1).
Differences from the reference code: the means run over answer tokens (the reference averages
over every position of its padded batch, padding included); the frozen activations come from
the same forward with the updated tensors swapped for their copies before unlearning (only
those are copied, not the model).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from unlearnbench.errors import UserError
from unlearnbench.lm.modeling import IGNORE_INDEX
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


class _Stop(Exception):
    """Raised by the hook once layer ``layer`` has run: nothing after it is needed."""


def decoder_layers(model):
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = getattr(getattr(inner, "model", None), "layers", None)
    if layers is None:
        raise UserError("rmu needs a decoder with model.layers (Llama, Mistral, Qwen, Phi-3, Gemma...).")
    return layers


def layer_activations(model, batch: dict, layer: int, params: dict | None = None) -> torch.Tensor:
    """The output of decoder layer ``layer`` at the batch's answer positions, [tokens, hidden]
    (``params``: tensors to use instead of the model's own, by name). The forward stops there."""
    captured = {}

    def hook(module, args, output):
        captured["h"] = output[0] if isinstance(output, tuple) else output
        raise _Stop

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if params:
            torch.func.functional_call(model, params, (), inputs, strict=False)
        else:
            model(**inputs)
    except _Stop:
        pass
    finally:
        handle.remove()
    mask = batch["labels"] != IGNORE_INDEX
    return captured["h"][mask]


@register_method("rmu", summary="representation misdirection: forget activations towards a random direction")
class RMU(LossMethod):
    name = "rmu"
    needs = ("forget", "retain")

    @dataclass(frozen=True)
    class Params(LLMParams):
        lr: float = 5e-5
        epochs: int = 1
        batch_size: int = 4
        layer: int = 7
        update_layers: str = "5,6,7"  # comma-separated decoder layer indices
        update_params: str = "mlp.down_proj.weight"  # comma-separated parameter names within a layer
        steering_coeff: float = 6.5
        alpha: float = 1200.0
        # forget batches used, from the start of the forget set (the reference code's
        # max_num_batches: 150 batches of 4 documents on WMDP); 0: all of them
        max_num_batches: int = 0

    def forget_batches(self, data, params, seed: int):
        batches = super().forget_batches(data, params, seed)
        if params.max_num_batches > 0:
            batches.encoded = batches.encoded[: params.max_num_batches * params.batch_size]
        return batches

    def _names(self, model, params) -> list[str]:
        layers = decoder_layers(model)
        wanted = [int(i) for i in str(params.update_layers).split(",") if i.strip()]
        if not 0 <= params.layer < len(layers) or any(not 0 <= i < len(layers) for i in wanted):
            raise UserError(f"rmu: layer {params.layer} / update_layers {params.update_layers} do not fit a model of "
                            f"{len(layers)} decoder layers; set --param layer=... --param update_layers=...")
        suffixes = [s.strip() for s in str(params.update_params).split(",") if s.strip()]
        names = [n for n, _ in model.named_parameters()
                 if any(f"layers.{i}.{suffix}" in n for i in wanted for suffix in suffixes)]
        if not names:
            raise UserError(f"rmu: no parameter named {params.update_params!r} in layers {params.update_layers}.")
        return names

    def trainable(self, model, params):
        names = set(self._names(model, params))
        return [p for n, p in model.named_parameters() if n in names]

    def prepare(self, model, params, ctx, forget=None):
        """The copies of the updated tensors before unlearning and the steering vector c u."""
        frozen = {n: p.detach().clone() for n, p in model.named_parameters() if n in set(self._names(model, params))}
        hidden = model.config.hidden_size
        generator = torch.Generator().manual_seed(ctx.seed)
        u = torch.rand(hidden, generator=generator)
        control = (params.steering_coeff * u / u.norm()).to(ctx.device, next(model.parameters()).dtype)
        return {"frozen": frozen, "control": control}

    def loss(self, model, forget, retain, reference, params):
        h_forget = layer_activations(model, forget, params.layer)
        loss = F.mse_loss(h_forget.float(), reference["control"].float().expand_as(h_forget))
        if params.alpha:
            h_retain = layer_activations(model, retain, params.layer)
            with torch.no_grad():
                h_before = layer_activations(model, retain, params.layer, reference["frozen"])
            loss = loss + params.alpha * F.mse_loss(h_retain.float(), h_before.float())
        return loss
