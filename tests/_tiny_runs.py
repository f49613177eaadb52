"""Real runs on the tiny synthetic world, made once per test session and shared by the
leaderboard, report, results and browser tests (which copy them before changing anything)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from unlearnbench.records import PER_EXAMPLE_FILE, RECORD_FILE

METHODS = (("original", {}), ("ga", {"epochs": "1"}))
_made: dict[str, dict[str, Path]] = {}


def tiny_runs(tiny_synth, tmp_path_factory) -> dict[str, Path]:
    """method -> run folder, for the methods in METHODS at seed 0 on tofu-synth/forget10."""
    if "runs" not in _made:
        from unlearnbench.runner import RunSpec, run

        out = tmp_path_factory.mktemp("tiny-runs")
        _made["runs"] = {
            method: run(RunSpec(task="tofu-synth/forget10", method=method, params=params, out=out, quiet=True,
                                task_options={"synth": tiny_synth})).run_dir
            for method, params in METHODS
        }
    return _made["runs"]


def tiny_loader(tiny_synth):
    """Re-creates the tiny task through the registry (the record stores the world's options
    as JSON; the session's SynthConfig object stands in for them)."""
    from unlearnbench.leaderboard.submissions import registry_task

    def load(name, options, data_dir=None, quiet=True):
        return registry_task(name, options, data_dir, quiet, trusted={"synth": tiny_synth})

    return load


def copy_run(src: Path, dest: Path, *, record=None, per_example=None, clean: bool = True) -> Path:
    """Copy a run folder; ``record`` / ``per_example`` are functions that edit the parsed JSON.
    ``clean`` marks the harness as committed, whatever the state of this checkout."""
    dest.mkdir(parents=True, exist_ok=True)
    data = json.loads((src / RECORD_FILE).read_text())
    if clean:
        data["provenance"]["git_dirty"] = False
        data["provenance"]["git_sha"] = data["provenance"].get("git_sha") or "0" * 40
    if record:
        record(data)
    (dest / RECORD_FILE).write_text(json.dumps(data, indent=2))
    if per_example:
        scores = json.loads((src / PER_EXAMPLE_FILE).read_text())
        per_example(scores)
        (dest / PER_EXAMPLE_FILE).write_text(json.dumps(scores))
    else:
        shutil.copy(src / PER_EXAMPLE_FILE, dest / PER_EXAMPLE_FILE)
    return dest


TINY_DIFFUSION_MODEL = {"arch": "unet2d", "image_size": 8, "in_channels": 1, "num_classes": 10,
                        "block_out_channels": [8, 16], "layers_per_block": 1, "attention_levels": [],
                        "num_train_timesteps": 100, "beta_schedule": "squaredcos_cap_v2"}


def tiny_diffusion_world():
    """The digits diffusion world shrunk to seconds: a tiny UNet, 20 training steps, a judge of
    2 epochs, 6 samples per class with 3 DDIM steps."""
    from dataclasses import replace

    from unlearnbench.diffusion.model import DiffusionTrainConfig
    from unlearnbench.diffusion.world import Sampling
    from unlearnbench.tasks.digits_diffusion import default_world
    from unlearnbench.vision.classifier import ClassifierTrainConfig

    return replace(default_world(), model_config=TINY_DIFFUSION_MODEL,
                   train=DiffusionTrainConfig(steps=20, batch_size=32, warmup=5),
                   judge_train=ClassifierTrainConfig(epochs=2, batch_size=64, lr=0.05),
                   sampling=Sampling(per_class=6, steps=3, guidance=2.0, grid=2))


def tiny_diffusion_run(method: str, out: Path, params: dict | None = None):
    """One run of ``method`` on the tiny digits-diffusion/class-3 world (a RunResult)."""
    from unlearnbench.runner import RunSpec, run

    return run(RunSpec(task="digits-diffusion/class-3", method=method, params=params or {}, out=out, quiet=True,
                       task_options={"world": tiny_diffusion_world()}))
