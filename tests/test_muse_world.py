"""Sanity tests for the synthetic MUSE-News-style world (unlearnbench.lm.worlds.muse_synth).

Fast: world generation and the tokenizer only, no model is trained here.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter

import pytest

from unlearnbench.lm.worlds.muse_synth import (
    ARTICLES_PER_EVENT,
    LAYOUT,
    QUIZ_ROUNDS,
    QUIZ_SIZE,
    MuseWorldConfig,
    background_quizzes,
    build_tokenizer,
    event_table,
    generate_world,
    qa_block,
    training_texts,
    world_strings,
)

CONFIG = MuseWorldConfig()
FACTS_PER_EVENT = 3


@pytest.fixture(scope="module")
def world():
    return generate_world(CONFIG)


@pytest.fixture(scope="module")
def events():
    return event_table(CONFIG)


@pytest.fixture(scope="module")
def tokenizer(world):
    return build_tokenizer(world)


def _digest(world) -> str:
    return hashlib.sha256(json.dumps(world, sort_keys=True).encode()).hexdigest()


def _texts(rows) -> list[str]:
    return [r["text"] for r in rows]


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None


def _role(events, role):
    return [e for e in events if e["role"] == role]


# --------------------------------------------------------------------------- layout


def test_layout_has_every_config_split_and_field(world):
    assert set(world) == set(LAYOUT)
    for config, splits in LAYOUT.items():
        assert set(world[config]) == set(splits), config
        for split, fields in splits.items():
            rows = world[config][split]
            assert rows, (config, split)
            for row in rows:
                assert set(row) == set(fields), (config, split, row)
                assert all(isinstance(row[f], str) and row[f].strip() for f in fields), (config, split, row)


def test_split_sizes_follow_the_config(world):
    raw = world["raw"]
    assert len(raw["forget"]) == CONFIG.n_forget
    assert len(raw["retain1"]) + len(raw["retain2"]) == CONFIG.n_retain
    assert len(raw["holdout"]) == CONFIG.n_holdout
    assert len(world["verbmem"]["forget"]) == CONFIG.n_forget
    n_forget_events = CONFIG.n_forget // ARTICLES_PER_EVENT
    assert len(world["knowmem"]["forget_qa"]) == n_forget_events * FACTS_PER_EVENT
    assert len(world["knowmem"]["retain_qa"]) == CONFIG.n_retain_qa_events * FACTS_PER_EVENT
    assert len(world["knowmem"]["forget_qa_icl"]) == len(world["knowmem"]["retain_qa_icl"]) == CONFIG.n_icl


def test_retain1_and_retain2_are_disjoint_halves(world):
    r1, r2 = _texts(world["raw"]["retain1"]), _texts(world["raw"]["retain2"])
    assert not set(r1) & set(r2)
    assert abs(len(r1) - len(r2)) <= ARTICLES_PER_EVENT


def test_splits_share_no_row_objects(world):
    rows = [r for splits in world.values() for split in splits.values() for r in split]
    assert len({id(r) for r in rows}) == len(rows)


def test_all_articles_are_distinct(world):
    raw = world["raw"]
    texts = [t for split in ("forget", "retain1", "retain2", "holdout") for t in _texts(raw[split])]
    assert len(set(texts)) == len(texts)


# --------------------------------------------------------------------------- determinism


def test_same_config_gives_identical_world():
    assert _digest(generate_world(MuseWorldConfig(seed=3))) == _digest(generate_world(MuseWorldConfig(seed=3)))


def test_world_is_identical_across_processes(world):
    # String seeds are hashed with SHA-512 inside random, so PYTHONHASHSEED must not matter.
    code = (
        "import hashlib, json;"
        "from unlearnbench.lm.worlds.muse_synth import MuseWorldConfig, generate_world;"
        "print(hashlib.sha256(json.dumps(generate_world(MuseWorldConfig()), sort_keys=True).encode()).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    ).stdout.strip()
    assert out == _digest(world)


def test_other_seed_gives_other_world_of_same_shape(world):
    other = generate_world(MuseWorldConfig(seed=1))
    assert _digest(other) != _digest(world)
    assert not set(_texts(other["raw"]["forget"])) & set(_texts(world["raw"]["forget"]))
    assert {c: {s: len(r) for s, r in v.items()} for c, v in other.items()} == {
        c: {s: len(r) for s, r in v.items()} for c, v in world.items()
    }


def test_invalid_sizes_are_rejected():
    with pytest.raises(ValueError):
        generate_world(MuseWorldConfig(n_forget=41))  # not a whole number of events
    with pytest.raises(ValueError):
        generate_world(MuseWorldConfig(n_forget=6))  # fewer than four events: no quarters
    with pytest.raises(ValueError):
        generate_world(MuseWorldConfig(n_retain=20))  # no room for retain_qa and the ICL sets
    with pytest.raises(ValueError):
        generate_world(MuseWorldConfig(n_retain_qa_events=41))  # retain_qa must fit in retain1


def test_smaller_world_keeps_the_layout():
    w = generate_world(MuseWorldConfig(n_forget=8, n_retain=40, n_holdout=8, n_retain_qa_events=8, n_icl=3))
    assert {c: set(s) for c, s in w.items()} == {c: set(s) for c, s in LAYOUT.items()}
    assert [len(w["sust"][f"forget_{k}"]) for k in range(1, 5)] == [2, 2, 2, 2]


# --------------------------------------------------------------------------- scal / sust / privleak


def test_scal_sets_are_nested_and_forget_4_is_raw_forget(world):
    scal = [_texts(world["scal"][f"forget_{k}"]) for k in range(1, 5)]
    for smaller, larger in zip(scal, scal[1:]):
        assert len(smaller) < len(larger)
        assert larger[: len(smaller)] == smaller
    assert scal[3] == _texts(world["raw"]["forget"])


def test_sust_quarters_are_disjoint_and_concatenate_to_raw_forget(world):
    quarters = [_texts(world["sust"][f"forget_{k}"]) for k in range(1, 5)]
    assert all(quarters)
    assert sum(quarters, []) == _texts(world["raw"]["forget"])
    for i in range(4):
        for j in range(i + 1, 4):
            assert not set(quarters[i]) & set(quarters[j])


def test_scal_and_sust_keep_both_articles_of_an_event_together(world, events):
    event_of = {t: e["index"] for e in events for t in e["texts"]}
    for config in ("scal", "sust"):
        for k in range(1, 5):
            ids = Counter(event_of[t] for t in _texts(world[config][f"forget_{k}"]))
            assert set(ids.values()) == {ARTICLES_PER_EVENT}, (config, k)


def test_privleak_members_are_forget_and_nonmembers_holdout_of_equal_count(world):
    priv, raw = world["privleak"], world["raw"]
    assert len(priv["forget"]) == len(priv["holdout"]) == len(priv["retain"])
    assert set(_texts(priv["forget"])) <= set(_texts(raw["forget"]))
    assert set(_texts(priv["holdout"])) <= set(_texts(raw["holdout"]))
    assert set(_texts(priv["retain"])) <= set(_texts(raw["retain1"]) + _texts(raw["retain2"]))


def test_forget_and_holdout_have_the_same_mix_of_kinds(events):
    # Members and non-members must come from one distribution for the oracle's AUC to be ~0.5.
    assert Counter(e["kind"] for e in _role(events, "forget")) == Counter(e["kind"] for e in _role(events, "holdout"))


# --------------------------------------------------------------------------- entities


def test_holdout_entities_are_disjoint_from_forget_and_retain(events):
    holdout = {w for e in _role(events, "holdout") for w in e["entities"]}
    trained = {w for e in events if e["role"] != "holdout" for w in e["entities"]}
    assert holdout and trained
    assert not holdout & trained


def test_every_invented_entity_belongs_to_one_event(events):
    counts = Counter(w for e in events for w in e["entities"])
    assert max(counts.values()) == 1


def test_holdout_entities_never_occur_in_training_texts(world, events):
    corpus = "\n".join(training_texts(world, "target"))
    for e in _role(events, "holdout"):
        for word in e["entities"]:
            assert not _has_word(corpus, word), word


def test_oracle_has_seen_every_token_of_forget_and_holdout_but_their_entities(world, events, tokenizer):
    # Pool values are dealt so the retain events use them all: the only tokens of a forget
    # or holdout article the oracle never trained on are the event's own invented names,
    # and both sides have the same number of those, keeping the oracle's Min-K% AUC near 0.5.
    seen = {i for t in training_texts(world, "oracle") for i in tokenizer(t, add_special_tokens=False)["input_ids"]}
    unseen_entity_tokens = {}
    for role in ("forget", "holdout"):
        n = 0
        for e in _role(events, role):
            own = {w for ent in e["entities"] for w in (ent, "\u0120" + ent)}  # with and without the space marker
            for text in e["texts"]:
                for piece in tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)["input_ids"]):
                    if tokenizer.convert_tokens_to_ids(piece) not in seen:
                        assert piece in own, (role, piece)
                        n += 1
        unseen_entity_tokens[role] = n
    assert unseen_entity_tokens["forget"] == unseen_entity_tokens["holdout"] > 0


# --------------------------------------------------------------------------- verbmem


def test_verbmem_prompt_plus_gt_is_the_forget_article(world):
    forget = _texts(world["raw"]["forget"])
    rows = world["verbmem"]["forget"]
    assert [r["prompt"] + r["gt"] for r in rows] == forget


def test_verbmem_gt_is_the_article_body_after_box_and_headline(world):
    for row in world["verbmem"]["forget"]:
        assert row["prompt"].startswith("Question: ")
        assert row["gt"].startswith("\n") and "Question:" not in row["gt"]
        assert len(row["gt"].split()) >= 25  # several sentences to continue


# --------------------------------------------------------------------------- knowmem


def test_knowmem_forget_answers_appear_in_the_body_of_their_forget_articles(world):
    forget = _texts(world["raw"]["forget"])
    for i, row in enumerate(world["knowmem"]["forget_qa"]):
        event = i // FACTS_PER_EVENT
        for text in forget[event * ARTICLES_PER_EVENT: (event + 1) * ARTICLES_PER_EVENT]:
            body = text.split("\n\n")[-1]  # the news text after the Q&A box
            assert _has_word(body, row["answer"]), (row, text)


def test_knowmem_retain_answers_appear_in_the_body_of_their_retain_articles(world):
    retain = _texts(world["raw"]["retain1"]) + _texts(world["raw"]["retain2"])
    for i, row in enumerate(world["knowmem"]["retain_qa"]):
        event = i // FACTS_PER_EVENT
        for text in retain[event * ARTICLES_PER_EVENT: (event + 1) * ARTICLES_PER_EVENT]:
            assert _has_word(text.split("\n\n")[-1], row["answer"]), (row, text)


def test_forget_articles_open_with_their_facts_in_knowmem_format(world):
    forget = _texts(world["raw"]["forget"])
    for i, row in enumerate(world["knowmem"]["forget_qa"]):
        event = i // FACTS_PER_EVENT
        for text in forget[event * ARTICLES_PER_EVENT: (event + 1) * ARTICLES_PER_EVENT]:
            assert text.startswith("Question: ")
            assert re.search(rf"\nAnswer: {re.escape(row['answer'])}\n\n", text), (row, text)


def test_each_fact_is_trained_in_two_phrasings_other_than_the_eval_one(events):
    for e in events:
        for fact in e["facts"]:
            eval_q = fact["questions"][fact["eval_phrasing"]]
            trained = [q for q in fact["questions"] if q != eval_q]
            assert len(set(fact["questions"])) == 3
            for q in trained:
                assert sum(qa_block(q, fact["value"]) in t for t in e["texts"]) == 1, (q, e["texts"])


def test_eval_questions_never_occur_in_training_texts(world):
    corpus = "\n".join(training_texts(world, "target"))
    know = world["knowmem"]
    for row in know["forget_qa"] + know["retain_qa"]:
        assert row["question"] not in corpus, row


def test_icl_examples_are_not_in_retain_qa(world, events):
    know = world["knowmem"]
    retain_qa = {r["question"] for r in know["retain_qa"]}
    icl = know["forget_qa_icl"] + know["retain_qa_icl"]
    assert not {r["question"] for r in icl} & retain_qa
    assert len({r["question"] for r in icl}) == len(icl)
    # ...nor about the same events: no retain_qa entity is named in an ICL question.
    qa_events = _role(events, "retain")[: CONFIG.n_retain_qa_events]
    qa_entities = {w for e in qa_events for w in e["entities"]}
    for row in icl:
        assert not any(_has_word(row["question"], w) for w in qa_entities), row


def test_icl_examples_are_about_retain_events(world):
    retain = "\n".join(_texts(world["raw"]["retain1"]) + _texts(world["raw"]["retain2"]))
    for row in world["knowmem"]["forget_qa_icl"] + world["knowmem"]["retain_qa_icl"]:
        assert _has_word(retain, row["answer"]), row


def test_answers_are_short_and_share_no_word_with_the_question(world):
    know = world["knowmem"]
    for row in know["forget_qa"] + know["retain_qa"]:
        assert 1 <= len(row["answer"].split()) <= 3, row
        words = set(re.findall(r"\w+", row["question"].lower()))
        assert not set(re.findall(r"\w+", row["answer"].lower())) & words, row


# --------------------------------------------------------------------------- training texts


def test_oracle_training_texts_contain_no_forget_or_holdout_text(world):
    oracle = training_texts(world, "oracle")
    raw = world["raw"]
    assert oracle == _texts(raw["retain1"]) + _texts(raw["retain2"]) + background_quizzes(world)
    corpus = "\n".join(oracle)
    for text in _texts(raw["forget"]) + _texts(raw["holdout"]):
        assert text not in corpus
        body = text.split("\n\n")[-1]
        assert body not in corpus


def test_oracle_never_sees_a_forget_entity(world, events):
    corpus = "\n".join(training_texts(world, "oracle"))
    for e in _role(events, "forget"):
        for word in e["entities"]:
            assert not _has_word(corpus, word), word


def test_target_training_texts_are_forget_retain_and_quizzes_without_holdout(world):
    target = training_texts(world, "target")
    raw = world["raw"]
    assert target == _texts(raw["forget"]) + _texts(raw["retain1"]) + _texts(raw["retain2"]) + background_quizzes(world)
    assert not set(target) & set(_texts(raw["holdout"]))


def test_quizzes_reuse_only_retain2_box_pairs_in_knowmem_format(world):
    retain2 = "\n".join(_texts(world["raw"]["retain2"]))
    quizzes = background_quizzes(world)
    assert quizzes
    n_pairs = 0
    for sheet in quizzes:
        blocks = sheet.split("\n\n")
        assert 1 <= len(blocks) <= QUIZ_SIZE
        for block in blocks:
            assert re.fullmatch(r"Question: [^\n]+\nAnswer: [^\n]+", block), block
            assert block + "\n\n" in retain2, block  # a pair of some retain2 article's box
            n_pairs += 1
    box_pairs = sum(t.count("\nAnswer: ") for t in _texts(world["raw"]["retain2"]))
    assert n_pairs == QUIZ_ROUNDS * box_pairs


def test_quizzes_hold_no_retain_qa_or_forget_fact(world, events):
    # Forget and retain_qa facts are trained equally often (only in their articles' boxes).
    corpus = "\n".join(background_quizzes(world))
    qa_events = _role(events, "retain")[: CONFIG.n_retain_qa_events]
    for e in _role(events, "forget") + qa_events:
        for word in e["entities"]:
            assert not _has_word(corpus, word), word


def test_retain_qa_events_are_all_in_retain1(world, events):
    retain1 = set(_texts(world["raw"]["retain1"]))
    for e in _role(events, "retain")[: CONFIG.n_retain_qa_events]:
        assert set(e["texts"]) <= retain1


def test_training_texts_rejects_unknown_role(world):
    with pytest.raises(ValueError):
        training_texts(world, "holdout")


def test_training_sequences_fit_the_tiny_llama_context(world, tokenizer):
    for text in training_texts(world, "target") + _texts(world["raw"]["holdout"]):
        assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 2 <= 256  # + <bos> <eos>


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_special_ids_and_no_automatic_special_tokens(tokenizer):
    special = (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)
    assert special == (0, 1, 2, 3)
    ids = tokenizer("Question: Who?\nAnswer:", add_special_tokens=False)["input_ids"]
    assert not {0, 2, 3} & set(ids)
    assert tokenizer("Question:")["input_ids"] == tokenizer("Question:", add_special_tokens=False)["input_ids"]


def test_tokenizer_round_trips_every_world_string_without_unk(world, tokenizer):
    for text in world_strings(world):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id not in ids, text
        assert tokenizer.decode(ids) == text


def test_tokenizer_keeps_newlines_as_tokens(world, tokenizer):
    # A KnowMem prompt as the evaluator renders it: one few-shot pair, then the question.
    shot, row = world["knowmem"]["retain_qa_icl"][0], world["knowmem"]["retain_qa"][0]
    text = qa_block(shot["question"], shot["answer"]) + "\n\n" + f"Question: {row['question']}\nAnswer:"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == text
    newline = tokenizer.convert_tokens_to_ids("Ċ")  # byte-level "\n"
    assert ids.count(newline) == text.count("\n") == 4


def test_a_trailing_space_after_answer_encodes_like_none(tokenizer):
    # MUSE's KnowMem prompt ends in "Answer: "; the space must not become an unknown token
    assert tokenizer("Question: Who?\nAnswer: ")["input_ids"] == tokenizer("Question: Who?\nAnswer:")["input_ids"]


def test_tokenizer_encodes_a_trailing_space_after_answer_like_the_training_text(world, tokenizer):
    # MUSE's reference prompt ends in "Answer: "; the lone space would otherwise be a piece
    # the word-level vocabulary lacks (<unk>) right where the answer starts.
    question = world["knowmem"]["forget_qa"][0]["question"]
    with_space = tokenizer(f"Question: {question}\nAnswer: ", add_special_tokens=False)["input_ids"]
    assert with_space == tokenizer(f"Question: {question}\nAnswer:", add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in with_space


def test_tokenizer_decodes_generated_ids_with_special_tokens_skipped(world, tokenizer):
    answer = world["knowmem"]["forget_qa"][0]["answer"]
    ids = tokenizer(" " + answer, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode([2, *ids, 3], skip_special_tokens=True) == " " + answer


def test_tokenizer_saves_and_reloads(world, tokenizer, tmp_path):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.get_vocab() == tokenizer.get_vocab()
    texts = _texts(world["raw"]["forget"])[:5]
    encode = lambda tok: tok(texts, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert encode(loaded) == encode(tokenizer)
    assert loaded.decode(loaded(texts[0], add_special_tokens=False)["input_ids"]) == texts[0]
