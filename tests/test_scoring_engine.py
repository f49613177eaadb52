"""The scoring engine against naive references: one padded forward per sequence and
transformers' own greedy generate()."""

import numpy as np
import torch

from unlearnbench.lm.modeling import encode_answer, encode_prompt
from unlearnbench.lm.scoring import ScoringEngine


def _engine(task):
    loaded = task.load_target()
    return loaded, ScoringEngine(loaded.model, loaded.tokenizer, task.prompt_format, torch.device("cpu"), quiet=True)


def _pairs(task, n=12):
    rows = task.splits["forget_eval"]
    return [(rows[i]["question"], rows[i][field]) for i in range(n) for field in ("answer", "paraphrased_answer")]


def test_teacher_forced_logprobs_match_a_naive_forward(tiny_task):
    loaded, engine = _engine(tiny_task)
    pairs = _pairs(tiny_task)
    scores = engine.score(pairs)
    tok, fmt = loaded.tokenizer, tiny_task.prompt_format
    for (q, a), s in zip(pairs, scores):
        prompt, answer = encode_prompt(tok, fmt, q), encode_answer(tok, fmt, a)
        ids = torch.tensor([prompt + answer])
        with torch.no_grad():
            logp = torch.log_softmax(loaded.model(ids).logits[0], -1)
        expected = [logp[len(prompt) - 1 + t, tok_id].item() for t, tok_id in enumerate(answer)]
        np.testing.assert_allclose(s.logprobs, expected, atol=1e-5)
        expected_hits = [int(logp[len(prompt) - 1 + t].argmax()) == tok_id for t, tok_id in enumerate(answer)]
        assert s.hits.tolist() == expected_hits


def test_mean_nll_matches_transformers_loss(tiny_task):
    loaded, engine = _engine(tiny_task)
    (q, a), = _pairs(tiny_task, 1)[:1]
    tok, fmt = loaded.tokenizer, tiny_task.prompt_format
    prompt, answer = encode_prompt(tok, fmt, q), encode_answer(tok, fmt, a)
    ids = torch.tensor([prompt + answer])
    labels = ids.clone()
    labels[0, : len(prompt)] = -100
    with torch.no_grad():
        loss = loaded.model(ids, labels=labels).loss.item()
    assert abs(engine.score([(q, a)])[0].nll - loss) < 1e-5


def test_greedy_generation_matches_transformers_generate(tiny_task):
    loaded, engine = _engine(tiny_task)
    questions = list(tiny_task.splits["forget_eval"]["question"][:8]) + list(tiny_task.splits["retain_eval"]["question"][:8])
    ours = engine.generate(questions, max_new_tokens=30)
    tok = loaded.tokenizer
    for q, text in zip(questions, ours):
        ids = torch.tensor([encode_prompt(tok, tiny_task.prompt_format, q)])
        out = loaded.model.generate(ids, max_new_tokens=30, do_sample=False, eos_token_id=tok.eos_token_id,
                                    pad_token_id=tok.pad_token_id)
        expected = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
        assert text == expected


def test_no_repeated_work_and_padding_within_its_bound(tiny_task):
    loaded, engine = _engine(tiny_task)
    pairs = _pairs(tiny_task)
    engine.score(pairs + pairs[:5])  # duplicates are served from the cache
    engine.score(pairs)
    engine.generate([q for q, _ in pairs], max_new_tokens=20)
    forwarded, unique = engine.counter.by_kind["teacher_forced"]
    assert unique > 0 and unique <= forwarded <= unique / (1 - engine.max_padding)
    exact = ScoringEngine(loaded.model, loaded.tokenizer, tiny_task.prompt_format, torch.device("cpu"), quiet=True,
                          max_padding=0.0)  # equal lengths only: not one padding token
    exact.score(pairs + pairs[:5])
    exact.generate([q for q, _ in pairs], max_new_tokens=20)
    assert exact.counter.forwarded == exact.counter.unique


def test_bucketed_padded_batches_score_and_generate_what_equal_length_batches_do(tiny_task):
    """Length buckets with padding (masked) against equal-length batches (no padding): the
    same per-token log-probabilities within 1e-5, the same argmax hits and gradient norms, the
    same greedy tokens, in fewer forward calls."""
    loaded = tiny_task.load_target()
    rows = tiny_task.splits["forget_eval"]
    pairs = [(rows[i]["question"], rows[i]["answer"]) for i in range(len(rows))]
    questions = [q for q, _ in pairs]

    def engine(max_padding):
        return ScoringEngine(loaded.model, loaded.tokenizer, tiny_task.prompt_format, torch.device("cpu"), quiet=True,
                             max_padding=max_padding)

    bucketed, exact = engine(0.5), engine(0.0)
    for b, e in zip(bucketed.score(pairs), exact.score(pairs)):
        np.testing.assert_allclose(b.logprobs, e.logprobs, atol=1e-5)
        np.testing.assert_allclose(b.mu, e.mu, atol=1e-5)
        assert b.hits.tolist() == e.hits.tolist() and b.n_end == e.n_end == 1
    assert bucketed.generate(questions, max_new_tokens=24) == exact.generate(questions, max_new_tokens=24)
    np.testing.assert_allclose(bucketed.gradnorms(pairs[:24]), exact.gradnorms(pairs[:24]), rtol=1e-4)
    assert bucketed.counter.by_kind["teacher_forced"][0] > bucketed.counter.by_kind["teacher_forced"][1]  # it padded
    for kind in ("teacher_forced", "generation"):
        assert bucketed.counter.calls[kind] < exact.counter.calls[kind]
