"""The privacy lens: the engine's chunked next-token statistics and batched gradient norms
against naive references, and the six attack AUCs in a record against scikit-learn."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from unlearnbench.lm.modeling import encode_answer, encode_prompt
from unlearnbench.metrics.privacy import token_distribution_moments
from unlearnbench.records import PER_EXAMPLE_FILE
from unlearnbench.lm.scoring import ScoringEngine, next_token_statistics

ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference", "gradnorm")


def _naive(logits: torch.Tensor, targets: torch.Tensor):
    logp = torch.log_softmax(logits.double(), -1)
    mu, sigma = token_distribution_moments(logits.double().numpy())
    return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).numpy(), logits.argmax(-1) == targets, mu, sigma


@pytest.mark.parametrize("max_elements", [37 * 64, 37 * 1000, 1 << 24])
def test_chunked_statistics_match_a_full_log_softmax(max_elements):
    gen = torch.Generator().manual_seed(0)
    hidden, weight = torch.randn(37, 16, generator=gen), torch.randn(1000, 16, generator=gen) * 3
    bias, targets = torch.randn(1000, generator=gen), torch.randint(0, 1000, (37,), generator=gen)
    logp, hit, mu, sigma = next_token_statistics(hidden, weight, bias, targets, max_elements=max_elements)
    ref_logp, ref_hit, ref_mu, ref_sigma = _naive(hidden @ weight.T + bias, targets)
    assert np.abs(logp.numpy() - ref_logp).max() < 1e-5
    assert np.abs(mu.numpy() - ref_mu).max() < 1e-5
    assert np.abs(sigma.numpy() - ref_sigma).max() < 1e-5
    assert hit.tolist() == ref_hit.tolist()


def test_chunked_statistics_accept_logits_directly():
    gen = torch.Generator().manual_seed(1)
    logits, targets = torch.randn(11, 300, generator=gen) * 5, torch.randint(0, 300, (11,), generator=gen)
    logp, _, mu, sigma = next_token_statistics(logits, None, None, targets, max_elements=11 * 7)
    ref_logp, _, ref_mu, ref_sigma = _naive(logits, targets)
    assert np.abs(logp.numpy() - ref_logp).max() < 1e-5
    assert np.abs(mu.numpy() - ref_mu).max() < 1e-5 and np.abs(sigma.numpy() - ref_sigma).max() < 1e-5


def _pairs(task, n=10):
    rows = task.splits["forget"]
    return [(rows[i]["question"], rows[i]["answer"]) for i in range(n)]


def _naive_model_stats(model, tok, fmt, q, a):
    prompt, answer = encode_prompt(tok, fmt, q), encode_answer(tok, fmt, a)
    ids = torch.tensor([prompt + answer])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : len(prompt) + len(answer) - 1]
    return _naive(logits, torch.tensor(answer))


@pytest.mark.parametrize("plain_head", [True, False])
def test_engine_moments_match_a_naive_forward(tiny_task, plain_head):
    loaded = tiny_task.load_target()
    engine = ScoringEngine(loaded.model, loaded.tokenizer, tiny_task.prompt_format, torch.device("cpu"),
                           quiet=True, max_head_elements=512)
    if not plain_head:
        engine._plain_head = False  # the path for heads that are not a plain linear map
    for (q, a), s in zip(_pairs(tiny_task), engine.score(_pairs(tiny_task))):
        logp, hits, mu, sigma = _naive_model_stats(loaded.model, loaded.tokenizer, tiny_task.prompt_format, q, a)
        assert np.abs(s.logprobs - logp).max() < 1e-5
        assert np.abs(s.mu - mu).max() < 1e-5 and np.abs(s.sigma - sigma).max() < 1e-5
        assert s.hits.tolist() == hits.tolist()
    assert engine._plain_head is plain_head


def test_engine_statistics_on_a_gpt2_model_with_conv1d_layers():
    from transformers import GPT2Config, GPT2LMHeadModel

    from unlearnbench.lm.modeling import PromptFormat
    from unlearnbench.lm.worlds.tofu_synth import build_word_tokenizer

    tok = build_word_tokenizer(["who wrote the book", "a tale of two towns", "nobody knows"])
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=64)).eval()
    fmt = PromptFormat()
    engine = ScoringEngine(model, tok, fmt, torch.device("cpu"), quiet=True)
    (s,) = engine.score([("who wrote the book", "a tale of two towns")])
    logp, _, mu, sigma = _naive_model_stats(model, tok, fmt, "who wrote the book", "a tale of two towns")
    assert engine._plain_head is True
    assert np.abs(s.logprobs - logp).max() < 1e-5 and np.abs(s.mu - mu).max() < 1e-5
    assert np.abs(s.sigma - sigma).max() < 1e-5


def _autograd_norm(model, tok, fmt, q, a, norm: str = "mean-tensor") -> float:
    """One backward pass of transformers' own loss over the answer's text tokens (the end
    token's label ignored); the mean over parameter tensors of each tensor's gradient norm, or
    one global norm."""
    prompt, answer = encode_prompt(tok, fmt, q), encode_answer(tok, fmt, a)
    ids = torch.tensor([prompt + answer])
    labels = ids.clone()
    labels[0, : len(prompt)] = -100
    labels[0, -1] = -100  # the end token is not text
    model.zero_grad()
    model(ids, labels=labels).loss.backward()
    norms = torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])
    model.zero_grad()
    return float(norms.mean() if norm == "mean-tensor" else norms.pow(2).sum().sqrt())


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("norm", ["mean-tensor", "global"])
def test_gradient_norms_match_one_backward_pass_per_example(tiny_task, batched, norm):
    loaded = tiny_task.load_target()
    engine = ScoringEngine(loaded.model, loaded.tokenizer, tiny_task.prompt_format, torch.device("cpu"), quiet=True,
                           gradnorm_norm=norm)
    engine.batched_gradients = batched
    pairs = _pairs(tiny_task, 12)
    norms = engine.gradnorms(pairs)
    expected = [_autograd_norm(loaded.model, loaded.tokenizer, tiny_task.prompt_format, q, a, norm) for q, a in pairs]
    np.testing.assert_allclose(norms, expected, rtol=1e-4)
    assert engine.batched_gradients is batched  # the batched path works on a Llama: no fallback needed
    assert all(p.grad is None for p in loaded.model.parameters())


def test_gradient_work_is_kept_out_of_the_forward_token_ratio(tiny_task):
    loaded = tiny_task.load_target()
    engine = ScoringEngine(loaded.model, loaded.tokenizer, tiny_task.prompt_format, torch.device("cpu"), quiet=True)
    engine.score(_pairs(tiny_task))
    before = (engine.counter.forwarded, engine.counter.unique)
    engine.gradnorms(_pairs(tiny_task))
    assert engine.counter.by_kind["gradnorm"][0] > 0
    assert (engine.counter.forwarded, engine.counter.unique) == before


def test_every_attack_auc_in_the_record_matches_scikit_learn(run_tiny):
    result = run_tiny("original")
    per_example = json.loads((result.run_dir / PER_EXAMPLE_FILE).read_text())
    ours, oracle = per_example["unlearned"]["privacy"], per_example["oracle"]["privacy"]
    for attack in ATTACKS:
        if attack == "reference":
            member = -(np.array(ours["forget"]["nll"]) - np.array(oracle["forget"]["nll"]))
            nonmember = -(np.array(ours["holdout"]["nll"]) - np.array(oracle["holdout"]["nll"]))
        else:
            member, nonmember = np.array(ours["forget"][attack]), np.array(ours["holdout"][attack])
        labels = [1] * len(member) + [0] * len(nonmember)
        expected = roc_auc_score(labels, np.concatenate([member, nonmember]))
        assert result.record.metrics[f"mia_{attack}_auc"] == pytest.approx(expected, abs=1e-12)
        lo, hi = result.record.ci[f"mia_{attack}_auc"]
        assert lo <= hi
    assert result.record.reference["oracle"]["mia_reference_auc"] == pytest.approx(0.5)
