"""Fair selection (unlearnbench tune): each family's validation split is disjoint from what is
reported, every method gets the same budget, and the choice reads the validation runs only."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from typer.testing import CliRunner

from unlearnbench.errors import UserError
from unlearnbench.family import FULL_TASK, get_family, unsliced
from unlearnbench.records import load_record
from unlearnbench.runner import RunSpec, load_task
from unlearnbench.sweep import parse_spec


def _questions(split) -> list[str]:
    field = next(f for f in ("question", "text", "prompt") if f in split.column_names)
    return list(split[field])


def _check_lm_split(task):
    family = get_family(task.kind)
    val, test = family.split_task(task, "validation"), family.split_task(task, "test")
    # an empty row says nothing (MUSE has some); every other row is on one side only
    seen_val = {q for rows in val.splits.values() for q in _questions(rows) if q}
    seen_test = {q for rows in test.splits.values() for q in _questions(rows) if q}
    assert seen_val and seen_test
    assert not seen_val & seen_test  # no row of any scored set is on both sides, in any set
    for role, rows in task.splits.items():  # the two sides are the whole set
        assert Counter(_questions(val.splits[role])) + Counter(_questions(test.splits[role])) == Counter(_questions(rows))
    for split in (val, test):
        assert unsliced(split) is task
        assert dict(split.spec.options)["split"] in ("validation", "test")
        assert split.fingerprint != task.fingerprint
        if task.forget_groups is not None:
            assert len(split.forget_groups) == len(split.splits["forget"])
    assert val.fingerprint != test.fingerprint


def test_the_tofu_validation_split_shares_no_question_with_the_test_split(tiny_task):
    _check_lm_split(tiny_task)


def test_the_muse_validation_split_shares_no_text_with_the_test_split(tiny_muse):
    from unlearnbench.tasks.muse import make_muse_synth_task

    _check_lm_split(make_muse_synth_task(synth=tiny_muse, quiet=True))


def test_a_language_model_method_still_unlearns_the_whole_forget_set_on_a_split_run(tiny_task):
    from transformers import AutoTokenizer

    family = get_family("language_model")
    val = family.split_task(tiny_task, "validation")
    tokenizer = AutoTokenizer.from_pretrained(tiny_task.extra["world_dir"] + "/tokenizer")
    target = type("Loaded", (), {"tokenizer": tokenizer})()
    data = family.method_data(val, "forget", target)
    assert _questions(data.forget) == _questions(tiny_task.splits["forget"])
    assert len(val.splits["forget"]) < len(tiny_task.splits["forget"])


@pytest.mark.parametrize("name", ["digits/random-10", "digits/class-3", "diabetes/random-10", "diabetes/range-200-350"])
def test_an_array_tasks_validation_rows_are_disjoint_from_its_test_rows(name):
    full = load_task(RunSpec(task=name))
    sides = {s: load_task(RunSpec(task=name, options={"split": s})) for s in ("validation", "test")}
    rows = {}
    for s, task in sides.items():
        train = task.extra["split_rows"]["train"]  # positions in the whole task's training set
        assert np.array_equal(task.x_train, full.x_train[train])
        forget = train[task.forget_indices]
        retain = np.setdiff1d(train, forget)
        assert set(forget) <= set(full.forget_indices) and not set(retain) & set(full.forget_indices)
        rows[s] = {"forget": set(forget), "retain": set(retain), "test": set(task.extra["split_rows"]["test"])}
        assert unsliced(task) is not task and unsliced(task).fingerprint == full.fingerprint
    for part in ("forget", "retain", "test"):
        assert rows["validation"][part] and rows["test"][part]
        assert not rows["validation"][part] & rows["test"][part]
    assert rows["validation"]["forget"] | rows["test"]["forget"] == set(full.forget_indices)
    assert len(rows["validation"]["test"] | rows["test"]["test"]) == len(full.y_test)
    assert sides["validation"].fingerprint != sides["test"].fingerprint != full.fingerprint


def test_an_array_method_still_unlearns_the_whole_forget_set_on_a_split_run():
    val = load_task(RunSpec(task="digits/random-10", options={"split": "validation"}))
    data = get_family("classifier").method_data(val, "forget", None)
    full = val.extra[FULL_TASK]
    assert np.array_equal(data.x_forget, full.x_train[full.forget_indices])
    assert len(data.x_retain) == len(full.retain_indices) > len(val.retain_indices)


def test_a_family_without_a_validation_split_is_refused_in_one_line(tmp_path):
    from unlearnbench.tune import validation_jobs

    spec = parse_spec({"tasks": ["digits-diffusion/class-3"], "methods": ["ft"], "select": {"budget": 1}})
    with pytest.raises(UserError, match="--split is not an option"):
        validation_jobs(spec, tmp_path)


def test_every_method_must_try_the_same_number_of_points(tmp_path):
    from unlearnbench.tune import validation_jobs

    spec = parse_spec({"tasks": ["digits/random-10"], "methods": ["ft", "rl"], "params": {"rl": {"lr": [0.01, 0.02]}},
                       "select": {"budget": 2}})
    with pytest.raises(UserError, match="ft on digits/random-10 has 1"):
        validation_jobs(spec, tmp_path)


def test_a_sweep_refuses_a_tune_file(tmp_path):
    from unlearnbench.cli.app import app

    path = tmp_path / "tune.toml"
    path.write_text('tasks = ["digits/random-10"]\nmethods = ["ft"]\n[select]\nbudget = 1\n')
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "unlearnbench tune" in result.output


def test_tune_chooses_on_validation_records_and_reports_the_chosen_point_on_test_seeds(tmp_path):
    from unlearnbench.cli.app import app

    path, out = tmp_path / "tune.toml", tmp_path / "runs"
    path.write_text('tasks = ["digits/random-10"]\nmethods = ["ft", "rl"]\nseeds = [0]\n'
                    '[params."*"]\nepochs = [1, 3]\n[select]\nbudget = 2\nseeds = [0, 1]\ndefaults = false\n')
    result = CliRunner().invoke(app, ["tune", str(path), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    records = [load_record(p) for p in out.glob("*/record.json")]
    assert len(records) == 4 + 4 and all(r["status"] == "succeeded" for r in records)
    split = {r["run_id"]: r["task"]["options"]["split"] for r in records}
    summary = json.loads((out / "tune.json").read_text())
    for choice in summary["choices"]:
        tried = [r for r in records if r["method"]["name"] == choice["method"] and split[r["run_id"]] == "validation"]
        assert len(tried) == 2
        gaps = {str(r["method"]["params"]["epochs"]): r["metrics"]["avg_gap"] for r in tried}
        # the classifiers' criterion: the lowest average gap to retrain (a tie may go either way)
        assert gaps[choice["chosen"]["epochs"]] == min(gaps.values())
    for row in summary["rows"]:
        tested = [r for r in records if r["run_id"] in row["run_ids"]]
        assert {split[r["run_id"]] for r in tested} == {"test"} and sorted(r["seed"] for r in tested) == [0, 1]
        gaps = [r["metrics"]["avg_gap"] for r in tested]
        assert row["test"]["avg_gap"]["mean"] == pytest.approx(np.mean(gaps))
        assert row["test"]["avg_gap"]["std"] == pytest.approx(np.std(gaps, ddof=1))
    assert "test split" in result.output
