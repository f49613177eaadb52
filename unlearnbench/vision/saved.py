"""Unlearned classifiers kept by ``--save-model`` and read back by ``--unlearned PATH``.

Two layouts, both plain data (safetensors weights and JSON; nothing in the folder runs code
when it is read):

``unlearnbench-classifier`` (one model, what most methods return)::

    model/
      model.safetensors   the state dict (buffers included)
      config.json         the architecture (``build_classifier``'s config)

  the folder :func:`~unlearnbench.vision.classifier.save_classifier` writes and ``--model``
  takes, so a saved unlearned model can also be the target of another run.

``sisa-ensemble`` (SISA's :class:`~unlearnbench.vision.classifier.ShardEnsemble`)::

    model/
      ensemble.json       {"layout": "sisa-ensemble", "version": 1,
                           "aggregate": "mean_probability", "shards": ["shard-0", "shard-1", ...]}
      shard-0/            one unlearnbench-classifier folder per shard, in ensemble order
        model.safetensors
        config.json
      shard-1/ ...

  Reading it back builds the same ensemble (the mean of the shards' softmax probabilities),
  so it predicts what the saved one did. ``shards`` are relative paths inside the folder; a
  name that is absolute, holds ``..`` or leads out of the folder through a link is refused.

The fingerprint the record keeps is the weights hash of the one model, or for an ensemble a
hash of its shards' weights hashes in order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unlearnbench.arraytasks import (
    CONFIG_NAME, ENSEMBLE_FILE, WEIGHTS_NAME, check_fits, inside, read_layout_file, replace_folder, save_single,
    unlearned_folder,
)
from unlearnbench.errors import ModelSourceError

SINGLE = "unlearnbench-classifier"
ENSEMBLE = "sisa-ensemble"
ENSEMBLE_VERSION = 1
AGGREGATE = "mean_probability"
WRITER = "save_classifier"


def _ensemble_class():
    from unlearnbench.vision.classifier import ShardEnsemble

    return ShardEnsemble


def _save_one(model, config: dict, folder: Path) -> dict[str, Any]:
    from unlearnbench.vision.classifier import build_classifier, classifier_fingerprint, save_classifier

    return save_single(model, config, folder, save=save_classifier, build=build_classifier,
                       fingerprint=classifier_fingerprint, layout=SINGLE, what="classifier")


def save_unlearned_classifier(model, folder, config: dict) -> dict[str, Any]:
    """Write ``model`` (one classifier of architecture ``config``, or a SISA ensemble of them)
    under ``folder`` in the layouts above; returns ``{"layout", "fingerprint"}`` (and
    ``"shards"`` for an ensemble)."""
    from unlearnbench.cache import fingerprint

    folder = replace_folder(folder)
    if not isinstance(model, _ensemble_class()):
        return _save_one(model, config, folder)
    names = [f"shard-{i}" for i in range(len(model.shards))]
    prints = [_save_one(shard, config, folder / name)["fingerprint"] for name, shard in zip(names, model.shards)]
    doc = {"layout": ENSEMBLE, "version": ENSEMBLE_VERSION, "aggregate": AGGREGATE, "shards": names}
    (folder / ENSEMBLE_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return {"layout": ENSEMBLE, "shards": len(names), "fingerprint": fingerprint({"layout": ENSEMBLE, "shards": prints})}


def load_unlearned_classifier(source: str, *, num_classes: int, x_sample) -> tuple[Any, str, str]:
    """``(model, layout, fingerprint)`` from a folder :func:`save_unlearned_classifier` (or
    ``save_classifier``) wrote; the model is on CPU, in eval mode. A folder in neither layout,
    a model with another number of classes than the task, or one that does not take the task's
    images is a :class:`ModelSourceError` saying what to pass."""
    from unlearnbench.cache import fingerprint
    from unlearnbench.vision.classifier import classifier_fingerprint, load_classifier

    folder = unlearned_folder(source, kind="classifier", writer=WRITER)
    if (folder / ENSEMBLE_FILE).is_file():
        doc = read_layout_file(folder, layout=ENSEMBLE, version=ENSEMBLE_VERSION)
        where = str(folder / ENSEMBLE_FILE)
        if doc.get("aggregate", AGGREGATE) != AGGREGATE:
            raise ModelSourceError(f"{where}: aggregate {doc.get('aggregate')!r} is not known; this unlearnbench "
                                   f"reads {AGGREGATE!r}.")
        paths = [inside(folder, name, where=where) for name in doc["shards"]]
        models, prints = [], []
        for path in paths:
            if not path.is_dir():
                raise ModelSourceError(f"{where}: shard {path.name!r} is not a folder in {str(folder)!r}.")
            shard, config = load_classifier(path)
            _check_classes(config, num_classes, source)
            models.append(shard)
            prints.append(classifier_fingerprint(path))
        model = _ensemble_class()(models).eval()
        layout, print_ = ENSEMBLE, fingerprint({"layout": ENSEMBLE, "shards": prints})
    elif (folder / CONFIG_NAME).is_file() or (folder / WEIGHTS_NAME).is_file():
        model, config = load_classifier(folder)
        _check_classes(config, num_classes, source)
        layout, print_ = SINGLE, classifier_fingerprint(folder)
    else:
        raise ModelSourceError(
            f"--unlearned {source}: {str(folder)!r} holds neither {ENSEMBLE_FILE} (a saved ensemble) nor "
            f"{CONFIG_NAME} and {WEIGHTS_NAME} (one classifier). Pass a folder written by --save-model "
            f"(runs/<id>/model) or by {WRITER}.")
    check_fits(model, x_sample, source=source, what="classifier")
    return model, layout, print_


def _check_classes(config: dict, num_classes: int, source: str) -> None:
    if int(config.get("num_classes", -1)) != int(num_classes):
        raise ModelSourceError(f"--unlearned {source}: the saved classifier has {config.get('num_classes')} outputs; "
                               f"the task has {num_classes} classes.")
