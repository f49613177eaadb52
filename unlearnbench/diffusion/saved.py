"""Unlearned diffusion models kept by ``--save-model`` and read back by ``--unlearned PATH``.

The layout is diffusers' own (``UNet2DModel.save_pretrained``), so the folder loads with
``diffusers.UNet2DModel.from_pretrained(folder)`` outside unlearnbench too, plus one JSON file
that says how unlearnbench samples it. Plain data: nothing in the folder runs code when read
(safetensors only, never a pickled ``.bin``)::

    model/
      config.json                          diffusers' UNet2DModel config
      diffusion_pytorch_model.safetensors  its weights
      unlearnbench.json                    {"layout": "unlearnbench-diffusion", "version": 1,
                                            "sampler": "ddim" | "one_step", "t_init": null | int,
                                            "num_train_timesteps": ..., "beta_schedule": ...}

``ddim``: a UNet sampled with the task's DDIM budget; ``one_step``: SFD's one-step generator,
the UNet read at ``t_init`` (:class:`~unlearnbench.diffusion.model.OneStepGenerator`). A
folder without ``unlearnbench.json`` is read as a ``ddim`` UNet; a folder of
:func:`~unlearnbench.diffusion.model.save_diffusion` (``--model``'s layout) is read too. The
schedule recorded must be the task's (the one-step generator's scale depends on it) and the
UNet must take the task's images and classes (``num_classes + 1`` class embeddings).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from unlearnbench.errors import ModelSourceError

LAYOUT = "unlearnbench-diffusion"
VERSION = 1
LAYOUT_FILE = "unlearnbench.json"
DIFFUSERS_WEIGHTS = "diffusion_pytorch_model.safetensors"
DIFFUSERS_CONFIG = "config.json"
WRITER = "--save-model (runs/<id>/model) or diffusers' UNet2DModel.save_pretrained"


def save_unlearned_diffusion(model, folder, config: dict) -> dict[str, Any]:
    """Write ``model`` (a UNet or a one-step generator) under ``folder`` in the layout above;
    returns what the record says about it (``layout``, ``sampler``, ``fingerprint``)."""
    from unlearnbench.arraytasks import replace_folder
    from unlearnbench.diffusion.model import OneStepGenerator

    folder = replace_folder(folder)
    one_step = isinstance(model, OneStepGenerator)
    unet = model.unet if one_step else model
    if not hasattr(unet, "save_pretrained"):
        raise ModelSourceError(f"--save-model: the unlearned model ({type(unet).__name__}) is not a diffusers model.")
    unet.save_pretrained(str(folder), safe_serialization=True)
    doc = {"layout": LAYOUT, "version": VERSION, "sampler": "one_step" if one_step else "ddim",
           "t_init": int(model.t_init) if one_step else None,
           "num_train_timesteps": int(config["num_train_timesteps"]), "beta_schedule": config["beta_schedule"]}
    (folder / LAYOUT_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return {"layout": LAYOUT, "sampler": doc["sampler"], "fingerprint": saved_fingerprint(folder)}


def saved_fingerprint(folder) -> str:
    """Identity of a saved folder: the hash of its weights and of its layout file."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for name in (DIFFUSERS_WEIGHTS, LAYOUT_FILE):
        if (folder / name).is_file():
            digest.update(name.encode())
            with open(folder / name, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def _layout(folder: Path) -> dict:
    path = folder / LAYOUT_FILE
    if not path.is_file():
        return {"layout": LAYOUT, "version": VERSION, "sampler": "ddim", "t_init": None}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelSourceError(f"{path}: not a readable JSON file ({exc}).") from None
    if not isinstance(doc, dict) or doc.get("layout") != LAYOUT or doc.get("version") != VERSION:
        raise ModelSourceError(f"{path}: expected layout {LAYOUT!r} version {VERSION}, found "
                               f"{doc.get('layout') if isinstance(doc, dict) else None!r}.")
    if doc.get("sampler") not in ("ddim", "one_step"):
        raise ModelSourceError(f"{path}: sampler {doc.get('sampler')!r} is not 'ddim' or 'one_step'.")
    return doc


def load_unlearned_diffusion(source: str, config: dict) -> tuple[Any, str]:
    """``(model, fingerprint)`` from a folder in the layout above (or of ``save_diffusion``),
    on CPU in eval mode, checked against the task's ``config``; a folder that is neither, or a
    model that does not fit the task, is a :class:`ModelSourceError` saying what to pass."""
    from unlearnbench.arraytasks import CONFIG_NAME, WEIGHTS_NAME, unlearned_folder, weights_fingerprint
    from unlearnbench.diffusion.model import load_diffusion, one_step_generator, require_diffusers

    folder = unlearned_folder(source, kind="diffusion", writer=WRITER)
    if (folder / WEIGHTS_NAME).is_file() and not (folder / DIFFUSERS_WEIGHTS).is_file():
        model, saved = load_diffusion(folder)
        _check_schedule(source, saved, config)
        unet = model.unet if hasattr(model, "unet") else model
        _check_unet(source, dict(unet.config), config)
        return model.eval(), weights_fingerprint(folder)
    if not ((folder / DIFFUSERS_WEIGHTS).is_file() and (folder / CONFIG_NAME).is_file()):
        raise ModelSourceError(f"--unlearned {source}: {str(folder)!r} holds neither {DIFFUSERS_CONFIG} and "
                               f"{DIFFUSERS_WEIGHTS} (diffusers' layout) nor {WEIGHTS_NAME} (unlearnbench's). "
                               f"Pass a folder written by {WRITER}.")
    doc = _layout(folder)
    if "num_train_timesteps" in doc:
        _check_schedule(source, doc, config)
    require_diffusers()
    from diffusers import UNet2DModel

    try:
        unet = UNet2DModel.from_pretrained(str(folder), use_safetensors=True)
    except (OSError, ValueError, TypeError, RuntimeError, KeyError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelSourceError(f"--unlearned {source}: diffusers cannot read {str(folder)!r} as a UNet2DModel: "
                               f"{detail}") from None
    _check_unet(source, dict(unet.config), config)
    if doc["sampler"] == "one_step":
        t_init = doc.get("t_init")
        if not isinstance(t_init, int) or not 0 <= t_init < int(config["num_train_timesteps"]):
            raise ModelSourceError(f"--unlearned {source}: {LAYOUT_FILE}'s t_init {t_init!r} is not a time step of "
                                   f"the task's schedule (0..{int(config['num_train_timesteps']) - 1}).")
        return one_step_generator(unet, config, t_init).eval(), saved_fingerprint(folder)
    return unet.eval(), saved_fingerprint(folder)


def _check_schedule(source: str, saved: dict, config: dict) -> None:
    for key in ("num_train_timesteps", "beta_schedule"):
        if str(saved.get(key)) != str(config[key]):
            raise ModelSourceError(f"--unlearned {source}: the saved model's {key} is {saved.get(key)!r}; the task's "
                                   f"is {config[key]!r}.")


def _check_unet(source: str, unet_config: dict, config: dict) -> None:
    want = {"sample_size": int(config["image_size"]), "in_channels": int(config["in_channels"]),
            "out_channels": int(config["in_channels"]), "num_class_embeds": int(config["num_classes"]) + 1}
    for key, value in want.items():
        have = unet_config.get(key)
        if have != value:
            raise ModelSourceError(f"--unlearned {source}: the saved UNet's {key} is {have!r}; this task needs "
                                   f"{value} ({'its classes and the null class' if key == 'num_class_embeds' else 'its images'}).")
