"""The regression task families (diabetes, the user's own table) and the regression library
they stand on: forget sets by random share, by target range and by index file, the cached
target and oracle, every bad table named, the shared training loop's determinism, and
saving and loading regressors bit for bit."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from unlearnbench import registry
from unlearnbench.vision.classifier import write_forget_indices
from unlearnbench.errors import DataError, TrainingDivergedError, UserError
from unlearnbench.tabular.regression import (
    MLPRegressor,
    RegressionTrainConfig,
    build_regressor,
    fit_regressor,
    iterate_batches,
    load_regressor,
    parse_forget_spec,
    predict,
    regressor_fingerprint,
    save_regressor,
    train_regressor,
)
from unlearnbench.tasks.diabetes import make_diabetes_task
from unlearnbench.tasks.tabular import make_tabular_task

FAST = RegressionTrainConfig(epochs=5)
N_TRAIN = 353  # 80% of sklearn's 442 diabetes patients
MLP = {"arch": "mlp", "in_features": 3, "hidden": [16, 16]}


pytestmark = pytest.mark.usefixtures("one_thread")


def diabetes(variant, **options):
    options.setdefault("train", FAST)
    return make_diabetes_task(variant, quiet=True, **options)


def mae(model, x, y):
    return float(np.abs(predict(model, x) - np.asarray(y)).mean())


def linear_table(n=200, seed=0):
    """``y = 3a - 2b + 0.5c + 10`` plus noise (sd 0.5), and a three-valued text column."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    color = rng.choice(["red", "green", "blue"], size=n)
    y = 3 * a - 2 * b + 0.5 * c + 10 + (color == "red") * 2 + rng.normal(scale=0.5, size=n)
    return pd.DataFrame({"a": a, "b": b, "c": c, "color": color, "y": y})


@pytest.fixture
def table_csv(tmp_path):
    path = tmp_path / "table.csv"
    linear_table().to_csv(path, index=False)
    return path


def tabular(data_file, target="y", **options):
    options.setdefault("train", FAST)
    return make_tabular_task(data_file=str(data_file), target=target, quiet=True, **options)


def data_error(path, frame, target="y", **options):
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        tabular(path, target, **options)
    return str(err.value)


# ------------------------------------------------------------------------------ diabetes


def test_every_variant_is_registered_as_a_regression_task():
    names = registry.entries("task")
    expected = ([f"diabetes/random-{p}" for p in (5, 10, 20)]
                + [f"diabetes/range-{lo}-{hi}" for lo, hi in ((25, 100), (150, 200), (200, 350))]
                + ["tabular-regression"])
    for name in expected:
        assert names[name].info["kind"] == "regression"


def test_the_diabetes_data_is_a_fixed_split_with_standardised_features_and_raw_targets():
    task = diabetes("random-10")
    assert task.kind == "regression" and task.suite == "regression"
    assert task.x_train.shape == (N_TRAIN, 10) and task.x_test.shape == (89, 10)
    assert task.x_train.dtype == np.float32 and task.y_train.dtype == np.float32
    assert np.allclose(task.x_train.mean(0), 0, atol=1e-5) and np.allclose(task.x_train.std(0), 1, atol=1e-4)
    assert task.y_train.min() >= 25 and task.y_train.max() <= 346 and task.y_train.mean() > 100  # original units
    assert task.feature_names[:3] == ("age", "sex", "bmi")
    again = diabetes("random-10")
    assert np.array_equal(task.x_test, again.x_test) and np.array_equal(task.y_train, again.y_train)


@pytest.mark.parametrize("percent,size", [(5, 18), (10, 35), (20, 71)])
def test_random_forget_sets_are_a_fixed_share_of_the_training_rows(percent, size):
    task = diabetes(f"random-{percent}")
    assert len(task.forget_indices) == size == round(N_TRAIN * percent / 100)
    assert np.array_equal(task.forget_indices, np.unique(task.forget_indices))
    assert np.array_equal(task.forget_indices, diabetes(f"random-{percent}").forget_indices)
    assert len(task.retain_indices) == N_TRAIN - size


@pytest.mark.parametrize("lo,hi", [(25, 100), (150, 200), (200, 350)])
def test_a_range_forget_set_is_exactly_the_training_rows_with_target_in_range(lo, hi):
    task = diabetes(f"range-{lo}-{hi}")
    expected = np.nonzero((task.y_train >= lo) & (task.y_train <= hi))[0]
    assert len(expected) > 0 and np.array_equal(task.forget_indices, expected)
    retained = task.y_train[task.retain_indices]
    assert not ((retained >= lo) & (retained <= hi)).any()


def test_an_empty_range_names_the_range_and_the_targets_span():
    with pytest.raises(DataError) as err:
        diabetes("range-400-500")
    message = str(err.value)
    assert "[400, 500]" in message and "25" in message and "346" in message


def test_a_malformed_forget_spec_says_what_is_accepted():
    with pytest.raises(UserError, match="range-<lo>-<hi>"):
        diabetes("band-25-100")
    with pytest.raises(UserError, match="lower bound"):
        diabetes("range-100-25")
    assert parse_forget_spec("range--5-2.5") == ("range", (-5, 2.5))


def test_the_target_learns_and_is_cached_by_fingerprint():
    task = diabetes("random-10")
    target = task.load_target()
    assert target.tokenizer is None and target.source == "recipe:diabetes-mlp"
    assert mae(target.model, task.x_test, task.y_test) < 55  # the training mean scores 59
    again = task.load_target()
    assert again.fingerprint == target.fingerprint
    for key, value in target.model.state_dict().items():
        assert torch.equal(value, again.model.state_dict()[key])


def test_the_oracle_is_trained_on_the_retain_rows_only():
    task = diabetes("range-200-350")
    oracle = task.load_oracle().model
    target = task.load_target().model
    retain = task.y_train[task.retain_indices]
    assert float(oracle.y_mean) == pytest.approx(float(retain.mean()), rel=1e-5)
    assert float(target.y_mean) == pytest.approx(float(task.y_train.mean()), rel=1e-5)
    # never having seen a high target, the oracle predicts the forgotten rows far too low
    forget = task.forget_indices
    assert predict(oracle, task.x_train[forget]).mean() < predict(target, task.x_train[forget]).mean()


def test_a_forget_index_file_replaces_the_built_in_forget_set(tmp_path):
    path = write_forget_indices(tmp_path / "f.json", [3, 1, 2], task="diabetes/random-10", strategy="manual", size=3)
    task = diabetes("random-10", forget_indices=str(path))
    assert task.forget_indices.tolist() == [1, 2, 3]
    assert task.fingerprint != diabetes("random-10").fingerprint
    path.write_text(json.dumps({"version": 1, "indices": [0, N_TRAIN]}))
    with pytest.raises(DataError, match="out of range"):
        diabetes("random-10", forget_indices=str(path))


def test_diabetes_refuses_a_data_dir():
    with pytest.raises(DataError, match="bundled"):
        diabetes("random-10", data_dir="/tmp")


# ------------------------------------------------------------------------------ tabular


def test_a_users_csv_builds_trains_and_one_hot_encodes_text_columns(table_csv):
    task = make_tabular_task(data_file=str(table_csv), target="y", quiet=True)  # the real recipe: 0.1 s here
    assert task.kind == "regression" and task.target_name == "y"
    assert task.x_train.shape == (160, 6) and task.x_test.shape == (40, 6)
    assert task.feature_names == ("a", "b", "c", "color=blue", "color=green", "color=red")
    assert task.extra["one_hot_columns"] == ["color"]
    assert len(task.forget_indices) == 16  # random-10 by default
    target = task.load_target().model
    assert mae(target, task.x_test, task.y_test) < 1.0  # noise sd 0.5; the target's sd is 4
    assert task.load_oracle().model is not None


def test_a_range_forget_set_on_a_users_table(table_csv):
    task = tabular(table_csv, forget="range-12-20")
    assert np.array_equal(task.forget_indices, np.nonzero((task.y_train >= 12) & (task.y_train <= 20))[0])
    with pytest.raises(DataError) as err:
        tabular(table_csv, forget="range-100-200")
    assert "[100, 200]" in str(err.value) and "'y'" in str(err.value)


def test_a_parquet_table_reads_like_the_csv(table_csv, tmp_path):
    path = tmp_path / "table.parquet"
    pd.read_csv(table_csv).to_parquet(path)
    from_parquet, from_csv = tabular(path), tabular(table_csv)
    assert np.allclose(from_parquet.x_train, from_csv.x_train) and np.allclose(from_parquet.y_test, from_csv.y_test)


def test_models_are_cached_by_the_files_content(table_csv, tmp_path):
    copy = tmp_path / "elsewhere" / "same.csv"
    copy.parent.mkdir()
    copy.write_bytes(table_csv.read_bytes())
    assert tabular(copy).extra["cache_dir"] == tabular(table_csv).extra["cache_dir"]
    changed = tmp_path / "changed.csv"
    linear_table(seed=1).to_csv(changed, index=False)
    assert tabular(changed).extra["cache_dir"] != tabular(table_csv).extra["cache_dir"]


def test_no_data_file_says_pass_data_file():
    with pytest.raises(DataError, match="--data-file"):
        make_tabular_task(target="y", quiet=True)


def test_no_target_says_pass_target_and_lists_the_columns(table_csv):
    with pytest.raises(DataError, match="--target") as err:
        make_tabular_task(data_file=str(table_csv), quiet=True)
    assert "'color'" in str(err.value)


def test_a_missing_or_unsupported_or_unreadable_file_is_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        tabular(tmp_path / "nope.csv")
    sheet = tmp_path / "table.xlsx"
    sheet.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match=r"unsupported type '\.xlsx'"):
        tabular(sheet)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not a parquet file")
    with pytest.raises(DataError, match="not a readable Parquet table"):
        tabular(broken)


def test_a_missing_target_column_lists_the_columns(table_csv):
    with pytest.raises(DataError) as err:
        tabular(table_csv, target="price")
    message = str(err.value)
    assert "'price'" in message and all(f"'{c}'" in message for c in ("a", "b", "c", "color", "y"))


def test_a_non_numeric_target_names_the_column_and_a_bad_value(tmp_path):
    frame = linear_table()
    frame["y"] = frame["y"].astype(object)
    frame.loc[7, "y"] = "high"
    message = data_error(tmp_path / "t.csv", frame)
    assert "'y'" in message and "'high'" in message and "row 8" in message


def test_missing_features_name_the_columns_and_counts(tmp_path):
    frame = linear_table()
    frame.loc[[3, 4, 5], "a"] = np.nan
    frame.loc[9, "color"] = np.nan
    message = data_error(tmp_path / "t.csv", frame)
    assert "'a' (3 rows)" in message and "'color' (1 row)" in message


def test_unusable_text_features_are_named(tmp_path):
    frame = linear_table()
    frame["id"] = [f"patient-{i}" for i in range(len(frame))]  # too many values to one-hot encode
    frame["b"] = frame["b"].astype(object)
    frame.loc[11, "b"] = "unknown"  # a stray value in a numeric column
    message = data_error(tmp_path / "t.csv", frame)
    assert "'id'" in message and "200 distinct values" in message
    assert "'b'" in message and "'unknown'" in message
    assert "'color'" not in message  # three values: one-hot encoded, not refused


def test_too_few_rows_are_refused(tmp_path):
    message = data_error(tmp_path / "t.csv", linear_table(n=12))
    assert "12 row" in message and "20" in message


def test_a_table_of_only_the_target_is_refused(tmp_path):
    message = data_error(tmp_path / "t.csv", linear_table()[["y"]])
    assert "only the target column 'y'" in message


# ------------------------------------------------------------------------------ library


def small_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (100 + 20 * x[:, 0] - 10 * x[:, 1]).astype(np.float32)
    return x, y


def test_predictions_are_in_original_units_and_training_uses_standardised_targets():
    x, y = small_data()
    model = build_regressor(MLP, seed=0).set_target_scale(y)
    assert float(model.y_mean) == pytest.approx(float(y.mean()), rel=1e-6)
    assert float(model.y_std) == pytest.approx(float(y.std()), rel=1e-5)
    with torch.no_grad():
        xt = torch.as_tensor(x)
        assert torch.allclose(model(xt), model.standardised(xt) * model.y_std + model.y_mean)
        model.head.weight.zero_(), model.head.bias.zero_()
    assert np.allclose(predict(model, x), y.mean(), rtol=1e-6)  # a standardised 0 is the mean
    fitted = fit_regressor(MLP, x, y, RegressionTrainConfig(epochs=60, lr=3e-3), seed=0, quiet=True)
    assert predict(fitted, x).shape == (64,) and mae(fitted, x, y) < 0.2 * np.abs(y - y.mean()).mean()


def test_training_is_deterministic_for_a_seed():
    x, y = small_data()
    config = RegressionTrainConfig(epochs=3, batch_size=16)
    first = fit_regressor(MLP, x, y, config, seed=7, quiet=True)
    second = fit_regressor(MLP, x, y, config, seed=7, quiet=True)
    other = fit_regressor(MLP, x, y, config, seed=8, quiet=True)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key])
    assert not torch.equal(first.head.weight, other.head.weight)


def test_batches_follow_the_seed_and_epoch_and_cover_every_row():
    x, y = small_data(n=10)
    order = lambda seed, epoch: torch.cat([yb for _, yb in iterate_batches(x, y, 4, seed, epoch)])  # noqa: E731
    assert torch.equal(order(0, 0), order(0, 0)) and not torch.equal(order(0, 0), order(0, 1))
    assert sorted(order(0, 0).tolist()) == sorted(torch.as_tensor(y).tolist())


def test_save_and_load_round_trip_bit_for_bit(tmp_path):
    x, y = small_data()
    model = fit_regressor(MLP, x, y, RegressionTrainConfig(epochs=2), seed=0, quiet=True)
    save_regressor(model, MLP, tmp_path / "m")
    loaded, config = load_regressor(tmp_path / "m")
    assert config == MLP and isinstance(loaded, MLPRegressor)
    assert set(loaded.state_dict()) == set(model.state_dict()) >= {"y_mean", "y_std"}
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert np.array_equal(predict(model, x), predict(loaded, x))
    save_regressor(loaded, config, tmp_path / "again")
    assert regressor_fingerprint(tmp_path / "m") == regressor_fingerprint(tmp_path / "again")


def test_a_restricted_parameter_set_leaves_the_rest_exactly_unchanged():
    x, y = small_data()
    model = build_regressor(MLP, seed=0).set_target_scale(y)
    body = {k: v.clone() for k, v in model.body.state_dict().items()}
    head = model.head.weight.clone()
    train_regressor(model, x, y, RegressionTrainConfig(epochs=2), seed=0, parameters=list(model.head.parameters()),
                    quiet=True)
    assert all(torch.equal(v, model.body.state_dict()[k]) for k, v in body.items())
    assert not torch.equal(head, model.head.weight)
    assert all(p.requires_grad for p in model.parameters())


def test_a_non_finite_loss_raises_training_diverged():
    x, y = small_data()
    model = build_regressor(MLP, seed=0)
    with pytest.raises(TrainingDivergedError, match="step 0"):
        train_regressor(model, x, y, RegressionTrainConfig(epochs=1), seed=0, quiet=True,
                        loss_fn=lambda m, xb, yb: m(xb).sum() * float("nan"))


def test_a_bad_config_is_named():
    with pytest.raises(ValueError, match="width"):
        build_regressor({"arch": "mlp", "in_features": 3, "width": 8})
    with pytest.raises(ValueError, match="arch"):
        build_regressor({"arch": "transformer", "in_features": 3})
    with pytest.raises(UserError, match="momentum"):
        diabetes("random-10", train={"momentum": 0.9})
