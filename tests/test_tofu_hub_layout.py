"""The real-TOFU code path (``tofu/...``) on local folders laid out like the hub artefacts:
``locuslab/TOFU``'s ``<split>.json`` files and ``save_pretrained`` model folders, built here
from the synthetic world."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from unlearnbench.cli.app import app
from unlearnbench.errors import DataError
from unlearnbench.tasks.tofu import make_tofu_task

runner = CliRunner()


@pytest.fixture(scope="module")
def hub_like(tiny_task, tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    world = tiny_task.extra["world_dir"]
    shutil.copytree(f"{world}/data", root / "TOFU")
    shutil.copytree(f"{world}/target", root / "tofu_full")
    shutil.copytree(f"{world}/oracle-forget10", root / "tofu_retain90")
    return root


def test_evaluate_runs_on_hub_layout_folders(hub_like, tmp_path):
    result = runner.invoke(app, [
        "evaluate", "--task", "tofu/forget10", "--method", "graddiff", "--param", "epochs=1",
        "--data-dir", str(hub_like / "TOFU"), "--model", str(hub_like / "tofu_full"),
        "--oracle", str(hub_like / "tofu_retain90"), "--out", str(tmp_path), "--format", "json", "--quiet",
    ])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "succeeded"
    assert record["task"]["name"] == "tofu/forget10"
    assert record["model"]["target"] == str(hub_like / "tofu_full")
    assert 0.0 <= record["metrics"]["forget_quality"] <= 1.0
    assert record["metrics"]["forget_quality_n"] == len(json.loads("[" + ",".join(
        (hub_like / "TOFU" / "forget10_perturbed.json").read_text().split("\n")[:-1]) + "]"))


def test_a_missing_split_is_named(hub_like, tmp_path):
    data = tmp_path / "TOFU"
    shutil.copytree(hub_like / "TOFU", data)
    (data / "forget10_perturbed.json").unlink()
    with pytest.raises(DataError, match="missing split.*forget10_perturbed"):
        make_tofu_task("forget10", data_dir=str(data))


def test_a_missing_field_names_the_file_and_field(hub_like, tmp_path):
    data = tmp_path / "TOFU"
    shutil.copytree(hub_like / "TOFU", data)
    path = data / "retain_perturbed.json"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    del rows[3]["paraphrased_answer"]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(DataError, match=r"retain_perturbed\.json: row 3 .* lacks field\(s\) paraphrased_answer"):
        make_tofu_task("forget10", data_dir=str(data))


def test_invalid_json_is_reported_with_the_file(hub_like, tmp_path):
    data = tmp_path / "TOFU"
    shutil.copytree(hub_like / "TOFU", data)
    (data / "forget10.json").write_text("{not json\n")
    with pytest.raises(DataError, match="forget10.json: not valid JSON"):
        make_tofu_task("forget10", data_dir=str(data))


def test_missing_model_folder_is_reported_by_the_cli(hub_like, tmp_path):
    result = runner.invoke(app, ["evaluate", "--task", "tofu/forget10", "--method", "original",
                                 "--data-dir", str(hub_like / "TOFU"), "--model", str(tmp_path / "nope"),
                                 "--oracle", str(hub_like / "tofu_retain90"), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and "nope" in result.stderr


def test_hub_unreachable_without_data_dir_says_what_to_do(tmp_path):
    result = runner.invoke(app, ["evaluate", "--task", "tofu/forget10", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "locuslab/TOFU" in result.stderr and "--data-dir" in result.stderr


def test_diverged_training_exits_non_zero_with_a_failed_record(hub_like, tmp_path):
    result = runner.invoke(app, [
        "evaluate", "--task", "tofu/forget10", "--method", "ga", "--param", "lr=1e30", "--param", "epochs=3",
        "--data-dir", str(hub_like / "TOFU"), "--model", str(hub_like / "tofu_full"),
        "--oracle", str(hub_like / "tofu_retain90"), "--out", str(tmp_path), "--quiet",
    ])
    assert result.exit_code == 1
    assert "failed" in result.stderr and "diverged" in result.stderr
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "record.json").read_text())["status"] == "failed"
