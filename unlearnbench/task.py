"""What a task is, as the runner sees it.

A task family is code once (``tasks/<family>.py``); its variants (forget01/05/10, ...) are
parameters. A task yields its splits as ``datasets.Dataset`` under *roles* the metric suite
understands, says where the target and oracle models come from, names its metric suite, and
may carry a training recipe (which the ``retrain`` method uses).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnbench.errors import DataError
from unlearnbench.lm.modeling import PromptFormat

# Roles of the TOFU-style suite. Forget/retain are what methods train on; the *_eval roles
# carry paraphrased and perturbed answers for the behavioural metrics.
LM_ROLES = ("forget", "retain", "holdout", "forget_eval", "retain_eval", "real_authors_eval", "world_facts_eval")


@dataclass(frozen=True)
class TaskSpec:
    """The frozen, serialisable description of a task variant."""

    name: str
    family: str
    version: str
    options: tuple[tuple[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "version": self.version, "options": dict(self.options)}


@dataclass
class Recipe:
    """How a task trains a model from scratch: ``train(rows, seed, quiet) -> model``.
    ``background``: the rows ``train`` adds to the ones it is given, which every model of the
    task sees (a synthetic world's general knowledge); never part of a forget set."""

    name: str
    train: Callable[..., Any]
    description: str = ""
    background: Sequence[Any] = ()


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    source: str  # what the record shows: a hub id, a folder, or recipe:<name>
    fingerprint: str  # identifies the weights for caching reference scores


@dataclass
class LanguageModelTask:
    """A loaded language-model task: data by role plus how to get the target and the oracle."""

    spec: TaskSpec
    splits: dict[str, Any]  # role -> datasets.Dataset
    # the task's own format (its models were trained on it), or None: chosen from the model
    # (--prompt-format auto); the family replaces it with the resolved one once models load
    prompt_format: PromptFormat | None
    suite: str
    load_target: Callable[..., LoadedModel]  # load_target(dtype=...) -> LoadedModel
    # None: the benchmark has no retrained model (WMDP); oracle-relative numbers are left out
    load_oracle: Callable[..., LoadedModel] | None
    recipe: Recipe | None = None
    data_fingerprint: str = ""
    modes: tuple[str, ...] = ()  # evaluation modes beyond "standard" (scalability, sustainability)
    max_train_tokens: int | None = None  # methods see long texts cut into windows of this many tokens
    # Parametric and robustness lenses (plain data; None where the task cannot say):
    # concepts: [{"name", "words": [...], "prompts": [[question, answer], ...]}], optionally
    #   with "layer" and "index" where the concept vector is known (ConceptVectors file);
    # probes: {"attribute", "classes", "retain": rows, "forget": rows}, each row
    #   {"question", "label": class index, "options": one answer per class};
    # forget_groups: the entity each forget row is about (relearning splits forget by it).
    concepts: list[dict] | None = None
    probes: dict | None = None
    forget_groups: list | None = None
    # lm-eval tasks the task ships for offline use: {"include_path": folder, "tasks": names}
    lm_eval: dict | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # set by the family: the --prompt-format / --system-prompt asked for, the dtype the models
    # were loaded in, and the scoring engine's settings (batch budget, GradNorm's parameters)
    format_request: dict[str, Any] = field(default_factory=dict)
    dtype: str = "fp32"
    scoring: dict[str, Any] = field(default_factory=dict)

    kind = "language_model"

    @property
    def fingerprint(self) -> str:
        blob = json.dumps({"spec": self.spec.to_json(), "data": self.data_fingerprint}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


HUB_PROBE_TIMEOUT_S = 3.0


@functools.lru_cache(maxsize=1)
def hub_unreachable() -> bool:
    """Whether the hub is out of reach for this process: ``HF_HUB_OFFLINE`` is set, or no TCP
    connection to its endpoint (or to the HTTPS proxy, where one is set) opens within
    :data:`HUB_PROBE_TIMEOUT_S`. Then hub files are looked up in the local cache only: a
    machine whose network drops packets fails in seconds instead of spending a minute in
    huggingface_hub's retries. Asked once per process."""
    import os
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return True
    proxy = next((os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy") if os.environ.get(k)),
                 None)
    url = urlparse(proxy if proxy and "://" in proxy else f"http://{proxy}" if proxy else constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "", port), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError:
        return True
    return False


def hub_snapshot(repo_id: str, patterns: list[str], *, offline_variant: str) -> Path:
    """Download (or find in the hub cache) a dataset repository; the files are then read by
    the same loader as a local ``--data-dir``. With the hub out of reach
    (:func:`hub_unreachable`) only the local cache is asked."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", allow_patterns=patterns,
                                      local_files_only=hub_unreachable()))
    except Exception as exc:  # offline, unreachable, gated: all mean the same to the user
        raise DataError(
            f"Could not fetch dataset {repo_id!r} from the Hugging Face hub ({type(exc).__name__}). "
            "Download it once where the hub is reachable and pass the folder with --data-dir, "
            f"or run the offline synthetic variant ({offline_variant})."
        ) from None


def model_source(source: str, dtype=None) -> LoadedModel:
    """Load a target or oracle from a hub id or a ``save_pretrained`` folder, in ``dtype``
    (default float32). Its fingerprint is the one stored with the weights of a world the
    harness built (:mod:`unlearnbench.reproducible`), else the folder's or the hub id's."""
    import torch

    from unlearnbench.cache import fingerprint, folder_fingerprint
    from unlearnbench.lm.modeling import load_causal_lm
    from unlearnbench.reproducible import model_fingerprint

    hint = "Pass a local folder saved with save_pretrained, or check the hub id and your network."
    model, tokenizer = load_causal_lm(source, offline_hint=hint, dtype=dtype or torch.float32)
    path = Path(source.removeprefix("hub:")).expanduser()
    fp = model_fingerprint(path, folder_fingerprint) if path.is_dir() else fingerprint({"hub": source})
    return LoadedModel(model, tokenizer, source, fp)


# ------------------------------------------------------------- classifiers and regression
@dataclass
class ArrayTask:
    """What classifier and regression tasks share: train and test arrays, which training rows
    are to be forgotten, the architecture and training recipe, and how the target and the
    oracle come to be (``load_target`` / ``load_oracle`` return :class:`LoadedModel` with
    ``tokenizer=None``). The forget set is ``x_train[forget_indices]``; the retain set is
    every other training row. ``train_config`` is what ``retrain``, SISA, Blindspot's proxy and
    the strong privacy tier train with."""

    spec: TaskSpec
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    forget_indices: Any  # sorted int64 indices into the training set
    model_config: dict
    train_config: Any
    load_target: Callable[[], LoadedModel]
    load_oracle: Callable[[], LoadedModel]
    data_fingerprint: str = ""
    suite: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    kind = ""

    @property
    def fingerprint(self) -> str:
        blob = json.dumps({"spec": self.spec.to_json(), "data": self.data_fingerprint}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def retain_indices(self):
        import numpy as np

        keep = np.ones(len(self.y_train), dtype=bool)
        keep[self.forget_indices] = False
        return np.nonzero(keep)[0]


@dataclass
class ClassifierTask(ArrayTask):
    """An image-classification task: ``x_*`` float32 ``[N, C, H, W]`` (normalised), ``y_*``
    int64 ``[N]``. For class-wise forgetting ``forget_class`` is the class (every training
    row of it is in the forget set). ``model_config`` builds the architecture
    (:func:`unlearnbench.vision.classifier.build_classifier`)."""

    num_classes: int = 0
    forget_class: int | None = None
    suite: str = "classifier"

    kind = "classifier"


@dataclass
class RegressionTask(ArrayTask):
    """A tabular regression task: ``x_*`` float32 ``[N, D]`` (standardised with the training
    statistics), ``y_*`` float32 ``[N]`` in the task's original units (models standardise
    internally; the metrics read predictions in original units). ``model_config`` builds the
    network (:func:`unlearnbench.tabular.regression.build_regressor`)."""

    feature_names: tuple[str, ...] = ()
    target_name: str = "target"
    suite: str = "regression"

    kind = "regression"
