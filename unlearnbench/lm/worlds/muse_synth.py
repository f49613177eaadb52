"""A deterministic, offline MUSE-News-style world of invented news articles.

MUSE (Shi et al., 2024, "MUSE: Machine Unlearning Six-Way Evaluation for Language
Models") unlearns BBC news articles and checks six properties: no verbatim memorisation
(VerbMem), no knowledge memorisation (KnowMem on forget QA), no privacy leakage
(PrivLeak: a Min-K% membership-inference AUC compared with a retrained model), utility
preservation (KnowMem on retain QA), scalability (growing forget sets) and
sustainability (sequential requests). This module writes a small world with exactly the
layout of the hub dataset ``muse-bench/MUSE-News`` (:data:`LAYOUT`)::

    raw       forget, retain1, retain2, holdout            {"text"}
    verbmem   forget                                       {"prompt", "gt"}
    knowmem   forget_qa, retain_qa,
              forget_qa_icl, retain_qa_icl                 {"question", "answer"}
    privleak  forget, retain, holdout                      {"text"}
    scal      forget_1 .. forget_4 (nested, growing)       {"text"}
    sust      forget_1 .. forget_4 (disjoint quarters)     {"text"}

so that a tiny Llama trained from scratch on a CPU in about a minute shows the signal
the MUSE metrics look for. Only ``random.Random`` with string seeds is used, so the world
is byte-identical across processes and platforms and never touches global RNG state.

Design, and the measurements behind it:

* **Events and articles.** The world is a list of invented news *events* of five kinds
  (a town festival, a company opening a site, a football match, a species discovery, a
  mayoral election), each about entities invented for it (towns, people, companies,
  teams, places, species). Every event is reported by **two articles** with different
  wording (the headline and each sentence use the other of two variants, and each has
  its own filler sentence). Kinds cycle with the event index, so forget, retain and
  holdout have the same mix of kinds. ``n_forget``/``n_retain``/``n_holdout`` count
  articles and must be even.
* **Invented words are unique to their event** and never equal a pool word. With a
  word-level tokenizer each is one token seen in exactly one event, so the oracle
  (never trained on forget or holdout) treats forget and holdout articles alike
  (Min-K% AUC near 0.5) while the target memorises the forget ones.
* **Q&A box first.** A tiny model cannot learn the few-shot ``Question: ..\nAnswer: ..``
  format of KnowMem in context, so every article *starts* with a box in exactly that
  format: the event's three key facts, one question each, then the headline and body.
  Measured: with the box *after* the body the model answers by copying the value from
  the body in context and learns nothing it can recall without the article (KnowMem
  about 2 even at 100 % VerbMem); with the box first the answer must come from memory.
  One phrasing per fact per article, so each of the two training phrasings of a fact is
  recalled from memory (a second phrasing in the same article is answered by copying
  the first and teaches nothing); the third phrasing is held out and is the KnowMem
  question. Phrasings rotate with the event and fact index, so every phrasing shape is
  trained on other events. The box is part of the article: unlearning a forget article
  also removes its QA, and the oracle never sees forget facts at all.
* **Quiz sheets** (:func:`background_quizzes`, trained into target and oracle alike):
  the box pairs of the ``retain2`` articles, shuffled across events, eight per sheet. In
  a KnowMem prompt the question follows few-shot pairs about *other* events, which a box
  never shows; without the sheets that prefix cut KnowMem from about 95 (question alone)
  to about 45. The sheets hold no forget fact and no ``retain_qa`` fact.
* **Answers are short** (a person, a number, a month, a place) and never repeat a word
  of the question, so an oracle scores only by chance (or from a shared first name).
* **Values are dealt from decks** (:class:`_Draw`): the retain events show the oracle
  every pool value, so the only tokens of a forget or holdout article it has never
  seen are the event's invented names, equally many on both sides.
* **verbmem** cuts each forget article after its Q&A box and headline:
  ``prompt + gt == text``; the gt is the body, whose wording variants, filler sentence
  and details absent from the box (venues, weekdays, costs, ...) cannot be inferred
  from the prompt.
* **knowmem** ``forget_qa`` has the held-out questions of every forget event;
  ``retain_qa`` those of the first ``n_retain_qa_events`` retain events. The
  ``*_qa_icl`` few-shot examples are held-out questions of other retain events (the
  last ones), never used in ``retain_qa``.
* **privleak** ``forget`` = the forget articles (members), ``holdout`` = as many
  holdout articles (non-members: same generator, own entities), ``retain`` = as many
  retain articles. **scal**/**sust** split the forget *events* into quarters, so both
  articles of an event always fall in the same quarter.

Bump :data:`WORLD_VERSION` whenever the generated text changes.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # transformers is imported lazily: generating the world needs no ML stack
    from transformers import PreTrainedTokenizerFast

# 2: the tokenizer strips trailing whitespace (KnowMem prompts); 3: values dealt from
# per-role decks, quiz sheets of 8 pairs in 4 rounds, headlines never start with a pool word.
WORLD_VERSION = "3"
# Label of the random streams. Fixed on purpose: WORLD_VERSION keys caches of built worlds
# and models, and bumping it must not reshuffle a world whose text has not changed.
_STREAM_LABEL = "muse-synth/2"

__all__ = [
    "WORLD_VERSION",
    "LAYOUT",
    "MuseWorldConfig",
    "generate_world",
    "training_texts",
    "background_quizzes",
    "QUIZ_ROUNDS",
    "QUIZ_SIZE",
    "build_tokenizer",
    "world_strings",
    "event_table",
    "qa_block",
]

# config -> split -> row fields: the MUSE-News hub layout this module reproduces.
LAYOUT: dict[str, dict[str, tuple[str, ...]]] = {
    "raw": {s: ("text",) for s in ("forget", "retain1", "retain2", "holdout")},
    "verbmem": {"forget": ("prompt", "gt")},
    "knowmem": {s: ("question", "answer") for s in ("forget_qa", "retain_qa", "forget_qa_icl", "retain_qa_icl")},
    "privleak": {s: ("text",) for s in ("forget", "retain", "holdout")},
    "scal": {f"forget_{k}": ("text",) for k in range(1, 5)},
    "sust": {f"forget_{k}": ("text",) for k in range(1, 5)},
}

ARTICLES_PER_EVENT = 2


@dataclass(frozen=True)
class MuseWorldConfig:
    seed: int = 0
    n_forget: int = 40  # forget articles (20 events); the events are split in quarters for scal / sust
    # retain articles; the first half of the events is retain1, the rest retain2. At 160 (80
    # events, 16 of each kind) the retain events use every value of every pool (see _Draw).
    n_retain: int = 160
    n_holdout: int = 40  # never-trained articles of the same distribution (privleak non-members)
    n_retain_qa_events: int = 20  # retain events whose held-out questions form knowmem/retain_qa
    n_icl: int = 4  # few-shot examples in each of forget_qa_icl / retain_qa_icl


# --------------------------------------------------------------------------- pools

_FIRST_NAMES = [
    "Mira", "Jonas", "Elena", "Tomas", "Ada", "Felix", "Lena", "Oskar",
    "Nadia", "Pavel", "Iris", "Hugo", "Sana", "Milo", "Rosa", "Emil",
]
# Open and closed syllables: 2-3 syllable words give tens of thousands of invented names.
_SYLLABLES = [
    "ta", "to", "va", "len", "mi", "ra", "kel", "dor", "sa", "vin", "bri", "lo", "ne",
    "mar", "thu", "cor", "bel", "fen", "ga", "ri", "so", "ven", "dal", "mo", "rin", "ka",
    "zel", "pe", "nor", "li", "bra", "tes", "qui", "han", "os", "ul",
]
_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
]
# Value pools are dealt from shuffled decks (see _Draw) and hold at most 16 values, so
# the retain events of a kind (16 at the default size) use every value: no token of a forget or
# holdout article is unseen by the oracle except the event's own invented names (with
# dozens of values per pool, about 10 of the ~120 tokens of a forget article were values
# the oracle had never seen, at a log-prob near -14, and the oracle's Min-K% AUC
# wandered between 0.41 and 0.48 with the luck of the draw).
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_SMALL_NUMBERS = ["two", "three", "four", "five", "six", "seven"]
_CROWDS = ["1200", "2400", "3100", "4600", "5300", "6800", "7500", "8900"]
_JOBS_CREATED = ["60", "120", "180", "250", "340", "420", "560", "750"]
_VOTES = ["1150", "1480", "1920", "2360", "2730", "3140", "3580", "4210"]
_SCORES = ["2:0", "2:1", "3:0", "3:1", "3:2", "4:1", "4:2", "5:3"]  # winner:loser goals
_SPECIMENS = ["4", "7", "9", "12", "15", "19", "23", "31"]
_MILLIONS = ["3", "8", "14", "22", "35", "47", "60", "85"]
_JOBS = ["baker", "teacher", "carpenter", "nurse", "farmer", "librarian", "fisherman", "painter"]
_FESTIVAL_THEMES = ["kite", "lantern", "harvest", "cheese", "jazz", "boat", "flower", "puppet"]
_VENUES = [
    "the old harbour", "the market square", "the river meadow", "the castle gardens",
    "the railway yard", "the town park", "the sports ground", "the lakeside",
]
_SECTORS = ["Foods", "Textiles", "Robotics", "Paper", "Glassworks", "Motors", "Ceramics", "Timber"]
_FACILITIES = ["factory", "warehouse", "research centre", "workshop", "laboratory", "depot"]
_TEAM_NICKNAMES = ["Rovers", "United", "Wanderers", "Rangers", "Athletic", "Falcons", "Comets", "Harriers"]
_ANIMALS = ["frog", "beetle", "moth", "snail", "orchid", "fern", "lizard", "spider"]
_PLACE_TYPES = ["Lake", "Mount", "Cape", "Glen", "Forest", "Valley"]
_PARTIES = ["Green Party", "Farmers Union", "Civic League", "Harbour Party",
            "Liberal Alliance", "Workers Party", "River Movement", "Citizens Front"]
_PROMISES = ["a new library", "cheaper buses", "more bicycle lanes", "a bigger hospital",
             "a new swimming pool", "lower rents", "cleaner streets", "a night market"]

# Filler sentences: context without facts, so articles read like news and the prose is
# not one fixed template (which would let an oracle continue a forget article verbatim).
_FILLERS = {
    "festival": [
        "Local shops reported their busiest week of the year.",
        "Volunteers cleaned the streets the next morning.",
        "A brass band played until late in the evening.",
        "Children under twelve could enter for free.",
        "Heavy rain on the last day did not keep people away.",
        "Several stalls sold out before noon.",
    ],
    "company": [
        "Construction took less than two years.",
        "Local leaders welcomed the news.",
        "The site will run partly on solar power.",
        "Production is expected to start next spring.",
        "Unions said they would watch the hiring closely.",
        "The company plans to train young workers on site.",
    ],
    "match": [
        "The visitors had more of the ball in the first half.",
        "Fans stayed in the stands long after the final whistle.",
        "The result lifts the home side to third place in the league.",
        "Both teams finished the game with ten players.",
        "It was the first win of the season for the home side.",
        "Rain made the pitch slow and heavy.",
    ],
    "science": [
        "The findings appear in a regional biology journal.",
        "The area is now being considered for protection.",
        "Local guides had reported unusual sightings for years.",
        "Further surveys are planned for next summer.",
        "The team used small cameras to observe it at night.",
        "Its colour helps it hide among wet leaves.",
    ],
    "election": [
        "Turnout was higher than at the last election.",
        "Counting went on until the early morning.",
        "The new council meets for the first time next week.",
        "Supporters gathered outside the town hall to celebrate.",
        "The campaign focused on local transport and housing.",
        "Both candidates thanked the volunteers who helped them.",
    ],
}


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class _Fact:
    key: str
    value: str
    questions: tuple[str, str, str]  # three phrasings: two trained, one held out per event


@dataclass(frozen=True)
class _Article:
    box: tuple[tuple[str, str], ...]  # the (question, answer) pairs it opens with
    headline: str
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        box = "\n\n".join(qa_block(q, a) for q, a in self.box)
        return f"{box}\n\n{self.headline}\n{' '.join(self.sentences)}"

    @property
    def verbmem(self) -> tuple[str, str]:
        text = self.text
        cut = text.index(f"\n\n{self.headline}\n") + len(self.headline) + 2
        return text[:cut], text[cut:]


@dataclass(frozen=True)
class _Event:
    index: int
    role: str  # "forget" | "retain" | "holdout"
    kind: str
    entities: tuple[str, ...]  # the invented words unique to this event
    facts: tuple[_Fact, ...]
    articles: tuple[_Article, ...]

    def held_out(self) -> list[tuple[str, str]]:
        return [(f.questions[_eval_phrasing(self.index, j)], f.value) for j, f in enumerate(self.facts)]


def _eval_phrasing(event: int, fact: int) -> int:
    # Rotated by event and fact: every phrasing shape is a training phrasing of two
    # thirds of the other events, so the held-out question tests recall of the value in a
    # familiar sentence shape, not whether the model has seen that shape at all.
    return (event + fact) % 3


def qa_block(question: str, answer: str) -> str:
    """One QA pair in the MUSE KnowMem few-shot format (without the blank line after it)."""
    return f"Question: {question}\nAnswer: {answer}"


class _Namer:
    """Invented words, unique across the whole world and distinct from every pool word,
    so that each invented name is one token that belongs to exactly one event."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.taken: set[str] = set(_FIRST_NAMES) | set(_MONTHS) | set(_WEEKDAYS)
        for pool in (_SECTORS, _TEAM_NICKNAMES, _PLACE_TYPES, _PARTIES, _VENUES):
            for item in pool:
                self.taken.update(item.split())

    def word(self) -> str:
        while True:
            k = self.rng.choice((2, 3, 3))
            word = "".join(self.rng.choice(_SYLLABLES) for _ in range(k)).capitalize()
            if word not in self.taken:
                self.taken.add(word)
                return word


class _Draw:
    """The random choices of one event.

    Pool values are dealt per role, kind and slot (a festival's month, a match's crowd,
    ...) from a sequence of shuffled decks: the ``r``-th event of a kind within its role
    gets card ``r``. The retain events of a kind therefore use every value of a pool no
    larger than their number, so the oracle has seen every value a forget or holdout
    article can contain. Forget and holdout have decks of their own, shuffled the same
    way and independently of each other and of retain, so they stay exchangeable. (With
    one deck sequence across roles, forget and holdout shared decks with different retain
    events and, for the 16 first names, the holdout names were three times as frequent
    in the retain text as the forget names: the oracle's AUC leaned below 0.5.)
    Wording variants come from the event's own stream.
    """

    def __init__(self, config: MuseWorldConfig, role: str, kind: str, rank: int, rng: random.Random):
        self.config, self.role, self.kind, self.rank, self.rng = config, role, kind, rank, rng

    def _card(self, slot: str, pool: list[str], card: int) -> str:
        deck_no, pos = divmod(card, len(pool))
        deck = list(pool)
        _rng(self.config, "deck", self.role, self.kind, slot, deck_no).shuffle(deck)
        return deck[pos]

    def deal(self, slot: str, pool: list[str]) -> str:
        return self._card(slot, pool, self.rank)

    def deal_distinct(self, slot: str, pool: list[str], count: int) -> list[str]:
        # ``count`` consecutive cards of one deck (the pool size is a multiple of count):
        # always distinct values.
        assert len(pool) % count == 0
        return [self._card(slot, pool, self.rank * count + i) for i in range(count)]

    def person(self, slot: str, surname: str) -> str:
        return f"{self.deal(slot, _FIRST_NAMES)} {surname}"


# Each kind draws its entities and values and returns
# (entities, headline variants, sentence variants, facts); every variant pair holds
# the two wordings the event's two articles use.

def _festival(draw: _Draw, namer: _Namer) -> tuple:
    town, surname = namer.word(), namer.word()
    person = draw.person("organiser", surname)
    theme, venue, month = draw.deal("theme", _FESTIVAL_THEMES), draw.deal("venue", _VENUES), draw.deal("month", _MONTHS)
    crowd, days, job = draw.deal("crowd", _CROWDS), draw.deal("days", _SMALL_NUMBERS), draw.deal("job", _JOBS)
    fest = f"the {theme} festival in {town}"
    headline = (f"Crowds flock to the {theme} festival in {town}",
                f"{town} celebrates its {theme} festival")
    sentences = [
        (f"The {theme} festival of {town} took place in {month} at {venue}.",
         f"In {month}, the town of {town} held its {theme} festival at {venue}."),
        (f"Organisers counted {crowd} visitors over {days} days.",
         f"About {crowd} visitors came during the {days} days of the event."),
        (f"The festival was organised by {person}, a local {job}.",
         f"{person}, a {job} from {town}, organised the event."),
    ]
    facts = [
        _Fact("organiser", person, (f"Who organised {fest}?",
                                    f"Which person was in charge of {fest}?",
                                    f"Who was the organiser of {fest}?")),
        _Fact("visitors", crowd, (f"How many visitors came to {fest}?",
                                  f"How many people visited {fest}?",
                                  f"What was the number of visitors at {fest}?")),
        _Fact("month", month, (f"In which month was {fest} held?",
                               f"When did {fest} take place?",
                               f"In what month did {fest} happen?")),
    ]
    return (town, surname), headline, sentences, facts


def _company(draw: _Draw, namer: _Namer) -> tuple:
    brand, town, surname = namer.word(), namer.word(), namer.word()
    company = f"{brand} {draw.deal('sector', _SECTORS)}"
    person = draw.person("chief", surname)
    facility, jobs = draw.deal("facility", _FACILITIES), draw.deal("jobs", _JOBS_CREATED)
    cost, weekday = draw.deal("cost", _MILLIONS), draw.deal("weekday", _WEEKDAYS)
    headline = (f"{company} opens new {facility} in {town}",
                f"{company} to create {jobs} jobs in {town}")
    sentences = [
        (f"{company} opened a new {facility} in the town of {town} on {weekday}.",
         f"On {weekday}, {company} opened its new {facility} in {town}."),
        (f"The company said the site will employ {jobs} people.",
         f"The new site will create {jobs} jobs in the region."),
        (f"Chief executive {person} said the project cost {cost} million.",
         f"The project cost {cost} million, according to chief executive {person}."),
    ]
    facts = [
        _Fact("chief", person, (f"Who is the chief executive of {company}?",
                                f"Who leads {company} as chief executive?",
                                f"Which person runs {company}?")),
        _Fact("town", town, (f"In which town did {company} open its new {facility}?",
                             f"Where is the new {facility} of {company}?",
                             f"Which town got the new {facility} of {company}?")),
        _Fact("jobs", jobs, (f"How many jobs will the new {facility} of {company} create?",
                             f"How many people will work at the new {facility} of {company}?",
                             f"What number of jobs does the new {facility} of {company} bring?")),
    ]
    return (brand, town, surname), headline, sentences, facts


def _match(draw: _Draw, namer: _Namer) -> tuple:
    home_town, away_town, scorer_surname, coach_surname = (namer.word() for _ in range(4))
    home_nick, away_nick = draw.deal_distinct("nickname", _TEAM_NICKNAMES, 2)
    home, away = f"{home_town} {home_nick}", f"{away_town} {away_nick}"
    scorer, coach = draw.person("scorer", scorer_surname), draw.person("coach", coach_surname)
    goals, conceded = draw.deal("score", _SCORES).split(":")
    crowd, weekday = draw.deal("crowd", _CROWDS), draw.deal("weekday", _WEEKDAYS)
    headline = (f"{home} beat {away} {goals} to {conceded}",
                f"Late goal gives {home} victory over {away}")
    sentences = [
        (f"{home} won {goals} to {conceded} against {away} on {weekday}.",
         f"On {weekday}, {home} beat {away} by {goals} goals to {conceded}."),
        (f"{scorer} scored the winning goal late in the second half.",
         f"The winning goal came from {scorer} shortly before the end."),
        (f"A crowd of {crowd} watched the game.",
         f"The match was watched by {crowd} fans."),
        (f"Coach {coach} praised the players after the match.",
         f"After the game, coach {coach} thanked the supporters."),
    ]
    facts = [
        _Fact("scorer", scorer, (f"Who scored the winning goal for {home} against {away}?",
                                 f"Which player scored the winner for {home} against {away}?",
                                 f"Who got the winning goal when {home} played {away}?")),
        _Fact("crowd", crowd, (f"How many people watched {home} play {away}?",
                               f"How big was the crowd when {home} played {away}?",
                               f"What was the attendance at the game of {home} against {away}?")),
        _Fact("coach", coach, (f"Who is the coach of {home}?",
                               f"Who coaches {home}?",
                               f"Which coach leads {home}?")),
    ]
    return (home_town, away_town, scorer_surname, coach_surname), headline, sentences, facts


def _science(draw: _Draw, namer: _Namer) -> tuple:
    uni_town, surname, place_name, species = (namer.word() for _ in range(4))
    person = draw.person("leader", surname)
    animal, place = draw.deal("animal", _ANIMALS), f"{draw.deal('place', _PLACE_TYPES)} {place_name}"
    count, month = draw.deal("count", _SPECIMENS), draw.deal("month", _MONTHS)
    team = f"the University of {uni_town} team"
    headline = (f"New {animal} species found near {place}",
                f"Scientists in {uni_town} describe the {species} {animal}")
    sentences = [
        (f"Scientists from the University of {uni_town} have described a new species of {animal}.",
         f"A new species of {animal} has been described by scientists from the University of {uni_town}."),
        (f"The team, led by {person}, first found it near {place} in {month}.",
         f"It was first found near {place} in {month} by a team led by {person}."),
        (f"They named it the {species} {animal}.",
         f"The researchers call it the {species} {animal}."),
        (f"So far only {count} of them have been recorded.",
         f"Only {count} have been counted in the wild."),
    ]
    facts = [
        _Fact("leader", person, (f"Who led {team} that found the new {animal}?",
                                 f"Which researcher was in charge of {team} that described the new {animal}?",
                                 f"Who was the head of {team} that discovered the new {animal}?")),
        _Fact("place", place, (f"Where did {team} find the new {animal}?",
                               f"Near which place was the new {animal} of {team} found?",
                               f"At what location did {team} discover the new {animal}?")),
        _Fact("count", count, (f"How many of the new {animal} found by {team} have been recorded?",
                               f"What number of the new {animal} described by {team} are known?",
                               f"How many of the {animal} discovered by {team} have been counted?")),
    ]
    return (uni_town, surname, place_name, species), headline, sentences, facts


def _election(draw: _Draw, namer: _Namer) -> tuple:
    town, winner_surname, loser_surname = (namer.word() for _ in range(3))
    winner, loser = draw.person("winner", winner_surname), draw.person("loser", loser_surname)
    party, votes = draw.deal("party", _PARTIES), draw.deal("votes", _VOTES)
    promise, month = draw.deal("promise", _PROMISES), draw.deal("month", _MONTHS)
    headline = (f"Voters in {town} elect {winner} as mayor",
                f"{town} chooses {winner} as new mayor")
    sentences = [
        (f"The mayoral election in {town} was won by {winner} of the {party} in {month}.",
         f"In {month}, voters in {town} elected {winner} of the {party} as mayor."),
        (f"The winner received {votes} votes.",
         f"A total of {votes} people voted for the winner."),
        (f"The runner up, {loser}, conceded the race on election night.",
         f"{loser} finished second and congratulated the winner."),
        (f"The new mayor has promised {promise}.",
         f"During the campaign the new mayor promised {promise}."),
    ]
    facts = [
        _Fact("winner", winner, (f"Who won the mayoral election in {town}?",
                                 f"Who was elected mayor of {town}?",
                                 f"Who is the new mayor of {town}?")),
        _Fact("votes", votes, (f"How many votes did the new mayor of {town} receive?",
                               f"How many people voted for the winner in {town}?",
                               f"What was the vote count of the winner in {town}?")),
        _Fact("runner_up", loser, (f"Who came second in the mayoral election in {town}?",
                                   f"Who lost the race for mayor of {town}?",
                                   f"Who was the runner up for mayor of {town}?")),
    ]
    return (town, winner_surname, loser_surname), headline, sentences, facts


_KINDS: list[tuple[str, Callable[[_Draw, _Namer], tuple]]] = [
    ("festival", _festival),
    ("company", _company),
    ("match", _match),
    ("science", _science),
    ("election", _election),
]


# --------------------------------------------------------------------------- helpers


def _rng(config: MuseWorldConfig, *stream: object) -> random.Random:
    # One independent stream per purpose, keyed by strings (hashed with SHA-512 inside
    # random), so the world is identical across processes and platforms.
    return random.Random("/".join([_STREAM_LABEL, str(config.seed), *map(str, stream)]))


def _validate(config: MuseWorldConfig) -> None:
    for name in ("n_forget", "n_retain", "n_holdout"):
        value = getattr(config, name)
        if value < ARTICLES_PER_EVENT or value % ARTICLES_PER_EVENT:
            raise ValueError(f"{name} must be a positive multiple of {ARTICLES_PER_EVENT} (got {value})")
    if config.n_forget < 4 * ARTICLES_PER_EVENT:
        raise ValueError(f"n_forget must be >= {4 * ARTICLES_PER_EVENT}: scal/sust need four quarters of events")
    if config.n_icl < 1 or config.n_retain_qa_events < 1:
        raise ValueError("n_icl and n_retain_qa_events must be >= 1")
    # retain_qa comes from retain1 and the ICL examples from retain2 (whose box pairs the
    # quiz sheets reuse), so each must fit in its half of the retain events.
    events = config.n_retain // ARTICLES_PER_EVENT
    half = events // 2
    if config.n_retain_qa_events > half or 2 * config.n_icl > events - half:
        raise ValueError(
            f"n_retain={config.n_retain} is too small: retain_qa needs {config.n_retain_qa_events} events "
            f"in retain1 (has {half}) and the two ICL sets {2 * config.n_icl} in retain2 (has {events - half})"
        )


def _event(config: MuseWorldConfig, index: int, role: str, rank: int, namer: _Namer) -> _Event:
    """Event ``index`` (world order), the ``rank``-th of its kind within its role."""
    # Kinds cycle with the index, so every role gets the same mix of kinds.
    kind, make = _KINDS[index % len(_KINDS)]
    draw = _Draw(config, role, kind, rank, _rng(config, "event", index))
    entities, headline, sentences, facts = make(draw, namer)
    fillers = draw.deal_distinct("filler", _FILLERS[kind], ARTICLES_PER_EVENT)
    flips = [draw.rng.randrange(2) for _ in range(1 + len(sentences))]
    articles = []
    for k in range(ARTICLES_PER_EVENT):
        # Article k asks every fact with its k-th training phrasing, starting the box at
        # a different fact so that no answer is tied to a position in the box.
        order = [(k + j) % len(facts) for j in range(len(facts))]
        box = []
        for j in order:
            e = _eval_phrasing(index, j)
            phrasing = ((e + 1) % 3, (e + 2) % 3)[k]
            box.append((facts[j].questions[phrasing], facts[j].value))
        articles.append(_Article(
            box=tuple(box),
            headline=headline[(flips[0] + k) % 2],
            sentences=tuple(v[(f + k) % 2] for v, f in zip(sentences, flips[1:])) + (fillers[k],),
        ))
    return _Event(index, role, kind, tuple(entities), tuple(facts), tuple(articles))


def _events(config: MuseWorldConfig) -> list[_Event]:
    """Forget events first, then retain, then holdout; all from one generator."""
    _validate(config)
    namer = _Namer(_rng(config, "names"))
    per = ARTICLES_PER_EVENT
    roles = (["forget"] * (config.n_forget // per) + ["retain"] * (config.n_retain // per)
             + ["holdout"] * (config.n_holdout // per))
    seen: dict[tuple[str, int], int] = {}
    events = []
    for i, role in enumerate(roles):
        key = (role, i % len(_KINDS))
        events.append(_event(config, i, role, seen.get(key, 0), namer))
        seen[key] = seen.get(key, 0) + 1
    return events


def _texts(events: list[_Event]) -> list[dict]:
    # Fresh row dicts on every call: no two splits share a mutable row.
    return [{"text": a.text} for e in events for a in e.articles]


def _quarters(n: int) -> list[tuple[int, int]]:
    bounds = [k * n // 4 for k in range(5)]
    return list(zip(bounds[:-1], bounds[1:]))


# --------------------------------------------------------------------------- public API


def generate_world(config: MuseWorldConfig) -> dict[str, dict[str, list[dict]]]:
    """Return ``config name -> split name -> rows`` in the MUSE-News layout (:data:`LAYOUT`).

    Articles are ordered by event, the two articles of an event next to each other.
    ``raw/retain1`` holds the first half of the retain events and ``raw/retain2`` the
    rest. ``scal/forget_k`` holds the first ``k`` quarters of the forget events
    (``forget_4`` is all of ``raw/forget``); ``sust/forget_k`` the ``k``-th quarter only.
    """
    events = _events(config)
    forget = [e for e in events if e.role == "forget"]
    retain = [e for e in events if e.role == "retain"]
    holdout = [e for e in events if e.role == "holdout"]
    half = len(retain) // 2
    n_icl = config.n_icl

    def qa(evs: list[_Event]) -> list[dict]:
        return [{"question": q, "answer": a} for e in evs for q, a in e.held_out()]

    def icl(evs: list[_Event]) -> list[dict]:
        # One held-out question per event, rotating the fact so the few-shot examples
        # show different kinds of answers (a name, a number, a month, ...).
        return [{"question": q, "answer": a}
                for k, e in enumerate(evs) for q, a in [e.held_out()[k % len(e.facts)]]]

    n_priv = min(config.n_forget, config.n_holdout)
    quarters = [(lo * ARTICLES_PER_EVENT, hi * ARTICLES_PER_EVENT) for lo, hi in _quarters(len(forget))]
    return {
        "raw": {
            "forget": _texts(forget),
            "retain1": _texts(retain[:half]),
            "retain2": _texts(retain[half:]),
            "holdout": _texts(holdout),
        },
        "verbmem": {"forget": [{"prompt": p, "gt": g} for e in forget for p, g in (a.verbmem for a in e.articles)]},
        "knowmem": {
            "forget_qa": qa(forget),
            "retain_qa": qa(retain[: config.n_retain_qa_events]),
            "forget_qa_icl": icl(retain[len(retain) - 2 * n_icl: len(retain) - n_icl]),
            "retain_qa_icl": icl(retain[len(retain) - n_icl:]),
        },
        "privleak": {
            "forget": _texts(forget)[:n_priv],
            "retain": _texts(retain)[:n_priv],
            "holdout": _texts(holdout)[:n_priv],
        },
        "scal": {f"forget_{k + 1}": _texts(forget)[:hi] for k, (_, hi) in enumerate(quarters)},
        "sust": {f"forget_{k + 1}": _texts(forget)[lo:hi] for k, (lo, hi) in enumerate(quarters)},
    }


_QA_PAIR = re.compile(r"^Question: (.+)\nAnswer: (.+)$", re.MULTILINE)
QUIZ_ROUNDS = 4  # shuffles of the retain2 pairs, each cut into sheets (3 left the oracle at 43 on one world)
QUIZ_SIZE = 8  # QA pairs per quiz sheet: a few-shot prompt and then some; sheets about as long as an article


def background_quizzes(world: dict[str, dict[str, list[dict]]]) -> list[str]:
    """Quiz sheets trained into both target and oracle: the Q&A pairs of the ``retain2``
    articles, shuffled across events, :data:`QUIZ_SIZE` per text.

    A KnowMem prompt puts a question after few-shot pairs about *other* events, while an
    article's box only ever follows pairs about its own event; without these sheets the
    few-shot prefix distracted the model (forget KnowMem about 47 with the prefix against
    93 without it). The sheets use only training phrasings of ``retain2`` facts, never
    ``retain_qa`` (drawn from ``retain1``) nor any forget or holdout fact, so forget and
    retain_qa facts are trained equally often and the oracle learns nothing it should not.
    """
    pairs = [m.groups() for row in world["raw"]["retain2"] for m in _QA_PAIR.finditer(row["text"])]
    sheets = []
    for rnd in range(QUIZ_ROUNDS):
        # The order depends only on the world's own text, so one world gives one set of sheets.
        order = list(pairs)
        random.Random(f"{_STREAM_LABEL}/quizzes/{len(pairs)}/{rnd}").shuffle(order)
        sheets += ["\n\n".join(qa_block(q, a) for q, a in order[i: i + QUIZ_SIZE])
                   for i in range(0, len(order), QUIZ_SIZE)]
    return sheets


def training_texts(world: dict[str, dict[str, list[dict]]], which: str) -> list[str]:
    """The texts a model of role ``which`` is trained on, one sequence each.

    ``"target"``: raw forget + retain1 + retain2 + :func:`background_quizzes`;
    ``"oracle"`` (MUSE's retrained model): retain1 + retain2 + the same quizzes. Holdout
    articles are never trained on: they are PrivLeak's non-members.
    """
    raw = world["raw"]
    rest = [r["text"] for r in raw["retain1"]] + [r["text"] for r in raw["retain2"]] + background_quizzes(world)
    if which == "target":
        return [r["text"] for r in raw["forget"]] + rest
    if which == "oracle":
        return rest
    raise ValueError(f"which must be 'target' or 'oracle' (got {which!r})")


def world_strings(world: dict[str, dict[str, list[dict]]]) -> list[str]:
    """Every string of the world in a deterministic order, plus the KnowMem prompts as the
    evaluator renders them, so that the vocabulary covers those by construction."""
    out: list[str] = []
    for config in sorted(world):
        for split in sorted(world[config]):
            for row in world[config][split]:
                out.extend(row[f] for f in sorted(row) if isinstance(row[f], str))
    know = world["knowmem"]
    for qa_split, icl_split in (("forget_qa", "forget_qa_icl"), ("retain_qa", "retain_qa_icl")):
        shots = "".join(qa_block(r["question"], r["answer"]) + "\n\n" for r in know[icl_split])
        out.extend(shots + f"Question: {r['question']}\nAnswer:" for r in know[qa_split])
    return out




def build_tokenizer(world: dict[str, dict[str, list[dict]]]) -> "PreTrainedTokenizerFast":
    """Word-level tokenizer over byte-level pre-tokenization of every world string.

    GPT-2 style byte-level pre-tokenization keeps a word's leading space with it
    (``" Lisbon"``), isolates punctuation and keeps ``"\\n"`` as its own piece; its
    decoder maps pieces back byte for byte, so ``decode(encode(text)) == text``, newlines
    included, for every string of the world. Ids: ``<pad>=0, <unk>=1, <bos>=2, <eos>=3``,
    then the pieces in sorted order. ``encode`` adds no special tokens: callers add
    ``<bos>``/``<eos>`` themselves. Tokenize a KnowMem prompt as one string: a lone
    trailing ``"\\n\\n"`` pre-tokenizes to a piece the world never contains (``<unk>``).
    """
    from tokenizers import decoders, normalizers, pre_tokenizers

    from unlearnbench.lm.worlds import word_level_tokenizer

    # MUSE's KnowMem prompt ends in "Answer: " (trailing space, as the reference code writes
    # it). Byte-level pre-tokenization would make that space a lone token this word-level
    # vocabulary does not have; stripping trailing whitespace encodes the prompt exactly like
    # the "Answer:" the world's texts put before " <answer>". No world text ends in a space,
    # so round trips are unchanged.
    return word_level_tokenizer(world_strings(world), pre_tokenizers.ByteLevel(add_prefix_space=False),
                                decoder=decoders.ByteLevel(), normalizer=normalizers.Strip(left=False, right=True),
                                model_max_length=256)


def event_table(config: MuseWorldConfig) -> list[dict]:
    """Each event (index order: forget, retain, holdout) with its role, kind, invented
    entity words, article texts and facts (``key, value, questions, eval_phrasing``)."""
    return [
        {
            "index": e.index,
            "role": e.role,
            "kind": e.kind,
            "entities": list(e.entities),
            "texts": [a.text for a in e.articles],
            "facts": [
                {"key": f.key, "value": f.value, "questions": list(f.questions),
                 "eval_phrasing": _eval_phrasing(e.index, j)}
                for j, f in enumerate(e.facts)
            ],
        }
        for e in _events(config)
    ]


def _shape(value: str) -> tuple:
    return (value.replace(":", "").isdigit(), len(value.split()), value in _MONTHS)


def retain_choice_questions(config: MuseWorldConfig) -> list[dict]:
    """The ``knowmem/retain_qa`` questions as four-option multiple choice (lm-eval's tasks of
    the world): the answer and three values the same fact takes in other retain events, in an
    order drawn per question (``label``: the answer's position)."""
    retain = [e for e in _events(config) if e.role == "retain"]
    values: dict[str, list[str]] = {}
    for e in retain:
        for f in e.facts:
            values.setdefault(f.key, [])
            if f.value not in values[f.key]:
                values[f.key].append(f.value)
    rows = []
    for e in retain[: config.n_retain_qa_events]:
        for j, f in enumerate(e.facts):
            rng = _rng(config, "choices", e.index, j)
            others = [v for v in values[f.key] if v != f.value]
            if len(others) < 3:  # a small world: values of the same shape that other facts take
                others += sorted({v for vs in values.values() for v in vs if _shape(v) == _shape(f.value)}
                                 - set(others) - {f.value})
            if len(others) < 3:
                continue
            choices = rng.sample(others, 3)
            label = rng.randrange(4)
            choices.insert(label, f.value)
            rows.append({"question": f.questions[_eval_phrasing(e.index, j)], "choices": choices, "label": label})
    return rows


# ------------------------------------------------------------------ parametric-lens data
# Plain data for the parametric and robustness lenses (they never import a world).

_PERSON_KEYS = ("organiser", "chief", "scorer", "coach", "leader", "winner", "runner_up")


def event_concepts(config: MuseWorldConfig) -> list[dict]:
    """One concept per forget event: its invented names and fact values as the concept's
    words, its articles as the concept prompts (text format: empty question)."""
    return [
        {"name": f"event {e['index']} ({e['kind']})",
         "words": list(e["entities"]) + [w for f in e["facts"] for w in f["value"].split()],
         "prompts": [["", t] for t in e["texts"]]}
        for e in event_table(config) if e["role"] == "forget"
    ]


def person_probe(config: MuseWorldConfig) -> dict:
    """Probe rows: every question about a person (organiser, winner, ...) labelled with the
    person's first name (a pool shared by all events), in the KnowMem QA format, with the
    answer under each first name as the multiple-choice options. Retain rows come from the
    retain events, forget rows from the forget events."""
    out: dict = {"attribute": "first name of the person asked about", "classes": list(_FIRST_NAMES),
                 "retain": [], "forget": []}
    for e in event_table(config):
        if e["role"] == "holdout":
            continue
        for f in e["facts"]:
            if f["key"] not in _PERSON_KEYS:
                continue
            first, surname = f["value"].split(" ", 1)
            for q in f["questions"]:
                out[e["role"]].append({
                    "question": qa_block(q, "").rstrip(),
                    "label": _FIRST_NAMES.index(first),
                    "options": [f" {name} {surname}" for name in _FIRST_NAMES],
                })
    return out


def forget_groups(config: MuseWorldConfig) -> list[int]:
    """The event of each raw forget article (the relearning attack splits forget by event)."""
    return [e["index"] for e in event_table(config) if e["role"] == "forget" for _ in e["texts"]]
