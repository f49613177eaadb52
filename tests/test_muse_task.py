"""The MUSE family: the hub layout read from local folders, precise errors for broken
folders, the MUSE suite in a record, and the scalability / sustainability modes."""

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch

from unlearnbench import registry
from unlearnbench.errors import DataError, UserError
from unlearnbench.method import Method
from unlearnbench.runner import RunSpec, run

MUSE_METRICS = ("verbmem_forget", "knowmem_forget", "knowmem_retain", "privleak")


@pytest.fixture(scope="module")
def muse_world(tiny_muse):
    from unlearnbench.tasks.muse import ensure_synth_world

    return ensure_synth_world(tiny_muse, quiet=True)


@pytest.fixture
def muse_copy(muse_world, tmp_path):
    """A writable copy of the world's data folder, laid out like the hub dataset."""
    return Path(shutil.copytree(muse_world / "data", tmp_path / "MUSE-News"))


def test_muse_tasks_are_listed():
    names = registry.entries("task")
    assert {"muse/news", "muse/books", "muse-synth/news"} <= set(names)
    assert "sustainability" in names["muse/news"].info["modes"]


def test_the_synthetic_world_is_written_in_the_hub_layout(muse_world):
    for subset, split in [("raw", "forget"), ("raw", "retain1"), ("raw", "retain2"), ("raw", "holdout"),
                          ("verbmem", "forget"), ("knowmem", "forget_qa_icl"), ("privleak", "holdout"),
                          ("scal", "forget_4"), ("sust", "forget_1")]:
        assert (muse_world / "data" / subset / f"{split}-00000-of-00001.parquet").is_file()
    for model in ("target", "oracle"):
        assert (muse_world / model / "config.json").is_file() and (muse_world / model / "model.safetensors").is_file()


def test_the_real_task_reads_a_local_folder_in_hub_layout(muse_world, muse_copy, tmp_path):
    result = run(RunSpec(task="muse/news", method="original", data_dir=str(muse_copy), model=str(muse_world / "target"),
                         oracle=str(muse_world / "oracle"), out=tmp_path / "runs", quiet=True))
    assert result.record.status == "succeeded"
    assert set(MUSE_METRICS) <= set(result.record.metrics)
    assert result.record.task["suite"] == "muse"
    assert 0 <= result.record.metrics["verbmem_forget"] <= 100


def test_muse_books_accepts_the_retain2_naming_and_needs_no_scal_or_sust(muse_copy):
    from unlearnbench.tasks.muse import make_muse_task

    for name in ("retain_qa", "retain_qa_icl"):
        src = muse_copy / "knowmem" / f"{name}-00000-of-00001.parquet"
        src.rename(src.with_name(src.name.replace("retain_", "retain2_")))
    shutil.rmtree(muse_copy / "scal")
    shutil.rmtree(muse_copy / "sust")
    task = make_muse_task("books", data_dir=str(muse_copy), model="unused", oracle="unused")
    assert len(task.splits["knowmem_retain_qa"]) > 0
    assert task.modes == ()


def test_a_missing_split_is_named_with_its_subset(muse_copy):
    from unlearnbench.tasks.muse import make_muse_task

    (muse_copy / "knowmem" / "forget_qa-00000-of-00001.parquet").unlink()
    with pytest.raises(DataError, match=r"knowmem.*forget_qa"):
        make_muse_task("news", data_dir=str(muse_copy))


def test_a_missing_field_is_named_with_its_split(muse_copy):
    from unlearnbench.tasks.muse import make_muse_task

    path = muse_copy / "verbmem" / "forget-00000-of-00001.parquet"
    pd.read_parquet(path).drop(columns=["gt"]).to_parquet(path)
    with pytest.raises(DataError, match=r"verbmem.*lacks field\(s\) gt"):
        make_muse_task("news", data_dir=str(muse_copy))


def test_a_missing_subset_folder_is_named(muse_copy):
    from unlearnbench.tasks.muse import make_muse_task

    shutil.rmtree(muse_copy / "privleak")
    with pytest.raises(DataError, match="no subset folder.*privleak"):
        make_muse_task("news", data_dir=str(muse_copy))


def test_sustainability_on_a_task_without_sust_splits_names_the_tasks_that_have_them(run_tiny, tmp_path):
    with pytest.raises(UserError, match="muse-synth/news") as info:
        run_tiny("original", mode="sustainability", out=tmp_path / "runs")
    assert "sust/forget_1..4" in str(info.value)
    assert not list((tmp_path / "runs").glob("*/record.json"))


def test_an_unknown_mode_lists_the_known_ones(run_tiny):
    with pytest.raises(UserError, match="scalability"):
        run_tiny("original", mode="scalable")


def test_the_muse_suite_scores_the_original_target_against_the_oracle(run_muse):
    result = run_muse("original")
    record = result.record
    assert set(MUSE_METRICS) <= set(record.metrics)
    assert all(f"mia_{a}_auc" in record.metrics for a in ("loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm"))
    assert record.reference["oracle"]["privleak"] == pytest.approx(0.0)
    assert record.metrics["privleak"] == pytest.approx(record.reference["original"]["privleak"])
    lo, hi = record.ci["privleak"]
    assert lo <= record.metrics["privleak"] <= hi


@dataclass
class _Spy:
    calls: list


_SPY = _Spy(calls=[])


class SpyMethod(Method):
    """Records the weights it is given, then moves one weight by 1."""

    name = "test-spy"

    @dataclass(frozen=True)
    class Params:
        pass

    def unlearn(self, model, data, params, ctx):
        first = next(model.parameters())
        _SPY.calls.append((len(data.forget), float(first.detach().double().sum())))
        with torch.no_grad():
            first.view(-1)[0] += 1.0
        return model


@pytest.fixture
def spy_method():
    registry.register_method("test-spy")(SpyMethod)
    yield SpyMethod
    registry.unregister("method", "test-spy")  # the registry is process-wide: leave it as found


@pytest.mark.parametrize("mode,sizes_grow,sequential", [("scalability", True, False), ("sustainability", False, True)])
def test_modes_record_one_entry_per_step(run_muse, tiny_muse, spy_method, mode, sizes_grow, sequential):
    _SPY.calls.clear()
    record = run_muse("test-spy", mode=mode).record
    assert record.status == "succeeded" and record.mode == mode
    assert [s["step"] for s in record.steps] == [1, 2, 3, 4]
    assert [s["forget"] for s in record.steps] == [f"{'scal' if sizes_grow else 'sust'}/forget_{k}" for k in range(1, 5)]
    sizes = [s["n_forget"] for s in record.steps]
    quarter = tiny_muse.world.n_forget // 4
    assert sizes == ([quarter * k for k in range(1, 5)] if sizes_grow else [quarter] * 4)
    assert record.metrics == record.steps[-1]["metrics"]
    sums = [s for _, s in _SPY.calls]
    if sequential:  # each request starts from the previous result
        assert sums[1:] == pytest.approx([s + 1.0 for s in sums[:-1]])
    else:  # each forget size starts from the original target
        assert sums == pytest.approx([sums[0]] * 4)
