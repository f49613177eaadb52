"""`unlearnbench.load_runs`: records into a DataFrame, one row per run and one column per metric."""

import json
import subprocess
import sys

import pytest
from _tiny_runs import tiny_runs

from unlearnbench import load_runs
from unlearnbench.errors import UserError
from unlearnbench.records import RECORD_FILE


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    return tiny_runs(tiny_synth, tmp_path_factory)


def test_one_row_per_run_and_one_column_per_metric(runs):
    frame = load_runs(runs["ga"].parent)
    assert sorted(frame["method"]) == ["ga", "original"]
    assert {"run_id", "task", "method", "params", "seed", "status"} <= set(frame.columns)
    for method, run in runs.items():
        record = json.loads((run / RECORD_FILE).read_text())
        row = frame[frame["method"] == method].iloc[0]
        assert row["task"] == "tofu-synth/forget10" and row["seed"] == 0 and row["run_id"] == record["run_id"]
        assert row["params"] == record["method"]["params"]
        for name, value in record["metrics"].items():
            assert row[name] == pytest.approx(value, nan_ok=True)


def test_a_glob_a_run_folder_and_a_record_file_all_work(runs):
    assert list(load_runs(str(runs["ga"].parent / "*__ga__*"))["method"]) == ["ga"]
    assert list(load_runs(runs["original"])["method"]) == ["original"]
    assert list(load_runs(runs["original"] / RECORD_FILE)["method"]) == ["original"]


def test_references_add_the_original_and_the_oracle_once_per_task(runs):
    frame = load_runs(runs["ga"].parent, references=True)
    refs = frame[frame["kind"] == "reference"]
    assert sorted(refs["method"]) == ["oracle", "original"]
    assert list(frame["kind"]) == ["run", "run", "reference", "reference"]


def test_params_spread_into_columns_in_a_notebook(runs):
    import pandas as pd

    frame = load_runs(runs["ga"].parent)
    params = frame["params"].apply(pd.Series)
    assert params.loc[frame["method"] == "ga", "epochs"].item() == 1


def test_a_path_that_does_not_exist_says_what_to_pass(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_runs(tmp_path / "nowhere")


def test_importing_unlearnbench_does_not_import_pandas():
    code = "import sys, unlearnbench; print('pandas' in sys.modules, callable(unlearnbench.load_runs))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
