"""Regression unlearning on scikit-learn's bundled diabetes data (offline, seconds on a CPU).

``diabetes/random-<p>``: forget a fixed random ``p``% of the training rows (seed 0).
``diabetes/range-<lo>-<hi>``: forget every training row whose target (disease progression
one year after baseline) lies in ``[lo, hi]``: a band of the target, the analogue of
forgetting an age band in deep regression unlearning (Tarun et al., 2023).

The data: the 442 patients of ``sklearn.datasets.load_diabetes`` (10 features: age, sex,
bmi, bp, s1..s6; unscaled), split 80/20 at random (seed 0: 353 training rows, 89 test
rows), features standardised with the training mean and standard deviation; the target
(25 to 346) stays in its own units. The target (:class:`~unlearnbench.tabular.regression.MLPRegressor`,
every training row, seed 0) and the oracle (the retain rows, seed 1000) are trained here
with the task's recipe (well under a second of CPU each) and cached. Options:
``forget_indices=PATH`` (a forget-index file that replaces the built-in forget set),
``train=`` (a ``RegressionTrainConfig`` or its dict), ``device=`` (where the recipe trains:
the run's ``--device``; ``auto``, the default, is a GPU where one is visible, else the CPU; a
model trained on another device type than the CPU is cached apart); ``--model`` /
``--oracle`` take ``save_regressor`` folders.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from functools import lru_cache

import numpy as np

from unlearnbench.errors import DataError
from unlearnbench.registry import register_task
from unlearnbench.tabular.regression import (
    RegressionArrays,
    RegressionTrainConfig,
    make_regression_task,
    regression_train_config,
)
from unlearnbench.task import RegressionTask

FAMILY = "diabetes"
FAMILY_VERSION = "1"
DATA_VERSION = "1"  # load_diabetes(scaled=False), random 80/20 split (seed 0), train mean/std standardisation
SPLIT_SEED = 0
TEST_FRACTION = 0.2
HIDDEN = (64, 64)
# 50 epochs of Adam on 353 rows, about 0.3 s of one CPU core: test MAE 45.8 +- 0.9 over five
# seeds (46.7 for the seed-0 target), training MAE 31.5 (it remembers its rows, which is what
# there is to unlearn). LinearRegression on the same split: 46.2; the training mean: 59.2.
# Longer training overfits this small table (100 epochs: test 50, 200 epochs: test 53).
DEFAULT_TRAIN = RegressionTrainConfig(epochs=50, batch_size=32, lr=1e-3, weight_decay=1e-4, optimizer="adam")
# 30: with three seeds random-10 shows no signal (retrain's own W1 gap to the oracle reaches the
# original's: 7.78 vs 7.35) and random-20 barely any (4.50 vs 4.99); benchmarks/signal_check.py
PERCENTS = (5, 10, 20, 30)
RANGES = ((25, 100), (150, 200), (200, 350))


@lru_cache(maxsize=1)
def _diabetes_arrays() -> RegressionArrays:
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    from unlearnbench.cache import fingerprint

    data = load_diabetes(scaled=False)
    features = np.asarray(data.data, dtype=np.float64)
    target = np.asarray(data.target, dtype=np.float32)
    train, test = train_test_split(np.arange(len(target)), test_size=TEST_FRACTION, random_state=SPLIT_SEED)
    train, test = np.sort(train), np.sort(test)
    mean, std = features[train].mean(0), features[train].std(0)
    x = ((features - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
    content = hashlib.sha256(x.tobytes() + target.tobytes() + train.tobytes()).hexdigest()[:16]
    return RegressionArrays(x_train=x[train], y_train=target[train], x_test=x[test], y_test=target[test],
                            feature_names=tuple(data.feature_names), target_name="progression",
                            fingerprint=fingerprint({"diabetes": DATA_VERSION, "content": content}))


def diabetes_arrays() -> RegressionArrays:
    """The diabetes train/test arrays: a fresh copy each call (a task's arrays are its own)."""
    base = _diabetes_arrays()
    return replace(base, x_train=base.x_train.copy(), y_train=base.y_train.copy(), x_test=base.x_test.copy(),
                   y_test=base.y_test.copy())


def make_diabetes_task(variant: str, *, data_dir: str | None = None, model: str | None = None,
                       oracle: str | None = None, quiet: bool = False, forget_indices: str | None = None,
                       train: RegressionTrainConfig | dict | None = None, device: str | None = None,
                       **_) -> RegressionTask:
    if data_dir is not None:
        raise DataError("diabetes uses scikit-learn's bundled data; --data-dir is for tasks read from the hub. "
                        "For your own table use the task tabular-regression with --data-file and --target.")
    train_config = regression_train_config(train, DEFAULT_TRAIN)
    data = diabetes_arrays()
    model_config = {"arch": "mlp", "in_features": data.x_train.shape[1], "hidden": list(HIDDEN)}
    options = [("train", asdict(train_config))] if train is not None else []
    return make_regression_task(
        name=f"{FAMILY}/{variant}", family=FAMILY, version=FAMILY_VERSION, variant=variant, data=data,
        model_config=model_config, train_config=train_config, recipe_name="diabetes-mlp", options=options,
        forget_indices=forget_indices, model=model, oracle=oracle, device=device or "auto", quiet=quiet,
    )


for _p in PERCENTS:
    register_task(f"diabetes/random-{_p}", suite="regression", summary=f"sklearn diabetes regression, forget a fixed random {_p}% of training rows",
                  kind="regression", modes="-")(lambda _v=f"random-{_p}", **kw: make_diabetes_task(_v, **kw))
for _lo, _hi in RANGES:
    register_task(f"diabetes/range-{_lo}-{_hi}",
                  suite="regression", summary=f"sklearn diabetes regression, forget every training row with target in [{_lo}, {_hi}]",
                  kind="regression", modes="-")(lambda _v=f"range-{_lo}-{_hi}", **kw: make_diabetes_task(_v, **kw))
