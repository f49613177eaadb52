"""The digits task family and the classifier library it stands on: forget sets by variant and
by index file (and every bad index file named), the cached target and oracle, the shared
training loop's determinism, and saving and loading classifiers bit for bit."""

import json

import numpy as np
import pytest
import torch

from unlearnbench import registry
from unlearnbench.vision.classifier import (
    ClassifierTrainConfig,
    build_classifier,
    classifier_fingerprint,
    fit_classifier,
    iterate_batches,
    load_classifier,
    predict_proba,
    read_forget_indices,
    save_classifier,
    train_classifier,
    write_forget_indices,
)
from unlearnbench.errors import DataError, ModelSourceError, TrainingDivergedError
from unlearnbench.tasks.digits import make_digits_task

TINY = ClassifierTrainConfig(epochs=2)
N_TRAIN = 1437  # 80% of sklearn's 1,797 digits
CNN = {"arch": "small_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 8}


pytestmark = pytest.mark.usefixtures("one_thread")


def digits(variant, **options):
    return make_digits_task(variant, quiet=True, train=TINY, **options)


def accuracy(model, x, y):
    return float((predict_proba(model, x).argmax(1) == np.asarray(y)).mean())


def test_every_variant_is_registered_as_a_classifier_task():
    names = registry.entries("task")
    expected = ([f"digits/class-{k}" for k in range(10)] + [f"digits/random-{p}" for p in (1, 5, 10, 20, 50)]
                + [f"digits/worst-{p}" for p in (1, 5, 10, 20, 50)])
    for name in expected:
        assert names[name].info["kind"] == "classifier"


def test_the_data_is_a_fixed_stratified_split_of_normalised_8x8_images():
    task = digits("class-0")
    assert task.x_train.shape == (N_TRAIN, 1, 8, 8) and task.x_test.shape == (360, 1, 8, 8)
    assert task.x_train.dtype == np.float32 and task.y_train.dtype == np.int64
    assert abs(float(task.x_train.mean())) < 1e-4 and abs(float(task.x_train.std()) - 1) < 1e-3
    assert np.array_equal(np.bincount(task.y_test), np.bincount(digits("class-0").y_test))
    assert np.bincount(task.y_test).min() >= 35  # stratified: every digit has ~36 test images


def test_the_target_learns_and_is_cached_by_fingerprint():
    task = digits("class-3")
    target = task.load_target()
    assert target.tokenizer is None and target.source == "recipe:digits-small-cnn"
    assert accuracy(target.model, task.x_test, task.y_test) > 0.85  # two epochs already
    again = task.load_target()
    assert again.fingerprint == target.fingerprint
    for key, value in target.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])


def test_the_oracle_never_saw_the_forgotten_class():
    task = digits("class-3")
    oracle = task.load_oracle().model
    assert accuracy(oracle, task.x_train[task.forget_indices], task.y_train[task.forget_indices]) < 0.05
    retain = task.retain_indices
    assert accuracy(oracle, task.x_train[retain], task.y_train[retain]) > 0.85


def test_class_k_forgets_exactly_the_training_rows_of_class_k():
    task = digits("class-7")
    assert task.forget_class == 7
    assert np.array_equal(task.forget_indices, np.flatnonzero(task.y_train == 7))
    assert not np.any(task.y_train[task.retain_indices] == 7)


@pytest.mark.parametrize("percent", [1, 10, 50])
def test_random_p_has_the_right_size_and_is_the_same_every_time(percent):
    first, second = digits(f"random-{percent}"), digits(f"random-{percent}")
    assert len(first.forget_indices) == round(N_TRAIN * percent / 100)
    assert np.array_equal(first.forget_indices, second.forget_indices)
    assert np.array_equal(first.forget_indices, np.unique(first.forget_indices))
    assert first.forget_class is None and first.fingerprint == second.fingerprint


def test_a_forget_index_file_replaces_the_built_in_forget_set(tmp_path):
    path = write_forget_indices(tmp_path / "forget.json", [40, 3, 17], task="digits/random-1", strategy="manual", size=3)
    task = digits("random-1", forget_indices=str(path))
    assert task.forget_indices.tolist() == [3, 17, 40]
    assert dict(task.spec.options)["forget_indices"] == [3, 17, 40]  # the content, not the file's path
    assert task.fingerprint != digits("random-1").fingerprint
    assert task.forget_class is None
    assert len(task.retain_indices) == N_TRAIN - 3


BAD_FILES = {
    "out of range": ({"version": 1, "indices": [0, 5, 1437, 99999]}, r"out of range: 1437, 99999.*0\.\.1436"),
    "negative": ({"version": 1, "indices": [-1, 2]}, r"out of range: -1"),
    "duplicates": ({"version": 1, "indices": [4, 9, 4, 9, 11]}, r"duplicate indices: 4, 9"),
    "empty": ({"version": 1, "indices": []}, r"no indices"),
    "every row": ({"version": 1, "indices": list(range(N_TRAIN))}, r"every one of the 1437 training rows"),
    "no indices": ({"version": 1, "rows": [1, 2]}, r'no "indices" list'),
    "not integers": ({"version": 1, "indices": [1, "2", 3.5]}, r"must be integers.*'2', 3\.5"),
    "newer version": ({"version": 2, "indices": [1]}, r"version 2"),
}


@pytest.mark.parametrize("problem", BAD_FILES)
def test_a_bad_forget_index_file_is_refused_with_what_is_wrong(problem, tmp_path):
    doc, message = BAD_FILES[problem]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=message) as caught:
        digits("class-1", forget_indices=str(path))
    assert str(path) in str(caught.value)


def test_a_forget_index_file_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("3, 4, 5\n")
    with pytest.raises(DataError, match="not valid JSON"):
        read_forget_indices(path, N_TRAIN)
    with pytest.raises(DataError, match="does not exist"):
        read_forget_indices(tmp_path / "absent.json", N_TRAIN)


def test_worst_p_selects_once_and_caches_the_index_file(monkeypatch):
    import unlearnbench.vision.forgetsets as forgetsets

    calls = []

    def fake_select(strategy, *, model, x, y, size_fraction, seed, quiet=False, device=None, **_):
        calls.append((strategy, size_fraction))
        return np.arange(0, 2 * round(size_fraction * len(y)), 2), {"wall_seconds": 1.5}

    monkeypatch.setattr(forgetsets, "select", fake_select)
    first, second = digits("worst-5"), digits("worst-5")
    assert calls == [("worst", 0.05)]
    assert np.array_equal(first.forget_indices, np.arange(0, 144, 2))
    assert np.array_equal(second.forget_indices, first.forget_indices)
    saved = json.loads(open(first.extra["forget_indices_file"]).read())
    assert saved["strategy"] == "worst" and saved["cost_s"] == 1.5 and saved["version"] == 1


def test_digits_refuses_a_data_dir(tmp_path):
    with pytest.raises(DataError, match="bundled"):
        digits("class-0", data_dir=str(tmp_path))


# ------------------------------------------------------------------------- the library


def toy_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, size=n).astype(np.int64)


def test_training_is_deterministic_for_a_seed_and_differs_across_seeds():
    x, y = toy_data()
    config = ClassifierTrainConfig(epochs=2, batch_size=32)
    a, b = (fit_classifier(CNN, x, y, config, seed=3, quiet=True) for _ in range(2))
    c = fit_classifier(CNN, x, y, config, seed=4, quiet=True)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert not torch.equal(a.fc.weight, c.fc.weight)


def test_adam_constant_and_augmentation_are_deterministic_too():
    x, y = toy_data()
    config = ClassifierTrainConfig(epochs=1, batch_size=32, lr=1e-3, optimizer="adam", schedule="constant",
                                   augment="crop_flip")
    a, b = (fit_classifier(CNN, x, y, config, seed=1, quiet=True) for _ in range(2))
    assert torch.equal(a.fc.weight, b.fc.weight)


def test_batches_depend_on_seed_and_epoch_only():
    x, y = toy_data(n=10)
    first = [yb.tolist() for _, yb in iterate_batches(x, y, 4, seed=0, epoch=0)]
    assert [len(b) for b in first] == [4, 4, 2]
    assert first == [yb.tolist() for _, yb in iterate_batches(x, y, 4, seed=0, epoch=0)]
    assert first != [yb.tolist() for _, yb in iterate_batches(x, y, 4, seed=0, epoch=1)]
    assert sorted(sum(first, [])) == sorted(y.tolist())


def test_only_the_given_parameters_move():
    x, y = toy_data()
    model = build_classifier(CNN, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_classifier(model, x, y, ClassifierTrainConfig(epochs=1, batch_size=32), 0, parameters=list(model.fc.parameters()),
                     quiet=True)
    after = model.state_dict()
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("fc."))
    assert all(p.requires_grad for p in model.parameters())


def test_a_custom_loss_that_goes_non_finite_stops_training():
    x, y = toy_data()
    model = build_classifier(CNN, seed=0)

    def nan_loss(model, xb, yb):
        return model(xb).sum() * float("nan")

    with pytest.raises(TrainingDivergedError, match="unlearning test: loss became nan at step 0"):
        train_classifier(model, x, y, ClassifierTrainConfig(epochs=1), 0, loss_fn=nan_loss, quiet=True,
                         description="unlearning test")


def test_predict_proba_is_a_float64_distribution_per_row():
    x, _ = toy_data(n=7)
    probs = predict_proba(build_classifier(CNN, seed=0), x, batch_size=3)
    assert probs.shape == (7, 10) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-12)


def test_save_and_load_round_trip_bit_for_bit(tmp_path):
    x, y = toy_data()
    model = fit_classifier(CNN, x, y, ClassifierTrainConfig(epochs=1, batch_size=32), seed=0, quiet=True)
    save_classifier(model, CNN, tmp_path / "m")
    loaded, config = load_classifier(tmp_path / "m")
    assert config == CNN
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert np.array_equal(predict_proba(model, x), predict_proba(loaded, x))
    save_classifier(loaded, config, tmp_path / "again")
    assert classifier_fingerprint(tmp_path / "m") == classifier_fingerprint(tmp_path / "again")


def test_resnet_state_round_trips_with_its_batchnorm_statistics(tmp_path):
    config = {"arch": "resnet18", "num_classes": 10, "in_channels": 3, "image_size": 32, "width": 4}
    model = build_classifier(config, seed=0)
    model.train()
    model(torch.randn(4, 3, 32, 32))  # moves the running statistics
    save_classifier(model, config, tmp_path / "r")
    loaded, _ = load_classifier(tmp_path / "r")
    assert torch.equal(model.bn1.running_mean, loaded.bn1.running_mean)
    assert loaded.fc.out_features == 10


def test_loading_a_folder_without_a_classifier_names_what_is_missing(tmp_path):
    with pytest.raises(ModelSourceError, match="lacks config.json, model.safetensors"):
        load_classifier(tmp_path)


def test_an_unknown_arch_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: small_cnn, resnet18"):
        build_classifier({"arch": "vgg", "num_classes": 10})
