"""``laf``: Label-Agnostic Forgetting (Shen et al., ICLR 2024), a small-scale version.

No labels: neither the forget labels (never read) nor, by default, the retain labels. The
representation is the model's penultimate features (the input of the linear head ``fc``).

1. Two small VAEs are fitted to the representations the original model gives the retain
   ("remaining") and the forget data (MSE reconstruction + ``kld_weight`` x KL, Adam).
2. Extractor unlearning: the feature extractor is pushed so that retain representations stay
   well explained by the retain VAE while forget representations stop being explained by the
   forget VAE: minimise ``L_r - L_f`` with ``L = sum_i exp(e_i / (e_i + 1))``, ``e_i`` the
   squared reconstruction error of example ``i`` (the reference code's bounded "NMSE").
3. Representation alignment: a contrastive step keeps retain representations aligned
   (cosine) with the original model's and pushes forget ones away:
   ``sum_i log(exp(c_r,i) / sum_j exp(c_f,j / temperature))`` with ``c = 1 - cos(e, e_orig)``.

Steps 2 and 3 each pair every forget batch with a retain batch. With ``head_epochs > 0`` the
head is then fine-tuned on the retain labels (the paper's LAF+R, which uses supervision).

Simplifications: the VAEs see representations computed once (the model is frozen while they
train); their decoders use the posterior mean (no sampling) once fitted; steps 2 and 3
alternate per pass over the forget set, each pass a run of the shared training loop (the
reference alternates per batch pair, with one Adam optimiser per step that persists). The
reference's Adam lrs of 1e-4 for ResNets are raised for the small model, whose extractor
otherwise barely moves in the few steps a small forget set gives: 3e-4 (step 2) and 1e-3
(step 3) forget a whole digits class (0% forget accuracy) at 97.5% retain accuracy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from unlearnbench.errors import UserError
from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.vision.classifier import ClassifierTrainConfig, iterate_batches, train_classifier


class RepresentationVAE(nn.Module):
    """A one-hidden-layer Gaussian VAE over representation vectors."""

    def __init__(self, dim: int, hidden: int, latent: int, seed: int):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.encoder = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
            self.mu = nn.Linear(hidden, latent)
            self.log_var = nn.Linear(hidden, latent)
            self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.noise = torch.Generator().manual_seed(seed)

    def forward(self, e: torch.Tensor):
        h = self.encoder(e)
        mu, log_var = self.mu(h), self.log_var(h).clamp(-10, 10)
        z = mu
        if self.training:
            z = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=self.noise).to(mu.device)
        return self.decoder(z), mu, log_var


def vae_loss(vae: RepresentationVAE, e: torch.Tensor, kld_weight: float) -> torch.Tensor:
    """Squared reconstruction error plus ``kld_weight`` x KL to N(0, I), summed per example, batch mean."""
    out, mu, log_var = vae(e)
    reconstruction = (out - e).pow(2).sum(1)
    kld = -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(1)
    return (reconstruction + kld_weight * kld).mean()


def bounded_reconstruction(vae: RepresentationVAE, e: torch.Tensor) -> torch.Tensor:
    """``sum_i exp(err_i / (err_i + 1))``, ``err_i`` the squared reconstruction error."""
    out, _, _ = vae(e)
    err = (out - e).pow(2).sum(1)
    return torch.exp(err / (err + 1)).sum()


def representation(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The penultimate features: what the linear head ``model.fc`` receives."""
    captured = []
    handle = model.fc.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    try:
        model(x)
    finally:
        handle.remove()
    return captured[-1].flatten(1)


@register_method("laf", summary="label-agnostic forgetting: VAEs on representations, no labels")
class LabelAgnosticForgetting(Method):
    name = "laf"
    needs = ("forget", "retain", "reference")
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params:
        epochs: int = 5  # alternating passes of steps 2 and 3 over the forget set
        lr_extractor: float = 3e-4  # Adam, step 2
        lr_align: float = 1e-3  # Adam, step 3
        batch_size: int = 32
        temperature: float = 1.0
        vae_epochs: int = 20
        vae_lr: float = 1e-3
        vae_batch_size: int = 128
        vae_hidden: int = 128
        vae_latent: int = 16
        kld_weight: float = 0.025
        head_epochs: int = 0  # > 0: LAF+R, fine-tune the head on retain labels afterwards
        head_lr: float = 1e-3


    def unlearn(self, model, data, params, ctx):
        if not isinstance(getattr(model, "fc", None), nn.Linear):
            raise UserError("laf needs a classifier whose linear head is `model.fc` (its input is the representation).")
        model = model.to(ctx.device).eval()
        original = copy.deepcopy(model).eval()
        for p in original.parameters():
            p.requires_grad_(False)
        x_forget, x_retain = np.asarray(data.x_forget), np.asarray(data.x_retain)
        no_labels_forget = np.zeros(len(x_forget), dtype=np.int64)  # the loop wants labels; LAF has none
        no_labels_retain = np.zeros(len(x_retain), dtype=np.int64)

        def adam(lr, epochs, batch_size=params.batch_size):
            return ClassifierTrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=0.0,
                                         optimizer="adam", schedule="constant")

        # 1. the VAEs of remaining and forget representations
        vaes = []
        for i, x in enumerate((x_retain, x_forget)):
            e = _representations(original, x, ctx.device)
            vae = RepresentationVAE(e.shape[1], params.vae_hidden, params.vae_latent, seed=ctx.seed + i).to(ctx.device)
            train_classifier(vae, e, np.zeros(len(e), dtype=np.int64),
                             adam(params.vae_lr, params.vae_epochs, params.vae_batch_size), ctx.seed + i,
                             loss_fn=lambda v, eb, _: vae_loss(v, eb, params.kld_weight), device=ctx.device,
                             quiet=ctx.quiet, description=f"laf: {('retain', 'forget')[i]} VAE")
            for p in vae.parameters():
                p.requires_grad_(False)
            vaes.append(vae.eval())
        retain_vae, forget_vae = vaes

        retain_batches = _forever(x_retain, no_labels_retain, params.batch_size, ctx.seed, ctx.device)

        def extractor_loss(m, xf, _):  # 2. fit the remaining-data VAE, not the forget one
            xr = next(retain_batches)
            return bounded_reconstruction(retain_vae, representation(m, xr)) - bounded_reconstruction(
                forget_vae, representation(m, xf))

        def align_loss(m, xf, _):  # 3. stay aligned with the original on retain, move away on forget
            xr = next(retain_batches)
            c_retain = 1 - F.cosine_similarity(representation(m, xr), representation(original, xr), dim=1)
            c_forget = 1 - F.cosine_similarity(representation(m, xf), representation(original, xf), dim=1)
            return (c_retain - torch.logsumexp(c_forget / params.temperature, dim=0)).sum()

        extractor = [p for n, p in model.named_parameters() if not n.startswith("fc.")]
        steps = ((extractor_loss, params.lr_extractor), (align_loss, params.lr_align))
        for epoch in range(params.epochs):
            for step, (loss_fn, lr) in enumerate(steps):
                train_classifier(model, x_forget, no_labels_forget, adam(lr, 1), ctx.seed + 2 * epoch + step,
                                 loss_fn=loss_fn, parameters=extractor, device=ctx.device, quiet=ctx.quiet,
                                 description=f"unlearning (laf {('extractor', 'align')[step]} {epoch + 1})")
        if params.head_epochs > 0:
            train_classifier(model, x_retain, data.y_retain, adam(params.head_lr, params.head_epochs, 64), ctx.seed,
                             parameters=list(model.fc.parameters()), device=ctx.device, quiet=ctx.quiet,
                             description="unlearning (laf+r head)")
        return model


@torch.no_grad()
def _representations(model: nn.Module, x: np.ndarray, device, batch_size: int = 512) -> torch.Tensor:
    xt = torch.as_tensor(x, dtype=torch.float32)
    return torch.cat([representation(model, xt[s : s + batch_size].to(device)) for s in range(0, len(xt), batch_size)])


def _forever(x, y, batch_size: int, seed: int, device):
    """Retain batches without end, reshuffled every pass (labels dropped)."""
    epoch = 0
    while True:
        for xb, _ in iterate_batches(x, y, batch_size, seed + 7919, epoch):
            yield xb.to(device)
        epoch += 1
