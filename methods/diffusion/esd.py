"""``esd``: Erased Stable Diffusion's negative guidance for a class-conditional DDPM
(Gandikota et al., ICCV 2023; the class-conditional form of SalUn's and SFD's baselines).

Data-free: the frozen original samples ``n_trajectories`` DDIM trajectories for the forgotten
class ``c`` (the states ``x_t`` it visits, ``sampling_steps`` steps); the model's conditional
prediction is regressed onto the original's negatively guided one,
``||eps_theta(x_t, t, c) - [eps*(x_t, t) - eta (eps*(x_t, t, c) - eps*(x_t, t))]||^2``
(``eps*(x_t, t)``: the null class), so that prompting ``c`` steers away from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from unlearnbench.diffusion.model import ddim_states, eps, random_batch, train_steps
from unlearnbench.diffusion.recipes import DiffusionParams
from unlearnbench.method import Method
from unlearnbench.registry import register_method


def negative_guidance_target(original, x_t, t, labels, null: int, eta: float) -> torch.Tensor:
    """``eps*(x_t, t) - eta (eps*(x_t, t, c) - eps*(x_t, t))`` of the frozen ``original``."""
    with torch.no_grad():
        uncond = eps(original, x_t, t, torch.full_like(labels, null))
        cond = eps(original, x_t, t, labels)
    return uncond - eta * (cond - uncond)


@register_method("esd", summary="negative guidance on the forgotten class, data-free (ESD; diffusion)")
class DiffusionESD(Method):
    name = "esd"
    needs = ()
    kinds = ("diffusion",)

    @dataclass(frozen=True)
    class Params(DiffusionParams):
        negative_guidance: float = 1.0  # ESD's eta
        n_trajectories: int = 64
        sampling_steps: int = 20

    def unlearn(self, model, data, params, ctx):
        import copy

        model.to(ctx.device).eval()
        original = copy.deepcopy(model).requires_grad_(False)
        cfg = data.model_config
        shape = (params.n_trajectories, int(cfg["in_channels"]), int(cfg["image_size"]), int(cfg["image_size"]))
        z = torch.randn(shape, generator=torch.Generator().manual_seed(ctx.seed)).to(ctx.device)
        labels = torch.full((shape[0],), data.forget_class, dtype=torch.long, device=ctx.device)
        states = [(t, x) for t, x in ddim_states(original, z, labels, cfg, steps=params.sampling_steps, guidance=1.0)
                  if t >= 0]
        x_pool = torch.cat([x for _, x in states])
        t_pool = torch.cat([torch.full((len(x),), t, dtype=torch.long, device=ctx.device) for t, x in states])
        c_pool = torch.full((len(x_pool),), data.forget_class, dtype=torch.long, device=ctx.device)
        target = torch.cat([negative_guidance_target(original, x_pool[i:i + 512], t_pool[i:i + 512], c_pool[i:i + 512],
                                                     data.null_class, params.negative_guidance)
                            for i in range(0, len(x_pool), 512)])
        del original

        def step_loss(step, g):
            idx = random_batch(len(x_pool), params.batch_size, g).to(ctx.device)
            return (eps(model, x_pool[idx], t_pool[idx], c_pool[idx]) - target[idx]).pow(2).mean()

        return train_steps(model, step_loss, steps=params.steps, lr=params.lr, seed=ctx.seed,
                           description="unlearning (esd)", quiet=ctx.quiet)
