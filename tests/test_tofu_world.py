"""Sanity tests for the synthetic TOFU-style world (unlearnbench.lm.worlds.tofu_synth)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys

import pytest

from unlearnbench.lm.worlds.tofu_synth import (
    WorldConfig,
    author_table,
    build_word_tokenizer,
    forget_author_names,
    generate_world,
    world_texts,
)

# Row order within an author, as documented in author_table / generate_world.
ATTRS = [
    "birth_city", "birth_year", "genre", "mother_job", "father_job",
    "award", "first_book", "nationality", "hobby", "pet",
]
QA_SPLITS = [
    "forget01", "forget05", "forget10", "retain99", "retain95", "retain90",
    "full", "holdout01", "holdout05", "holdout10", "pretraining",
]
PERTURBED_SPLITS = ["forget01_perturbed", "forget05_perturbed", "forget10_perturbed", "retain_perturbed"]
BACKGROUND_SPLITS = ["real_authors_perturbed", "world_facts_perturbed"]


@pytest.fixture(scope="module")
def world():
    return generate_world(WorldConfig())


@pytest.fixture(scope="module")
def authors():
    return author_table(WorldConfig())


@pytest.fixture(scope="module")
def tokenizer(world):
    return build_word_tokenizer(world_texts(world))


def _digest(splits) -> str:
    return hashlib.sha256(json.dumps(splits, sort_keys=True).encode()).hexdigest()


def _contains_words(text: str, value: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text) is not None


def _signature(text: str, name: str, value: str) -> str:
    """The template behind an answer: author name and value replaced by slots."""
    assert name in text, (name, text)
    text = text.replace(name, "{name}")
    assert _contains_words(text, value), (value, text)
    return re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", "{v}", text)


def _questions(rows) -> list[str]:
    return [r["question"] for r in rows]


def _rows_with_meta(rows, authors_by_index, first_index):
    """Attach (author, attribute, phrasing) to rows ordered author/attribute/phrasing."""
    assert len(rows) % 20 == 0
    for k, row in enumerate(rows):
        author = authors_by_index[first_index + k // 20]
        attr = ATTRS[(k % 20) // 2]
        assert author["name"] in row["question"]
        yield row, author, attr, k % 2


# --------------------------------------------------------------------------- layout


def test_split_keys_and_sizes(world):
    assert set(world) == set(QA_SPLITS) | set(PERTURBED_SPLITS) | set(BACKGROUND_SPLITS)
    sizes = {k: len(v) for k, v in world.items()}
    print("split sizes:", sizes)
    assert sizes["full"] == 2000
    assert (sizes["forget01"], sizes["forget05"], sizes["forget10"]) == (20, 100, 200)
    assert (sizes["retain99"], sizes["retain95"], sizes["retain90"]) == (1980, 1900, 1800)
    assert (sizes["holdout01"], sizes["holdout05"], sizes["holdout10"]) == (20, 100, 200)
    for p in ("01", "05", "10"):
        assert sizes[f"forget{p}_perturbed"] == sizes[f"forget{p}"]
    assert sizes["retain_perturbed"] == 200
    assert 40 <= sizes["real_authors_perturbed"] <= 100
    assert 40 <= sizes["world_facts_perturbed"] <= 117
    # Every background fact is stated in two wordings in pretraining.
    assert sizes["pretraining"] == 2 * (sizes["real_authors_perturbed"] + sizes["world_facts_perturbed"])


def test_fields(world):
    for name in QA_SPLITS:
        for row in world[name]:
            assert set(row) == {"question", "answer"}, name
            assert isinstance(row["question"], str) and isinstance(row["answer"], str)
    for name in PERTURBED_SPLITS:
        for row in world[name]:
            assert set(row) == {"question", "answer", "paraphrased_answer", "paraphrased_question", "perturbed_answer"}
            assert isinstance(row["perturbed_answer"], list) and len(row["perturbed_answer"]) == 5
            assert all(isinstance(s, str) for s in row["perturbed_answer"])
    for name in BACKGROUND_SPLITS:
        for row in world[name]:
            assert set(row) == {"question", "answer", "paraphrased_answer", "perturbed_answer"}
            assert row["paraphrased_answer"] == row["answer"]
            assert isinstance(row["perturbed_answer"], list) and len(row["perturbed_answer"]) == 3


def test_subsets_and_disjointness(world):
    q = {name: _questions(rows) for name, rows in world.items()}
    full = set(q["full"])
    assert len(full) == len(q["full"]), "questions must be unique"
    assert set(q["forget01"]) < set(q["forget05"]) < set(q["forget10"])
    for f, r in (("forget01", "retain99"), ("forget05", "retain95"), ("forget10", "retain90")):
        assert not set(q[f]) & set(q[r])
        assert set(q[f]) | set(q[r]) == full
        assert world[f] + world[r] == world["full"] or world[r] + world[f] == world["full"]
    # The forget sets are the last authors, in full-split order.
    assert world["full"][-200:] == world["forget10"]
    assert world["full"][-20:] == world["forget01"]
    # Holdout authors are never trained, and their QA has the same shape.
    holdout = set(q["holdout10"])
    assert set(q["holdout01"]) < set(q["holdout05"]) < holdout
    assert not holdout & full
    assert not holdout & set(q["pretraining"])
    # retain_perturbed: the first 10% of authors, disjoint from every forget set.
    assert _questions(world["retain_perturbed"]) == q["full"][:200]
    assert not set(_questions(world["retain_perturbed"])) & set(q["forget10"])


def test_perturbed_rows_match_training_rows(world):
    for p in ("01", "05", "10"):
        assert [{"question": r["question"], "answer": r["answer"]} for r in world[f"forget{p}_perturbed"]] == world[f"forget{p}"]
    assert [{"question": r["question"], "answer": r["answer"]} for r in world["retain_perturbed"]] == world["full"][:200]


def test_holdout_authors_are_new_people(world, authors):
    trained_names = {a["name"] for a in authors}
    trained_surnames = {a["surname"] for a in authors}
    assert len(trained_surnames) == len(authors), "surnames must be unique"
    for row in world["holdout10"]:
        assert not any(name in row["question"] for name in trained_names)
    # The first row of every author asks "Where was <first> <surname> born?".
    holdout_surnames = {row["question"].split()[3] for row in world["holdout10"][::20]}
    assert len(holdout_surnames) == 10 and not holdout_surnames & trained_surnames


# --------------------------------------------------------------------------- content


def test_author_table_matches_answers(world, authors):
    assert len(authors) == 100
    assert [a["index"] for a in authors] == list(range(100))
    assert len({a["first_name"] for a in authors}) < 30, "first names come from a small shared pool"
    for row, author, attr, _ in _rows_with_meta(world["full"], authors, 0):
        assert author["name"] in row["answer"]
        assert _contains_words(row["answer"], author[attr])
    # Values repeat across authors (pools are small), so the question gives no hint.
    for attr in ATTRS:
        if attr != "first_book":
            assert len({a[attr] for a in authors}) < len(authors), attr


def test_forget_author_names(world, authors):
    names = {p: forget_author_names(WorldConfig(), f"forget{p}") for p in ("01", "05", "10")}
    assert [len(names[p]) for p in ("01", "05", "10")] == [1, 5, 10]
    assert set(names["01"]) < set(names["05"]) < set(names["10"])
    assert names["10"] == [a["name"] for a in authors[-10:]]
    assert forget_author_names(WorldConfig(), "forget10_perturbed") == names["10"]
    for row in world["forget10"]:
        assert any(n in row["question"] for n in names["10"])
    for row in world["retain90"]:
        assert not any(n in row["question"] for n in names["10"])
    with pytest.raises(ValueError):
        forget_author_names(WorldConfig(), "retain90")


def test_perturbed_answers_use_paraphrase_wording_with_wrong_values(world, authors):
    checked = 0
    for split, first in (("forget10_perturbed", 90), ("retain_perturbed", 0)):
        for row, author, attr, _ in _rows_with_meta(world[split], authors, first):
            name, true = author["name"], author[attr]
            para = row["paraphrased_answer"]
            assert para != row["answer"]
            sig = _signature(para, name, true)
            pattern = re.compile(re.escape(sig).replace(re.escape("{name}"), re.escape(name)).replace(re.escape("{v}"), "(.+)"))
            wrong = []
            for pert in row["perturbed_answer"]:
                assert pert != para
                assert not _contains_words(pert, true), (pert, true)
                m = pattern.fullmatch(pert)
                assert m, (pert, sig)
                wrong.append(m.group(1))
            assert len(set(wrong)) == 5 and true not in wrong
            assert row["paraphrased_question"] != row["question"] and name in row["paraphrased_question"]
            checked += 1
    assert checked == 400


def test_template_rotation(world, authors):
    """Each author answers its two phrasings in two different wordings, and its
    paraphrase wording is a training wording of some other author."""
    train_sigs: dict[str, dict[str, set[int]]] = {a: {} for a in ATTRS}
    per_author: dict[tuple[int, str], list[str]] = {}
    for row, author, attr, _ in _rows_with_meta(world["full"], authors, 0):
        sig = _signature(row["answer"], author["name"], author[attr])
        train_sigs[attr].setdefault(sig, set()).add(author["index"])
        per_author.setdefault((author["index"], attr), []).append(sig)
    for attr in ATTRS:
        assert len(train_sigs[attr]) == 3, (attr, train_sigs[attr].keys())
    for sigs in per_author.values():
        assert len(sigs) == 2 and sigs[0] != sigs[1]

    para_seen = {a: set() for a in ATTRS}
    for split, first in (("forget10_perturbed", 90), ("retain_perturbed", 0)):
        for row, author, attr, _ in _rows_with_meta(world[split], authors, first):
            sig = _signature(row["paraphrased_answer"], author["name"], author[attr])
            assert sig not in per_author[(author["index"], attr)], "paraphrase must be unseen for this author"
            others = train_sigs[attr].get(sig, set()) - {author["index"]}
            assert others, f"paraphrase wording {sig!r} never trained for another author"
            para_seen[attr].add(sig)
    # Rotation: across authors, all three wordings serve as paraphrases.
    assert all(len(s) == 3 for s in para_seen.values())


def test_background_sets(world):
    pre_q = set(_questions(world["pretraining"]))
    pre_a = {r["answer"] for r in world["pretraining"]}
    for split in BACKGROUND_SPLITS:
        for row in world[split]:
            assert row["question"] in pre_q and row["answer"] in pre_a
            pert = row["perturbed_answer"]
            assert len(set(pert)) == 3 and row["answer"] not in pert
            # Same wording as the answer: identical except for one span.
            for p in pert:
                a_words, p_words = row["answer"].split(), p.split()
                i = 0
                while a_words[i] == p_words[i]:
                    i += 1
                j = 1
                while a_words[-j] == p_words[-j]:
                    j += 1
                assert i <= len(a_words) - j + 1 and i <= len(p_words) - j + 1


def test_answers_are_short(world):
    for name, rows in world.items():
        for row in rows:
            for text in [row["answer"], row.get("paraphrased_answer", ""), *row.get("perturbed_answer", [])]:
                assert len(text.split()) < 16, (name, text)


# --------------------------------------------------------------------------- determinism


def test_deterministic_in_process():
    assert _digest(generate_world(WorldConfig())) == _digest(generate_world(WorldConfig()))
    assert author_table(WorldConfig(seed=3)) == author_table(WorldConfig(seed=3))


def test_deterministic_across_processes(world):
    # String seeds are hashed with SHA-512 inside random, so PYTHONHASHSEED must not matter.
    code = (
        "import hashlib, json;"
        "from unlearnbench.lm.worlds.tofu_synth import WorldConfig, generate_world;"
        "print(hashlib.sha256(json.dumps(generate_world(WorldConfig()), sort_keys=True).encode()).hexdigest())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    ).stdout.strip()
    assert out == _digest(world)


def test_seed_changes_world(world):
    other = generate_world(WorldConfig(seed=1))
    assert _digest(other) != _digest(world)
    assert _questions(other["full"]) != _questions(world["full"])
    assert {k: len(v) for k, v in other.items()} == {k: len(v) for k, v in world.items()}


def test_other_sizes():
    w = generate_world(WorldConfig(n_authors=200, n_holdout_authors=20, seed=0))
    assert (len(w["forget01"]), len(w["forget05"]), len(w["forget10"])) == (40, 200, 400)
    assert len(w["retain90"]) == 3600 and len(w["holdout10"]) == 400 and len(w["retain_perturbed"]) == 400
    with pytest.raises(ValueError):
        generate_world(WorldConfig(n_authors=200, n_holdout_authors=10))
    with pytest.raises(ValueError):
        generate_world(WorldConfig(n_authors=5))


def test_vocabulary_size(tokenizer):
    size = len(tokenizer)
    print(f"tofu_synth vocabulary size: {size}")
    assert 500 <= size <= 900


def test_special_tokens(tokenizer):
    assert tokenizer.convert_tokens_to_ids(["<pad>", "<unk>", "<bos>", "<eos>"]) == [0, 1, 2, 3]
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1, 2, 3)
    vocab = tokenizer.get_vocab()
    words = [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1])][4:]
    assert words == sorted(words), "vocabulary must be sorted deterministically"
    assert tokenizer("<bos> Where", add_special_tokens=False)["input_ids"][0] == 2


def test_word_level_split(world, tokenizer):
    # Whitespace and punctuation both split; case is kept.
    assert tokenizer.tokenize("In spare time, Mira loves sailing.") == [
        "In", "spare", "time", ",", "Mira", "loves", "sailing", ".",
    ]
    assert tokenizer.tokenize("Mira Zzzqx.") == ["Mira", "<unk>", "."]
    the, The = tokenizer.convert_tokens_to_ids(["the", "The"])
    assert the != The and tokenizer.unk_token_id not in (the, The)


def test_no_unk_and_round_trip(world, tokenizer):
    texts = world_texts(world)
    assert len(texts) > 5000
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id not in ids, text
        assert len(ids) == len(re.findall(r"\w+|[^\w\s]", text))
        assert tokenizer.decode(ids) == text


def test_save_and_reload(world, tokenizer, tmp_path):
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert (loaded.pad_token_id, loaded.unk_token_id, loaded.bos_token_id, loaded.eos_token_id) == (0, 1, 2, 3)
    texts = world_texts(world)[::7]
    assert loaded(texts, add_special_tokens=False)["input_ids"] == tokenizer(texts, add_special_tokens=False)["input_ids"]
    answer = world["forget10"][0]["answer"]
    ids = loaded(answer, add_special_tokens=False)["input_ids"]
    assert loaded.decode(ids) == answer
    assert loaded.decode([2, *ids, 3], skip_special_tokens=True) == answer


def test_tokenizer_is_deterministic(world):
    texts = world_texts(world)
    a = build_word_tokenizer(texts).get_vocab()
    b = build_word_tokenizer(list(reversed(texts))).get_vocab()
    assert a == b


def test_the_prompt_format_encodes_without_unknown_words(tiny_task):
    """The world's models read "Question: ... Answer:" as words, not as <unk> <unk> ... <unk>."""
    from unlearnbench.lm.prompts import encode_qa

    tokenizer = tiny_task.load_target().tokenizer
    for row in tiny_task.splits["forget"].select(range(5)):
        ids, n_prompt = encode_qa(tokenizer, tiny_task.prompt_format, row["question"], row["answer"])
        assert tokenizer.unk_token_id not in ids
        words = tokenizer.convert_ids_to_tokens(ids[:n_prompt])
        assert words[:3] == ["<bos>", "Question", ":"] and words[-2:] == ["Answer", ":"]
