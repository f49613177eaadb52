"""``rl`` (language models): random-label forgetting (Zhang et al., 2024, "Unforgettable
Generalization in Language Models").

Fine-tune on the forget questions with random answers drawn from the task's answer space:
each forget question gets, once (seeded by the run seed), the answer a retain row gives to
the same question about another entity, addressed to this one (``Where was Ada Limo born?``
-> ``Ada Limo was born in Lima.``; :func:`unlearnbench.lm.alternatives.random_answers`:
questions no retain question matches draw from every retain answer; text rows without a
question, MUSE's corpus, keep their beginning as the input and get the end of a random retain
text). Loss ``CE(forget questions, random answers) + alpha * CE(retain)``; the paper trains
on the forget set alone (alpha 0). The record's ``method.info`` counts where the answers came
from. With ``--lens +parametric`` the linear probes ask the paper's question: has the
attribute gone from the hidden states, or only from what the model says (shallow
forgetting)? The classifier ``rl`` is ``methods/vision/rl.py``.
"""

from collections import Counter
from dataclasses import dataclass

from unlearnbench.lm.alternatives import random_answers
from unlearnbench.lm.modeling import QABatches, answer_nll, encode_rows
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


@register_method("rl", summary="random-label forgetting: forget questions fine-tuned on random answers from the task's answer space")
class RandomLabelLM(LossMethod):
    name = "rl"
    needs = ("forget", "retain")
    kinds = ("language_model",)

    @dataclass(frozen=True)
    class Params(LLMParams):
        alpha: float = 0.0  # weight of the retain NLL (the paper: none)
        prompt_fraction: float = 0.5  # text rows: the share of words kept as the input

    def forget_batches(self, data, params, seed):
        rows = random_answers(data.forget, data.retain, seed, params.prompt_fraction)
        batches = QABatches(encode_rows(data.tokenizer, data.prompt_format, rows), params.batch_size,
                            data.tokenizer.pad_token_id, seed=seed)
        batches.sources = Counter(r["source"] for r in rows)
        return batches

    def prepare(self, model, params, ctx, forget=None):
        if getattr(forget, "sources", None):  # the batches forget_batches made
            ctx.info["random_answers"] = dict(sorted(forget.sources.items()))
        return None

    def loss(self, model, forget, retain, reference, params):
        loss = answer_nll(model, forget)
        if params.alpha:
            loss = loss + params.alpha * answer_nll(model, retain)
        return loss
