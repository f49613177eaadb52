"""Regression unlearning on the user's own table.

``tabular-regression``: a ``.csv`` or ``.parquet`` file (option ``data_file=PATH``, the
CLI's ``--data-file``) and the column to predict (``target=COLUMN``, ``--target``); every
other column is a feature. The forget set is ``forget=random-<p>`` (a fixed random ``p``%
of the training rows, seed 0; the default is ``random-10``), ``forget=range-<lo>-<hi>``
(every training row whose target lies in ``[lo, hi]``; ``range--5-5`` for negative
bounds), or a forget-index file (``forget_indices=PATH``) that replaces it.

The table is read as it is; what it must hold is checked up front, and each problem is a
:class:`~unlearnbench.errors.DataError` that names the column or value:

* the target column must exist and be numeric (finite, no missing values), not the same in every row;
* numeric and boolean feature columns are used as they are (booleans as 0/1);
* text (or categorical) feature columns are **one-hot encoded**, one 0/1 feature
  ``column=value`` per distinct value, when they have at most 20 distinct values; a text
  column with more (an identifier, free text) is refused, as is a text column whose values
  are mostly numbers (a stray non-numeric value such as ``"n/a"`` in a numeric column);
  other types (dates, ...) are refused: drop or convert those columns;
* no feature may be missing (NaN) or infinite: fill or drop such rows first;
* at least 20 rows.

Rows are split 80/20 at random (seed 0); features are standardised with the training
statistics, the target stays in its own units. The target and oracle are the diabetes
recipe's MLP (64-64, 50 epochs of Adam; ``train=`` overrides it, for a large table a bigger
``batch_size``), trained here and cached by the file's content hash (under
``cache_root()/tabular-regression``). Options: ``train=``, ``device=`` (the run's ``--device``;
``auto`` by default: a GPU where one is visible, else the CPU); ``--model`` / ``--oracle`` take
``save_regressor`` folders.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from unlearnbench.errors import DataError
from unlearnbench.registry import register_task
from unlearnbench.tabular.regression import RegressionArrays, RegressionTrainConfig, make_regression_task, regression_train_config
from unlearnbench.task import RegressionTask

FAMILY = "tabular-regression"
FAMILY_VERSION = "1"
DATA_VERSION = "1"  # one-hot text columns, random 80/20 split (seed 0), train mean/std standardisation
SPLIT_SEED = 0
TEST_FRACTION = 0.2
MIN_ROWS = 20
MAX_CATEGORIES = 20  # a text column with more distinct values is an identifier or free text, not a category
HIDDEN = (64, 64)
DEFAULT_FORGET = "random-10"
DEFAULT_TRAIN = RegressionTrainConfig(epochs=50, batch_size=32, lr=1e-3, weight_decay=1e-4, optimizer="adam")
SUFFIXES = (".csv", ".parquet")


def _listing(values, limit: int = 8) -> str:
    values = list(values)
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:limit])
    return shown + (f" (and {len(values) - limit} more)" if len(values) > limit else "")


def read_table(data_file) -> tuple[Any, str]:
    """``(DataFrame, content hash)`` of a ``.csv`` or ``.parquet`` file; a missing,
    unsupported or unreadable file is a :class:`DataError` naming it."""
    import pandas as pd

    path = Path(data_file).expanduser()
    if not path.is_file():
        raise DataError(f"Data file {str(path)!r} does not exist." if not path.exists()
                        else f"Data file {str(path)!r} is not a file.")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"Data file {str(path)!r} has the unsupported type {suffix or '(no suffix)'!r}; "
                        "tabular-regression reads .csv and .parquet files.")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"Data file {str(path)!r} cannot be read: {exc.strerror or exc}.") from None
    try:
        frame = pd.read_csv(io.BytesIO(raw)) if suffix == ".csv" else pd.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # parser, encoding, arrow: all mean "not a table we can read"
        kind = "CSV" if suffix == ".csv" else "Parquet"
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"Data file {str(path)!r} is not a readable {kind} table: {detail}") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame, hashlib.sha256(raw).hexdigest()


def _target_values(frame, target: str, where: str) -> np.ndarray:
    import pandas as pd

    if target not in frame.columns:
        raise DataError(f"{where} has no column {target!r} to predict; its columns are "
                        f"{_listing(list(frame.columns), limit=50)}. Pass one of them with --target.")
    column = frame[target]
    if pd.api.types.is_bool_dtype(column):
        column = column.astype(float)
    numbers = pd.to_numeric(column, errors="coerce") if not pd.api.types.is_numeric_dtype(column) else column
    bad = column.notna() & numbers.isna()
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise DataError(f"Target column {target!r} is not numeric: it holds {column.iloc[row]!r} (data row {row + 1}"
                        f"{f' and {int(bad.sum()) - 1} more non-numeric values' if bad.sum() > 1 else ''}). "
                        "A regression target must be a number in every row.")
    values = numbers.to_numpy(dtype=np.float64)
    missing = ~np.isfinite(values)
    if missing.any():
        rows = (np.nonzero(missing)[0][:5] + 1).tolist()
        raise DataError(f"Target column {target!r} has {int(missing.sum())} missing or infinite value(s) "
                        f"(data rows {_listing(rows)}). Drop those rows or fill them in.")
    return values


def _feature_matrix(frame, target: str, where: str) -> tuple[np.ndarray, tuple[str, ...], list[str]]:
    """Features as float64 ``[N, D]``, their names, and which text columns were one-hot encoded."""
    import pandas as pd

    columns = [c for c in frame.columns if c != target]
    if not columns:
        raise DataError(f"{where} has only the target column {target!r}; a regression needs at least one "
                        "feature column besides it.")
    missing = {c: int(frame[c].isna().sum()) for c in columns if frame[c].isna().any()}
    if missing:
        named = ", ".join(f"{c!r} ({n} row{'s' if n > 1 else ''})" for c, n in missing.items())
        raise DataError(f"{where} has missing values (NaN) in feature column(s) {named}. "
                        "(Empty cells and markers such as NA, n/a and NaN count as missing.) "
                        "Fill them in or drop those rows (or columns) first.")
    parts, names, encoded = [], [], []
    numeric_text, many_values, other = [], [], []
    for c in columns:
        column = frame[c]
        if pd.api.types.is_bool_dtype(column):
            parts.append(column.to_numpy(dtype=np.float64)[:, None])
            names.append(c)
        elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_complex_dtype(column):
            values = column.to_numpy(dtype=np.float64)
            if not np.isfinite(values).all():
                n = int((~np.isfinite(values)).sum())
                raise DataError(f"Feature column {c!r} has {n} infinite value(s). Replace them or drop those rows.")
            parts.append(values[:, None])
            names.append(c)
        elif pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column) \
                or isinstance(column.dtype, pd.CategoricalDtype):
            text = column.astype(str)
            as_numbers = pd.to_numeric(text, errors="coerce")
            if as_numbers.notna().mean() >= 0.5:
                bad = as_numbers.isna().to_numpy()
                row = int(np.argmax(bad))
                numeric_text.append(f"{c!r} (holds {text.iloc[row]!r} at data row {row + 1})")
                continue
            values = sorted(text.unique())
            if len(values) > MAX_CATEGORIES:
                many_values.append(f"{c!r} ({len(values)} distinct values, e.g. {values[0]!r})")
                continue
            for value in values:
                parts.append((text == value).to_numpy(dtype=np.float64)[:, None])
                names.append(f"{c}={value}")
            encoded.append(c)
        else:
            other.append(f"{c!r} ({column.dtype})")
    problems = []
    if numeric_text:
        problems.append("mostly numeric column(s) with non-numeric values: " + ", ".join(numeric_text)
                        + " (fix or drop those values)")
    if many_values:
        problems.append(f"text column(s) with more than {MAX_CATEGORIES} distinct values, too many to one-hot "
                        "encode (an identifier or free text?): " + ", ".join(many_values) + " (drop them)")
    if other:
        problems.append("column(s) of a type that is neither numeric nor text: " + ", ".join(other)
                        + " (convert them to numbers or drop them)")
    if problems:
        raise DataError(f"{where} has non-numeric feature columns it cannot use: " + "; ".join(problems) + ".")
    return np.concatenate(parts, axis=1), tuple(names), encoded


def tabular_arrays(data_file, target: str) -> tuple[RegressionArrays, dict]:
    """The table's standardised train/test arrays and what was done to it (rows, one-hot columns)."""
    from sklearn.model_selection import train_test_split

    from unlearnbench.cache import fingerprint

    frame, content = read_table(data_file)
    where = f"Data file {str(Path(data_file).expanduser())!r}"
    if len(frame) < MIN_ROWS:  # first: a header-only file has no values to check
        raise DataError(f"{where} has {len(frame)} row(s); tabular-regression needs at least {MIN_ROWS} "
                        "(80% to train the models, 20% to test them).")
    y = _target_values(frame, target, where)
    if np.ptp(y) == 0:
        raise DataError(f"Target column {target!r} holds the same value ({y[0]:g}) in every row: there is nothing "
                        "to predict, and every model would score the same. Pick another column with --target.")
    features, names, encoded = _feature_matrix(frame, target, where)
    train, test = train_test_split(np.arange(len(y)), test_size=TEST_FRACTION, random_state=SPLIT_SEED)
    train, test = np.sort(train), np.sort(test)
    mean, std = features[train].mean(0), features[train].std(0)
    x = ((features - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
    y = y.astype(np.float32)
    data = RegressionArrays(
        x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test], feature_names=names, target_name=target,
        fingerprint=fingerprint({"tabular": DATA_VERSION, "file_sha256": content, "target": target}),
    )
    return data, {"rows": len(y), "one_hot_columns": encoded, "file_sha256": content}


def make_tabular_task(*, data_file: str | None = None, target: str | None = None, forget: str | None = None,
                      forget_indices: str | None = None, train: RegressionTrainConfig | dict | None = None,
                      device: str | None = None, data_dir: str | None = None, model: str | None = None,
                      oracle: str | None = None, quiet: bool = False, **_) -> RegressionTask:
    """The ``tabular-regression`` task on the user's table (see the module docstring)."""
    if data_dir is not None:
        raise DataError("tabular-regression reads one table, not a folder: pass the .csv or .parquet file with "
                        "--data-file (and the column to predict with --target).")
    if data_file is None:
        raise DataError("tabular-regression needs your table: pass --data-file PATH (a .csv or .parquet file) "
                        "and --target COLUMN (the column to predict).")
    if target is None or not str(target).strip():
        columns = ""
        try:
            columns = f" The file's columns: {_listing(list(read_table(data_file)[0].columns), limit=50)}."
        except DataError:
            pass
        raise DataError(f"tabular-regression needs the column to predict: pass --target COLUMN.{columns}")
    variant = forget or DEFAULT_FORGET
    train_config = regression_train_config(train, DEFAULT_TRAIN)
    data, info = tabular_arrays(data_file, str(target))
    model_config = {"arch": "mlp", "in_features": data.x_train.shape[1], "hidden": list(HIDDEN)}
    options: list[tuple[str, Any]] = [("data_file", str(Path(data_file).expanduser().resolve())),
                                      ("target", str(target))]
    if train is not None:
        options.append(("train", asdict(train_config)))
    task = make_regression_task(
        name=FAMILY, family=FAMILY, version=FAMILY_VERSION, variant=variant, data=data, model_config=model_config,
        train_config=train_config, recipe_name="tabular-mlp", options=options, forget_indices=forget_indices,
        model=model, oracle=oracle, device=device or "auto", quiet=quiet,
    )
    task.extra.update(data_file=str(Path(data_file).expanduser().resolve()), **info)
    return task


register_task(FAMILY, suite="regression", summary="your own table (--data-file .csv/.parquet, --target COLUMN), forget random-<p> "
              "or a target range-<lo>-<hi>", kind="regression", modes="-")(make_tabular_task)
