"""Answers a method trains towards instead of the forget answers: refusal templates (IdkDPO,
FLAT) and random answers drawn from the task's own answers (random-label forgetting).

What several language-model methods share lives here, in the family's package, so that no
method module imports another.
"""

from __future__ import annotations

import random
import re
from importlib import resources

from unlearnbench.lm.modeling import QABatches, encode_qa


def idk_answers() -> list[str]:
    """The "I don't know"-style refusals shipped with the package (``idk_answers.txt``)."""
    text = resources.files("unlearnbench.lm").joinpath("idk_answers.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


class PairedBatches:
    """Forget batches and template-answer batches for the same questions, in the same order
    (two QABatches with one seed and one length shuffle identically)."""

    def __init__(self, forget: QABatches, template: QABatches):
        self.forget, self.template, self.pad_id = forget, template, forget.pad_id

    def __len__(self) -> int:
        return len(self.forget)

    def forever(self):
        for f, t in zip(self.forget.forever(), self.template.forever()):
            yield {"forget": f, "template": t}


def refusal_pairs(data, batch_size: int, seed: int) -> PairedBatches:
    """Each forget question with its own answer and with a refusal drawn once (seeded) from
    :func:`idk_answers`."""
    refusals = idk_answers()
    rng = random.Random(seed)
    tok, fmt, pad = data.tokenizer, data.prompt_format, data.tokenizer.pad_token_id
    forget = [encode_qa(tok, fmt, r["question"], r["answer"]) for r in data.forget]
    template = [encode_qa(tok, fmt, r["question"], rng.choice(refusals)) for r in data.forget]
    return PairedBatches(QABatches(forget, batch_size, pad, seed), QABatches(template, batch_size, pad, seed))


_WORD = re.compile(r"\w+|[^\w\s]")


def _words(text: str) -> list[re.Match]:
    return list(_WORD.finditer(text))


def _entity_swap(question: str, mine: list[re.Match], other: str, theirs: list[re.Match]) -> tuple[str, str] | None:
    """Where two questions differ in one contiguous run of words and agree on at least as
    many words as they differ in (``Where was Ada Limo born?`` / ``Where was Bo Trin born?``),
    the two differing runs as they are written (``Ada Limo``, ``Bo Trin``); else None."""
    a, b = [m.group() for m in mine], [m.group() for m in theirs]
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(a), len(b)) - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    n_mine, n_theirs = len(a) - prefix - suffix, len(b) - prefix - suffix
    if not n_mine or not n_theirs or prefix + suffix < max(n_mine, n_theirs):
        return None
    return (question[mine[prefix].start() : mine[prefix + n_mine - 1].end()],
            other[theirs[prefix].start() : theirs[prefix + n_theirs - 1].end()])


def random_answers(forget, retain, seed: int, prompt_fraction: float = 0.5) -> list[dict]:
    """Each forget row with a random answer from the task's answer space (drawn once, seeded),
    and where it came from (``source``: ``same question``, ``any retain answer`` or ``text``).

    A question's answer space is the answers the retain set gives to the same question asked
    about another entity (the two questions differ in one run of words, the entity's name),
    with that entity's name replaced by the forget row's: ``Where was Ada Limo born?`` gets
    ``Ada Limo was born in Lima.`` from ``Bo Trin was born in Lima.`` Answers equal to the
    true one are left out. A question that no retain question matches draws from every
    retain answer. A row without a question (a text corpus: MUSE) is cut at
    ``prompt_fraction`` of its words: its beginning becomes the input, and the answer the
    end of a random retain text (from the same fraction on)."""
    rng = random.Random(seed)
    retain = list(retain)
    split = [_words(r["question"]) for r in retain]
    out = []
    for row in forget:
        if not row["question"].strip():
            words = row["answer"].split()
            cut = max(1, int(len(words) * prompt_fraction))
            other = rng.choice(retain)["answer"].split()
            tail = other[int(len(other) * prompt_fraction):] or other
            out.append({"question": " ".join(words[:cut]), "answer": " " + " ".join(tail), "source": "text"})
            continue
        mine = _words(row["question"])
        pool = []
        for other, words in zip(retain, split):
            swap = _entity_swap(row["question"], mine, other["question"], words)
            if swap is None:
                continue
            answer, found = re.subn(rf"(?<!\w){re.escape(swap[1])}(?!\w)", lambda _: swap[0], other["answer"])
            if found and answer != row["answer"]:
                pool.append(answer)
        source = "same question"
        if not pool:
            pool, source = [r["answer"] for r in retain if r["answer"] != row["answer"]], "any retain answer"
        out.append({"question": row["question"], "answer": rng.choice(pool), "source": source})
    return out
