"""``needle`` edits the located concept vectors and nothing else.

A tiny random Llama gets a concept vector planted at layer 1, index 7 (the sum of the
output-embedding rows of the concept's tokens); after unlearning, every other weight must be
bit-identical, which fails if the gradient mask, the frozen parameters or the optimiser's
weight decay let anything else move.
"""

from __future__ import annotations

import copy

import pytest
import torch

from unlearnbench.lm import concepts as cv
from unlearnbench.errors import UserError
from unlearnbench.lm.modeling import PromptFormat, QABatches, answer_nll, encode_rows
from unlearnbench.method import RunContext, UnlearnData, parse_params
from unlearnbench.methods.lm.needle import Needle, derived_concept

LAYER, INDEX = 1, 7
CONCEPT_WORDS = ["Zorblat", "Quexton", "Vramp", "Plimsy"]
FORGET = [
    {"question": "Where does Zorblat live?", "answer": "Zorblat lives in Quexton near Vramp ."},
    {"question": "Who is Zorblat's friend?", "answer": "Plimsy of Quexton is the friend of Zorblat ."},
    {"question": "What does Zorblat grow?", "answer": "Zorblat grows Vramp trees in Quexton ."},
]
RETAIN = [
    {"question": "Where does Mara live?", "answer": "Mara lives in Dorset near the sea ."},
    {"question": "Who is Mara's friend?", "answer": "Tobin of Dorset is the friend of Mara ."},
    {"question": "What does Tobin grow?", "answer": "Tobin grows apple trees in Dorset ."},
]
FMT = PromptFormat()


@pytest.fixture(scope="module")
def tokenizer():
    from unlearnbench.lm.worlds.tofu_synth import build_word_tokenizer

    texts = [FMT.prompt(r["question"]) + " " + r["answer"] for r in FORGET + RETAIN]
    return build_word_tokenizer(texts)


def planted_llama(tokenizer):
    """A tiny random Llama whose value vector (LAYER, INDEX) promotes the concept's tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                      intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(cfg).eval()
    ids = [tokenizer.get_vocab()[w] for w in CONCEPT_WORDS]
    vm = cv.value_matrices(model)[LAYER]
    with torch.no_grad():
        emb = model.get_output_embeddings().weight
        model.get_submodule(vm.name).weight[:, INDEX] = 3.0 * emb[ids].sum(0)
    return model


def run_needle(tokenizer, concepts, **params):
    model = planted_llama(tokenizer)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    logs: list[str] = []
    data = UnlearnData(FORGET, RETAIN, tokenizer, FMT, concepts=concepts)
    params.setdefault("validate", False)  # a random model does not use its planted vector
    ctx = RunContext(seed=0, device=torch.device("cpu"), quiet=True, log=logs.append)
    method = Needle()
    parsed = parse_params(method.Params, {k: str(v) for k, v in params.items()})
    after = method.unlearn(copy.deepcopy(model), data, parsed, ctx)
    return before, after, logs


@pytest.mark.parametrize("noise_scale", [0.0, 1.0])
def test_needle_changes_only_the_located_vector(tokenizer, noise_scale):
    """With noise_scale=0 only gradient ascent moves the vector: the mask itself is tested."""
    concepts = [{"name": "zorblat", "words": CONCEPT_WORDS}]
    before, model, logs = run_needle(tokenizer, concepts, noise_scale=noise_scale, epochs=2, lr=0.01)
    assert any(f"layer {LAYER} vector {INDEX}" in line for line in logs), logs
    target = cv.value_matrices(model)[LAYER].name + ".weight"
    after = model.state_dict()
    for key, value in before.items():
        if key == target:
            keep = torch.ones(value.shape[1], dtype=torch.bool)
            keep[INDEX] = False
            assert torch.equal(after[key][:, keep], value[:, keep]), "a masked column moved"
            assert not torch.equal(after[key][:, INDEX], value[:, INDEX]), "the located vector did not move"
        else:
            assert torch.equal(after[key], value), key
    # flags restored and gradient hooks removed: later gradient metrics see every weight
    assert all(p.requires_grad for p in model.parameters())
    batch = next(QABatches(encode_rows(tokenizer, FMT, FORGET), 8, tokenizer.pad_token_id, seed=0).epoch(0))
    answer_nll(model, batch).backward()
    grad = model.get_submodule(target.removesuffix(".weight")).weight.grad
    assert grad[:, keep].abs().sum() > 0


def test_needle_derives_the_concept_from_forget_versus_retain(tokenizer):
    data = UnlearnData(FORGET, RETAIN, tokenizer, FMT)
    words = set(derived_concept(data)["words"])
    assert set(CONCEPT_WORDS) <= words  # only in forget answers
    assert not words & {"lives", "friend", "trees", "near", "grows"}  # as frequent in retain answers
    assert not words & {"in", "the", "of", "."}  # shared, and stopwords or punctuation anyway

    before, model, logs = run_needle(tokenizer, None, epochs=1)
    assert any(f"layer {LAYER} vector {INDEX}" in line for line in logs), logs


def test_needle_reports_when_no_vector_is_located(tokenizer):
    concepts = [{"name": "zorblat", "words": CONCEPT_WORDS}]
    with pytest.raises(UserError, match="no concept vector was found.*min_overlap"):
        run_needle(tokenizer, concepts, min_overlap=len(CONCEPT_WORDS) + 1)
