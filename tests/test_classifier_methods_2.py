"""IU, SCRUB, LAF and SISA on a tiny digits problem: they unlearn (weights and predictions
move), LAF never reads a forget label, and SISA retrains only what a deletion touches."""

import copy

import numpy as np
import pytest
import torch

from unlearnbench import registry
from unlearnbench.vision.classifier import ClassifierTrainConfig, build_classifier, predict_proba, train_classifier
from unlearnbench.method import ClassifierData, RunContext, parse_params

MODEL_CONFIG = {"arch": "small_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8, "width": 8}
RECIPE = ClassifierTrainConfig(epochs=8, batch_size=32, lr=0.05)
SMALL = {  # short runs: the code paths, not the paper's budgets
    "iu": {"fisher_samples": "64"},
    "scrub": {"epochs": "2", "lr": "0.02"},
    "laf": {"epochs": "2", "vae_epochs": "3"},
}
SISA_PARAMS = {"shards": "2", "slices": "3", "epochs": "4"}  # 2 epochs per incremental step


@pytest.fixture(scope="module")
def problem():
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = np.random.default_rng(0).choice(len(digits.target), 300, replace=False)
    x = ((digits.images[rows] / 16.0 - 0.3) / 0.4).astype(np.float32)[:, None]
    y = digits.target[rows].astype(np.int64)
    forget = np.sort(np.random.default_rng(1).choice(len(y), 30, replace=False))
    keep = np.setdiff1d(np.arange(len(y)), forget)
    data = ClassifierData(x[forget], y[forget], x[keep], y[keep], 10, MODEL_CONFIG, RECIPE,
                          x_train=x, y_train=y, forget_indices=forget)
    target = train_classifier(build_classifier(MODEL_CONFIG, seed=0), x, y, RECIPE, seed=0, quiet=True)
    return data, target


def _run(name, data, model, **raw):
    method = registry.method(name, "classifier").obj()
    assert "classifier" in method.kinds
    params = parse_params(method.params_class("classifier"), raw)
    ctx = RunContext(seed=0, device=torch.device("cpu"), quiet=True)
    return method.unlearn(model, data, params, ctx), ctx


@pytest.mark.parametrize("name", ["iu", "scrub", "laf"])
def test_method_changes_the_weights_and_the_predictions(problem, name):
    data, target = problem
    unlearned, _ = _run(name, data, copy.deepcopy(target), **SMALL[name])
    before, after = target.state_dict(), unlearned.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), f"{name} left every weight as it was"
    p_before, p_after = predict_proba(target, data.x_forget), predict_proba(unlearned, data.x_forget)
    assert np.isfinite(p_after).all()
    assert np.abs(p_before - p_after).max() > 1e-4


def test_woodfisher_recursion_equals_the_inverse_of_the_damped_fisher():
    from unlearnbench.methods.vision.iu import woodfisher_inverse_product

    gen = torch.Generator().manual_seed(0)
    grads = torch.randn(21, 7, generator=gen, dtype=torch.float64)
    v = torch.randn(7, generator=gen, dtype=torch.float64)
    fisher = 0.1 * torch.eye(7, dtype=torch.float64) + grads.T @ grads / 21
    got = woodfisher_inverse_product(grads, v, damping=0.1, block=4)  # blocks of 4 cross the 21 rows unevenly
    torch.testing.assert_close(got, torch.linalg.solve(fisher, v))


def test_iu_head_scope_moves_only_the_head(problem):
    data, target = problem
    unlearned, ctx = _run("iu", data, copy.deepcopy(target), scope="head", **SMALL["iu"])
    before, after = target.state_dict(), unlearned.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"fc.weight", "fc.bias"}
    assert ctx.info["scope"] == "head" and ctx.info["fisher_samples"] == 64


class _Unreadable:
    """Labels that fail the moment anything looks at them."""

    def __getattr__(self, name):
        raise AssertionError(f"forget labels were read ({name})")

    def _fail(self, *args, **kwargs):
        raise AssertionError("forget labels were read")

    __len__ = __iter__ = __getitem__ = __array__ = __int__ = __index__ = _fail


def test_laf_never_reads_the_forget_labels(problem):
    data, target = problem
    blind = copy.copy(data)
    blind.y_forget = _Unreadable()
    with_labels, _ = _run("laf", data, copy.deepcopy(target), **SMALL["laf"])
    without, _ = _run("laf", blind, copy.deepcopy(target), **SMALL["laf"])
    a, b = with_labels.state_dict(), without.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # the labels could not have mattered


# ------------------------------------------------------------------------------ SISA


@pytest.fixture
def sisa(problem, monkeypatch):
    """Runs SISA on the tiny problem with some rows deleted; counts its training steps and
    keeps each step's starting weights and number of rows."""
    import unlearnbench.methods.vision.sisa as sisa_module

    data, target = problem
    _run("sisa", _deleting(data, []), copy.deepcopy(target), **SISA_PARAMS)  # the checkpoints exist from here on
    calls = []
    real = sisa_module.train_classifier

    def counting(model, x, y, *args, **kwargs):
        calls.append({"rows": len(x), "start": copy.deepcopy(model.state_dict()), "what": kwargs.get("description")})
        return real(model, x, y, *args, **kwargs)

    monkeypatch.setattr(sisa_module, "train_classifier", counting)

    def run(deleted):
        model, ctx = _run("sisa", _deleting(data, deleted), copy.deepcopy(target), **SISA_PARAMS)
        return model, ctx.info, calls

    params = parse_params(sisa_module.Sisa.Params, SISA_PARAMS)
    folder = sisa_module.checkpoint_folder(data, params, seed=0)
    layout = sisa_module.partition(len(data.y_train), 2, 3, seed=0)

    def checkpoint(shard, slice_):
        return sisa_module.load_checkpoint(folder, MODEL_CONFIG, shard, slice_).state_dict()

    return run, layout, checkpoint


def _deleting(data, rows):
    rows = np.asarray(rows, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(data.y_train)), rows)
    return ClassifierData(data.x_train[rows], data.y_train[rows], data.x_train[keep], data.y_train[keep], 10,
                          MODEL_CONFIG, RECIPE, x_train=data.x_train, y_train=data.y_train, forget_indices=rows)


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sisa_deleting_nothing_retrains_nothing(sisa):
    run, _, checkpoint = sisa
    model, info, calls = run([])
    assert calls == []
    assert info["retrained_slices"] == 0 and info["affected_shards"] == [] and info["retrained_fraction"] == 0
    assert info["total_slices"] == 6 and info["checkpoints"] == "reused"
    for s, shard in enumerate(model.shards):
        assert _same(shard.state_dict(), checkpoint(s, 2))


def test_sisa_deletion_retrains_only_its_shard_from_its_slice(sisa):
    run, layout, checkpoint = sisa
    row = int(layout[1][1][0])  # shard 1, slice 1 (of 0..2)
    model, info, calls = run([row])
    assert info["affected_shards"] == [1] and info["first_retrained_slice"] == {"1": 1}
    assert info["retrained_slices"] == 2 and info["retrained_fraction"] == pytest.approx(2 / 6)
    assert len(calls) == 2  # slices 1 and 2 of shard 1; nothing else trains
    assert _same(calls[0]["start"], checkpoint(1, 0))  # resumed from the checkpoint after slice 0
    sizes = [sum(len(rows) for rows in layout[1][: r + 1]) - 1 for r in (1, 2)]
    assert [c["rows"] for c in calls] == sizes  # the shard's data up to that slice, minus the deleted row
    assert _same(model.shards[0].state_dict(), checkpoint(0, 2))  # the other shard is reused bit for bit
    assert not _same(model.shards[1].state_dict(), checkpoint(1, 2))


def test_sisa_averages_the_shard_probabilities(sisa, problem):
    run, _, _ = sisa
    model, _, _ = run([])
    x = problem[0].x_train[:20]
    expected = np.mean([predict_proba(shard, x) for shard in model.shards], axis=0)
    np.testing.assert_allclose(predict_proba(model, x), expected, rtol=1e-5, atol=1e-7)


def test_sisa_checkpoints_trained_off_the_cpu_are_cached_apart(problem):
    import torch

    import unlearnbench.methods.vision.sisa as sisa_module

    data, _ = problem
    params = parse_params(sisa_module.Sisa.Params, SISA_PARAMS)
    cpu = sisa_module.checkpoint_folder(data, params, 0)
    assert sisa_module.checkpoint_folder(data, params, 0, torch.device("cpu")) == cpu  # the CPU's key as before
    gpu = sisa_module.checkpoint_folder(data, params, 0, torch.device("cuda"))
    assert gpu != cpu and sisa_module.checkpoint_folder(data, params, 0, "cuda:1") == gpu
