"""Diffusion unlearning on scikit-learn's bundled digits (offline, minutes on a CPU).

``digits-diffusion/class-<k>``: a class-conditional DDPM must stop generating digit ``k``
while it keeps generating the other nine.

The data: the 1,797 8x8 images of ``sklearn.datasets.load_digits`` scaled to [-1, 1],
``[N, 1, 8, 8]``, split 80/20 (stratified, seed 0, the split of ``digits/...``). The target
(a small diffusers ``UNet2DModel``, 8x8 -> 4x4, channels 32/64, a class embedding with a null
class; every training image, seed 0) and the oracle (every training image but those of
``k``, seed 1000) are trained here by the recipe below and cached, and so is the judge (the
digits SmallCNN, width 8, on the training images). The real reference of the Fréchet distance
is the held-out 20%. Sampling: 64 images per class, DDIM with 20 steps (eta 0), the plain
conditional score (guidance 1: the fully trained model's conditional samples are recognised
about 98% of the time, while guidance 2 and 3 push its 8x8 images into saturation and the
judge recognises 77% and 10% of them); the run options ``--samples-per-class``,
``--sampling-steps``, ``--guidance`` change it.
Options: ``train=`` (a ``DiffusionTrainConfig`` or its dict), ``world=`` (a whole
:class:`~unlearnbench.diffusion.world.DiffusionWorld`: tests pass a tiny one), ``device=``
(where the recipes train: the run's ``--device``).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import lru_cache

import numpy as np

from unlearnbench.errors import DataError
from unlearnbench.registry import register_task

FAMILY = "digits-diffusion"
FAMILY_VERSION = "1"
DATA_VERSION = "1"  # load_digits / 8 - 1, stratified 80/20 split (seed 0)
CLASSES = tuple(range(10))


def default_world():
    """The digits world's recipes."""
    from unlearnbench.diffusion.model import DiffusionTrainConfig
    from unlearnbench.diffusion.world import DiffusionWorld, Sampling
    from unlearnbench.vision.classifier import ClassifierTrainConfig

    return DiffusionWorld(
        model_config={"arch": "unet2d", "image_size": 8, "in_channels": 1, "num_classes": 10,
                      "block_out_channels": [32, 64], "layers_per_block": 1, "attention_levels": [],
                      "num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2"},
        train=DiffusionTrainConfig(steps=3000, batch_size=128, lr=2e-3, warmup=100, cond_drop=0.1, ema=0.995),
        judge_config={"arch": "small_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 8},
        judge_train=ClassifierTrainConfig(epochs=30, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4,
                                          optimizer="sgd", schedule="cosine"),
        sampling=Sampling(per_class=64, steps=20, guidance=1.0, eta=0.0, grid=8),
    )


@lru_cache(maxsize=1)
def _arrays():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from unlearnbench.cache import fingerprint

    digits = load_digits()
    images = (digits.images / 8.0 - 1.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(labels)), test_size=0.2, random_state=0, stratify=labels)
    train, test = np.sort(train), np.sort(test)
    content = hashlib.sha256(images.tobytes() + labels.tobytes() + train.tobytes()).hexdigest()[:16]
    return images[train], labels[train], images[test], labels[test], fingerprint({FAMILY: DATA_VERSION, "content": content})


def make_digits_diffusion_task(forget_class: int, *, data_dir: str | None = None, model: str | None = None,
                               oracle: str | None = None, quiet: bool = False, train=None, world=None,
                               device: str | None = None, **_):
    from unlearnbench.arraytasks import train_config_from
    from unlearnbench.diffusion.model import DiffusionTrainConfig
    from unlearnbench.diffusion.world import make_diffusion_task

    if data_dir is not None:
        raise DataError("digits-diffusion uses scikit-learn's bundled data; --data-dir is for cifar10-diffusion/....")
    x_train, y_train, x_real, y_real, data_fp = _arrays()
    base = world or default_world()
    recipe = replace(base, train=train_config_from(train, DiffusionTrainConfig, base.train, what="diffusion"))
    options = [("world", recipe.to_json())] if recipe != default_world() else []
    return make_diffusion_task(
        name=f"{FAMILY}/class-{forget_class}", family=FAMILY, version=FAMILY_VERSION, forget_class=forget_class,
        x_train=x_train.copy(), y_train=y_train.copy(), x_real=x_real.copy(), y_real=y_real.copy(), num_classes=10,
        data_fingerprint=data_fp, world=recipe, recipe_name="digits-ddpm-unet", options=options, model=model,
        oracle=oracle, device=device or "auto", quiet=quiet)


for _k in CLASSES:
    register_task(f"{FAMILY}/class-{_k}", suite="generation", kind="diffusion", modes="-",
                  summary=f"sklearn digits, a class-conditional DDPM stops generating digit {_k}")(
        lambda _c=_k, **kw: make_digits_diffusion_task(_c, **kw))
