"""``sfd``: Score Forgetting Distillation (Chen, Zhang & Zhou, ICLR 2025), data-free.

The target is distilled into a one-step generator ``G`` (:class:`OneStepGenerator`, read at
``t_init``) by Score identity Distillation (SiD; Zhou et al., ICML 2024), while the forgotten
class's score is overridden by a kept class's. Three networks start from the target: the
frozen teacher ``eps*``, the fake score ``psi`` and the generator's UNet. Each step:

1. ``psi`` learns the generator's distribution: DDPM's loss on ``x0 = G(z, c)`` (no gradient
   to ``G``) for kept classes ``c`` (weight ``psi_remain``) and for the forgotten class
   (weight ``psi_forget``).
2. ``G`` follows SiD's loss on ``x_t = a_t x0 + s_t e``, ``t`` in ``[t_min, t_max)``, with the
   x0-predictions ``p = x0*(x_t, c_p)`` of the teacher (classifier-free guidance
   ``teacher_guidance``) and ``q = x0_psi(x_t, c_q)``:
   ``sum_pixels (p - q) ((p - x0) - alpha (p - q)) / omega``, ``omega = mean |p - x0|``
   (no gradient). Kept classes: ``c_p = c_q = c`` (distillation, weight ``g_remain``);
   forgotten class: ``x0 = G(z, k)``, ``c_q = k`` and ``c_p`` a random kept class (the
   forgetting loss, weight ``g_forget``), so prompting ``k`` generates a kept class.

No real image is used. The times (fractions of the world's training steps) are SFD's CIFAR-10
noise levels (``abar`` about 0.98, 0.14 and 0.006 at its ``t_min``, ``t_init``, ``t_max`` =
38, 440, 712 of 1,000 on the linear schedule) moved to the digits world's cosine schedule
(0.078, 0.754, 0.95; on a linear schedule pass 0.038, 0.44, 0.712); SFD's ``alpha`` = 1.2; Adam with beta1 = 0; its rates and weights
are scaled to a short run on the small model: 150 steps fit a run in 2 minutes on 2 CPU cores
(more steps give back diversity: kept-class recall 0.45 at 100 steps, 0.69 at 250, on
digits-diffusion/class-3). The teacher's score is its plain conditional one
(``teacher_guidance`` 1), as the world samples it: guidance above 1 saturates the digits
teacher's 8x8 images and the generator then collapses onto them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from unlearnbench.diffusion.model import (alphas_cumprod, guided_eps, noise_prediction_loss, noise_scheduler,
                                          one_step_generator, train_steps)
from unlearnbench.diffusion.recipes import pseudo_labels
from unlearnbench.method import Method
from unlearnbench.registry import register_method


def x0_prediction(model, x_t, t, labels, abar: torch.Tensor, *, guidance: float = 1.0, null: int = -1):
    """``(x_t - sqrt(1 - abar_t) eps(x_t, t, c)) / sqrt(abar_t)`` (with guidance ``guidance``)."""
    a = abar[t].sqrt().view(-1, 1, 1, 1)
    s = (1 - abar[t]).sqrt().view(-1, 1, 1, 1)
    return (x_t - s * guided_eps(model, x_t, t, labels, guidance, null)) / a


def sid_loss(p_x: torch.Tensor, q_x: torch.Tensor, x0: torch.Tensor, alpha: float) -> torch.Tensor:
    """SiD's generator loss per row: ``sum_pixels (p - q)((p - x0) - alpha (p - q)) / omega``,
    ``omega = max(mean_pixels |p - x0|, 1e-5)`` without gradient."""
    omega = (p_x - x0).abs().flatten(1).mean(1).clamp(min=1e-5).detach().view(-1, 1, 1, 1)
    return ((p_x - q_x) * ((p_x - x0) - alpha * (p_x - q_x)) / omega).flatten(1).sum(1)


@register_method("sfd", summary="score forgetting distillation into a one-step generator, data-free")
class ScoreForgettingDistillation(Method):
    name = "sfd"
    needs = ()
    kinds = ("diffusion",)

    @dataclass(frozen=True)
    class Params:
        steps: int = 150  # sized so that a run takes under 2 minutes on 2 CPU cores
        batch_size: int = 64
        lr: float = 1e-4  # generator
        psi_lr: float = 1e-4  # fake score
        alpha: float = 1.2
        # times as fractions of the world's training steps (see the module docstring)
        t_min: float = 0.078
        t_init: float = 0.754
        t_max: float = 0.95
        teacher_guidance: float = 1.0  # the teacher's plain conditional score (as the world samples)
        psi_remain: float = 1.0
        psi_forget: float = 1.0
        g_remain: float = 1.0
        g_forget: float = 1.0

    def unlearn(self, model, data, params, ctx):
        cfg, device = data.model_config, ctx.device
        n_steps = int(cfg["num_train_timesteps"])
        t_min, t_init, t_max = (min(n_steps - 1, int(round(f * n_steps))) for f in (params.t_min, params.t_init, params.t_max))
        teacher = copy.deepcopy(model).to(device).eval().requires_grad_(False)
        psi = copy.deepcopy(model).to(device).train()
        generator = one_step_generator(model.to(device), cfg, t_init)
        abar = alphas_cumprod(cfg).to(device)
        scheduler = noise_scheduler(cfg)
        psi_opt = torch.optim.Adam(psi.parameters(), lr=params.psi_lr, betas=(0.0, 0.999))
        shape = (params.batch_size, int(cfg["in_channels"]), int(cfg["image_size"]), int(cfg["image_size"]))
        forget = torch.full((params.batch_size,), data.forget_class, dtype=torch.long)
        null = data.null_class

        def draws(g):
            kept = pseudo_labels(params.batch_size, data.kept_classes, g)
            override = pseudo_labels(params.batch_size, data.kept_classes, g)
            z_kept, z_forget = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
            return [t.to(device) for t in (kept, override, z_kept, z_forget, forget)]

        def times(g):
            return torch.randint(t_min, max(t_min + 1, t_max), (params.batch_size,), generator=g).to(device)

        def step_loss(step, g):
            kept, override, z_kept, z_forget, forget_c = draws(g)
            # 1. the fake score follows the generator's distribution
            psi.requires_grad_(True)
            with torch.no_grad():
                x_kept, x_forget = generator(z_kept, kept), generator(z_forget, forget_c)
            psi_loss = 0.0
            for x0, c, w in ((x_kept, kept, params.psi_remain), (x_forget, forget_c, params.psi_forget)):
                if w:
                    noise = torch.randn(x0.shape, generator=g).to(device)
                    psi_loss = psi_loss + w * noise_prediction_loss(psi, scheduler, x0, c, times(g), noise).mean()
            psi_opt.zero_grad(set_to_none=True)
            psi_loss.backward()
            torch.nn.utils.clip_grad_value_(psi.parameters(), 1.0)
            psi_opt.step()
            psi.requires_grad_(False)
            # 2. the generator: distillation on kept classes, the override on the forgotten one
            loss = 0.0
            for z, c_q, c_p, w in ((z_kept, kept, kept, params.g_remain), (z_forget, forget_c, override, params.g_forget)):
                if not w:
                    continue
                x0 = generator(z, c_q)
                t = times(g)
                x_t = scheduler.add_noise(x0, torch.randn(x0.shape, generator=g).to(device), t)
                p_x = x0_prediction(teacher, x_t, t, c_p, abar, guidance=params.teacher_guidance, null=null)
                q_x = x0_prediction(psi, x_t, t, c_q, abar)
                loss = loss + w * sid_loss(p_x, q_x, x0, params.alpha).mean()
            return loss

        train_steps(generator, step_loss, steps=params.steps, lr=params.lr, seed=ctx.seed, betas=(0.0, 0.999),
                    description="unlearning (sfd)", quiet=ctx.quiet)
        ctx.info["sfd_t_init"] = t_init
        return generator.eval()
