"""Reproducible worlds: a world built in two processes with different torch thread counts has
the same weights, and each built model carries a content fingerprint of its weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from unlearnbench.reproducible import (BUILD_THREADS, FINGERPRINT_FILE, reproducible_build, stored_fingerprint, tensors_fingerprint,
                                       weights_fingerprint)

ROOT = Path(__file__).resolve().parent.parent

# A tofu-synth world of the default model width, trained briefly. Trained on every thread (the
# code before reproducible builds), this model's weights were the same with 1, 2 or 4 threads
# but not with 16, hence the two counts here (the build itself runs on BUILD_THREADS
# threads whatever the caller set).
BUILD = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from unlearnbench.lm.modeling import TinyLlamaConfig, TrainConfig
from unlearnbench.reproducible import stored_fingerprint, weights_fingerprint
from unlearnbench.tasks.tofu import SynthConfig, ensure_synth_world
config = SynthConfig(n_authors=20, n_holdout_authors=2, model=TinyLlamaConfig(),
                     train=TrainConfig(lr=3e-3, epochs=2, batch_size=32, warmup_fraction=0.05))
root = ensure_synth_world(config, "forget10", quiet=True)
print(json.dumps({m: [stored_fingerprint(root / m), weights_fingerprint(root / m)] for m in ("target", "oracle-forget10")}))
"""


def _build_in_process(threads: int, cache: Path) -> dict:
    env = {**os.environ, "UNLEARNBENCH_CACHE": str(cache), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", BUILD, str(threads)], env=env, capture_output=True, text=True,
                         check=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_world_built_with_1_and_with_16_threads_has_the_same_weights(tmp_path):
    one = _build_in_process(1, tmp_path / "one")
    two = _build_in_process(16, tmp_path / "sixteen")
    assert one == two
    for stored, recomputed in one.values():
        assert stored == recomputed  # the fingerprint written at build time is that of the saved weights


def test_the_weights_fingerprint_changes_when_one_weight_changes(tmp_path):
    weights = {"a.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b.bias": torch.ones(5)}
    save_file(weights, str(tmp_path / "model.safetensors"))
    before = weights_fingerprint(tmp_path)
    weights["a.weight"][1, 2] += 1e-6
    save_file(weights, str(tmp_path / "model.safetensors"))
    assert weights_fingerprint(tmp_path) != before


def test_the_weights_fingerprint_is_that_of_the_tensors_not_of_the_file(tmp_path):
    weights = {"a.weight": torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), "b.bias": torch.ones(5)}
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    assert weights_fingerprint(tmp_path) == tensors_fingerprint({f"model.safetensors:{k}": v for k, v in weights.items()})
    assert tensors_fingerprint(weights) != tensors_fingerprint({**weights, "b.bias": torch.ones(5, dtype=torch.float64)})


def test_a_folder_without_a_stored_fingerprint_has_none(tmp_path):
    assert stored_fingerprint(tmp_path) is None
    (tmp_path / FINGERPRINT_FILE).write_text("not json")
    assert stored_fingerprint(tmp_path) is None


def test_the_build_block_gives_back_the_callers_threads_and_random_state():
    threads = torch.get_num_threads()
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.set_num_threads(1)
    torch.manual_seed(7)
    with reproducible_build(seed=0):
        assert torch.get_num_threads() == BUILD_THREADS == 2
        assert torch.are_deterministic_algorithms_enabled()
        inside = torch.rand(3)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(threads)
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.equal(torch.rand(3), expected)  # the block's draws did not move the caller's stream
    torch.manual_seed(0)
    assert torch.equal(inside, torch.rand(3))


@pytest.mark.parametrize("threads", [1, 2])
def test_an_array_world_model_is_fingerprinted_at_build_time(tmp_path, threads):
    from unlearnbench.arraytasks import ModelKit, cached_model
    from unlearnbench.tabular.regression import (RegressionTrainConfig, fit_regressor, load_regressor,
                                                 regressor_fingerprint, save_regressor)

    kit = ModelKit(fit=fit_regressor, save=save_regressor, load=load_regressor, fingerprint=regressor_fingerprint)

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1)).numpy()
    y = x.sum(axis=1)
    try:
        folder = cached_model(kit, tmp_path / "target", {"arch": "mlp", "in_features": 3, "hidden": [8]}, x, y,
                              RegressionTrainConfig(epochs=2, batch_size=16), 0, quiet=True)
    finally:
        torch.set_num_threads(before)
    assert stored_fingerprint(folder) == weights_fingerprint(folder)


def _record(run_id: str, target: str, oracle: str = "o1") -> dict:
    return {"run_id": run_id, "task": {"name": "digits/class-3", "version": "1", "fingerprint": "f", "suite": "classifier"},
            "method": {"name": "ga", "params": {}}, "seed": 0, "metrics": {}, "reference": {}, "_path": f"t/{run_id}",
            "model": {"target_fingerprint": target, "oracle_fingerprint": oracle}, "provenance": {"git_dirty": False}}


def test_the_board_shows_the_majority_fingerprints_and_flags_a_run_on_other_weights():
    from unlearnbench.leaderboard import boards

    [board] = boards.task_boards([_record("a", "t1"), _record("b", "t1"), _record("c", "t2")])
    assert board.models == ("t1", "o1")
    assert [board.other_models(r) for _, _, r in board.ranked] == [False, False, True]
    text = boards.render_markdown([board])
    assert "Target weights `t1`, oracle `o1`" in text
    assert "| ga ‡ |" in text and "`c` `t2` / `o1`" in text
    page = boards.render_html([board])
    assert "<code>t1</code>" in page and page.count("‡") >= 2
