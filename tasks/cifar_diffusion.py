"""Diffusion unlearning on CIFAR-10 (SalUn's and SFD's class-conditional DDPM setting).

``cifar10-diffusion/class-<k>``: a class-conditional DDPM on CIFAR-10 must stop generating
class ``k``. Data: the hub dataset ``uoft-cs/cifar10`` or ``--data-dir`` in its parquet layout
(:mod:`unlearnbench.vision.cifardata`), images scaled to [-1, 1]; the real reference of the
Fréchet distance is the test split. The recipe is paper-sized (a GPU wanted): the DDPM UNet of
Ho et al. (2020) for CIFAR-10 as SalUn and SFD use it (channels 128/256/256/256, two residual
blocks per resolution, self-attention at 16x16, dropout 0.1, linear betas 1e-4..0.02 over 1,000
steps), here diffusers' ``UNet2DModel`` with a class embedding and a null class, Adam at 2e-4,
batch 128, an EMA of 0.9999; trained 200k steps (target and oracle, cached) unless ``--model``
/ ``--oracle`` name folders written by :func:`unlearnbench.diffusion.model.save_diffusion`.
The judge is the CIFAR ResNet-18 of ``cifar10/...`` trained on the [-1, 1] images. Sampling:
100 images per class, DDIM with 100 steps, guidance 2.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from unlearnbench.registry import register_task

FAMILY = "cifar10-diffusion"
FAMILY_VERSION = "1"
CLASSES = tuple(range(10))


def default_world():
    from unlearnbench.diffusion.model import DiffusionTrainConfig
    from unlearnbench.diffusion.world import DiffusionWorld, Sampling
    from unlearnbench.vision.classifier import ClassifierTrainConfig

    return DiffusionWorld(
        model_config={"arch": "unet2d", "image_size": 32, "in_channels": 3, "num_classes": 10,
                      "block_out_channels": [128, 256, 256, 256], "layers_per_block": 2, "attention_levels": [1],
                      "dropout": 0.1, "num_train_timesteps": 1000, "beta_schedule": "linear"},
        train=DiffusionTrainConfig(steps=200_000, batch_size=128, lr=2e-4, warmup=5000, cond_drop=0.1, ema=0.9999),
        judge_config={"arch": "resnet18", "num_classes": 10, "in_channels": 3, "image_size": 32, "width": 64},
        judge_train=ClassifierTrainConfig(epochs=40, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4,
                                          optimizer="sgd", schedule="cosine", augment="crop_flip"),
        sampling=Sampling(per_class=100, steps=100, guidance=2.0, eta=0.0, grid=8),
    )


def make_cifar_diffusion_task(forget_class: int, *, data_dir: str | None = None, model: str | None = None,
                              oracle: str | None = None, quiet: bool = False, train=None, world=None,
                              device: str | None = None, **_):
    from unlearnbench.arraytasks import train_config_from
    from unlearnbench.cache import fingerprint
    from unlearnbench.diffusion.model import DiffusionTrainConfig
    from unlearnbench.diffusion.world import make_diffusion_task
    from unlearnbench.task import hub_snapshot
    from unlearnbench.vision.cifardata import DATA_VERSION, DATASETS, decoded, layout_folder

    repo, sub, *_ = DATASETS["cifar10"]
    folder = Path(data_dir) if data_dir is not None else hub_snapshot(repo, [f"{sub}/*.parquet"],
                                                                      offline_variant="digits-diffusion/...")
    splits, content = decoded(layout_folder(folder, "cifar10"), "cifar10")

    def scaled(images: np.ndarray) -> np.ndarray:  # uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in [-1, 1]
        return np.ascontiguousarray((images.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2))

    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    base = world or default_world()
    recipe = replace(base, train=train_config_from(train, DiffusionTrainConfig, base.train, what="diffusion"))
    options = [("world", recipe.to_json())] if recipe != default_world() else []
    return make_diffusion_task(
        name=f"{FAMILY}/class-{forget_class}", family=FAMILY, version=FAMILY_VERSION, forget_class=forget_class,
        x_train=scaled(x_train), y_train=y_train, x_real=scaled(x_test), y_real=y_test, num_classes=10,
        data_fingerprint=fingerprint({"cifar10": DATA_VERSION, "content": content, "scale": "[-1, 1]"}), world=recipe,
        recipe_name="cifar10-ddpm-unet", options=options, model=model, oracle=oracle, device=device or "auto",
        quiet=quiet)


for _k in CLASSES:
    register_task(f"{FAMILY}/class-{_k}", suite="generation", kind="diffusion", modes="-",
                  summary=f"CIFAR-10 (uoft-cs/cifar10 or --data-dir), a class-conditional DDPM stops generating class {_k}")(
        lambda _c=_k, **kw: make_cifar_diffusion_task(_c, **kw))
