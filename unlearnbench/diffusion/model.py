"""The diffusion model library: a class-conditional DDPM built from diffusers' real parts.

- The network is diffusers' ``UNet2DModel`` with a class embedding of ``num_classes + 1``
  entries: the last one is the null class, trained on a ``cond_drop`` share of the rows, so
  that sampling can use classifier-free guidance (Ho & Salimans, 2022) and ESD can read the
  unconditional score.
- Training minimises the noise-prediction loss of DDPM (Ho et al., 2020),
  ``E ||eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t, c)||^2``, with noise added
  by diffusers' ``DDPMScheduler`` (an EMA of the weights is what is kept).
- Sampling runs diffusers' ``DDIMScheduler`` (Song et al., 2021) for a few steps, seeded.
- :class:`OneStepGenerator` is the one-step generator Score Forgetting Distillation distils
  into (Chen et al., 2025; Zhou et al., 2024, SiD): ``x0 = (x_s - sigma_s eps(x_s, s, c)) /
  alpha_s`` with ``x_s = sigma_s z`` at the fixed time ``s = t_init``.

Models are saved as ``model.safetensors`` + ``config.json`` (the state dict and the config
:func:`build_model` takes), like the classifier and regression worlds.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unlearnbench.errors import TrainingDivergedError, UserError

FORMAT_NAME = "unlearnbench-diffusion"
ARCHS = ("unet2d", "one_step")


def require_diffusers():
    try:
        import diffusers
    except ImportError:
        raise UserError("Diffusion tasks need the diffusers library: pip install 'unlearnbench[diffusion]'.") from None
    return diffusers


# ------------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class DiffusionTrainConfig:
    """How a diffusion world trains its target and oracle (and what ``retrain`` repeats):
    AdamW for ``steps`` steps of ``batch_size`` rows drawn at random (seeded), a linear
    warm-up then a constant rate, gradient-norm clipping at 1, an EMA of the weights."""

    steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup: int = 100
    cond_drop: float = 0.1  # share of rows trained on the null class (classifier-free guidance)
    ema: float = 0.995  # 0: keep the last weights


def null_class(config: dict) -> int:
    """The class index that means 'no class' (classifier-free guidance's unconditional)."""
    return int(config["num_classes"])


def build_unet(config: dict, *, seed: int | None = None) -> nn.Module:
    """diffusers' ``UNet2DModel`` of ``config``: ``image_size``, ``in_channels``,
    ``num_classes``, ``block_out_channels``, ``layers_per_block``, ``attention_levels``
    (indices of the resolutions with self-attention). With ``seed`` the initial weights
    depend on it only (the global RNG is left alone)."""
    require_diffusers()
    from diffusers import UNet2DModel

    channels = tuple(int(c) for c in config["block_out_channels"])
    attention = set(int(i) for i in config.get("attention_levels", ()))
    down = tuple("AttnDownBlock2D" if i in attention else "DownBlock2D" for i in range(len(channels)))
    up = tuple("AttnUpBlock2D" if i in attention else "UpBlock2D" for i in reversed(range(len(channels))))
    kwargs = dict(sample_size=int(config["image_size"]), in_channels=int(config["in_channels"]),
                  out_channels=int(config["in_channels"]), layers_per_block=int(config["layers_per_block"]),
                  block_out_channels=channels, down_block_types=down, up_block_types=up,
                  num_class_embeds=int(config["num_classes"]) + 1, norm_num_groups=min(32, channels[0] // 4),
                  dropout=float(config.get("dropout", 0.0)))
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return UNet2DModel(**kwargs)


def noise_scheduler(config: dict):
    """diffusers' ``DDPMScheduler`` of the world (its betas; adds the training noise)."""
    require_diffusers()
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=int(config["num_train_timesteps"]), beta_schedule=config["beta_schedule"],
                         prediction_type="epsilon", clip_sample=True)


def alphas_cumprod(config: dict) -> torch.Tensor:
    return noise_scheduler(config).alphas_cumprod.float()


class OneStepGenerator(nn.Module):
    """A one-step generator: a UNet read at the fixed time ``t_init``. ``forward(z, labels)``
    maps standard normal ``z`` to an image in one network call (see the module docstring)."""

    def __init__(self, unet: nn.Module, t_init: int, alpha: float, sigma: float):
        super().__init__()
        self.unet, self.t_init, self.alpha, self.sigma = unet, int(t_init), float(alpha), float(sigma)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x_s = self.sigma * z
        t = torch.full((len(z),), self.t_init, device=z.device, dtype=torch.long)
        eps = self.unet(x_s, t, class_labels=labels).sample
        return (x_s - self.sigma * eps) / self.alpha


def one_step_generator(unet: nn.Module, config: dict, t_init: int) -> OneStepGenerator:
    """The generator of :class:`OneStepGenerator` at time ``t_init`` of the world's schedule."""
    abar = float(alphas_cumprod(config)[int(t_init)])
    return OneStepGenerator(unet, t_init, math.sqrt(abar), math.sqrt(1.0 - abar))


def build_model(config: dict, *, seed: int | None = None) -> nn.Module:
    """The model ``config`` describes (``arch``: ``unet2d`` or ``one_step`` with ``t_init``)."""
    if config.get("arch") not in ARCHS:
        raise ValueError(f"Unknown diffusion arch {config.get('arch')!r}; known: {', '.join(ARCHS)}.")
    unet = build_unet(config, seed=seed)
    return one_step_generator(unet, config, int(config["t_init"])) if config["arch"] == "one_step" else unet


def model_config_of(model: nn.Module, config: dict) -> dict:
    """The config to save ``model`` under (a one-step generator records its ``t_init``)."""
    if isinstance(model, OneStepGenerator):
        return {**config, "arch": "one_step", "t_init": model.t_init}
    return {**config, "arch": "unet2d"}


# ----------------------------------------------------------------------------- the loss
def add_noise(config_or_scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` (diffusers' ``DDPMScheduler.add_noise``)."""
    sched = noise_scheduler(config_or_scheduler) if isinstance(config_or_scheduler, dict) else config_or_scheduler
    return sched.add_noise(x0, noise, t)


def eps(model: nn.Module, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The predicted noise ``eps_theta(x_t, t, c)``."""
    return model(x_t, t, class_labels=labels).sample


def guided_eps(model: nn.Module, x_t, t, labels, guidance: float, null: int) -> torch.Tensor:
    """Classifier-free guidance: ``eps_u + w (eps_c - eps_u)`` (``w = 1``: the conditional)."""
    if guidance == 1.0:
        return eps(model, x_t, t, labels)
    both = eps(model, torch.cat([x_t, x_t]), torch.cat([t, t]) if t.ndim else t,
               torch.cat([labels, torch.full_like(labels, null)]))
    cond, uncond = both.chunk(2)
    return uncond + guidance * (cond - uncond)


def noise_prediction_loss(model: nn.Module, scheduler, x0, labels, t, noise) -> torch.Tensor:
    """DDPM's simple loss, per row: ``mean over pixels (eps_theta(x_t, t, c) - noise)^2``."""
    x_t = scheduler.add_noise(x0, noise, t)
    return (eps(model, x_t, t, labels) - noise).pow(2).flatten(1).mean(1)


def random_batch(n: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """``batch_size`` row indices drawn uniformly (with replacement) from ``range(n)``."""
    return torch.randint(0, n, (batch_size,), generator=generator)


def random_times(n: int, scheduler, generator: torch.Generator, low: int = 0, high: int | None = None) -> torch.Tensor:
    high = int(scheduler.config.num_train_timesteps) if high is None else high
    return torch.randint(low, high, (n,), generator=generator)


# ------------------------------------------------------------------------ training loop
def train_steps(model: nn.Module, step_loss: Callable[[int, torch.Generator], torch.Tensor], *, steps: int, lr: float,
                seed: int, parameters: Iterable[nn.Parameter] | None = None, weight_decay: float = 0.0,
                warmup: int = 0, ema: float = 0.0, grad_masks: dict[str, torch.Tensor] | None = None,
                betas: tuple[float, float] = (0.9, 0.999), description: str = "training",
                quiet: bool = False) -> nn.Module:
    """Minimise ``step_loss(step, generator)`` for ``steps`` AdamW steps (gradient-norm clip 1,
    linear warm-up over ``warmup`` steps); returns ``model`` in eval mode with, when ``ema``
    > 0, the EMA of its weights. ``parameters`` restricts what changes; ``grad_masks``
    (``{name: bool tensor}``) lets only the masked entries of those parameters move: the others
    are restored to their exact values after every step (bit-identical). A non-finite loss
    raises :class:`TrainingDivergedError`. The generator handed to ``step_loss`` is seeded
    by ``seed`` (batches, times and noise are drawn from it)."""
    from unlearnbench.progress import progress_bar

    params = [p for p in (parameters if parameters is not None else model.parameters()) if p.requires_grad]
    names = {id(p): n for n, p in model.named_parameters()}
    masked = []
    if grad_masks is not None:
        for p in params:
            m = grad_masks.get(names.get(id(p), ""))
            if m is not None:
                masked.append((p, m.to(p.device), p.detach().clone()))
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=betas)
    averaged = copy.deepcopy(model).eval().requires_grad_(False) if ema > 0 else None
    generator = torch.Generator().manual_seed(int(seed))
    model.train()
    with progress_bar(description, total=steps, quiet=quiet) as advance:
        for step in range(steps):
            for group in optimizer.param_groups:
                group["lr"] = lr * min(1.0, (step + 1) / warmup) if warmup > 0 else lr
            loss = step_loss(step, generator)
            if not torch.isfinite(loss):
                raise TrainingDivergedError(description, step, float(loss))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for p, m, _ in masked:
                if p.grad is not None:
                    p.grad.mul_(m)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            with torch.no_grad():
                for p, m, original in masked:
                    p.copy_(torch.where(m, p, original))
                if averaged is not None:
                    for a, p in zip(averaged.parameters(), model.parameters()):
                        a.lerp_(p.detach(), 1.0 - ema)
            advance(1, loss=float(loss.detach()))
    if averaged is not None:
        with torch.no_grad():
            for a, p in zip(averaged.parameters(), model.parameters()):
                p.copy_(a)
    return model.eval()


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def denoising_step_loss(model: nn.Module, config: dict, x, y, batch_size: int, cond_drop: float = 0.0):
    """``step_loss`` of the DDPM objective on images ``x`` (in [-1, 1]) with labels ``y``: a
    random batch, times and noise; a ``cond_drop`` share of the rows gets the null class."""
    scheduler = noise_scheduler(config)
    device = _device_of(model)
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    null = null_class(config)

    def step_loss(step: int, g: torch.Generator) -> torch.Tensor:
        idx = random_batch(len(xt), batch_size, g)
        x0, labels = xt[idx], yt[idx].clone()
        if cond_drop > 0:
            labels[torch.rand(len(idx), generator=g) < cond_drop] = null
        t = random_times(len(idx), scheduler, g)
        noise = torch.randn(x0.shape, generator=g)
        return noise_prediction_loss(model, scheduler, x0.to(device), labels.to(device), t.to(device),
                                     noise.to(device)).mean()

    return step_loss


def fit_diffusion(model_config: dict, x, y, train_config: DiffusionTrainConfig, seed: int, *, device=None,
                  quiet: bool = False, description: str = "training") -> nn.Module:
    """A fresh UNet of ``model_config`` (initialised from ``seed``) trained on ``(x, y)``: how
    diffusion worlds train their target and oracle, and what ``retrain`` calls."""
    model = build_unet(model_config, seed=seed).to(device or "cpu")
    c = train_config
    return train_steps(model, denoising_step_loss(model, model_config, x, y, c.batch_size, c.cond_drop), steps=c.steps,
                       lr=c.lr, seed=seed, weight_decay=c.weight_decay, warmup=c.warmup, ema=c.ema,
                       description=description, quiet=quiet)


# ----------------------------------------------------------------------------- sampling
@torch.no_grad()
def ddim_states(model: nn.Module, z: torch.Tensor, labels: torch.Tensor, config: dict, *, steps: int,
                guidance: float, eta: float = 0.0, seed: int = 0):
    """Yield ``(t, x_t)`` along a DDIM trajectory from ``x_T = z`` (diffusers'
    ``DDIMScheduler``, ``steps`` steps): every state the sampler visits, then ``(-1, x_0)``."""
    from diffusers import DDIMScheduler

    sched = DDIMScheduler(num_train_timesteps=int(config["num_train_timesteps"]), beta_schedule=config["beta_schedule"],
                          prediction_type="epsilon", clip_sample=True)
    sched.set_timesteps(int(steps))
    g = torch.Generator().manual_seed(int(seed))
    x = z
    for t in sched.timesteps:
        yield int(t), x
        tt = torch.full((len(x),), int(t), device=x.device, dtype=torch.long)
        e = guided_eps(model, x, tt, labels, float(guidance), null_class(config))
        variance_noise = torch.randn(x.shape, generator=g).to(x.device) if eta > 0 else None
        x = sched.step(e, t, x, eta=float(eta), variance_noise=variance_noise).prev_sample
    yield -1, x


@torch.no_grad()
def generate(model: nn.Module, labels, config: dict, *, seed: int, steps: int, guidance: float, eta: float = 0.0,
             batch_size: int = 256) -> np.ndarray:
    """Images ``[N, C, H, W]`` in [-1, 1] for ``labels``: DDIM (diffusers' ``DDIMScheduler``,
    ``steps`` steps, ``eta``, classifier-free guidance ``guidance``) for a UNet, one call for a
    :class:`OneStepGenerator`. The starting noise of row ``i`` depends on ``seed`` and the
    rows before it only, so two models given the same labels and seed start from the same noise."""
    device = _device_of(model)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    shape = (int(config["in_channels"]), int(config["image_size"]), int(config["image_size"]))
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn((len(labels), *shape), generator=g)
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(labels), batch_size):
            zb, lb = z[start:start + batch_size].to(device), labels[start:start + batch_size].to(device)
            if isinstance(model, OneStepGenerator):
                out.append(model(zb, lb).clamp(-1, 1).cpu())
                continue
            for _, x in ddim_states(model, zb, lb, config, steps=steps, guidance=guidance, eta=eta,
                                    seed=int(seed) * 7919 + start):
                pass
            out.append(x.clamp(-1, 1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, *shape), dtype=np.float32)


# ---------------------------------------------------------------------------- save / load
def save_diffusion(model: nn.Module, config: dict, folder) -> Path:
    from unlearnbench.arraytasks import save_model

    return save_model(model, model_config_of(model, config), folder, format_name=FORMAT_NAME)


def load_diffusion(folder) -> tuple[nn.Module, dict]:
    from unlearnbench.arraytasks import load_model

    return load_model(folder, build_model, what="diffusion model", archs=ARCHS, writer="unlearnbench's diffusion worlds")


def diffusion_kit():
    """How diffusion worlds fit, save and load their models (:class:`unlearnbench.arraytasks.ModelKit`)."""
    from unlearnbench.arraytasks import ModelKit, weights_fingerprint

    return ModelKit(fit=fit_diffusion, save=save_diffusion, load=load_diffusion, fingerprint=weights_fingerprint)


# -------------------------------------------------------------------------------- judge
@torch.no_grad()
def judge_outputs(judge: nn.Module, images, *, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """``(probs [N, K], features [N, D])`` of the judge classifier on ``images``: the softmax
    of its logits and its penultimate features (the input of its final linear layer ``fc``)."""
    device = _device_of(judge)
    judge.eval()
    captured: list[torch.Tensor] = []
    handle = judge.fc.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0].detach()))
    probs = []
    try:
        x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
        for start in range(0, len(x), batch_size):
            probs.append(torch.softmax(judge(x[start:start + batch_size].to(device)).double(), -1).cpu())
    finally:
        handle.remove()
    if not probs:
        return np.zeros((0, judge.fc.out_features)), np.zeros((0, judge.fc.in_features))
    return torch.cat(probs).numpy(), torch.cat(captured).double().cpu().numpy()


def config_dict(value: Any) -> dict:
    """A model config as plain JSON-able data."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(value).items()}
