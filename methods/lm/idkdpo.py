"""``idkdpo``: DPO towards a refusal (Rafailov et al., 2023, as used by TOFU; Maini et al., 2024).

Preferred answer: an "I don't know"-style refusal (``idk_answers.txt``, shipped with the
method); rejected: the forget answer.
Loss ``-(2/beta) * mean log sigma(beta * [(lp_theta - lp_ref)(y_idk) - (lp_theta - lp_ref)(y_f)])``
plus ``alpha * CE(retain)``.
"""

import random
from dataclasses import dataclass
from importlib import resources

import torch.nn.functional as F

from unlearnbench.lm.modeling import QABatches, answer_nll, encode_qa, sequence_logprobs
from unlearnbench.method import LLMParams, LossMethod
from unlearnbench.registry import register_method


def idk_answers() -> list[str]:
    text = resources.files("unlearnbench.methods.lm").joinpath("idk_answers.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


class PairedBatches:
    """Forget batches and refusal batches for the same questions, in the same order
    (two QABatches with one seed and one length shuffle identically)."""

    def __init__(self, forget: QABatches, idk: QABatches):
        self.forget, self.idk = forget, idk

    def __len__(self) -> int:
        return len(self.forget)

    def forever(self):
        for f, i in zip(self.forget.forever(), self.idk.forever()):
            yield {"forget": f, "idk": i}


@register_method("idkdpo", summary="DPO preferring a refusal over the forget answer (+ retain NLL)")
class IdkDPO(LossMethod):
    name = "idkdpo"
    needs = ("forget", "retain", "reference")

    @dataclass(frozen=True)
    class Params(LLMParams):
        beta: float = 0.1
        alpha: float = 1.0  # weight of the retain NLL

    def forget_batches(self, data, params, seed):
        refusals = idk_answers()
        rng = random.Random(seed)
        tok, fmt, pad = data.tokenizer, data.prompt_format, data.tokenizer.pad_token_id
        forget = [encode_qa(tok, fmt, r["question"], r["answer"]) for r in data.forget]
        idk = [encode_qa(tok, fmt, r["question"], rng.choice(refusals)) for r in data.forget]
        return PairedBatches(QABatches(forget, params.batch_size, pad, seed), QABatches(idk, params.batch_size, pad, seed))

    def reference_examples(self, forget):
        return list(forget.forget.encoded) + list(forget.idk.encoded)

    def loss(self, model, forget, retain, reference, params):
        lp_f, _ = sequence_logprobs(model, forget["forget"])
        lp_i, _ = sequence_logprobs(model, forget["idk"])
        ref_f, ref_i = reference.of(forget["forget"]), reference.of(forget["idk"])  # computed once, before training
        margin = (lp_i - ref_i) - (lp_f - ref_f)
        loss = -(2.0 / params.beta) * F.logsigmoid(params.beta * margin).mean()
        if params.alpha:
            loss = loss + params.alpha * answer_nll(model, retain)
        return loss
