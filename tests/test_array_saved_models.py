"""Unlearned classifiers and regressors kept by --save-model and read back by --unlearned:
the same predictions after the round trip (one model and a SISA ensemble), layout files that
cannot reach outside their folder, folders that are not a saved model named with what to pass,
and a run that scores a saved model as it scored it when it made it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unlearnbench.errors import ModelSourceError, UserError
from unlearnbench.family import get_family
from unlearnbench.vision.classifier import ShardEnsemble
from unlearnbench.runner import RunSpec, run
from unlearnbench.tabular.regression import RegressionTrainConfig, predict
from unlearnbench.vision.classifier import ClassifierTrainConfig, build_classifier, predict_proba

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    from unlearnbench.tasks.digits import make_digits_task

    task = make_digits_task("random-10", quiet=True, train=ClassifierTrainConfig(epochs=2), device="cpu")
    return task, task.load_target()


@pytest.fixture(scope="module")
def diabetes():
    from unlearnbench.tasks.diabetes import make_diabetes_task

    task = make_diabetes_task("random-10", quiet=True, train=RegressionTrainConfig(epochs=5), device="cpu")
    return task, task.load_target()


def save_and_load(kind, model, task, target, folder):
    family = get_family(kind)
    info = family.save_model(model, folder, task=task, target=target, artifacts={})
    return info, family.load_unlearned(str(folder), task, target, device=CPU, options={})


def test_a_saved_classifier_reads_back_with_the_same_predictions(digits, tmp_path):
    task, target = digits
    info, loaded = save_and_load("classifier", target.model, task, target, tmp_path / "model")
    assert info == {"layout": "unlearnbench-classifier", "fingerprint": target.fingerprint}  # the weights hash
    assert loaded.fingerprint == target.fingerprint and loaded.source == str(tmp_path / "model")
    assert loaded.tokenizer is None and not loaded.model.training
    assert np.array_equal(predict_proba(loaded.model, task.x_test), predict_proba(target.model, task.x_test))
    # the folder --model takes
    from unlearnbench.tasks.digits import make_digits_task

    again = make_digits_task("random-10", quiet=True, model=str(tmp_path / "model"), device="cpu").load_target()
    assert again.fingerprint == target.fingerprint


def test_a_sisa_ensemble_keeps_every_shard_and_predicts_the_same(digits, tmp_path):
    task, target = digits
    ensemble = ShardEnsemble([build_classifier(task.model_config, seed=s) for s in (1, 2)]).eval()
    folder = tmp_path / "model"
    info, loaded = save_and_load("classifier", ensemble, task, target, folder)
    assert info["layout"] == "sisa-ensemble" and info["shards"] == 2
    assert json.loads((folder / "ensemble.json").read_text())["shards"] == ["shard-0", "shard-1"]
    assert isinstance(loaded.model, ShardEnsemble) and len(loaded.model.shards) == 2
    assert loaded.fingerprint == info["fingerprint"]
    assert np.array_equal(predict_proba(loaded.model, task.x_test), predict_proba(ensemble, task.x_test))
    # saving one model where the ensemble was leaves no ensemble.json behind
    info, loaded = save_and_load("classifier", target.model, task, target, folder)
    assert info["layout"] == "unlearnbench-classifier" and not (folder / "ensemble.json").exists()
    assert not isinstance(loaded.model, ShardEnsemble)


@pytest.mark.parametrize("shard", ["../outside", "/tmp/outside", "shard-0/../../outside", "link", "."])
def test_a_layout_file_that_reaches_outside_its_folder_is_refused(digits, tmp_path, shard):
    task, target = digits
    folder = tmp_path / "model"
    save_and_load("classifier", ShardEnsemble([target.model]), task, target, folder)
    (tmp_path / "outside").mkdir()
    for name in ("model.safetensors", "config.json"):  # a readable model out there: refused all the same
        (tmp_path / "outside" / name).write_bytes((folder / "shard-0" / name).read_bytes())
    (folder / "link").symlink_to(tmp_path / "outside")
    doc = json.loads((folder / "ensemble.json").read_text())
    (folder / "ensemble.json").write_text(json.dumps({**doc, "shards": ["shard-0", shard]}))
    with pytest.raises(ModelSourceError, match="not a path inside the saved folder"):
        get_family("classifier").load_unlearned(str(folder), task, target, device=CPU, options={})


@pytest.mark.parametrize("problem,message", [
    ("empty", "neither ensemble.json .* nor config.json and model.safetensors"),
    ("missing", "no such folder"),
    ("hub", "read a local folder, not a hub id"),
    ("bad-json", "not a readable JSON file"),
    ("other-layout", "layout 'lora' is not one this task reads"),
    ("regressor", "not a classifier config"),
])
def test_a_folder_that_is_not_a_saved_classifier_says_what_to_pass(digits, diabetes, tmp_path, problem, message):
    task, target = digits
    folder = tmp_path / "model"
    folder.mkdir()
    if problem == "bad-json":
        (folder / "ensemble.json").write_text("{")
    elif problem == "other-layout":
        (folder / "ensemble.json").write_text(json.dumps({"layout": "lora", "version": 1, "shards": ["a"]}))
    elif problem == "regressor":
        regression_task, regressor = diabetes
        get_family("regression").save_model(regressor.model, folder, task=regression_task, target=regressor,
                                            artifacts={})
    source = {"missing": str(tmp_path / "nowhere"), "hub": "hub:org/model"}.get(problem, str(folder))
    with pytest.raises(UserError, match=message) as err:
        get_family("classifier").load_unlearned(source, task, target, device=CPU, options={})
    if problem in ("empty", "missing", "hub"):
        assert "--save-model" in str(err.value)


def test_a_model_of_another_architecture_is_not_saved_under_the_tasks_config(digits, tmp_path):
    task, target = digits
    with pytest.raises(UserError, match="not the architecture of the task's config"):
        get_family("classifier").save_model(torch.nn.Linear(64, 10), tmp_path / "model", task=task, target=target,
                                            artifacts={})


def test_a_folder_of_other_files_is_not_overwritten(digits, tmp_path):
    task, target = digits
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="left alone"):
        get_family("classifier").save_model(target.model, tmp_path, task=task, target=target, artifacts={})
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_saved_regressor_reads_back_with_the_same_predictions(diabetes, tmp_path):
    task, target = diabetes
    info, loaded = save_and_load("regression", target.model, task, target, tmp_path / "model")
    assert info == {"layout": "unlearnbench-regressor", "fingerprint": target.fingerprint}
    assert loaded.fingerprint == target.fingerprint
    assert np.array_equal(predict(loaded.model, task.x_test), predict(target.model, task.x_test))


def test_a_regression_task_refuses_an_ensemble_and_a_model_for_other_features(digits, diabetes, tmp_path):
    task, target = diabetes
    classifier_task, classifier = digits
    ensemble = tmp_path / "ensemble"
    get_family("classifier").save_model(ShardEnsemble([classifier.model]), ensemble, task=classifier_task,
                                        target=classifier, artifacts={})
    with pytest.raises(UserError, match="regression tasks read one model"):
        get_family("regression").load_unlearned(str(ensemble), task, target, device=CPU, options={})
    from unlearnbench.tabular.regression import build_regressor, save_regressor

    save_regressor(build_regressor({"arch": "mlp", "in_features": 3}), {"arch": "mlp", "in_features": 3}, tmp_path / "m")
    with pytest.raises(UserError, match="takes 3 features; the task has 10"):
        get_family("regression").load_unlearned(str(tmp_path / "m"), task, target, device=CPU, options={})


@pytest.mark.parametrize("task_name,method,params,layout", [
    ("digits/random-10", "ft", {"epochs": "1"}, "unlearnbench-classifier"),
    ("digits/random-10", "sisa", {"shards": "2", "slices": "2", "epochs": "1"}, "sisa-ensemble"),
    ("digits/random-10", "s3t", {"shards": "2", "slices": "2", "orders": "1", "epochs": "1"}, "sisa-ensemble"),
    ("diabetes/random-10", "ft", {"epochs": "1"}, "unlearnbench-regressor"),
])
def test_a_saved_model_scores_the_same_through_external(tmp_path, task_name, method, params, layout):
    train = {"epochs": 3} if task_name.startswith("digits") else {"epochs": 20}
    common = dict(task=task_name, out=tmp_path / "runs", quiet=True, device="cpu", task_options={"train": train})
    made = run(RunSpec(method=method, params=params, save_model=True, **common))
    assert made.record.status == "succeeded", made.record.error
    saved = made.record.model["unlearned"]
    assert saved["path"] == "model" and saved["layout"] == layout
    scored = run(RunSpec(method="external", unlearned=str(made.run_dir / "model"), **common))
    assert scored.record.status == "succeeded", scored.record.error
    assert scored.record.method["info"]["fingerprint"] == saved["fingerprint"]
    timing = {"rte"}  # the time the method took, not a property of the model
    expected = {k: v for k, v in made.record.metrics.items() if k not in timing}
    assert {k: v for k, v in scored.record.metrics.items() if k not in timing} == pytest.approx(expected, rel=1e-9)
