"""Every method changes the weights (except ``original``), and never the model it was given."""

import copy

import pytest
import torch

from unlearnbench import registry
from unlearnbench.method import RunContext, UnlearnData, parse_params

CHANGING = ["retrain", "ga", "graddiff", "npo", "simnpo", "idkdpo", "flat", "undial", "wga", "satimp", "ceu", "pdu", "rl"]


def _unlearn(task, name, **params):
    loaded = task.load_target()
    before = copy.deepcopy(loaded.model.state_dict())
    method = registry.method(name, "language_model").obj()
    params = parse_params(method.Params, {k: str(v) for k, v in params.items()})
    data = UnlearnData(task.splits["forget"], task.splits["retain"], loaded.tokenizer, task.prompt_format)
    ctx = RunContext(seed=0, device=torch.device("cpu"), quiet=True, task_name=task.spec.name, recipe=task.recipe)
    after = method.unlearn(copy.deepcopy(loaded.model), data, params, ctx).state_dict()
    return before, after


@pytest.mark.parametrize("name", CHANGING)
def test_method_changes_the_weights(tiny_task, name):
    params = {} if name == "retrain" else {"epochs": 1}
    before, after = _unlearn(tiny_task, name, **params)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, f"{name} left every weight as it was"


def test_original_leaves_every_weight_unchanged(tiny_task):
    before, after = _unlearn(tiny_task, "original")
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_npo_lowers_forget_likelihood_more_than_retain(tiny_task):
    """NPO's objective, checked on its effect: forget answers lose more probability than retain."""
    from unlearnbench.lm.modeling import QABatches, encode_rows, sequence_logprobs

    loaded = tiny_task.load_target()
    tok, fmt = loaded.tokenizer, tiny_task.prompt_format

    def mean_logp(model, rows):
        batch = next(iter(QABatches(encode_rows(tok, fmt, rows), 1000, tok.pad_token_id, 0).epoch(0)))
        with torch.no_grad():
            total, count = sequence_logprobs(model, batch)
        return float((total / count).mean())

    _, after_state = _unlearn(tiny_task, "npo", epochs=3, lr=3e-3)
    after = copy.deepcopy(loaded.model)
    after.load_state_dict(after_state)
    forget, retain = tiny_task.splits["forget"], tiny_task.splits["retain"].select(range(40))
    drop_forget = mean_logp(loaded.model, forget) - mean_logp(after, forget)
    drop_retain = mean_logp(loaded.model, retain) - mean_logp(after, retain)
    assert drop_forget > 0 and drop_forget > drop_retain


def test_idkdpo_refusals_are_in_the_synthetic_vocabulary(tiny_task):
    from unlearnbench.lm.alternatives import idk_answers

    tok = tiny_task.load_target().tokenizer
    for answer in idk_answers():
        assert tok.unk_token_id not in tok(answer, add_special_tokens=False)["input_ids"], answer
