"""Concept vectors: detection of the value matrices, the vocabulary projection, locating a
planted vector, activation coefficients and reversible noise, checked on tiny random
GPT-2 and Llama models against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnbench.lm import concepts as cv

CONCEPT = [11, 23, 42, 57]  # token ids the planted vector promotes
LAYER, INDEX = 1, 7


def tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                      intermediate_size=64, max_position_embeddings=64, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return LlamaForCausalLM(cfg).eval()


BUILDERS = {"gpt2": tiny_gpt2, "llama": tiny_llama}
LAYOUT = {  # independent facts about each architecture: module names, axis, intermediate size
    "gpt2": (["transformer.h.0.mlp.c_proj", "transformer.h.1.mlp.c_proj"], 0, 128),
    "llama": (["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"], 1, 64),
}


def plant(model, vm: cv.ValueMatrix, index: int, token_ids: list[int]) -> torch.Tensor:
    """Set value vector ``index`` to a scaled sum of the output-embedding rows of ``token_ids``."""
    emb = model.get_output_embeddings().weight.detach()
    v = 3.0 * emb[token_ids].sum(0)
    with torch.no_grad():
        model.get_submodule(vm.name).weight.select(vm.axis, index).copy_(v)
    return v.clone()


@pytest.fixture(params=sorted(BUILDERS))
def arch(request):
    return request.param


def test_value_matrices_follow_the_architecture(arch):
    model = BUILDERS[arch]()
    names, axis, inter = LAYOUT[arch]
    vms = cv.value_matrices(model)
    assert [vm.name for vm in vms] == names  # GPT-2's attn.c_proj is not an MLP projection
    assert [vm.layer for vm in vms] == [0, 1]
    assert all(vm.axis == axis for vm in vms)
    assert all(cv.n_value_vectors(model, vm) == inter for vm in vms)


def test_value_matrices_rejects_models_without_an_mlp():
    with pytest.raises(ValueError, match="down_proj"):
        cv.value_matrices(torch.nn.Sequential(torch.nn.Linear(4, 4)))


def test_default_k_scales_with_the_vocabulary():
    assert cv.default_k(32000) == 200  # LLaMA-2, as in the paper
    assert cv.default_k(16000) == 100
    assert cv.default_k(128256) == 200
    assert cv.default_k(100) == 10


def test_planted_vector_is_located_exactly(arch):
    model = BUILDERS[arch]()
    vms = cv.value_matrices(model)
    planted = plant(model, vms[LAYER], INDEX, CONCEPT)
    assert torch.equal(cv.value_vector(model, vms[LAYER], INDEX), planted)

    topk = cv.vocab_topk(model, k=10, chunk=16)
    assert set(topk[LAYER][INDEX].tolist()) >= set(CONCEPT)
    found = cv.locate(topk, {"planted": set(CONCEPT)}, matrices=vms)
    assert found == [{"concept": "planted", "matrix": LAYER, "layer": LAYER, "index": INDEX, "score": len(CONCEPT)}]


def test_vocab_topk_in_chunks_equals_the_full_projection(arch):
    model = BUILDERS[arch]()
    emb = model.get_output_embeddings().weight.detach()
    topk = cv.vocab_topk(model, k=10, chunk=5)  # 5 does not divide 64 or 128: a ragged last chunk
    for m, vm in enumerate(cv.value_matrices(model)):
        weight = model.get_submodule(vm.name).weight.detach()
        values = weight.T if vm.axis == 1 else weight  # [n_vectors, hidden]
        naive = (emb @ values.T).topk(10, dim=0).indices.T
        assert topk[m].dtype == torch.long and topk[m].shape == (values.shape[0], 10)
        assert torch.equal(topk[m], naive)
        assert torch.equal(cv.topk_of(model, values[:9], 10, chunk=4), naive[:9])


def test_locate_breaks_ties_and_applies_the_threshold():
    vms = [cv.ValueMatrix(3, "a", 1), cv.ValueMatrix(5, "b", 1)]
    rows = torch.tensor([[9, 8, 7], [1, 2, 3], [1, 2, 9], [1, 2, 3]])
    topk = {0: rows, 1: rows.clone()}
    ids = {"c": {1, 2, 3}, "none": {50, 51}}
    best = cv.locate(topk, ids, matrices=vms)
    assert best == [{"concept": "c", "matrix": 0, "layer": 3, "index": 1, "score": 3}]
    three = cv.locate(topk, ids, matrices=vms, per_concept=3)
    assert [(h["matrix"], h["index"], h["score"]) for h in three] == [(0, 1, 3), (0, 3, 3), (1, 1, 3)]
    assert [h["layer"] for h in three] == [3, 3, 5]
    assert cv.locate(topk, ids, matrices=vms, min_overlap=4) == []


def test_concept_token_ids_drop_stopwords_punctuation_and_unknowns():
    from unlearnbench.lm.worlds.tofu_synth import build_word_tokenizer

    tok = build_word_tokenizer(["the city of Lisbon is old .", "Porto"])
    ids = cv.concept_token_ids(tok, ["Lisbon", "the", ".", "city of Lisbon", "Atlantis"])
    vocab = tok.get_vocab()
    assert ids == {vocab["Lisbon"], vocab["city"]}
    assert {"the", "of", "a", "and"} <= cv.STOPWORDS


def _mlp_inputs(model, vm, batch):
    """The MLP's input at every position, caught at the MLP module (not the down projection)."""
    mlp = model.get_submodule(vm.name.rsplit(".", 1)[0])
    seen = []
    handle = mlp.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    with torch.no_grad():
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    handle.remove()
    return mlp, seen[0]


def test_coefficients_match_the_mlp_computed_by_hand(arch):
    model = BUILDERS[arch]()
    vm = cv.value_matrices(model)[LAYER]
    gen = torch.Generator().manual_seed(1)
    batches = []
    for width, lengths in ((6, [6, 3]), (4, [2, 4, 1])):
        ids = torch.randint(3, 100, (len(lengths), width), generator=gen)
        mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
        batches.append({"input_ids": ids, "attention_mask": mask})
    indices = [0, INDEX, 20]

    def by_hand(use_labels: bool) -> np.ndarray:
        total, count = torch.zeros(len(indices), dtype=torch.float64), 0
        for batch in batches:
            mlp, x = _mlp_inputs(model, vm, batch)
            with torch.no_grad():
                if arch == "gpt2":
                    acts = mlp.act(mlp.c_fc(x))
                else:
                    acts = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)
            keep = batch["attention_mask"] == 1
            if use_labels:
                keep &= batch["labels"] != -100
            total += acts[keep][:, indices].double().sum(0)
            count += int(keep.sum())
        return (total / count).numpy()

    got = cv.coefficients(model, vm, indices, batches)
    assert got.shape == (3,)
    np.testing.assert_allclose(got, by_hand(False), rtol=1e-5, atol=1e-7)

    for batch in batches:  # answers: the last two real tokens of each row
        labels = torch.full_like(batch["input_ids"], -100)
        for row, n in enumerate(batch["attention_mask"].sum(1).tolist()):
            labels[row, max(0, n - 2) : n] = batch["input_ids"][row, max(0, n - 2) : n]
        batch["labels"] = labels
    with_labels = cv.coefficients(model, vm, indices, batches)
    np.testing.assert_allclose(with_labels, by_hand(True), rtol=1e-5, atol=1e-7)
    assert not np.allclose(with_labels, got)


def test_noised_perturbs_only_the_listed_vectors_and_restores_them_exactly(arch):
    model = BUILDERS[arch]()
    vms = cv.value_matrices(model)
    listed = [(vms[1], INDEX), (vms[0], 3), (vms[1], INDEX)]  # a duplicate is noised once
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scale = 0.5
    with cv.noised(model, listed, scale=scale, seed=0):
        during = {k: v.clone() for k, v in model.state_dict().items()}
    for key in before:
        assert torch.equal(model.state_dict()[key], before[key]), key  # bit-identical after exit
        if key not in (vms[0].name + ".weight", vms[1].name + ".weight"):
            assert torch.equal(during[key], before[key]), key
    for vm, j in [(vms[1], INDEX), (vms[0], 3)]:
        key, axis = vm.name + ".weight", vm.axis
        delta = during[key] - before[key]
        changed = (delta != 0).any(dim=1 - axis).nonzero().flatten().tolist()
        assert changed == [j]
        v = before[key].select(axis, j)
        assert float(delta.select(axis, j).norm()) == pytest.approx(scale * float(v.norm()), rel=1e-4)

    with cv.noised(model, listed, scale=scale, seed=0):  # same seed, same noise
        again = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(torch.equal(again[k], during[k]) for k in during)

    with pytest.raises(RuntimeError, match="boom"):
        with cv.noised(model, listed, scale=2.0, seed=1):
            raise RuntimeError("boom")
    assert all(torch.equal(model.state_dict()[k], before[k]) for k in before)
