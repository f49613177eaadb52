"""Every language-model method's loss, computed by hand on a toy batch and compared with the
method's ``loss``, value and gradients.

The toy: a tiny random Llama (40 tokens, 2 layers) and hand-made token ids, three forget rows
and two retain rows of different lengths (so padding and prompts are in the batch). The hand
computations run the model on each row alone, unpadded, take a full ``log_softmax`` there and
write each paper's formula in plain torch; the methods go through the answer-position, chunked
head (``unlearnbench.lm.modeling``) on the padded batch. Reference models are a deep copy of
the model before it was moved (what a method computes once before training).
"""

from __future__ import annotations

import copy

import pytest
import torch

from unlearnbench.lm.modeling import QABatches, collate
from unlearnbench.method import ReferenceLogprobs, RunContext
from unlearnbench.registry import method as method_entry

VOCAB, PAD = 40, 0
# (token ids, number of prompt tokens): the answer is ids[n_prompt:]
FORGET = [([1, 5, 6, 7, 8, 9, 2], 3), ([1, 10, 11, 12, 13, 2], 2), ([1, 14, 15, 16, 17, 18, 19, 20, 2], 4)]
TEMPLATE = [([1, 5, 6, 30, 31, 2], 3), ([1, 10, 30, 32, 33, 2], 2), ([1, 14, 15, 16, 30, 34, 2], 4)]  # same prompts
RETAIN = [([1, 21, 22, 23, 24, 2], 3), ([1, 25, 26, 27, 28, 29, 2], 2)]


def tiny_llama(seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
                      tie_word_embeddings=False, pad_token_id=PAD, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).train()


def moved(model, seed: int = 1, scale: float = 0.05):
    """The model after some training: every weight nudged (so it differs from its reference)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return model


def batch(rows):
    return collate(rows, PAD)


def answer_logits(model, ids, n_prompt):
    """float32 logits that predict each answer token of one unpadded row [|y|, V], and the answer."""
    logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    return logits[n_prompt - 1 : len(ids) - 1], torch.tensor(ids[n_prompt:])


def token_logps(model, ids, n_prompt):
    logits, answer = answer_logits(model, ids, n_prompt)
    return torch.log_softmax(logits, -1)[torch.arange(len(answer)), answer]


def mean_nll(model, rows):
    """Cross-entropy averaged over every answer token of the rows."""
    return -torch.cat([token_logps(model, ids, n) for ids, n in rows]).mean()


def seq_logp(model, ids, n_prompt):
    return token_logps(model, ids, n_prompt).sum()


def assert_loss_and_gradients_match(model, got_fn, want_fn):
    """The method's loss equals the hand-computed one, and so does every gradient."""
    model.zero_grad()
    want = want_fn()
    want.backward()
    want_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    got = got_fn()
    got.backward()
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-5, abs=1e-6)
    got_grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert got_grads.keys() == want_grads.keys()
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    model.zero_grad()


def obj(name):
    return method_entry(name, "language_model").obj()


CTX = RunContext(seed=0, device=torch.device("cpu"), quiet=True)


# ------------------------------------------------------------------- gradient ascent family
def test_ga_is_minus_the_mean_answer_cross_entropy():
    model, ga = tiny_llama(), obj("ga")
    params = ga.Params()
    assert_loss_and_gradients_match(model, lambda: ga.loss(model, batch(FORGET), None, None, params),
                                    lambda: -mean_nll(model, FORGET))


def test_graddiff_ascends_on_forget_and_descends_on_retain():
    model, gd = tiny_llama(), obj("graddiff")
    params = gd.Params(gamma=0.7, alpha=1.3)
    assert_loss_and_gradients_match(model, lambda: gd.loss(model, batch(FORGET), batch(RETAIN), None, params),
                                    lambda: -0.7 * mean_nll(model, FORGET) + 1.3 * mean_nll(model, RETAIN))


def test_needle_ascends_on_the_forget_cross_entropy():
    model, needle = tiny_llama(), obj("needle")
    assert_loss_and_gradients_match(model, lambda: needle.loss(model, batch(FORGET)), lambda: -mean_nll(model, FORGET))


def reweighted_ascent(model, weight, gamma, alpha):
    """``gamma * -mean_t [w(p_t) * CE_t] + alpha * CE(retain)`` with ``p_t`` detached."""
    terms = []
    for ids, n in FORGET:
        logp = token_logps(model, ids, n)
        terms.append(weight(torch.exp(logp).detach()) * -logp)
    return gamma * -torch.cat(terms).mean() + alpha * mean_nll(model, RETAIN)


@pytest.mark.parametrize("name, params, weight", [
    ("wga", {"beta": 2.0, "gamma": 0.5, "alpha": 0.3}, lambda p: p ** 2.0),  # p_t^beta
    ("satimp", {"beta1": 3.0, "beta2": 2.0, "gamma": 1.5, "alpha": 0.2}, lambda p: p ** 3.0 * (1 - p) ** 2.0),
])
def test_wga_and_satimp_weight_each_token_by_a_function_of_its_detached_probability(name, params, weight):
    model, method = tiny_llama(), obj(name)
    typed = method.Params(**params)
    assert_loss_and_gradients_match(model, lambda: method.loss(model, batch(FORGET), batch(RETAIN), None, typed),
                                    lambda: reweighted_ascent(model, weight, params["gamma"], params["alpha"]))


def test_rl_is_the_cross_entropy_of_the_random_answers_plus_the_retain_term():
    model, rl = tiny_llama(), obj("rl")
    params = rl.Params(alpha=0.4)
    relabelled = [(ids[:n] + [30 + i, 31, 2], n) for i, (ids, n) in enumerate(FORGET)]
    assert_loss_and_gradients_match(model, lambda: rl.loss(model, batch(relabelled), batch(RETAIN), None, params),
                                    lambda: mean_nll(model, relabelled) + 0.4 * mean_nll(model, RETAIN))


# ----------------------------------------------------------------- preference optimisation
def _reference(model, rows):
    return ReferenceLogprobs(model, rows, torch.device("cpu"), batch_size=2, pad_id=PAD)


def test_npo_against_log_probabilities_before_training():
    model, npo = tiny_llama(), obj("npo")
    before = copy.deepcopy(model)
    reference = _reference(model, FORGET)
    moved(model)
    params = npo.Params(beta=0.5, alpha=0.8)

    def by_hand():
        terms = [torch.nn.functional.logsigmoid(-0.5 * (seq_logp(model, ids, n) - seq_logp(before, ids, n).detach()))
                 for ids, n in FORGET]
        return -(2 / 0.5) * torch.stack(terms).mean() + 0.8 * mean_nll(model, RETAIN)

    assert_loss_and_gradients_match(model, lambda: npo.loss(model, batch(FORGET), batch(RETAIN), reference, params), by_hand)


def test_simnpo_is_length_normalised_and_reference_free():
    model, simnpo = tiny_llama(), obj("simnpo")
    params = simnpo.Params(beta=2.0, delta=0.5, gamma=0.25, alpha=1.1)

    def by_hand():
        terms = []
        for ids, n in FORGET:
            mean_nll_row = -seq_logp(model, ids, n) / (len(ids) - n)
            terms.append(torch.nn.functional.logsigmoid(2.0 * (mean_nll_row - 0.5)))
        return 0.25 * -(2 / 2.0) * torch.stack(terms).mean() + 1.1 * mean_nll(model, RETAIN)

    assert_loss_and_gradients_match(model, lambda: simnpo.loss(model, batch(FORGET), batch(RETAIN), None, params), by_hand)


def test_idkdpo_prefers_the_template_answer_against_the_reference():
    model, dpo = tiny_llama(), obj("idkdpo")
    before = copy.deepcopy(model)
    reference = _reference(model, FORGET + TEMPLATE)
    moved(model)
    params = dpo.Params(beta=0.3, alpha=0.5)
    pairs = {"forget": batch(FORGET), "template": batch(TEMPLATE)}

    def by_hand():
        terms = []
        for (f, nf), (t, nt) in zip(FORGET, TEMPLATE):
            win = seq_logp(model, t, nt) - seq_logp(before, t, nt).detach()
            lose = seq_logp(model, f, nf) - seq_logp(before, f, nf).detach()
            terms.append(torch.nn.functional.logsigmoid(0.3 * (win - lose)))
        return -(2 / 0.3) * torch.stack(terms).mean() + 0.5 * mean_nll(model, RETAIN)

    assert_loss_and_gradients_match(model, lambda: dpo.loss(model, pairs, batch(RETAIN), reference, params), by_hand)


# ------------------------------------------------------------------------------- FLAT
# f-GAN's (g*, f*) pairs written from their definitions, not from the method's closed forms
CONJUGATES = {
    "kl": (lambda v: v, lambda t: torch.exp(t - 1)),
    "js": (lambda v: torch.log(2 / (1 + torch.exp(-v))), lambda t: -torch.log(2 - torch.exp(t))),
    "pearson": (lambda v: v, lambda t: t ** 2 / 4 + t),
    "tv": (lambda v: 0.5 * torch.tanh(v), lambda t: t),
}


@pytest.mark.parametrize("divergence", sorted(CONJUGATES))
def test_flat_is_the_variational_f_divergence_of_mean_token_probabilities(divergence):
    model, flat = tiny_llama(), obj("flat")
    params = flat.Params(divergence=divergence)
    g, f_star = CONJUGATES[divergence]
    pairs = {"forget": batch(FORGET), "template": batch(TEMPLATE)}

    def mean_probability(ids, n):
        return torch.exp(token_logps(model, ids, n)).mean()

    def by_hand():
        terms = [-g(mean_probability(t, nt)) + f_star(g(mean_probability(f, nf)))
                 for (f, nf), (t, nt) in zip(FORGET, TEMPLATE)]
        return torch.stack(terms).mean()

    assert_loss_and_gradients_match(model, lambda: flat.loss(model, pairs, None, None, params), by_hand)


def test_flat_lowers_the_forget_answer_and_raises_the_template_answer():
    """The gradient step of the KL variant moves the two probabilities the right way."""
    model, flat = tiny_llama(), obj("flat")
    pairs = {"forget": batch(FORGET), "template": batch(TEMPLATE)}

    def probabilities():
        with torch.no_grad():
            return (torch.stack([torch.exp(token_logps(model, i, n)).mean() for i, n in FORGET]).mean(),
                    torch.stack([torch.exp(token_logps(model, i, n)).mean() for i, n in TEMPLATE]).mean())

    forget_before, template_before = probabilities()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(5):
        optimiser.zero_grad()
        flat.loss(model, pairs, None, None, flat.Params()).backward()
        optimiser.step()
    forget_after, template_after = probabilities()
    assert forget_after < forget_before and template_after > template_before


# -------------------------------------------------------------------- distributional losses
def test_undial_distils_towards_the_original_logits_with_the_answer_lowered_by_beta():
    model, undial = tiny_llama(), obj("undial")
    params = undial.Params(beta=3.0, gamma=0.9, alpha=0.4, batch_size=2)
    before = copy.deepcopy(model)
    reference = undial.prepare(model, params, CTX, QABatches(FORGET, 2, PAD, seed=0))
    moved(model)

    def by_hand():
        terms = []
        for ids, n in FORGET:
            logits, answer = answer_logits(model, ids, n)
            with torch.no_grad():
                teacher, _ = answer_logits(before, ids, n)
            teacher = teacher - 3.0 * torch.nn.functional.one_hot(answer, VOCAB)
            terms.append(-(torch.softmax(teacher, -1) * torch.log_softmax(logits, -1)).sum(-1))
        return 0.9 * torch.cat(terms).mean() + 0.4 * mean_nll(model, RETAIN)

    assert_loss_and_gradients_match(model, lambda: undial.loss(model, batch(FORGET), batch(RETAIN), reference, params),
                                    by_hand)


def test_undial_at_beta_zero_is_at_its_minimum_gradient_on_the_unchanged_model():
    """Before any training the student is its own teacher: with beta 0 the distillation's
    gradient vanishes (the cross-entropy to itself is stationary)."""
    model, undial = tiny_llama(), obj("undial")
    params = undial.Params(beta=0.0, alpha=0.0, batch_size=3)
    reference = undial.prepare(model, params, CTX, QABatches(FORGET, 3, PAD, seed=0))
    undial.loss(model, batch(FORGET), None, reference, params).backward()
    assert max(float(p.grad.abs().max()) for p in model.parameters() if p.grad is not None) < 1e-6


def test_ceu_is_the_cross_entropy_to_the_model_without_the_answer_token():
    model, ceu = tiny_llama(), obj("ceu")
    params = ceu.Params(ignore_first=1)

    def by_hand():
        terms = []
        for ids, n in FORGET:
            logits, answer = answer_logits(model, ids, n)
            for t in range(1, len(answer)):  # the first answer token is left out
                target = logits[t].detach().clone()
                target[answer[t]] = float("-inf")
                q = torch.softmax(target, -1)
                terms.append(-(q * torch.log_softmax(logits[t], -1)).sum())
        return torch.stack(terms).mean()

    assert_loss_and_gradients_match(model, lambda: ceu.loss(model, batch(FORGET), None, None, params), by_hand)


def test_pdu_flattens_the_logit_margin_under_a_retain_constraint():
    model, pdu = tiny_llama(), obj("pdu")
    params = pdu.Params(gamma=0.6, alpha=2.0, retain_loss_eps=1.5, primal_dual=False)
    dual = pdu.prepare(model, params, RunContext(seed=0, device=torch.device("cpu")), QABatches(FORGET, 3, PAD, seed=0))

    def by_hand():
        margins = []
        for ids, n in FORGET:
            logits, _ = answer_logits(model, ids, n)
            margins.append((logits.max(-1).values - logits.mean(-1)) ** 2)
        return 0.6 * torch.cat(margins).mean() + 2.0 * (mean_nll(model, RETAIN) - 1.5)

    assert_loss_and_gradients_match(model, lambda: pdu.loss(model, batch(FORGET), batch(RETAIN), dual, params), by_hand)
    assert dual.value == 2.0  # no dual ascent without primal_dual


def test_pdu_dual_variable_ascends_on_the_constraint_violation_after_its_warmup():
    model, pdu = tiny_llama(), obj("pdu")
    params = pdu.Params(alpha=1.0, retain_loss_eps=0.5, dual_step_size=0.1, dual_warmup_epochs=1)
    ctx = RunContext(seed=0, device=torch.device("cpu"))
    forget = QABatches(FORGET, 2, PAD, seed=0)  # two batches an epoch: the first two losses are the warm-up
    dual = pdu.prepare(model, params, ctx, forget)
    with torch.no_grad():
        violation = float(mean_nll(model, RETAIN)) - 0.5
        for _ in range(2):
            pdu.loss(model, batch(FORGET), batch(RETAIN), dual, params)
        assert dual.value == 1.0
        pdu.loss(model, batch(FORGET), batch(RETAIN), dual, params)
    assert dual.value == pytest.approx(max(0.0, 1.0 + 0.1 * violation), rel=1e-5)
    assert ctx.info["dual_variable"] == dual.value


# ------------------------------------------------------------------------------ RMU
def test_rmu_steers_forget_activations_and_keeps_retain_activations():
    model, rmu = tiny_llama(), obj("rmu")
    params = rmu.Params(layer=0, update_layers="0", steering_coeff=4.0, alpha=7.0)
    before = copy.deepcopy(model)
    state = rmu.prepare(model, params, CTX)
    with torch.no_grad():  # training moved the updated tensors
        model.model.layers[0].mlp.down_proj.weight.add_(0.05)
    u = torch.rand(16, generator=torch.Generator().manual_seed(0))
    control = 4.0 * u / u.norm()

    def layer0(m, rows):
        states = []
        for ids, n in rows:
            h = m(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[1][0]
            states.append(h[n : len(ids)])  # the answer tokens' own positions
        return torch.cat(states)

    def by_hand():
        forget = ((layer0(model, FORGET) - control) ** 2).mean()
        with torch.no_grad():
            kept = layer0(before, RETAIN)
        return forget + 7.0 * ((layer0(model, RETAIN) - kept) ** 2).mean()

    assert_loss_and_gradients_match(model, lambda: rmu.loss(model, batch(FORGET), batch(RETAIN), state, params), by_hand)


# --------------------------------------------------------------- what the methods train on
def test_random_answers_come_from_the_same_question_about_another_entity():
    from unlearnbench.lm.alternatives import random_answers

    forget = [{"question": "Where was Ada Limo born?", "answer": "Ada Limo was born in Rome."},
              {"question": "Why?", "answer": "Because."}]
    retain = [{"question": "Where was Bo Trin born?", "answer": "Bo Trin was born in Lima."},
              {"question": "Where was Cy Ek born?", "answer": "The city of Oslo is where Cy Ek was born."},
              {"question": "Where was Di Au born?", "answer": "Di Au was born in Rome."},
              {"question": "What does Bo Trin write?", "answer": "Bo Trin writes poems."}]
    drawn = {random_answers(forget, retain, seed)[0]["answer"] for seed in range(40)}
    # Di Au's answer, readdressed, is the true one and is left out; the other question's answers never come
    assert drawn == {"Ada Limo was born in Lima.", "The city of Oslo is where Ada Limo was born."}
    other = random_answers(forget, retain, 0)[1]
    assert other["source"] == "any retain answer" and other["answer"] in {r["answer"] for r in retain}


def test_random_answers_for_text_rows_keep_the_beginning_and_continue_with_retain_text():
    from unlearnbench.lm.alternatives import random_answers

    forget = [{"question": "", "answer": "one two three four five six"}]
    retain = [{"question": "", "answer": "a b c d e f g h"}]
    row = random_answers(forget, retain, 0, prompt_fraction=0.5)[0]
    assert row == {"question": "one two three", "answer": " e f g h", "source": "text"}


def test_refusal_pairs_ask_the_same_question_in_the_same_order(tiny_task):
    from unlearnbench.lm.alternatives import idk_answers, refusal_pairs
    from unlearnbench.method import UnlearnData

    tok = tiny_task.load_target().tokenizer
    data = UnlearnData(tiny_task.splits["forget"], tiny_task.splits["retain"], tok, tiny_task.prompt_format)
    pairs = next(refusal_pairs(data, 4, seed=3).forever())

    def prompt_and_answer(b, row):
        ids, labels, mask = b["input_ids"][row], b["labels"][row], b["attention_mask"][row].bool()
        return ids[mask & (labels == -100)].tolist(), tok.decode(ids[labels != -100], skip_special_tokens=True).strip()

    questions = set()
    for row in range(pairs["forget"]["input_ids"].shape[0]):
        prompt_f, answer_f = prompt_and_answer(pairs["forget"], row)
        prompt_t, answer_t = prompt_and_answer(pairs["template"], row)
        assert prompt_f == prompt_t and answer_t in idk_answers() and answer_f not in idk_answers()
        questions.add(tuple(prompt_f))
    assert len(questions) == pairs["forget"]["input_ids"].shape[0]


def test_per_position_losses_in_chunks_equal_one_pass_in_value_and_gradient():
    """``AnswerStates.map`` over chunks of 2 positions (each checkpointed) with a per-position
    extra argument gives what a single pass gives, gradients included."""
    from unlearnbench.lm.modeling import answer_states

    model = tiny_llama()
    extra = torch.randn(sum(len(ids) - n for ids, n in FORGET), VOCAB)

    def fn(logits, targets, other):
        return (torch.log_softmax(logits, -1) * torch.softmax(other, -1)).sum(-1) + logits.gather(-1, targets[:, None])[:, 0]

    def total(max_elements):
        return answer_states(model, batch(FORGET)).map(fn, extra, max_elements=max_elements).sum()

    assert_loss_and_gradients_match(model, lambda: total(2 * VOCAB), lambda: total(10 ** 9))
