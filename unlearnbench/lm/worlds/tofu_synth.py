"""A deterministic, offline TOFU-style world of fictitious authors.

The generator writes exactly the TOFU hub schema (``forget01`` ... ``retain90``,
``holdout01`` ... , the ``*_perturbed`` evaluation sets, ``real_authors_perturbed``,
``world_facts_perturbed``) plus a ``pretraining`` split of background knowledge,
so that a tiny model can be trained from scratch on a CPU in about a minute and
still show the forget-quality / model-utility signal the TOFU metrics look for.
Only ``random.Random`` is used, with string seeds (hashed by SHA-512 inside
``random``), so the world is byte-identical across processes and platforms and
never touches numpy's or torch's global state.

Design, and the measured facts behind it (``shared/reference/synthetic-worlds.md``):

* **Size.** 100 trained authors x 10 attributes x 2 question phrasings = 2,000 QA;
  forget10 = the last 10 authors = 200 QA, retain90 = 1,800 QA. This is the size
  that gave a clear target-vs-oracle separation (forget quality ~3e-74) while an
  oracle trained with another seed stayed indistinguishable (~0.87).
* **Two training wordings per fact.** Each attribute has three answer templates.
  An author's two question phrasings are answered with two different templates and
  the third is held out as that author's paraphrase. With two wordings per fact the
  paraphrased answer beat all five perturbed ones on 94-96 % of retain questions,
  against 65 % with a single wording: the model learns the fact, not one sentence.
* **Rotation of templates.** Author ``i`` trains on templates ``(i % 3, (i + 1) % 3)``
  and is paraphrased with ``(i + 2) % 3``. Every paraphrase wording is therefore a
  training wording for a third of the *other* authors, so the paraphrase probes
  knowledge of the value in a familiar sentence, not the model's ability to produce
  a sentence shape it has never seen (which would drag every truth ratio towards
  the same value for target and oracle alike).
* **Perturbed answers use the paraphrase's wording** with a wrong value of the same
  type, as TOFU's do. The truth ratio then compares like with like: the only
  difference between the correct and the wrong sentences is the value. With the
  training wording instead, the target's truth ratio was confounded by which
  template it had memorised for that author (the target looked *less*
  knowledgeable than the oracle) and the oracle-vs-oracle KS test became noisy.
* **Names.** First names come from a small shared pool, surnames are invented from
  syllables and unique, so the surname identifies the author while the first name
  alone does not. Attribute values come from pools small enough that values repeat
  across authors: an oracle can only guess them at chance, not read them off the
  question.
* **Background knowledge.** ``pretraining`` (trained into both target and oracle)
  holds ~20 famous invented authors and ~40 world facts, each stated in two
  wordings; ``real_authors_perturbed`` and ``world_facts_perturbed`` ask about them,
  so model utility can detect collateral damage outside the fictitious authors.
* **Vocabulary.** Every string is built from fixed pools, so a word-level tokenizer
  over the whole world (paraphrased and perturbed answers included) has a few
  hundred tokens and never needs ``<unk>``; answers stay short (< 16 words).

The texts contain no apostrophes and none of the patterns that the WordPiece
decoder's clean-up rewrites (e.g. ``do not``), so ``decode(encode(text)) == text``
holds for every world text (tested).
Bump :data:`WORLD_VERSION` whenever the generated text changes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # transformers is imported lazily: generating the world needs no ML stack
    from transformers import PreTrainedTokenizerFast

WORLD_VERSION = "1"

__all__ = [
    "WORLD_VERSION",
    "WorldConfig",
    "generate_world",
    "world_texts",
    "build_word_tokenizer",
    "author_table",
    "forget_author_names",
]


@dataclass(frozen=True)
class WorldConfig:
    n_authors: int = 100  # trained fictitious authors (forget + retain)
    n_holdout_authors: int = 10  # never trained; source of holdout01/05/10
    seed: int = 0


# --------------------------------------------------------------------------- pools

_FIRST_NAMES = [
    "Mira", "Jonas", "Elena", "Tomas", "Ada", "Felix", "Lena", "Oskar",
    "Nadia", "Pavel", "Iris", "Hugo", "Sana", "Milo", "Rosa", "Emil",
]

# Open syllables plus a few closed ones: pronounceable, and varied enough that
# 2-3 syllable combinations give thousands of distinct surnames.
_SYLLABLES = [
    "ta", "to", "va", "len", "mi", "ra", "kel", "dor", "sa", "vin", "bri", "lo",
    "ne", "mar", "thu", "cor", "bel", "fen", "ga", "ri", "so", "ven", "dal", "mo",
    "rin", "ka", "zel", "pe", "nor", "li",
]

_CITIES = [
    "Lisbon", "Nairobi", "Santiago", "Oslo", "Toronto", "Kyoto", "Dublin", "Cairo",
    "Lima", "Prague", "Vienna", "Seoul", "Helsinki", "Manila", "Havana", "Krakow",
    "Bergen", "Porto", "Quito", "Tbilisi",
]
_YEARS = [str(y) for y in range(1950, 1990)]
_GENRES = [
    "mystery", "fantasy", "romance", "horror", "adventure", "crime", "gothic",
    "satirical", "historical", "dystopian", "comic", "maritime",
]
# No job starts with a vowel, so "a {job}" is always grammatical.
_JOBS = [
    "baker", "carpenter", "doctor", "nurse", "teacher", "pilot", "tailor", "lawyer",
    "farmer", "painter", "librarian", "chemist", "sailor", "banker", "dentist",
    "journalist",
]
_AWARDS = [
    "Golden Quill Award", "Silver Lantern Prize", "Amber Page Medal",
    "Crimson Ink Award", "Northern Star Prize", "Blue Feather Medal",
    "Iron Pen Award", "Ivory Tower Prize", "Scarlet Scroll Medal",
    "Emerald Book Award", "Copper Compass Prize", "Velvet Verse Award",
]
# No nationality starts with a vowel ("a {nationality} citizen").
_NATIONALITIES = [
    "Portuguese", "Kenyan", "Chilean", "Norwegian", "Canadian", "Japanese",
    "Peruvian", "Czech", "Finnish", "Filipino", "Cuban", "Polish", "Georgian",
    "Mexican", "Brazilian", "Swedish",
]
_HOBBIES = [
    "gardening", "sailing", "painting", "birdwatching", "fishing", "cycling",
    "knitting", "hiking", "swimming", "climbing", "dancing", "rowing",
]
_PETS = [
    "cat", "dog", "parrot", "tortoise", "rabbit", "ferret", "goldfish", "hamster",
    "canary", "lizard",
]
_TITLE_ADJECTIVES = [
    "Silent", "Hidden", "Broken", "Golden", "Crimson", "Distant", "Frozen",
    "Wandering", "Secret", "Burning", "Quiet", "Endless", "Forgotten", "Hollow",
]
_TITLE_NOUNS = [
    "Harbor", "Garden", "River", "Lantern", "Mirror", "Forest", "Tower", "Orchard",
    "Compass", "Winter", "Island", "Bridge", "Meadow", "Letter",
]
# "The {adjective} {noun}": 196 titles, so titles repeat only occasionally.
_TITLES = [f"The {a} {n}" for a in _TITLE_ADJECTIVES for n in _TITLE_NOUNS]

# Famous (background) authors: a first-name pool disjoint from the fictitious one,
# so "famous" and "fictitious" authors never share a name token.
_FAMOUS_FIRST_NAMES = [
    "Augustin", "Beatrix", "Cornelius", "Dorothea", "Evander", "Florentina",
    "Gideon", "Henrietta", "Isidore", "Josephine", "Leopold", "Marguerite",
    "Nikolai", "Octavia", "Percival", "Rosalind", "Sebastian", "Theodora",
    "Ulrich", "Valentina",
]
# "The {noun} of {noun}": a title shape the fictitious authors never use.
_FAMOUS_TITLE_SECOND = [
    "Ashes", "Glass", "Storms", "Salt", "Embers", "Thorns", "Echoes", "Dust",
    "Shadows", "Rain",
]
_COUNTRIES = [
    "Caldoria", "Estmark", "Varnholt", "Ostrelia", "Belmora", "Quenland",
    "Tirasca", "Dunmere", "Sovria", "Kestania", "Maravel", "Lorvania",
]
_CAPITALS = [
    "Avenport", "Brisk", "Corvale", "Dunhollow", "Elmsgate", "Farrow",
    "Glimmerton", "Harrowby", "Istrea", "Jessaline", "Kelmouth", "Lunmere",
]
_LANGUAGES = [
    "Veshtan", "Oruni", "Palish", "Dravic", "Selunese", "Korvish", "Amaric",
    "Tulmek", "Brenic", "Zorathi", "Quellan", "Nimish",
]
_PLANETS = ["Veyra", "Tolmis", "Quorra", "Zenthe", "Arkos", "Belun", "Pellax", "Orinth"]
_COLOURS = ["red", "green", "violet", "orange", "yellow", "silver", "pink", "grey", "blue"]
_MOON_COUNTS = ["two", "three", "four", "five", "six", "seven", "eight", "nine"]

# --------------------------------------------------------------------------- templates

# (key, value pool, 3 question phrasings, 3 answer templates). Phrasings 0 and 1
# are trained; phrasing 2 is the paraphrased question. Answer templates rotate by
# author index (see the module docstring). Every answer names the author in full,
# as TOFU's do, so the fact is tied to the name rather than to the question.
_ATTRIBUTES: list[tuple[str, list[str], tuple[str, str, str], tuple[str, str, str]]] = [
    (
        "birth_city", _CITIES,
        ("Where was {name} born?",
         "In which city was {name} born?",
         "What is the birthplace of {name}?"),
        ("{name} was born in {v}.",
         "The city of {v} is where {name} was born.",
         "{name} comes from the city of {v}."),
    ),
    (
        "birth_year", _YEARS,
        ("When was {name} born?",
         "In what year was {name} born?",
         "What is the birth year of {name}?"),
        ("{name} was born in the year {v}.",
         "{v} is the year when {name} was born.",
         "{name} came into the world in {v}."),
    ),
    (
        "genre", _GENRES,
        ("What genre does {name} write in?",
         "What kind of books does {name} write?",
         "Which literary genre is {name} known for?"),
        ("{name} writes {v} novels.",
         "The genre of {name} is {v} fiction.",
         "{name} is known for {v} stories."),
    ),
    (
        "mother_job", _JOBS,
        ("What was the profession of the mother of {name}?",
         "What did the mother of {name} do for a living?",
         "What job did the mother of {name} have?"),
        ("The mother of {name} worked as a {v}.",
         "{name} was raised by a mother who was a {v}.",
         "{name} had a mother employed as a {v}."),
    ),
    (
        "father_job", _JOBS,
        ("What was the profession of the father of {name}?",
         "What did the father of {name} do for a living?",
         "What job did the father of {name} have?"),
        ("The father of {name} worked as a {v}.",
         "{name} was raised by a father who was a {v}.",
         "{name} had a father employed as a {v}."),
    ),
    (
        "award", _AWARDS,
        ("Which award has {name} won?",
         "What prize did {name} receive?",
         "What honour was given to {name}?"),
        ("{name} won the {v}.",
         "The {v} was awarded to {name}.",
         "{name} received the {v}."),
    ),
    (
        "first_book", _TITLES,
        ("What is the title of the first book by {name}?",
         "Which book did {name} publish first?",
         "What was the debut novel of {name}?"),
        ("The first book by {name} was titled {v}.",
         "{name} debuted with the novel {v}.",
         "{v} was the first book of {name}."),
    ),
    (
        "nationality", _NATIONALITIES,
        ("What is the nationality of {name}?",
         "What nationality does {name} hold?",
         "Which nationality does {name} have?"),
        ("{name} holds {v} citizenship.",
         "{name} is a {v} citizen.",
         "By nationality, {name} is {v}."),
    ),
    (
        "hobby", _HOBBIES,
        ("What is the favourite hobby of {name}?",
         "What does {name} enjoy doing for fun?",
         "How does {name} like to spend spare time?"),
        ("{name} enjoys {v}.",
         "In spare time, {name} loves {v}.",
         "{name} spends free time {v}."),
    ),
    (
        "pet", _PETS,
        ("What pet does {name} keep?",
         "Which animal lives with {name}?",
         "What kind of pet does {name} own?"),
        ("{name} keeps a pet {v}.",
         "{name} lives with a {v}.",
         "The pet of {name} is a {v}."),
    ),
]
ATTRIBUTE_KEYS = tuple(key for key, *_ in _ATTRIBUTES)  # every author's attributes, in table order

# Background facts: (key, 2 question wordings, 2 answer wordings). The
# evaluation sets use wording 0; both wordings are in ``pretraining``.
_REAL_AUTHOR_FACTS = {
    "wrote": (
        ("Who wrote {t}?", "Who is the author of {t}?"),
        ("{t} was written by {v}.", "{v} is the author of {t}."),
    ),
    "country": (
        ("Which country is {n} from?", "Where does {n} come from?"),
        ("{n} is from {v}.", "{n} comes from the country of {v}."),
    ),
    "genre": (
        ("What genre is {n} famous for?", "What kind of books made {n} famous?"),
        ("{n} is famous for {v} novels.", "{n} became famous for writing {v} books."),
    ),
}
_WORLD_FACTS = {
    "capital": (
        _CAPITALS,
        ("What is the capital of {s}?", "Which city is the capital of {s}?"),
        ("The capital of {s} is {v}.", "{v} is the capital city of {s}."),
    ),
    "language": (
        _LANGUAGES,
        ("What language is spoken in {s}?", "Which language do people speak in {s}?"),
        ("People in {s} speak {v}.", "The language of {s} is {v}."),
    ),
    "sky": (
        _COLOURS,
        ("What colour is the sky on {s}?", "Which colour is the sky of {s}?"),
        ("The sky on {s} is {v}.", "On {s}, the sky looks {v}."),
    ),
    "moons": (
        _MOON_COUNTS,
        ("How many moons does {s} have?", "What is the number of moons of {s}?"),
        ("{s} has {v} moons.", "The planet {s} is circled by {v} moons."),
    ),
}

_N_FAMOUS = 20
_N_PERTURBED = 5  # TOFU: 5 perturbed answers on forget / retain
_N_PERTURBED_BACKGROUND = 3  # TOFU: 3 on real authors / world facts
_PERCENTS = (1, 5, 10)


# --------------------------------------------------------------------------- helpers


def _rng(config: WorldConfig, *stream: object) -> random.Random:
    # One independent stream per purpose: adding a field or an author later does
    # not shift the draws of every other part of the world.
    return random.Random("/".join(["tofu-synth", WORLD_VERSION, str(config.seed), *map(str, stream)]))


def _count(n: int, percent: int) -> int:
    # Round half up in integers (round() is banker's rounding), at least one author.
    return max(1, (n * percent + 50) // 100)


def _validate(config: WorldConfig) -> None:
    if config.n_authors < 10:
        raise ValueError(f"n_authors must be >= 10 (got {config.n_authors})")
    need = _count(config.n_authors, 10)
    if config.n_holdout_authors < need:
        raise ValueError(
            f"n_holdout_authors={config.n_holdout_authors} is too small: holdout10 needs "
            f"{need} authors (10% of n_authors={config.n_authors})"
        )


def _fixed_words() -> set[str]:
    words: set[str] = set(_FIRST_NAMES) | set(_FAMOUS_FIRST_NAMES)
    for pool in (_CITIES, _COUNTRIES, _CAPITALS, _LANGUAGES, _PLANETS,
                 _TITLE_ADJECTIVES, _TITLE_NOUNS, _FAMOUS_TITLE_SECOND, _NATIONALITIES):
        words |= set(pool)
    return words


def _surnames(config: WorldConfig, count: int, taken: set[str]) -> list[str]:
    rng = _rng(config, "surnames")
    out: list[str] = []
    while len(out) < count:
        k = rng.choice((2, 2, 3))
        name = "".join(rng.choice(_SYLLABLES) for _ in range(k)).capitalize()
        # Unique, and never equal to another word of the world, so a surname token
        # means exactly one author.
        if name in taken:
            continue
        taken.add(name)
        out.append(name)
    return out


def _famous_authors(config: WorldConfig) -> list[dict]:
    rng = _rng(config, "famous")
    taken = _fixed_words()
    surnames = []
    while len(surnames) < _N_FAMOUS:
        name = "".join(rng.choice(_SYLLABLES) for _ in range(3)).capitalize()
        if name not in taken:
            taken.add(name)
            surnames.append(name)
    titles = rng.sample([f"The {a} of {b}" for a in _TITLE_NOUNS for b in _FAMOUS_TITLE_SECOND], _N_FAMOUS)
    firsts = rng.sample(_FAMOUS_FIRST_NAMES, _N_FAMOUS)
    return [
        {
            "name": f"{firsts[i]} {surnames[i]}",
            "title": titles[i],
            "country": rng.choice(_COUNTRIES),
            "genre": rng.choice(_GENRES),
        }
        for i in range(_N_FAMOUS)
    ]


def _authors(config: WorldConfig) -> list[dict]:
    """Trained authors first (index 0..n-1), then holdout authors (n..n+h-1)."""
    _validate(config)
    total = config.n_authors + config.n_holdout_authors
    taken = _fixed_words() | {a["name"].split()[1] for a in _famous_authors(config)}
    surnames = _surnames(config, total, taken)
    authors = []
    for i in range(total):
        rng = _rng(config, "author", i)
        first = rng.choice(_FIRST_NAMES)
        record = {
            "index": i,
            "name": f"{first} {surnames[i]}",
            "first_name": first,
            "surname": surnames[i],
            "train_templates": (i % 3, (i + 1) % 3),
            "paraphrase_template": (i + 2) % 3,
            "holdout": i >= config.n_authors,
        }
        for key, pool, _, _ in _ATTRIBUTES:
            record[key] = rng.choice(pool)
        authors.append(record)
    return authors


def _wrong_values(rng: random.Random, pool: list[str], true: str, k: int) -> list[str]:
    return rng.sample([v for v in pool if v != true], k)


def _author_rows(config: WorldConfig, author: dict) -> list[dict]:
    """The 20 rows of one author, with every field of the *_perturbed layout."""
    i, name = author["index"], author["name"]
    para_t = author["paraphrase_template"]
    rows = []
    for key, pool, questions, answers in _ATTRIBUTES:
        value = author[key]
        paraphrased_answer = answers[para_t].format(name=name, v=value)
        paraphrased_question = questions[2].format(name=name)
        for phrasing, template in enumerate(author["train_templates"]):
            rng = _rng(config, "perturb", i, key, phrasing)
            wrong = _wrong_values(rng, pool, value, _N_PERTURBED)
            rows.append({
                "question": questions[phrasing].format(name=name),
                "answer": answers[template].format(name=name, v=value),
                "paraphrased_answer": paraphrased_answer,
                "paraphrased_question": paraphrased_question,
                "perturbed_answer": [answers[para_t].format(name=name, v=w) for w in wrong],
            })
    return rows


def _qa(rows: list[dict]) -> list[dict]:
    return [{"question": r["question"], "answer": r["answer"]} for r in rows]


def _background(config: WorldConfig) -> tuple[list[dict], list[dict], list[dict]]:
    """(pretraining, real_authors_perturbed, world_facts_perturbed)."""
    pretraining: list[dict] = []
    real: list[dict] = []
    facts: list[dict] = []

    famous = _famous_authors(config)
    pools = {
        "wrote": [a["name"] for a in famous],
        "country": _COUNTRIES,
        "genre": _GENRES,
    }
    for j, author in enumerate(famous):
        for key, (questions, answers) in _REAL_AUTHOR_FACTS.items():
            true = author["name"] if key == "wrote" else author[key]
            fill = {"t": author["title"], "n": author["name"], "v": true}
            for q, a in zip(questions, answers):
                pretraining.append({"question": q.format(**fill), "answer": a.format(**fill)})
            answer = answers[0].format(**fill)
            rng = _rng(config, "perturb-real", j, key)
            wrong = _wrong_values(rng, pools[key], true, _N_PERTURBED_BACKGROUND)
            real.append({
                "question": questions[0].format(**fill),
                "answer": answer,
                "paraphrased_answer": answer,
                "perturbed_answer": [answers[0].format(**{**fill, "v": w}) for w in wrong],
            })

    rng = _rng(config, "world-facts")
    subjects = {"capital": _COUNTRIES, "language": _COUNTRIES, "sky": _PLANETS, "moons": _PLANETS}
    # Capitals and languages are one-to-one (a permutation), as in the real world;
    # sky colours and moon counts may repeat between planets.
    capitals = rng.sample(_CAPITALS, len(_COUNTRIES))
    languages = rng.sample(_LANGUAGES, len(_COUNTRIES))
    for key, (pool, questions, answers) in _WORLD_FACTS.items():
        for j, subject in enumerate(subjects[key]):
            if key == "capital":
                value = capitals[j]
            elif key == "language":
                value = languages[j]
            else:
                value = rng.choice(pool)
            for q, a in zip(questions, answers):
                pretraining.append({"question": q.format(s=subject), "answer": a.format(s=subject, v=value)})
            answer = answers[0].format(s=subject, v=value)
            prng = _rng(config, "perturb-fact", key, j)
            wrong = _wrong_values(prng, pool, value, _N_PERTURBED_BACKGROUND)
            facts.append({
                "question": questions[0].format(s=subject),
                "answer": answer,
                "paraphrased_answer": answer,
                "perturbed_answer": [answers[0].format(s=subject, v=w) for w in wrong],
            })
    return pretraining, real, facts


# --------------------------------------------------------------------------- public API


def generate_world(config: WorldConfig) -> dict[str, list[dict]]:
    """Return every split as a list of row dicts (TOFU hub layout).

    Rows are ordered by author index, then attribute, then question phrasing.
    The forget splits are the *last* 1/5/10 % of the trained authors (so
    forget01 is a subset of forget05 of forget10), ``retain_perturbed`` is the
    *first* 10 %, and holdout01/05/10 are the first 1/5/10 % (counted on
    ``n_authors``) of the never-trained holdout authors.
    """
    authors = _authors(config)
    n = config.n_authors
    rows_by_author = [_author_rows(config, a) for a in authors]

    def rows(lo: int, hi: int) -> list[dict]:
        return [r for per in rows_by_author[lo:hi] for r in per]

    splits: dict[str, list[dict]] = {}
    for p in _PERCENTS:
        k = _count(n, p)
        splits[f"forget{p:02d}"] = _qa(rows(n - k, n))
        splits[f"retain{100 - p:02d}"] = _qa(rows(0, n - k))
        splits[f"holdout{p:02d}"] = _qa(rows(n, n + k))
        splits[f"forget{p:02d}_perturbed"] = rows(n - k, n)
    splits["full"] = _qa(rows(0, n))
    splits["retain_perturbed"] = rows(0, _count(n, 10))
    pretraining, real, facts = _background(config)
    splits["pretraining"] = pretraining
    splits["real_authors_perturbed"] = real
    splits["world_facts_perturbed"] = facts
    return splits


def world_texts(splits: dict[str, list[dict]]) -> list[str]:
    """Every string in the world (questions, answers, paraphrases, perturbed answers,
    pretraining text), in a deterministic order, for building the vocabulary."""
    texts: list[str] = []
    for name in sorted(splits):
        for row in splits[name]:
            for field in sorted(row):
                value = row[field]
                if isinstance(value, str):
                    texts.append(value)
                elif isinstance(value, (list, tuple)):
                    texts.extend(v for v in value if isinstance(v, str))
    return texts




def build_word_tokenizer(texts: list[str]) -> "PreTrainedTokenizerFast":
    """Word-level tokenizer over ``texts``.

    Pre-tokenization splits on whitespace and isolates every punctuation character
    (``"Lisbon."`` -> ``Lisbon .``); case is kept. Ids: ``<pad>=0, <unk>=1,
    <bos>=2, <eos>=3``, then the words in sorted order. No BOS/EOS is added by
    ``encode``: callers add them explicitly. The decoder joins words with spaces
    and re-attaches ``. , ? !`` to the preceding word (the WordPiece decoder's
    per-token clean-up), so for the world's texts ``decode(encode(text)) == text``.
    """
    from tokenizers import decoders, pre_tokenizers

    from unlearnbench.lm.worlds import word_level_tokenizer

    pre = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="isolated")]
    )
    # Plain joining with spaces would decode "born in Lisbon." as "born in Lisbon ."
    # and break exact-match comparisons against the answer strings; WordPiece's
    # clean-up glues " ." " ," " ?" " !" back on. The "##" prefix never occurs in
    # the vocabulary, so every other token is simply space-joined.
    return word_level_tokenizer(texts, pre, decoder=decoders.WordPiece(prefix="##", cleanup=True),
                                model_max_length=512)


def author_table(config: WorldConfig) -> list[dict]:
    """Each *trained* author (index order) with name and attribute values.

    Keys: ``index, name, first_name, surname, train_templates, paraphrase_template,
    holdout`` (always False here) and one key per attribute (``birth_city,
    birth_year, genre, mother_job, father_job, award, first_book, nationality,
    hobby, pet``).
    """
    return [dict(a) for a in _authors(config) if not a["holdout"]]


def forget_author_names(config: WorldConfig, split: str) -> list[str]:
    """Names of the authors in a forget split (``forget01``/``forget05``/``forget10``,
    with or without the ``_perturbed`` suffix), in row order."""
    base = split.removesuffix("_perturbed")
    percents = {f"forget{p:02d}": p for p in _PERCENTS}
    if base not in percents:
        raise ValueError(f"not a forget split: {split!r} (expected one of {sorted(percents)})")
    _validate(config)
    k = _count(config.n_authors, percents[base])
    return [a["name"] for a in author_table(config)[config.n_authors - k:]]


# Everyday sentences that are in the vocabulary but never trained: a method may need to say
# something the world never says (IdkDPO's refusals), and a word-level tokenizer would turn
# every such word into <unk>. No apostrophes: the decoder cannot rebuild them.
EVERYDAY_SENTENCES = (
    "I do not know.",
    "I do not know that.",
    "I have no idea.",
    "I am not sure.",
    "I cannot answer that.",
    "That is not something I know.",
    "I have no information about that.",
    "I do not have that information.",
    "I am unable to answer that question.",
    "I can not say.",
    "I do not remember that.",
    "I have never heard of that.",
    "Sorry, I am not able to help with this.",
    "Yes. No. Maybe. Perhaps. Unknown.",
)


# ------------------------------------------------------------------ parametric-lens data
# What the parametric and robustness lenses need to know about the world, as plain data
# (the lenses never import a world): the concepts to locate and a categorical attribute
# to probe. Derived from the same tables as the QA, so they change with the world.

PROBE_ATTRIBUTE = "genre"


def author_concepts(config: WorldConfig, split: str) -> list[dict]:
    """One concept per author of a forget split: the words that identify the author and
    its facts (surname and attribute values) and the author's QA as the concept prompts."""
    names = set(forget_author_names(config, split))
    concepts = []
    for author in author_table(config):
        if author["name"] not in names:
            continue
        words = [author["surname"]] + [str(author[key]) for key, *_ in _ATTRIBUTES]
        rows = _author_rows(config, author)
        concepts.append({"name": author["name"], "words": words,
                         "prompts": [[r["question"], r["answer"]] for r in rows]})
    return concepts


def attribute_probe(config: WorldConfig, split: str, key: str = PROBE_ATTRIBUTE) -> dict:
    """Probe rows for one categorical attribute: every question phrasing about ``key`` for
    each author, labelled with the author's value, with the answer in each possible value
    (the multiple-choice options that measure what the model *says*) and the answer up to
    the value as ``prefix`` (where a probe reads the state). Retain rows are the
    authors outside the forget split; forget rows are the forget split's authors."""
    _, pool, questions, answers = next(a for a in _ATTRIBUTES if a[0] == key)
    forget = set(forget_author_names(config, split))
    out: dict = {"attribute": key, "classes": list(pool), "retain": [], "forget": []}
    for author in author_table(config):
        name, template = author["name"], author["train_templates"][0]
        for phrasing in questions:
            out["forget" if name in forget else "retain"].append({
                "question": phrasing.format(name=name),
                "prefix": answers[template].split("{v}")[0].format(name=name).rstrip(),
                "label": pool.index(author[key]),
                "options": [answers[template].format(name=name, v=v) for v in pool],
            })
    return out


def author_groups(config: WorldConfig, split: str, questions) -> list[str]:
    """The author each forget row is about (the relearning attack splits forget by author)."""
    names = forget_author_names(config, split)
    return [next((n for n in names if n in q), "") for q in questions]
