"""The MUSE task family (Shi et al., 2024, "MUSE: Machine Unlearning Six-Way Evaluation for
Language Models").

``muse/news`` and ``muse/books``: the real benchmark. Data from the hub
(``muse-bench/MUSE-News``, ``muse-bench/MUSE-Books``) or from ``--data-dir`` holding the same
layout: one folder per subset (``raw``, ``verbmem``, ``knowmem``, ``privleak``, and for News
``scal`` and ``sust``) with one file per split (``<split>-00000-of-00001.parquet`` as on the
hub, or ``<split>.json`` / ``.jsonl``). Target and oracle from ``--model`` / ``--oracle``;
the published ones are ``muse-bench/MUSE-<Corpus>_target`` and ``_retrain``.

``muse-synth/news``: a news world this package builds offline and deterministically
(:mod:`unlearnbench.lm.worlds.muse_synth`), written in exactly that layout, with a tiny Llama
target trained on forget + retain and an oracle on retain only, loaded back through the same
loader and the same ``from_pretrained`` call as the real ones.

Methods unlearn raw text: each text is one sequence (empty prompt, the text as the "answer"),
cut into windows of ``max_train_tokens`` tokens for models with long documents.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from unlearnbench.cache import building, cache_root, fingerprint, missing
from unlearnbench.data import load_splits, split_digests, split_files, write_parquet_split
from unlearnbench.errors import DataError
from unlearnbench.lm import lmeval
from unlearnbench.lm.modeling import PromptFormat, TinyLlamaConfig, TrainConfig, model_config, tiny_llama_recipe, train_config
from unlearnbench.lm.worlds import build_world_model
from unlearnbench.registry import register_task
from unlearnbench.reproducible import BUILD_VERSION
from unlearnbench.task import LanguageModelTask, Recipe, TaskSpec, hub_snapshot, model_source

FAMILY_VERSION = "1"
HUB_DATASETS = {"news": "muse-bench/MUSE-News", "books": "muse-bench/MUSE-Books"}
HUB_TARGET = "muse-bench/MUSE-{corpus}_target"
HUB_ORACLE = "muse-bench/MUSE-{corpus}_retrain"
TEXT, QA, VERBMEM = ("text",), ("question", "answer"), ("prompt", "gt")
STEPS = ("forget_1", "forget_2", "forget_3", "forget_4")
MODE_SUBSETS = {"scalability": "scal", "sustainability": "sust"}
# Raw text as a sequence: no prompt (just BOS), the whole text scored and trained on.
TEXT_FORMAT = PromptFormat(template="{question}", answer_prefix="")
REAL_MAX_TRAIN_TOKENS = 2048  # MUSE trains and unlearns on 2048-token chunks


def muse_schema(corpus: str) -> dict[str, dict[str, tuple[str, ...] | tuple[tuple[str, ...], tuple[str, ...]]]]:
    """Subset -> split -> required fields. A split given as a tuple of names accepts the first
    that exists (MUSE-Books has called its retain QA ``retain2_qa`` in some revisions)."""
    schema = {
        "raw": {"forget": TEXT, "retain1": TEXT, "retain2": TEXT, "holdout": TEXT},
        "verbmem": {"forget": VERBMEM},
        "knowmem": {"forget_qa": QA, "forget_qa_icl": QA, ("retain_qa", "retain2_qa"): QA,
                    ("retain_qa_icl", "retain2_qa_icl"): QA},
        "privleak": {"forget": TEXT, "holdout": TEXT},
    }
    if corpus == "news":
        schema["scal"] = {s: TEXT for s in STEPS}
        schema["sust"] = {s: TEXT for s in STEPS}
    return schema


def _pick_split(folder: Path, names) -> str:
    if isinstance(names, str):
        return names
    for name in names:
        if split_files(folder, name):
            return name
    return names[0]  # missing: load_splits names it


def load_muse_folder(root: Path, corpus: str, layout: str) -> dict[str, dict]:
    """Every subset and split of the MUSE layout, validated; errors name the subset, split and field."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"MUSE data folder {str(root)!r} does not exist.")
    schema = muse_schema(corpus)
    absent = [subset for subset in schema if not (root / subset).is_dir()]
    if absent:
        raise DataError(
            f"MUSE data folder {str(root)!r} has no subset folder(s) {', '.join(absent)}. The {layout} layout is "
            f"one folder per subset ({', '.join(schema)}) with one file per split, e.g. raw/forget-00000-of-00001.parquet."
        )
    out = {}
    for subset, splits in schema.items():
        folder = root / subset
        resolved = {_pick_split(folder, names): fields for names, fields in splits.items()}
        loaded = load_splits(folder, resolved, layout_name=f"{layout} '{subset}' subset", text=True)
        # the first alternative's name is the canonical one (retain_qa, retain_qa_icl)
        out[subset] = {(names if isinstance(names, str) else names[0]): loaded[_pick_split(folder, names)]
                       for names in splits}
    return out


def _text_rows(rows) -> list[dict]:
    """Text rows (a Dataset or a list of dicts) as prompt-less sequences."""
    return [{"question": "", "answer": row["text"]} for row in rows]


def _roles(data: dict[str, dict]) -> dict:
    """What the runner, the methods and the MUSE suite read, by role."""
    from datasets import Dataset

    def texts(ds):
        return Dataset.from_list(_text_rows(ds))

    roles = {
        "forget": texts(data["raw"]["forget"]),
        "retain": texts(data["raw"]["retain1"]),
        "holdout": texts(data["raw"]["holdout"]),
        "verbmem_forget": data["verbmem"]["forget"],
        "knowmem_forget_qa": data["knowmem"]["forget_qa"],
        "knowmem_forget_qa_icl": data["knowmem"]["forget_qa_icl"],
        "knowmem_retain_qa": data["knowmem"]["retain_qa"],
        "knowmem_retain_qa_icl": data["knowmem"]["retain_qa_icl"],
        "privleak_forget": data["privleak"]["forget"],
        "privleak_holdout": data["privleak"]["holdout"],
    }
    for subset in ("scal", "sust"):
        for step in STEPS:
            if subset in data:
                roles[f"{subset}/{step}"] = texts(data[subset][step])
    return roles


def _data_fingerprint(root: Path, corpus: str) -> str:
    """The sha256 of each split's files (in name order), by subset and (canonical) split name."""
    digests = {}
    for subset, splits in muse_schema(corpus).items():
        folder = Path(root).expanduser() / subset
        for names in splits:
            canonical = names if isinstance(names, str) else names[0]
            digests[f"{subset}/{canonical}"] = split_digests(folder, _pick_split(folder, names))
    return fingerprint(digests)


def _modes(corpus: str) -> tuple[str, ...]:
    return tuple(MODE_SUBSETS) if corpus == "news" else ()


# ------------------------------------------------------------------------------ real MUSE


def make_muse_task(corpus: str, *, data_dir: str | None = None, model: str | None = None, oracle: str | None = None,
                   max_train_tokens: int = REAL_MAX_TRAIN_TOKENS, **_) -> LanguageModelTask:
    layout = HUB_DATASETS[corpus].split("/")[1]
    if data_dir is None:
        folder = hub_snapshot(HUB_DATASETS[corpus], [f"{s}/*" for s in muse_schema(corpus)], offline_variant="muse-synth/news")
    else:
        folder = Path(data_dir)
    data = load_muse_folder(folder, corpus, layout)
    title = corpus.capitalize()
    target_src = model or f"hub:{HUB_TARGET.format(corpus=title)}"
    oracle_src = oracle or f"hub:{HUB_ORACLE.format(corpus=title)}"
    return LanguageModelTask(
        spec=TaskSpec(f"muse/{corpus}", "muse", FAMILY_VERSION, (("corpus", corpus), ("max_train_tokens", max_train_tokens))),
        splits=_roles(data),
        prompt_format=TEXT_FORMAT,
        suite="muse",
        load_target=lambda **kw: model_source(target_src, **kw),
        load_oracle=lambda **kw: model_source(oracle_src, **kw),
        data_fingerprint=_data_fingerprint(folder, corpus),
        modes=_modes(corpus),
        max_train_tokens=max_train_tokens,
        extra={"target_source": target_src, "oracle_source": oracle_src},
    )


# ------------------------------------------------------------------------- synthetic MUSE


def _default_world():
    from unlearnbench.lm.worlds.muse_synth import MuseWorldConfig

    return MuseWorldConfig()


@dataclass(frozen=True)
class MuseSynthConfig:
    """Everything that defines the synthetic news world and its models (the cache key)."""

    world: object = field(default_factory=_default_world)  # worlds.muse_synth.MuseWorldConfig
    model: TinyLlamaConfig = TinyLlamaConfig()
    # ~1080 optimizer steps: small batches matter more than epochs for the KnowMem signal
    # (world v3, seeds 0-3: target knowmem_forget ~60, oracle ~4, retain ~70 for both).
    train: TrainConfig = TrainConfig(lr=2e-3, epochs=27, batch_size=8, warmup_fraction=0.05)
    target_seed: int = 0
    oracle_seed: int = 1000  # apart from any run seed a user is likely to pick


def synth_config(options: MuseSynthConfig | dict | None) -> MuseSynthConfig:
    """The config itself, or rebuilt from the JSON a record stores (``task.options.synth``)."""
    from unlearnbench.lm.worlds.muse_synth import MuseWorldConfig

    if options is None or isinstance(options, MuseSynthConfig):
        return options or MuseSynthConfig()
    return MuseSynthConfig(**{**options, "world": MuseWorldConfig(**options["world"]),
                              "model": model_config(options["model"]), "train": train_config(options["train"])})


def _recipe(config: MuseSynthConfig, tokenizer, background: list[str], quiet: bool):
    """Train a tiny Llama from scratch on text rows plus the texts every model sees."""
    return tiny_llama_recipe(tokenizer, TEXT_FORMAT, config.model, config.train,
                             [{"question": "", "answer": t} for t in background], quiet)


def _background(world) -> list[str]:
    """What the oracle trains on beyond the retain split methods see (raw/retain1)."""
    from unlearnbench.lm.worlds import muse_synth

    retain1 = {r["text"] for r in world["raw"]["retain1"]}
    return [t for t in muse_synth.training_texts(world, "oracle") if t not in retain1]


def synth_world_dir(config: MuseSynthConfig) -> Path:
    from unlearnbench.lm.worlds import muse_synth

    key = {"world_version": muse_synth.WORLD_VERSION, "family": FAMILY_VERSION, "build": BUILD_VERSION,
           "config": asdict(config)}
    return cache_root() / "muse-synth" / fingerprint(key)


def ensure_synth_world(config: MuseSynthConfig, *, quiet: bool = False) -> Path:
    """Build (once) the data in hub layout, the tokenizer, the target and the oracle."""
    from unlearnbench.lm.worlds import muse_synth

    root = synth_world_dir(config)
    data, tok_dir = root / "data", root / "tokenizer"
    world = None
    if missing(data) or missing(tok_dir):
        world = muse_synth.generate_world(config.world)
        if missing(data):
            with building(data) as tmp:
                for subset, splits in world.items():
                    for split, rows in splits.items():
                        write_parquet_split(tmp / subset, split, rows)
        if missing(tok_dir):
            with building(tok_dir) as tmp:
                muse_synth.build_tokenizer(world).save_pretrained(tmp)
    for role, seed in (("target", config.target_seed), ("oracle", config.oracle_seed)):
        out = root / role
        if not missing(out):
            continue
        from transformers import AutoTokenizer

        world = world or muse_synth.generate_world(config.world)
        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        train = _recipe(config, tokenizer, _background(world), quiet)
        rows = _text_rows(world["raw"]["retain1"])
        if role == "target":
            rows = _text_rows(world["raw"]["forget"]) + rows
        build_world_model(out, train, rows, seed, tokenizer, description=f"training {role} (muse-synth)")
    return root


MUSE_SYNTH_LM_EVAL = "muse_synth_retain_events"


def synth_lm_eval_tasks(config: MuseSynthConfig, folder: Path) -> dict | None:
    """The retain events' KnowMem questions as a four-option lm-eval task (the world's own, for
    ``--lens +lm-eval`` offline)."""
    from unlearnbench.lm.worlds import muse_synth

    rows = muse_synth.retain_choice_questions(config.world)
    if not rows:
        return None
    lmeval.write_choice_task(folder, MUSE_SYNTH_LM_EVAL, rows, doc_to_text="Question: {{question}}\nAnswer:")
    return {"include_path": str(folder), "tasks": (MUSE_SYNTH_LM_EVAL,)}


def make_muse_synth_task(*, data_dir: str | None = None, model: str | None = None, oracle: str | None = None,
                         quiet: bool = False, synth: MuseSynthConfig | None = None, **_) -> LanguageModelTask:
    config = synth_config(synth)
    if data_dir is not None:
        raise DataError("muse-synth builds its own data; --data-dir is for the real tasks (muse/news, muse/books).")
    root = ensure_synth_world(config, quiet=quiet)
    data = load_muse_folder(root / "data", "news", "MUSE-News")
    target_src = model or str(root / "target")
    oracle_src = oracle or str(root / "oracle")
    from transformers import AutoTokenizer

    from unlearnbench.lm.worlds import muse_synth

    tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer")
    background = _background(muse_synth.generate_world(config.world))
    lens_data = {"concepts": muse_synth.event_concepts(config.world), "probes": muse_synth.person_probe(config.world),
                 "forget_groups": muse_synth.forget_groups(config.world)}
    options = (("corpus", "news"),) + ((("synth", asdict(config)),) if synth else ())
    return LanguageModelTask(
        spec=TaskSpec("muse-synth/news", "muse-synth", FAMILY_VERSION, options),
        splits=_roles(data),
        prompt_format=TEXT_FORMAT,
        suite="muse",
        load_target=lambda **kw: model_source(target_src, **kw),
        load_oracle=lambda **kw: model_source(oracle_src, **kw),
        recipe=Recipe(name="muse-synth-tiny-llama", train=_recipe(config, tokenizer, background, quiet),
                      description=f"tiny Llama {config.model}, {config.train}",
                      background=[{"question": "", "answer": t} for t in background]),
        data_fingerprint=root.name,
        modes=_modes("news"),
        max_train_tokens=config.model.max_position_embeddings - 2,  # room for BOS and EOS
        **lens_data,
        lm_eval=synth_lm_eval_tasks(config, root / "lm-eval"),
        extra={"target_source": target_src, "oracle_source": oracle_src, "world_dir": str(root)},
    )


# open-unlearning's MUSE recipe (configs/experiment/unlearn/muse/default.yaml over its finetune
# trainer): lr 1e-5 constant, 10 epochs, batch 4 x 8 accumulation steps, gradient checkpointing
MUSE_PRESETS = {"*": {"lr": 1e-5, "epochs": 10, "batch_size": 4, "grad_accum": 8, "weight_decay": 0.0,
                      "warmup_fraction": 0.0, "schedule": "constant", "gradient_checkpointing": True},
                # open-unlearning's community runs on MUSE (community/methods/UNDIAL, PDU: run.sh)
                "undial": {"lr": 1e-4, "batch_size": 4, "grad_accum": 4, "beta": 10.0, "alpha": 0.0}}
# PDU's published MUSE runs (Llama-2-7B targets): retain preference 50, dual step 1, 3 warm-up
# epochs; the constraint's eps is the corpus's
PDU_EPS = {"news": 1.5, "books": 0.1}

for _corpus in HUB_DATASETS:
    _presets = {**MUSE_PRESETS, "pdu": {"gamma": 1.0, "alpha": 50.0, "dual_step_size": 1.0, "dual_warmup_epochs": 3,
                                        "retain_loss_eps": PDU_EPS[_corpus]}}
    register_task(f"muse/{_corpus}", suite="muse", summary=f"MUSE-{_corpus.capitalize()} (hub {HUB_DATASETS[_corpus]} or --data-dir)",
                  modes=", ".join(_modes(_corpus)) or "-", presets=_presets)(lambda _c=_corpus, **kw: make_muse_task(_c, **kw))
# the synthetic world's two-layer model: RMU steers the last layer's output (as tofu-synth's
# preset); the others tuned on seed 0 (oracle: VerbMem 42, KnowMem forget 4, retain 73,
# PrivLeak 0) towards the oracle's four numbers
SYNTH_PRESETS = {"rmu": {"layer": 1, "update_layers": "0,1", "steering_coeff": 100.0, "alpha": 10.0, "lr": 1e-2,
                         "epochs": 5, "batch_size": 32},
                 "wga": {"epochs": 8},
                 "satimp": {"epochs": 15},
                 "undial": {"beta": 30.0, "alpha": 1.0, "lr": 3e-3, "epochs": 20},
                 "pdu": {"alpha": 50.0, "retain_loss_eps": 0.1, "dual_warmup_epochs": 1},
                 "flat": {"lr": 4e-4},
                 "ceu": {"lr": 2e-4},
                 "rl": {"epochs": 10}}

register_task("muse-synth/news", suite="muse", summary="synthetic MUSE-News world, built offline", modes=", ".join(_modes("news")),
              presets=SYNTH_PRESETS)(
    make_muse_synth_task
)
