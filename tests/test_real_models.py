"""Real-model behaviour on random-initialised models with real-sized configs: a Llama-3-style
tokenizer of 128,256 ids with its special tokens at Llama-3's ids and a chat template written
here; prompt presets, multi-EOS stopping, dtype in the cache keys, and the memory paths (the
answer-position, chunked head and its gradients; reference log-probabilities computed once;
gradient accumulation)."""

from __future__ import annotations

import math

import pytest
import torch

VOCAB = 128_256
BOS, EOT_TEXT, START, END, EOT = 128_000, 128_001, 128_006, 128_007, 128_009
SPECIAL = {BOS: "<|begin_of_text|>", EOT_TEXT: "<|end_of_text|>", START: "<|start_header_id|>",
           END: "<|end_header_id|>", EOT: "<|eot_id|>"}
WORDS = ("<unk> system user assistant You are a helpful assistant . Who wrote the book ? It was "
         "written by Ada Lovelace in London Question : Answer").split()
# Llama-3's template, reduced to what TOFU prompts use (no dates, no tools)
LLAMA3_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
                   "{{ m['content'] }}<|eot_id|>{% endfor %}"
                   "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
QUESTION = "Who wrote the book ?"
ANSWER = "It was written by Ada Lovelace ."


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(dict.fromkeys(WORDS))}
    for i in range(len(vocab), VOCAB):
        vocab.setdefault(SPECIAL.get(i, f"<|reserved_{i}|>"), i)
    assert len(vocab) == VOCAB and vocab["<|eot_id|>"] == EOT
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL.values()])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SPECIAL[BOS], eos_token=SPECIAL[EOT_TEXT],
                                   pad_token=SPECIAL[EOT_TEXT], unk_token="<unk>")
    fast.chat_template = LLAMA3_TEMPLATE
    return fast


def _llama(seed: int = 0, **config):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                      tie_word_embeddings=False, bos_token_id=BOS, eos_token_id=[EOT_TEXT, EOT],
                      pad_token_id=EOT_TEXT, **config)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval()


# ---------------------------------------------------------------------------- prompt formats
def test_llama3_preset_builds_the_published_models_prompt(tokenizer):
    from unlearnbench.lm.prompts import PRESETS, encode_prompt, encode_qa

    fmt = PRESETS["llama3-chat"]
    expected = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
                "<|start_header_id|>user<|end_header_id|>\n\nWho wrote the book ?<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert fmt.prompt(QUESTION) == expected
    ids = encode_prompt(tokenizer, fmt, QUESTION)
    assert ids == tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert ids[0] == BOS and ids.count(BOS) == 1  # the text carries BOS; none is added in front of it
    assert ids[:2] == [BOS, START] and ids[-1] == END  # the assistant header opens the answer
    full, n_prompt = encode_qa(tokenizer, fmt, QUESTION, ANSWER)
    answer = full[n_prompt:]
    assert answer[-1] == EOT  # the answer ends the turn with <|eot_id|>, not with the tokenizer's EOS
    assert answer[:-1] == tokenizer(ANSWER, add_special_tokens=False)["input_ids"]


def test_chat_template_format_follows_the_tokenizer_and_open_unlearning_answer_rule(tokenizer):
    from unlearnbench.lm.prompts import CHAT_TEMPLATE, encode_qa, resolve

    fmt = resolve(CHAT_TEMPLATE, task_format=None, tokenizer=tokenizer, system_prompt="You are a helpful assistant.")
    full, n_prompt = encode_qa(tokenizer, fmt, QUESTION, ANSWER)
    # the template's BOS once, the system turn, the user turn, the generation prompt
    assert full[0] == BOS and full.count(BOS) == 1
    assert full[n_prompt - 3 : n_prompt] == [START, tokenizer.convert_tokens_to_ids("assistant"), END]
    # the answer is what the whole conversation adds: content, the template's <|eot_id|>, then EOS
    content = tokenizer(ANSWER, add_special_tokens=False)["input_ids"]
    assert full[n_prompt:] == content + [EOT, EOT_TEXT]


def test_auto_picks_the_published_family_preset_then_the_template_then_plain(tokenizer):
    from unlearnbench.lm.prompts import PLAIN, PromptFormat, resolve

    published = resolve("auto", task_format=None, tokenizer=tokenizer,
                        model_names=("hub:open-unlearning/tofu_Llama-3.2-1B-Instruct_full",))
    assert published.name == "llama3-chat"
    assert resolve("auto", task_format=None, tokenizer=tokenizer, model_names=("/models/mine",)).chat_template
    own = PromptFormat(template="Q {question} A")
    assert resolve("auto", task_format=own, tokenizer=tokenizer, model_names=("x-Llama-3-Instruct",)) is own
    import copy

    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    assert resolve("auto", task_format=None, tokenizer=bare, model_names=("gpt-ish",)).name == PLAIN


def test_a_preset_of_another_family_is_refused_naming_what_to_do(tokenizer):
    import copy

    from unlearnbench.errors import UserError
    from unlearnbench.lm.prompts import resolve

    with pytest.raises(UserError, match="does not have"):
        resolve("qwen2.5-chat", task_format=None, tokenizer=tokenizer)
    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    with pytest.raises(UserError, match="has none"):
        resolve("chat-template", task_format=None, tokenizer=bare)


# ------------------------------------------------------------------------ end of an answer
def _always(model, token: int):
    """Make the model's argmax ``token`` at every position (a biased zero head)."""
    head = torch.nn.Linear(model.config.hidden_size, VOCAB, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[token] = 10.0
    model.lm_head = head
    return model


def test_generation_stops_at_the_end_of_turn_id_that_is_not_eos(tokenizer):
    from unlearnbench.lm.prompts import PRESETS, stop_ids
    from unlearnbench.lm.scoring import ScoringEngine

    fmt = PRESETS["llama3-chat"]
    assert tokenizer.eos_token_id == EOT_TEXT != EOT
    model = _always(_llama(), EOT)
    assert stop_ids(tokenizer, fmt, model.generation_config) == {EOT_TEXT, EOT}
    engine = ScoringEngine(model, tokenizer, fmt, torch.device("cpu"), quiet=True)
    assert engine.generate([QUESTION], max_new_tokens=20) == [""]
    # only the prompt went through the model: it stopped at the first token (<|eot_id|>)
    prompt_len = len(tokenizer(fmt.prompt(QUESTION), add_special_tokens=False)["input_ids"])
    assert engine.counter.by_kind["generation"][0] == prompt_len

    # the same model, told that only EOS ends an answer, runs to the token budget
    engine = ScoringEngine(model, tokenizer, fmt, torch.device("cpu"), quiet=True)
    engine.stop = frozenset({EOT_TEXT})
    engine.generate([QUESTION], max_new_tokens=20)
    forwarded, _ = engine.counter.by_kind["generation"]
    assert forwarded == prompt_len + 19


# --------------------------------------------------------------------------- memory paths
def test_answer_position_chunked_head_equals_the_full_log_softmax_and_its_gradient(tokenizer):
    """A 128k vocabulary, chunks of 2 positions: the value and every gradient equal a full
    B x T x V log-softmax computed independently."""
    from unlearnbench.lm.modeling import collate, encode_qa, sequence_logprobs
    from unlearnbench.lm.prompts import PRESETS

    fmt = PRESETS["llama3-chat"]
    model = _llama(1).train()
    batch = collate([encode_qa(tokenizer, fmt, QUESTION, ANSWER), encode_qa(tokenizer, fmt, "Who wrote it ?", "Ada .")],
                    tokenizer.pad_token_id)

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    full = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    expected = (full * mask).sum(-1)
    expected.sum().backward()
    want = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    total, count = sequence_logprobs(model, batch, max_elements=2 * VOCAB)
    assert count.tolist() == mask.sum(-1).tolist()
    torch.testing.assert_close(total, expected, rtol=1e-5, atol=1e-5)
    total.sum().backward()
    for name, param in model.named_parameters():
        # float32 sums in another order: the embedding's rows gather every position's gradient,
        # so the tolerance follows the gradient's scale (measured: 7e-5 on rows of up to 5)
        scale = want[name].abs().max().item()
        torch.testing.assert_close(param.grad, want[name], rtol=1e-4, atol=max(1e-6, 3e-5 * scale), msg=name)


def test_npo_loss_with_references_computed_once_by_hand(tokenizer):
    """NPO's loss on a toy batch, by hand, from log-probabilities the model gave before
    training (ReferenceLogprobs) and a full log-softmax of the current model."""
    from unlearnbench.lm.modeling import collate, encode_qa
    from unlearnbench.lm.prompts import PRESETS
    from unlearnbench.method import ReferenceLogprobs
    from unlearnbench.registry import method

    fmt = PRESETS["llama3-chat"]
    encoded = [encode_qa(tokenizer, fmt, QUESTION, ANSWER), encode_qa(tokenizer, fmt, "Who wrote it ?", "Ada .")]
    model = _llama(2)
    reference = ReferenceLogprobs(model, encoded, torch.device("cpu"), batch_size=1, pad_id=tokenizer.pad_token_id)
    with torch.no_grad():  # the model moves away from the reference
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    batch = collate(encoded, tokenizer.pad_token_id)

    @torch.no_grad()
    def seq_logp(m, ids, n_prompt):
        logits = m(input_ids=torch.tensor([ids])).logits[0, :-1].float()
        return float(torch.log_softmax(logits, -1)[torch.arange(n_prompt - 1, len(ids) - 1), torch.tensor(ids[n_prompt:])].sum())

    before = _llama(2)
    beta = 0.1
    terms = []
    for ids, n_prompt in encoded:
        margin = seq_logp(model, ids, n_prompt) - seq_logp(before, ids, n_prompt)
        terms.append(-(2 / beta) * math.log(1 / (1 + math.exp(beta * margin))))
    npo = method("npo", "language_model").obj()
    params = npo.Params(beta=beta, alpha=0.0)
    with torch.no_grad():
        got = float(npo.loss(model, batch, None, reference, params))
    assert got == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_gradient_accumulation_takes_the_step_of_the_whole_batch():
    from unlearnbench.lm.modeling import TrainConfig, train_loop

    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randn(8)

    def fitted(items, accumulate):
        model = torch.nn.Linear(3, 1)
        torch.nn.init.zeros_(model.weight)
        torch.nn.init.zeros_(model.bias)
        loss = lambda m, item: ((m(item[0]).squeeze(-1) - item[1]) ** 2).mean()  # noqa: E731
        train_loop(model, iter(items), 1, loss, TrainConfig(lr=0.1, schedule="constant", warmup_fraction=0.0,
                                                            grad_clip=0.0), description="t", quiet=True,
                   accumulate=accumulate)
        return torch.cat([model.weight.flatten(), model.bias])

    whole = fitted([(x, y)], 1)
    halves = fitted([(x[:4], y[:4]), (x[4:], y[4:])], 2)
    torch.testing.assert_close(halves, whole)


def test_dtype_and_format_join_the_reference_cache_key(tokenizer):
    from dataclasses import replace

    from unlearnbench.family import get_family
    from unlearnbench.lm.modeling import resolve_dtype
    from unlearnbench.lm.prompts import PRESETS
    from unlearnbench.task import LanguageModelTask, TaskSpec

    family = get_family("language_model")
    task = LanguageModelTask(spec=TaskSpec("t", "t", "1"), splits={}, prompt_format=PRESETS["llama3-chat"], suite="tofu",
                             load_target=None, load_oracle=None)
    cpu = torch.device("cpu")
    keys = [family.score_key(replace(task, dtype=d, prompt_format=f), cpu, {})
            for d in ("fp32", "bf16") for f in (PRESETS["llama3-chat"], PRESETS["plain"])]
    assert len({repr(k) for k in keys}) == 4
    assert resolve_dtype("auto", cpu) == torch.float32 and resolve_dtype("bf16", cpu) == torch.bfloat16


def test_a_bf16_model_scores_with_float32_statistics(tokenizer):
    from unlearnbench.lm.prompts import PRESETS
    from unlearnbench.lm.scoring import ScoringEngine

    model = _llama(3).to(torch.bfloat16)
    fp32 = _llama(3)
    scores = ScoringEngine(model, tokenizer, PRESETS["llama3-chat"], torch.device("cpu"), quiet=True).score([(QUESTION, ANSWER)])[0]
    exact = ScoringEngine(fp32, tokenizer, PRESETS["llama3-chat"], torch.device("cpu"), quiet=True).score([(QUESTION, ANSWER)])[0]
    assert scores.logprobs.dtype.name == "float64"
    # bf16 weights: the same statistics to bf16 precision (a 128k-way softmax near uniform)
    assert scores.nll == pytest.approx(exact.nll, rel=2e-2)
    assert scores.nll == pytest.approx(math.log(VOCAB), rel=0.05)


# ------------------------------------------------- conventions: the answer's own tokens
def test_the_end_token_is_left_out_of_em_es_and_min_k_but_not_the_nll(tokenizer):
    """A model that always predicts "Ada", scored on the answer "Ada Ada": its two text tokens
    are hits, the end token <|eot_id|> is a miss. By hand: EM = 2/2 = 1 and ES = 1 (the whole
    answer reproduced) on the text; they would be 2/3 and 0 with the end token counted. Min-K%
    reads the two text log-probabilities; the NLL averages all three."""
    from unlearnbench.lm.prompts import PRESETS
    from unlearnbench.lm.scoring import ScoringEngine
    from unlearnbench.metrics.behavior import exact_memorization, extraction_strength
    from unlearnbench.metrics.privacy import min_k_score

    ada = tokenizer.convert_tokens_to_ids("Ada")
    model = _always(_llama(), ada)
    s = ScoringEngine(model, tokenizer, PRESETS["llama3-chat"], torch.device("cpu"), quiet=True).score([(QUESTION, "Ada Ada")])[0]
    assert s.n_end == 1 and s.hits.tolist() == [True, True, False] and s.text_hits.tolist() == [True, True]
    assert exact_memorization([s.text_hits])[0] == 1.0 and extraction_strength([s.text_hits])[0] == 1.0
    assert exact_memorization([s.hits])[0] == pytest.approx(2 / 3) and extraction_strength([s.hits])[0] == 0.0
    logp_ada, logp_eot = s.logprobs[0], s.logprobs[2]
    assert logp_ada > logp_eot and s.logprobs[1] == pytest.approx(logp_ada)
    assert min_k_score([s.text_logprobs], k=0.5)[0] == pytest.approx(logp_ada)
    assert s.nll == pytest.approx(-(2 * logp_ada + logp_eot) / 3)


class _TwoTensorLM(torch.nn.Module):
    """logits = W E[x]: two parameter tensors (an embedding and a head), nothing else."""

    def __init__(self):
        super().__init__()
        from types import SimpleNamespace

        torch.manual_seed(4)
        self.embed = torch.nn.Parameter(torch.randn(VOCAB, 4) * 0.5)
        self.head = torch.nn.Parameter(torch.randn(VOCAB, 4) * 0.1)
        self.config = SimpleNamespace(max_position_embeddings=64)

    def forward(self, input_ids, attention_mask=None, **_):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.embed[input_ids] @ self.head.T)


def test_gradnorm_is_the_mean_of_the_tensors_norms_and_global_is_a_named_variant(tokenizer):
    """By hand: the gradient of the mean NLL of the answer's text tokens (end token left out)
    w.r.t. each tensor; mean-tensor = (|g_E| + |g_W|) / 2, global = sqrt(|g_E|^2 + |g_W|^2)."""
    from unlearnbench.lm.prompts import PRESETS, encode_qa
    from unlearnbench.lm.scoring import ScoringEngine

    fmt = PRESETS["llama3-chat"]
    ids, n_prompt = encode_qa(tokenizer, fmt, QUESTION, ANSWER)
    model = _TwoTensorLM()
    x = torch.tensor(ids)
    logits = model.embed[x[:-1]] @ model.head.T
    text = torch.arange(n_prompt - 1, len(ids) - 2)  # positions predicting the text tokens (not <|eot_id|>)
    nll = -torch.log_softmax(logits, -1)[text, x[text + 1]].mean()
    g_e, g_w = torch.autograd.grad(nll, [model.embed, model.head])
    n_e, n_w = float(g_e.norm()), float(g_w.norm())
    assert abs(n_e - n_w) > 1e-3  # the two norms differ, so the two variants do
    for norm, expected in (("mean-tensor", (n_e + n_w) / 2), ("global", math.hypot(n_e, n_w))):
        engine = ScoringEngine(model, tokenizer, fmt, torch.device("cpu"), quiet=True, gradnorm_norm=norm)
        assert engine.gradnorms([(QUESTION, ANSWER)])[0] == pytest.approx(expected, rel=1e-4)


# ------------------------------------------------------------------------------------- RMU
def test_rmu_loss_by_hand_and_only_the_named_layers_change(tokenizer):
    """RMU's loss on a toy batch from hidden states taken independently (output_hidden_states):
    mean((h_f - c u)^2) + alpha mean((h_r - h_r before)^2) at answer tokens; one step of
    training changes the named tensors only."""
    from unlearnbench.lm.modeling import collate, encode_qa
    from unlearnbench.lm.prompts import PRESETS
    from unlearnbench.method import RunContext, UnlearnData
    from unlearnbench.registry import method

    fmt = PRESETS["llama3-chat"]
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(5)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False,
                                         bos_token_id=BOS, eos_token_id=EOT_TEXT, pad_token_id=EOT_TEXT)).eval()
    rmu = method("rmu", "language_model").obj()
    params = rmu.Params(layer=1, update_layers="0,1", steering_coeff=3.0, alpha=10.0, lr=1e-2, epochs=1, batch_size=2)
    forget = collate([encode_qa(tokenizer, fmt, QUESTION, ANSWER)], tokenizer.pad_token_id)
    retain = collate([encode_qa(tokenizer, fmt, "Who wrote it ?", "Ada ."), encode_qa(tokenizer, fmt, QUESTION, "It was Ada .")],
                     tokenizer.pad_token_id)
    ctx = RunContext(seed=0, device=torch.device("cpu"), quiet=True)
    state = rmu.prepare(model, params, ctx)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():  # a different model than before: move the updated tensors
        for n, p in model.named_parameters():
            if "layers.1.mlp.down_proj" in n:
                p.add_(0.05)

    def answer_states(m, batch):
        h = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True).hidden_states[2]
        return h[batch["labels"] != -100]  # hidden_states[2]: the output of decoder layer 1

    u = torch.rand(32, generator=torch.Generator().manual_seed(0))
    control = 3.0 * u / u.norm()
    with torch.no_grad():
        frozen = LlamaForCausalLM(model.config)
        frozen.load_state_dict(before)
        expected = ((answer_states(model, forget) - control) ** 2).mean() + \
            10.0 * ((answer_states(model, retain) - answer_states(frozen.eval(), retain)) ** 2).mean()
        got = rmu.loss(model, forget, retain, state, params)
    assert float(got) == pytest.approx(float(expected), rel=1e-5)

    rows = [{"question": QUESTION, "answer": ANSWER}, {"question": "Who wrote it ?", "answer": "Ada ."}]
    data = UnlearnData(forget=rows, retain=rows, tokenizer=tokenizer, prompt_format=fmt)
    trained = rmu.unlearn(frozen, data, params, ctx)
    changed = {n for n, p in trained.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"}
    assert all(p.requires_grad for p in trained.parameters())
