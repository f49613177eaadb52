"""The run's --device reaches the training recipes of classifier and regression tasks, and a
model a recipe trains on another device type than the CPU is cached under another key (CPU
keys stay what they were). No GPU is needed: the recipes' fit functions are replaced by ones
that record the device they are given and return an untrained model."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from unlearnbench.arraytasks import ORACLE_SEED, TARGET_SEED, world_key
from unlearnbench.cache import cache_root, fingerprint
from unlearnbench.runner import RunSpec, load_task
from unlearnbench.vision.classifier import ClassifierTrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

KEY = dict(family="digits", version="1", data_fingerprint="abc", model_config={"arch": "small_cnn", "num_classes": 10},
           train_config=ClassifierTrainConfig(epochs=3))


def test_cpu_keys_name_no_device_and_other_device_types_are_keyed_apart():
    from unlearnbench.reproducible import BUILD_VERSION

    before = {"family": "digits", "version": "1", "data": "abc", "model": {"arch": "small_cnn", "num_classes": 10},
              "train": asdict(ClassifierTrainConfig(epochs=3)), "target_seed": TARGET_SEED, "oracle_seed": ORACLE_SEED,
              "build": BUILD_VERSION}
    assert world_key(**KEY) == world_key(**KEY, device="cpu") == world_key(**KEY, device=torch.device("cpu")) == before
    cuda = world_key(**KEY, device="cuda")
    assert cuda == {**before, "device": "cuda"} and fingerprint(cuda) != fingerprint(before)
    assert world_key(**KEY, device="cuda:1") == cuda  # the index is not part of it
    assert world_key(**KEY, device="mps")["device"] == "mps"


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """Replaces the classifier and regression recipes' fit with one that records its device;
    the cache is a fresh folder, so every model is fitted."""
    import unlearnbench.tabular.regression as regression
    import unlearnbench.vision.classifier as classifier

    monkeypatch.setenv("UNLEARNBENCH_CACHE", str(tmp_path / "cache"))
    seen: list = []

    def fake(build, scale: bool):
        def fit(model_config, x, y, train_config, seed, *, device=None, quiet=False, description=""):
            seen.append(device)
            model = build(model_config, seed=seed)
            return model.set_target_scale(y) if scale else model
        return fit

    monkeypatch.setattr(classifier, "fit_classifier", fake(classifier.build_classifier, False))
    monkeypatch.setattr(regression, "fit_regressor", fake(regression.build_regressor, True))
    return seen


TASKS = [("digits/random-10", "digits"), ("diabetes/random-10", "diabetes")]


@pytest.mark.parametrize("task_name,family", TASKS)
def test_device_cpu_reaches_the_recipe_and_keeps_the_cpu_key(recorded, task_name, family):
    task = load_task(RunSpec(task=task_name, device="cpu", quiet=True))
    task.load_target(), task.load_oracle()
    assert recorded == [torch.device("cpu"), torch.device("cpu")]
    key = world_key(family=family, version=task.spec.version, data_fingerprint=_data_fingerprint(task_name),
                    model_config=task.model_config, train_config=task.train_config)
    assert Path(task.extra["cache_dir"]) == cache_root() / family / fingerprint(key)


@pytest.mark.parametrize("task_name,family", TASKS)
def test_auto_trains_on_a_visible_gpu_and_caches_it_apart(recorded, monkeypatch, task_name, family):
    cpu = load_task(RunSpec(task=task_name, device="cpu", quiet=True))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the fake fit never touches the device
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpu = load_task(RunSpec(task=task_name, device="auto", quiet=True))
    gpu.load_target()
    assert recorded == [torch.device("cuda")]
    assert gpu.extra["cache_dir"] != cpu.extra["cache_dir"]
    key = world_key(family=family, version=gpu.spec.version, data_fingerprint=_data_fingerprint(task_name),
                    model_config=gpu.model_config, train_config=gpu.train_config, device="cuda")
    assert Path(gpu.extra["cache_dir"]) == cache_root() / family / fingerprint(key)


def test_a_device_task_option_given_in_python_wins_over_the_runs(recorded):
    task = load_task(RunSpec(task="digits/random-10", device="auto", quiet=True, task_options={"device": "cpu"}))
    task.load_target()
    assert recorded == [torch.device("cpu")]


def _data_fingerprint(task_name: str) -> str:
    if task_name.startswith("digits"):
        from unlearnbench.tasks.digits import digits_arrays

        return digits_arrays().fingerprint
    from unlearnbench.tasks.diabetes import diabetes_arrays

    return diabetes_arrays().fingerprint
