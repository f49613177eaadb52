"""S3T: the deactivation bookkeeping, and on a classifier and a tiny language model that after a
deletion no active adapter was trained on a deleted row, and that the model served is the base
with exactly the surviving adapters."""

import copy
import hashlib

import numpy as np
import pytest
import torch

from unlearnbench import registry
from unlearnbench.method import ClassifierData, RunContext, UnlearnData, parse_params
from unlearnbench.sliced import adapter_targets, cyclic_orders, partition, plan_deletion
from unlearnbench.errors import UserError

# ------------------------------------------------------------------------------ bookkeeping


def _layout(slices, rows_per_slice=3):
    """One shard whose slice r holds rows 10 r .. 10 r + rows_per_slice - 1."""
    return [[np.arange(10 * r, 10 * r + rows_per_slice) for r in range(slices)]]


def test_a_deletion_in_slice_j_deactivates_adapters_j_to_the_last():
    layout, identity = _layout(4), [(0, 1, 2, 3)]
    for j in range(4):
        (plan,) = plan_deletion(layout, identity, [10 * j + 1], min_active=1)
        assert plan.kept == j and plan.deactivated == 4 - j  # adapters j..L (0-based j..3) go
        assert plan.hit_slices == (j,)
        assert plan.retrain == (j == 0)  # nothing left active only when the first slice is hit


def test_with_several_orders_the_order_keeping_most_adapters_is_chosen():
    orders = cyclic_orders(4, 4)
    assert orders == [(0, 1, 2, 3), (3, 0, 1, 2), (2, 3, 0, 1), (1, 2, 3, 0)]
    (plan,) = plan_deletion(_layout(4), orders, [0, 11], min_active=1)  # slices 0 and 1 lose a row
    # by hand: (0,1,2,3) keeps 0, (3,0,1,2) keeps 1, (2,3,0,1) keeps 2, (1,2,3,0) keeps 0
    assert plan.kept_by_order == (0, 1, 2, 0)
    assert plan.order == 2 and plan.sequence == (2, 3, 0, 1) and plan.kept == 2 and not plan.retrain


def test_nothing_deleted_keeps_the_first_order_whole_and_min_active_decides_retraining():
    orders = cyclic_orders(3, 3)
    (plan,) = plan_deletion(_layout(3), orders, [], min_active=3)
    assert plan.order == 0 and plan.kept == 3 and not plan.retrain and plan.hit_slices == ()
    (plan,) = plan_deletion(_layout(3), orders, [20], min_active=3)  # slice 2: (0,1,2) keeps 2 of 3
    assert plan.kept == 2 and plan.retrain
    (plan,) = plan_deletion(_layout(3), orders, [0, 10, 20], min_active=0)  # every slice hit, never retrain
    assert plan.kept == 0 and not plan.retrain


def test_cyclic_orders_put_every_slice_first_and_last_once():
    orders = cyclic_orders(5, 5)
    assert sorted(o[0] for o in orders) == list(range(5)) and sorted(o[-1] for o in orders) == list(range(5))
    assert all(sorted(o) == list(range(5)) for o in orders)
    with pytest.raises(UserError, match="1 to 5 slice orders"):
        cyclic_orders(5, 6)


def test_adapter_targets_stack_everything_or_split_the_layers_from_the_top():
    units = [["conv1"], ["conv2"], ["conv3"], ["fc"]]
    assert adapter_targets(units, 2, "stacked") == [["conv1", "conv2", "conv3", "fc"]] * 2
    assert adapter_targets(units, 2, "layerwise") == [["fc", "conv3"], ["conv2", "conv1"]]
    with pytest.raises(UserError, match="4 adaptable layers"):
        adapter_targets(units, 5, "layerwise")


# ------------------------------------------------------------------------------ classifiers

CONFIG = {"arch": "small_cnn", "num_classes": 4, "in_channels": 1, "image_size": 8, "width": 8}
PARAMS = {"shards": "2", "slices": "3", "orders": "3", "epochs": "4", "lora_r": "4"}


def _key(row) -> str:
    return hashlib.sha256(np.ascontiguousarray(row).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def problem():
    """120 distinct random images, 4 classes, each with its own mean pattern."""
    from unlearnbench.vision.classifier import ClassifierTrainConfig

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 120).astype(np.int64)
    patterns = rng.normal(size=(4, 1, 8, 8))
    x = (patterns[y] + 0.5 * rng.normal(size=(120, 1, 8, 8))).astype(np.float32)
    assert len({_key(r) for r in x}) == len(x)
    return x, y, ClassifierTrainConfig(epochs=8, batch_size=16, lr=0.05)


def _data(problem, deleted):
    x, y, recipe = problem
    deleted = np.asarray(deleted, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(y)), deleted)
    return ClassifierData(x[deleted], y[deleted], x[keep], y[keep], 4, CONFIG, recipe, x_train=x, y_train=y,
                          forget_indices=deleted)


@pytest.fixture(scope="module")
def classifier_s3t(problem, tmp_path_factory):
    """``run(deleted) -> (model, info, calls)``: S3T on the problem, in a cache of its own so that
    the build's adapter trainings are recorded too. Each call records the adapter it trains, the
    rows it saw and the model's outputs on a probe before and after."""
    import unlearnbench.methods.vision.s3t as s3t_module
    from unlearnbench.vision.classifier import predict_proba

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("UNLEARNBENCH_CACHE", str(tmp_path_factory.mktemp("s3t-cache")))
    probe = problem[0][:16]
    calls = []
    real = s3t_module.train_classifier

    def recording(model, x, y, *args, **kwargs):
        call = {"what": kwargs["description"], "rows": {_key(r) for r in x}, "start": predict_proba(model, probe)}
        real(model, x, y, *args, **kwargs)
        calls.append({**call, "end": predict_proba(model, probe)})
        return model

    monkeypatch.setattr(s3t_module, "train_classifier", recording)
    method = registry.method("s3t", "classifier").obj()

    def run(deleted):
        ctx = RunContext(seed=0, device=torch.device("cpu"), quiet=True)
        before = len(calls)
        model = method.unlearn(None, _data(problem, deleted), parse_params(method.Params, PARAMS), ctx)
        return model, ctx.info, calls[before:]

    build = run([])  # the adapters are trained here
    yield run, build, probe
    monkeypatch.undo()


def _build_call(calls, shard, order, position):
    (call,) = [c for c in calls if c["what"] == f"s3t shard {shard + 1} order {order + 1} adapter {position + 1}"]
    return call


def test_the_build_trains_every_adapter_of_every_order_once_on_its_slices(classifier_s3t, problem):
    _, (model, info, calls), _ = classifier_s3t
    layout, x = partition(120, 2, 3, seed=0), problem[0]
    assert len(calls) == 2 * 3 * 3 and info["checkpoints"] == "built" and info["adapters_trained"] == 18
    for o, sequence in enumerate(cyclic_orders(3, 3)):
        for p in range(3):
            rows = np.concatenate([layout[1][r] for r in sequence[: p + 1]])
            assert _build_call(calls, 1, o, p)["rows"] == {_key(x[i]) for i in rows}
    assert info["deactivated_adapters"] == 0 and info["retrained_adapters"] == 0 and info["active_adapters"] == 6


def test_after_a_deletion_no_active_adapter_was_trained_on_the_deleted_row(classifier_s3t, problem):
    run, (_, _, build_calls), probe = classifier_s3t
    layout, x = partition(120, 2, 3, seed=0), problem[0]
    row = int(layout[0][1][0])  # shard 0, slice 1
    model, info, calls = run([row])
    assert calls == []  # served by deactivation alone
    shard0, shard1 = info["per_shard"]
    # orders (0,1,2), (2,0,1), (1,2,0) keep 1, 2, 0 adapters: the second order, two adapters active
    assert shard0["order"] == [2, 0, 1] and shard0["kept"] == 2 and shard0["deactivated"] == 1
    assert shard1["order"] == [0, 1, 2] and shard1["kept"] == 3 and shard1["deactivated"] == 0
    deleted = _key(x[row])
    for shard in info["per_shard"]:
        o = cyclic_orders(3, 3).index(tuple(shard["order"]))
        for p in range(shard["kept"]):
            assert deleted not in _build_call(build_calls, shard["shard"], o, p)["rows"]
    assert deleted in _build_call(build_calls, 0, 1, 2)["rows"]  # the deactivated one had seen it
    # shard 0 serves base + adapters 1, 2 of order 2: what that stack computed before adapter 3 trained
    from unlearnbench.vision.classifier import predict_proba

    np.testing.assert_allclose(predict_proba(model.shards[0], probe), _build_call(build_calls, 0, 1, 2)["start"],
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(predict_proba(model.shards[1], probe), _build_call(build_calls, 1, 0, 2)["end"],
                               rtol=0, atol=1e-6)


def test_a_shard_left_without_active_adapters_retrains_them_without_the_deleted_rows(classifier_s3t, problem):
    run, _, _ = classifier_s3t
    layout, x = partition(120, 2, 3, seed=0), problem[0]
    deleted = [int(layout[0][r][0]) for r in range(3)]  # every slice of shard 0 loses a row
    _, info, calls = run(deleted)
    shard0 = info["per_shard"][0]
    assert shard0["kept"] == 0 and shard0["retrained"] == 3 and shard0["active"] == 3 and shard0["order"] == [0, 1, 2]
    assert info["retrained_adapters"] == 3 and info["per_shard"][1]["retrained"] == 0
    assert [c["what"] for c in calls] == [f"s3t shard 1 order 1 adapter {p} (retraining)" for p in (1, 2, 3)]
    gone = {_key(x[i]) for i in deleted}
    for p, call in enumerate(calls):
        expected = {_key(x[i]) for i in np.concatenate(layout[0][: p + 1])} - gone
        assert call["rows"] == expected


def test_s3t_refuses_batchnorm_and_a_layerwise_stack_deeper_than_the_model(problem):
    method = registry.method("s3t", "classifier").obj()
    ctx = RunContext(seed=0, device=torch.device("cpu"), quiet=True)
    data = _data(problem, [0])
    bn = copy.copy(data)
    bn.model_config = {"arch": "resnet18", "num_classes": 4, "in_channels": 1, "width": 8, "norm": "batch"}
    with pytest.raises(UserError, match="BatchNorm"):
        method.unlearn(None, bn, parse_params(method.Params, PARAMS), ctx)
    with pytest.raises(UserError, match="3 adaptable layers"):
        method.unlearn(None, data, parse_params(method.Params, {**PARAMS, "slices": "4", "placement": "layerwise"}), ctx)


# ------------------------------------------------------------------------------ language models


@pytest.fixture(scope="module")
def lm_s3t(tiny_task, tmp_path_factory):
    """``run(forget_rows, retain_rows) -> (model, info, calls)`` on the tiny world, recording each
    adapter training's token rows and the logits of a probe before it trains."""
    import unlearnbench.methods.lm.s3t as s3t_module
    from unlearnbench.lm.family import LanguageModelFamily

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("UNLEARNBENCH_CACHE", str(tmp_path_factory.mktemp("s3t-lm-cache")))
    target = tiny_task.load_target()
    data = LanguageModelFamily().method_data(tiny_task, "forget", target)
    probe = torch.tensor([[5, 6, 7, 8, 9, 10]])
    calls = []
    real = s3t_module.train_loop

    def recording(model, steps, n_steps, loss_fn, config, *, description, quiet):
        seen = set()

        def watched():
            for batch in steps:
                for ids, mask in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist()):
                    seen.add(tuple(ids[: sum(mask)]))
                yield batch

        with torch.no_grad():
            start = model(input_ids=probe).logits.clone()
        real(model, watched(), n_steps, loss_fn, config, description=description, quiet=quiet)
        calls.append({"what": description, "rows": seen, "start": start})

    monkeypatch.setattr(s3t_module, "train_loop", recording)
    method = registry.method("s3t", "language_model").obj()
    params = parse_params(method.Params, {"slices": "2", "orders": "2", "epochs": "1", "lora_r": "4"})

    def run(forget, retain):
        ctx = RunContext(seed=0, device=torch.device("cpu"), quiet=True, task_name="tofu-synth/forget10",
                         recipe=tiny_task.recipe)
        before = len(calls)
        rows = UnlearnData(forget=forget, retain=retain, tokenizer=data.tokenizer, prompt_format=data.prompt_format)
        model = method.unlearn(copy.deepcopy(target.model), rows, params, ctx)
        return model, ctx.info, calls[before:]

    first = run(list(data.forget), list(data.retain))  # the adapters are trained here
    yield run, data, probe, first, list(tiny_task.recipe.background)
    monkeypatch.undo()


def _ids(data, rows):
    from unlearnbench.lm.modeling import encode_rows

    return {tuple(ids) for ids, _ in encode_rows(data.tokenizer, data.prompt_format, rows)}


def test_lm_s3t_deleting_the_forget_set_retrains_on_retain_rows_only(lm_s3t):
    _, data, _, (model, info, calls), background_rows = lm_s3t
    forget, retain = list(data.forget), list(data.retain)
    assert info["checkpoints"] == "built" and info["adapters_trained"] == 4
    build, retraining = calls[:4], calls[4:]
    forget_ids = _ids(data, forget)
    assert all(c["rows"] & forget_ids for c in build)  # 40 forget rows reach every slice
    assert info["per_shard"][0]["kept"] == 0 and info["retrained_adapters"] == 2 and info["active_adapters"] == 2
    assert [c["what"] for c in retraining] == ["s3t shard 1 order 1 adapter 1 (retraining)",
                                               "s3t shard 1 order 1 adapter 2 (retraining)"]
    background = _ids(data, background_rows)
    assert background
    for call in retraining:  # the active adapters: retain rows (and the world's background), no forget row
        assert call["rows"] and not call["rows"] & forget_ids
        assert background <= call["rows"] and call["rows"] - background <= _ids(data, retain)
    assert type(model).__name__ == "LlamaForCausalLM"  # a plain model for the scoring engine
    assert model.get_output_embeddings().weight is not model.get_input_embeddings().weight


def test_lm_s3t_serves_one_deleted_row_from_the_cache_by_deactivation(lm_s3t):
    from unlearnbench.methods.lm.s3t import fine_tuning_set

    run, data, probe, (_, _, first_calls), _ = lm_s3t
    rows, _ = fine_tuning_set(data.forget, data.retain)
    layout = partition(len(rows), 1, 2, seed=0)
    row = rows[int(layout[0][1][0])]  # in slice 1: order (0, 1) keeps its first adapter, (1, 0) none
    everything = list(data.forget) + list(data.retain)
    keep = [r for r in everything if (r["question"], r["answer"]) != (row["question"], row["answer"])]
    assert len(keep) == len(everything) - 1
    model, info, calls = run([row], keep)  # the same fine-tuning set: the first test's adapters serve it
    assert calls == [] and info["checkpoints"] == "reused"
    assert info["per_shard"][0]["order"] == [0, 1] and info["per_shard"][0]["kept"] == 1
    assert info["deactivated_adapters"] == 1 and info["retrained_adapters"] == 0
    # the model is the base with order 1's first adapter: what that stack computed before its second trained
    (second,) = [c for c in first_calls if c["what"] == "s3t shard 1 order 1 adapter 2"]
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=probe).logits, second["start"], rtol=0, atol=1e-5)


def test_lm_s3t_trains_one_shard_only():
    method = registry.method("s3t", "language_model").obj()
    with pytest.raises(UserError, match="one shard"):
        method.unlearn(None, None, parse_params(method.Params, {"shards": "2"}), RunContext(seed=0, device="cpu"))


def test_lm_s3t_runs_through_the_runner_and_its_model_saves_and_scores(run_tiny):
    params = {"slices": "2", "orders": "1", "epochs": "1", "lora_r": "4"}
    made = run_tiny("s3t", params=params, save_model=True, lenses=("behavior",))
    assert made.record.status == "succeeded", made.record.error
    info = made.record.method["info"]
    assert info["retrained_adapters"] == 2 and info["base"] == "the task recipe on its background rows"
    scored = run_tiny("external", unlearned=str(made.run_dir / "model"), lenses=("behavior",))
    assert scored.record.status == "succeeded", scored.record.error
    timing = {"rte"}
    expected = {k: v for k, v in made.record.metrics.items() if k not in timing}
    assert {k: v for k, v in scored.record.metrics.items() if k not in timing} == pytest.approx(expected, rel=1e-6)
