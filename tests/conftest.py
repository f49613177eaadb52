"""Shared fixtures: an offline, hermetic environment and small synthetic worlds.

Every test runs with the hub switched off and the unlearnbench cache in a session folder
(``UNLEARNBENCH_TEST_CACHE`` reuses a folder across sessions while developing).
"""

from __future__ import annotations

import os

import pytest

os.environ.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", UNLEARNBENCH_QUIET="1")


@pytest.fixture(scope="session", autouse=True)
def hermetic_cache(tmp_path_factory):
    path = os.environ.get("UNLEARNBENCH_TEST_CACHE") or str(tmp_path_factory.mktemp("unlearnbench-cache"))
    os.environ["UNLEARNBENCH_CACHE"] = path
    return path


@pytest.fixture(scope="session")
def tiny_synth():
    """A 20-author world trained for a few epochs: seconds to build, enough to exercise code."""
    from unlearnbench.lm.modeling import TinyLlamaConfig, TrainConfig
    from unlearnbench.tasks.tofu import SynthConfig

    return SynthConfig(
        n_authors=20, n_holdout_authors=2,
        model=TinyLlamaConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128),
        train=TrainConfig(lr=3e-3, epochs=4, batch_size=32, warmup_fraction=0.05),
    )


@pytest.fixture(scope="session")
def tiny_task(tiny_synth):
    from unlearnbench.tasks.tofu import make_tofu_synth_task

    return make_tofu_synth_task("forget10", synth=tiny_synth, quiet=True)


@pytest.fixture
def run_tiny(tiny_synth, tmp_path):
    """Run the runner on the tiny world: ``run_tiny(method, **spec_fields)``."""
    from unlearnbench.runner import RunSpec, run

    def _run(method: str = "original", **fields):
        fields.setdefault("out", tmp_path / "runs")
        fields.setdefault("quiet", True)
        return run(RunSpec(task="tofu-synth/forget10", method=method, task_options={"synth": tiny_synth}, **fields))

    return _run


@pytest.fixture(scope="session")
def tiny_muse():
    """A small MUSE-style news world trained for a few epochs (seconds)."""
    from unlearnbench.lm.modeling import TinyLlamaConfig, TrainConfig
    from unlearnbench.tasks.muse import MuseSynthConfig
    from unlearnbench.lm.worlds.muse_synth import MuseWorldConfig

    return MuseSynthConfig(
        world=MuseWorldConfig(n_forget=8, n_retain=16, n_holdout=8, n_retain_qa_events=2, n_icl=2),
        model=TinyLlamaConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128),
        train=TrainConfig(lr=3e-3, epochs=3, batch_size=16, warmup_fraction=0.05),
    )


@pytest.fixture
def run_muse(tiny_muse, tmp_path):
    """Run the runner on the small news world: ``run_muse(method, **spec_fields)``."""
    from unlearnbench.runner import RunSpec, run

    def _run(method: str = "original", **fields):
        fields.setdefault("out", tmp_path / "runs")
        fields.setdefault("quiet", True)
        return run(RunSpec(task="muse-synth/news", method=method, task_options={"synth": tiny_muse}, **fields))

    return _run


@pytest.fixture(scope="module")
def one_thread():
    """Small CPU models train on one thread in these modules (bit-stable results, no thread
    overhead on tiny batches); the thread count is restored afterwards, so the rest of the
    session (the synthetic worlds) trains on every core."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need a CUDA device: skipped, with the reason, where there is none."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (none visible)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def accept(tiny_synth, tmp_path):
    """``accept(run_dir, **kw)`` submits to a fresh board under tmp_path; returns the stored folder."""
    from _tiny_runs import tiny_loader
    from unlearnbench.leaderboard.submissions import submit

    board = tmp_path / "board"
    loader = tiny_loader(tiny_synth)

    def _submit(run_dir, **kw):
        kw.setdefault("board", board)
        return submit(run_dir, task_loader=loader, **kw)

    _submit.board = board
    return _submit
