"""``sisa``: Sharded, Isolated, Sliced, Aggregated training (Bourtoule et al., S&P 2021).

Exact unlearning by construction. The *full* training set is split at random into ``shards``
disjoint shards and each shard into ``slices`` slices; one model per shard is trained
incrementally: on slice 1, then on slices 1..2 from that checkpoint, ..., with a checkpoint
after every slice. Each incremental step runs ``round(2 E / (R + 1))`` epochs (at least 1) of
the task's own recipe, the paper's choice that keeps the total cost near ``E`` epochs over
the shard; the recipe's schedule restarts with every step.

Deleting rows retrains only the shards that hold them, each from the checkpoint before its
earliest affected slice, on that shard's data minus the deleted rows; the other shards are
reused as they are. The checkpoints of the undeleted training run are cached under
``cache_root()/"sisa"/<fingerprint of the data, architecture, recipe, S, R, epochs, seed>``:
the first run pays for ``S x R`` steps, later deletions reuse them. ``ctx.info`` (kept in the
record) says how much was retrained.

The returned model is an ensemble that averages the shard models' softmax probabilities and
returns the log of the average as its logits (the paper aggregates by majority vote; a
probability average keeps ``predict_proba`` and the losses meaningful).

SISA *replaces* the model: the target handed to ``unlearn`` is ignored, and the
"original" SISA is the same ensemble trained on all the data (deleting nothing retrains
nothing and returns it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from torch import nn

from unlearnbench.cache import building
from unlearnbench.method import Method
from unlearnbench.registry import register_method
from unlearnbench.sliced import array_digest, cache_folder, deleted_rows, partition
from unlearnbench.vision.classifier import ShardEnsemble, build_classifier, classifier_train_config, train_classifier

FORMAT_VERSION = 1


@register_method("sisa", summary="SISA: exact unlearning by sharded, sliced retraining")
class Sisa(Method):
    name = "sisa"
    needs = ("train",)
    kinds = ("classifier",)

    @dataclass(frozen=True)
    class Params:
        shards: int = 4
        slices: int = 4
        epochs: int | None = None  # E, epochs over a shard's data; None: the task recipe's epochs


    def unlearn(self, model, data, params, ctx):
        n, deleted = deleted_rows(data, params.shards, params.slices, "sisa")
        layout = partition(n, params.shards, params.slices, ctx.seed)
        step = step_config(data.train_config, params)
        folder = checkpoint_folder(data, params, ctx.seed, ctx.device)
        built = not folder.exists()
        if built:
            ctx.log(f"sisa: training {params.shards} x {params.slices} checkpoints (cached in {folder})")
            with building(folder) as tmp:
                for s, slices in enumerate(layout):
                    shard_model = build_classifier(data.model_config, seed=_seed(ctx.seed, s, 0))
                    for r in range(params.slices):
                        rows = np.concatenate(slices[: r + 1])
                        self._train_step(shard_model, data, rows, step, ctx, s, r)
                        _save(shard_model, _checkpoint(tmp, s, r))
                np.savez(tmp / "layout.npz", **{f"shard{s}_slice{r}": rows for s, sl in enumerate(layout)
                                                for r, rows in enumerate(sl)})

        models, affected, first_slice, retrained = [], [], {}, 0
        for s, slices in enumerate(layout):
            hit = [r for r, rows in enumerate(slices) if np.isin(rows, deleted).any()]
            if not hit:
                models.append(_load(data.model_config, _checkpoint(folder, s, params.slices - 1)))
                continue
            j = hit[0]
            affected.append(s)
            first_slice[str(s)] = j
            shard_model = (build_classifier(data.model_config, seed=_seed(ctx.seed, s, 0)) if j == 0
                           else _load(data.model_config, _checkpoint(folder, s, j - 1)))
            for r in range(j, params.slices):
                rows = np.concatenate(slices[: r + 1])
                rows = rows[~np.isin(rows, deleted)]
                if len(rows):  # a prefix of slices can be deleted whole; the model then waits for data
                    self._train_step(shard_model, data, rows, step, ctx, s, r)
                retrained += 1
            models.append(shard_model)
        total = params.shards * params.slices
        ctx.info.update({
            "shards": params.shards, "slices": params.slices, "affected_shards": affected,
            "retrained_slices": retrained, "total_slices": total, "retrained_fraction": retrained / total,
            "first_retrained_slice": first_slice, "checkpoints": "built" if built else "reused",
        })
        ctx.log(f"sisa: retrained {retrained}/{total} slices (shards {affected})")
        return ShardEnsemble(models).to(ctx.device).eval()

    @staticmethod
    def _train_step(model, data, rows, config, ctx, shard: int, slice_: int) -> None:
        train_classifier(model, data.x_train[rows], data.y_train[rows], config, _seed(ctx.seed, shard, slice_ + 1),
                         device=ctx.device, quiet=ctx.quiet, description=f"sisa shard {shard + 1} slice {slice_ + 1}")


def step_config(train_config, params):
    """The recipe for one incremental step: ``round(2 E / (R + 1))`` epochs (Bourtoule et al.)."""
    recipe = classifier_train_config(train_config)
    epochs = recipe.epochs if params.epochs is None else params.epochs
    return replace(recipe, epochs=max(1, round(2 * epochs / (params.slices + 1))))


def checkpoint_folder(data, params, seed: int, device=None) -> Path:
    """Where the checkpoints of this data, architecture, recipe, layout and seed live (and of
    the device type, off the CPU: a GPU's kernels train another model; CPU keys unchanged)."""
    key = {
        "version": FORMAT_VERSION, "data": array_digest(data.x_train, data.y_train), "model": data.model_config,
        "recipe": asdict(step_config(data.train_config, params)), "shards": params.shards,
        "slices": params.slices, "seed": seed,
    }
    return cache_folder("sisa", key, device)


def _checkpoint(folder: Path, shard: int, slice_: int) -> Path:
    return Path(folder) / f"shard{shard}" / f"slice{slice_}.safetensors"


def load_checkpoint(folder: Path, model_config: dict, shard: int, slice_: int) -> nn.Module:
    """The model of ``shard`` after training on slices ``0..slice_`` (no deletion)."""
    return _load(model_config, _checkpoint(folder, shard, slice_))


def _save(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(path))


def _load(model_config: dict, path: Path) -> nn.Module:
    from safetensors.torch import load_file

    model = build_classifier(model_config, seed=0)  # seeded only to leave the global RNG alone
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def _seed(seed: int, shard: int, step: int) -> int:
    """Seed of a shard's initial weights (step 0) and of its incremental steps (1..R)."""
    return int(np.random.SeedSequence([seed, shard, step, 0x5157]).generate_state(1)[0])
