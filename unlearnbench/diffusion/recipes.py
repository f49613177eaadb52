"""What several diffusion methods share: their optimiser settings, the random-labelling loss
of SalUn's generation variant, the saliency mask, and the retain-set denoising loss.

Random labelling for a conditional DDPM (Fan et al., ICLR 2024, SalUn, Eq. 8 and its code):
a forget image ``x`` of class ``c`` is noised to ``x_t``, and the model's prediction for the
forgotten class is pulled to its own (stopped-gradient) prediction for another class ``c'``:
``||eps_theta(x_t, t, c) - sg(eps_theta(x_t, t, c'))||^2``, with ``alpha`` times DDPM's loss
on retain images beside it. Prompting the forgotten class then follows another class's score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from unlearnbench.diffusion.model import eps, noise_prediction_loss, noise_scheduler, random_batch, random_times


@dataclass(frozen=True)
class DiffusionParams:
    """AdamW for ``steps`` steps of ``batch_size`` forget rows and as many retain rows."""

    steps: int = 300
    lr: float = 1e-4
    batch_size: int = 64


def _tensors(x, y):
    return torch.as_tensor(np.asarray(x), dtype=torch.float32), torch.as_tensor(np.asarray(y), dtype=torch.long)


def pseudo_labels(n: int, kept: list[int], generator: torch.Generator) -> torch.Tensor:
    """``n`` classes drawn uniformly from ``kept`` (the classes other than the forgotten one)."""
    kept_t = torch.as_tensor(kept, dtype=torch.long)
    return kept_t[torch.randint(0, len(kept_t), (n,), generator=generator)]


def relabel_loss(model, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, pseudo: torch.Tensor) -> torch.Tensor:
    """Per row ``mean over pixels (eps(x_t, t, c) - sg(eps(x_t, t, c')))^2``."""
    with torch.no_grad():
        target = eps(model, x_t, t, pseudo)
    return (eps(model, x_t, t, labels) - target).pow(2).flatten(1).mean(1)


def retain_step_loss(model, data, batch_size: int):
    """``step_loss`` of DDPM's loss on the retain images (their own labels)."""
    scheduler = noise_scheduler(data.model_config)
    device = next(model.parameters()).device
    xr, yr = _tensors(data.x_retain, data.y_retain)

    def step_loss(step: int, g: torch.Generator) -> torch.Tensor:
        idx = random_batch(len(xr), batch_size, g)
        t = random_times(len(idx), scheduler, g)
        noise = torch.randn(xr[idx].shape, generator=g)
        return noise_prediction_loss(model, scheduler, xr[idx].to(device), yr[idx].to(device), t.to(device),
                                     noise.to(device)).mean()

    return step_loss


def relabel_step_loss(model, data, batch_size: int, alpha: float):
    """``step_loss`` of random labelling: :func:`relabel_loss` on a forget batch plus ``alpha``
    times DDPM's loss on a retain batch."""
    scheduler = noise_scheduler(data.model_config)
    device = next(model.parameters()).device
    xf, yf = _tensors(data.x_forget, data.y_forget)
    retain = retain_step_loss(model, data, batch_size)

    def step_loss(step: int, g: torch.Generator) -> torch.Tensor:
        idx = random_batch(len(xf), batch_size, g)
        t = random_times(len(idx), scheduler, g)
        noise = torch.randn(xf[idx].shape, generator=g)
        x_t = scheduler.add_noise(xf[idx], noise, t)
        pseudo = pseudo_labels(len(idx), data.kept_classes, g)
        forget = relabel_loss(model, x_t.to(device), t.to(device), yf[idx].to(device), pseudo.to(device)).mean()
        return forget + alpha * retain(step, g) if alpha else forget

    return step_loss


def saliency_masks(model, data, ratio: float, *, seed: int, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """SalUn's weight saliency for a DDPM: ``{name: bool mask}``, the top ``ratio`` fraction of
    all parameter entries (ranked globally) by ``|d L_f / d theta|``, where ``L_f`` is DDPM's
    loss on the forget images (their class, times and noise drawn with ``seed``), summed over
    them. ``model`` is not changed."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1], got {ratio}")
    scheduler = noise_scheduler(data.model_config)
    device = next(model.parameters()).device
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for _, p in named]
    xf, yf = _tensors(data.x_forget, data.y_forget)
    g = torch.Generator().manual_seed(int(seed))
    for start in range(0, len(xf), batch_size):
        xb, yb = xf[start:start + batch_size], yf[start:start + batch_size]
        t, noise = random_times(len(xb), scheduler, g), torch.randn(xb.shape, generator=g)
        loss = noise_prediction_loss(model, scheduler, xb.to(device), yb.to(device), t.to(device), noise.to(device)).sum()
        for acc, grad in zip(grads, torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)):
            if grad is not None:
                acc += grad
    flat = torch.cat([gr.abs().flatten() for gr in grads])
    k = int(round(ratio * flat.numel()))
    chosen = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if k > 0:
        chosen[torch.topk(flat, k, sorted=False).indices] = True
    masks, start = {}, 0
    for (name, p), gr in zip(named, grads):
        masks[name] = chosen[start:start + gr.numel()].view_as(p)
        start += gr.numel()
    return masks
