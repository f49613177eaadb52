"""The WMDP task family (Li et al., 2024, "The WMDP Benchmark: Measuring and Reducing
Malicious Use With Unlearning").

``wmdp/bio`` and ``wmdp/cyber``: the real benchmark. Questions ``cais/wmdp`` (``wmdp-bio``,
``wmdp-cyber``), measured through lm-eval's own ``wmdp_bio`` / ``wmdp_cyber`` configurations;
forget corpora ``cais/wmdp-bio-forget-corpus`` (gated: request access) and ``cais/wmdp-corpora``
(``cyber-forget-corpus``); retain corpus wikitext-2 (``Salesforce/wikitext``, the test split, as
the paper's RMU code); general ability through lm-eval's ``mmlu``. From the hub, or from
``--data-dir`` holding one folder per hub dataset in its layout::

    wmdp/wmdp-bio/test-00000-of-00001.parquet                     question, choices, answer
    wmdp-corpora/bio-forget-corpus/train-00000-of-00001.parquet    text   (or train.jsonl)
    wikitext/wikitext-2-raw-v1/test-00000-of-00001.parquet         text
    mmlu/<subject>/test-00000-of-00001.parquet                     optional; without it lm-eval's
                                                                   mmlu reads cais/mmlu from the hub

Target ``--model`` (default ``HuggingFaceH4/zephyr-7b-beta``, the paper's); WMDP has no
retrained model, so there is no oracle unless ``--oracle`` names one.

``wmdp-synth/bio``: a world this package builds offline (:mod:`unlearnbench.lm.worlds.wmdp_synth`)
in exactly that layout, with a tiny Llama target trained on the forget and retain corpora and an
oracle on the retain corpus only, loaded back through the same loader.

Roles: ``forget`` (the forget corpus without its last ``holdout_docs`` documents: what methods
unlearn), ``holdout`` (those last documents: the privacy lens's non-members, of the same
distribution), ``retain`` (the retain corpus, texts of at least 50 characters). Every text is one
sequence (no prompt), cut into windows of ``max_train_tokens`` tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from unlearnbench.cache import building, cache_root, fingerprint, missing
from unlearnbench.data import load_splits, split_digests, split_files, write_parquet_split
from unlearnbench.errors import DataError, UserError
from unlearnbench.lm import lmeval
from unlearnbench.lm.modeling import PromptFormat, TinyLlamaConfig, TrainConfig, model_config, tiny_llama_recipe, train_config
from unlearnbench.lm.worlds import build_world_model
from unlearnbench.registry import register_task
from unlearnbench.reproducible import BUILD_VERSION
from unlearnbench.task import LanguageModelTask, Recipe, TaskSpec, hub_snapshot, model_source

FAMILY_VERSION = "1"
DOMAINS = {"bio": "biology", "cyber": "cybersecurity"}
HUB_QUESTIONS = "cais/wmdp"
HUB_FORGET = {"bio": ("cais/wmdp-bio-forget-corpus", ""), "cyber": ("cais/wmdp-corpora", "cyber-forget-corpus")}
HUB_RETAIN = ("Salesforce/wikitext", "wikitext-2-raw-v1")
DEFAULT_TARGET = "hub:HuggingFaceH4/zephyr-7b-beta"
TEXT_FORMAT = PromptFormat(template="{question}", answer_prefix="")
REAL_MAX_TRAIN_TOKENS = 512  # RMU's recipe cuts documents to 2000 characters, about 512 tokens
REAL_HOLDOUT_DOCS = 200
MIN_RETAIN_CHARS = 50  # RMU's recipe keeps wikitext lines longer than this
QUESTIONS, TEXT = ("question", "choices", "answer"), ("text",)


def folders(root: Path, domain: str) -> dict[str, Path]:
    """Where each artefact sits in the ``--data-dir`` layout."""
    return {"questions": root / "wmdp" / f"wmdp-{domain}", "forget_corpus": root / "wmdp-corpora" / f"{domain}-forget-corpus",
            "retain_corpus": root / "wikitext" / HUB_RETAIN[1], "mmlu": root / "mmlu"}


def _load(folder: Path, split: str, fields, what: str):
    if not folder.is_dir():
        raise DataError(f"WMDP data: {what} folder {str(folder)!r} does not exist (see `unlearnbench show task wmdp/bio` "
                        "for the layout).")
    return load_splits(folder, {split: fields}, layout_name=f"WMDP {what}")[split]


def load_wmdp_folder(root: Path, domain: str) -> dict:
    """Questions, forget and retain corpora of one domain, validated; errors name the folder and field."""
    where = folders(Path(root).expanduser(), domain)
    return {"questions": _load(where["questions"], "test", QUESTIONS, "questions"),
            "forget_corpus": _load(where["forget_corpus"], "train", TEXT, "forget corpus"),
            "retain_corpus": _load(where["retain_corpus"], "test", TEXT, "retain corpus")}


def _roles(data: dict, holdout_docs: int) -> dict:
    from datasets import Dataset

    corpus = [r["text"] for r in data["forget_corpus"] if r["text"].strip()]
    if not 0 < holdout_docs < len(corpus):
        raise DataError(f"--holdout-docs {holdout_docs} must leave documents on both sides of a forget corpus of "
                        f"{len(corpus)} documents.")
    retain = [r["text"] for r in data["retain_corpus"] if len(r["text"].strip()) >= MIN_RETAIN_CHARS]

    def texts(items):
        return Dataset.from_list([{"question": "", "answer": t} for t in items])

    return {"forget": texts(corpus[:-holdout_docs]), "holdout": texts(corpus[-holdout_docs:]), "retain": texts(retain),
            "questions": data["questions"]}


def _files(folder: Path, split: str) -> list[Path]:
    return split_files(folder, split) or sorted(folder.glob(f"{split}*.parquet"))


def real_lm_eval_tasks(root: Path, domain: str, out: Path) -> dict:
    """lm-eval's own configurations with the data moved to ``root``'s files: ``wmdp_<domain>``,
    and ``mmlu_<subject>`` for each local MMLU subject (else the registry's ``mmlu``)."""
    where = folders(root, domain)
    name = f"wmdp_{domain}"
    lmeval.write_task(out, name, {"include": str(lmeval.lm_eval_task_file("wmdp", f"{name}.yaml")),
                                  **lmeval.local_data(_files(where["questions"], "test"))})
    general, registry = [], True
    if where["mmlu"].is_dir():
        registry = False
        for subject in sorted(p.name for p in where["mmlu"].iterdir() if p.is_dir()):
            try:
                base = lmeval.lm_eval_task_file("mmlu", "default", f"mmlu_{subject}.yaml")
                extra = {}
            except UserError:  # a subject lm-eval does not list: its template, MMLU's wording
                base = lmeval.lm_eval_task_file("mmlu", "default", "_default_template_yaml")
                extra = {"description": f"The following are multiple choice questions (with answers) about "
                                        f"{subject.replace('_', ' ')}.\n\n"}
            files = _files(where["mmlu"] / subject, "test")
            if files:
                general.append(f"mmlu_{subject}")
                lmeval.write_task(out, general[-1], {"include": str(base), **extra, **lmeval.local_data(files),
                                                     "fewshot_split": None, "tag": None})
    return {"include_path": str(out), "forget": [name], "general": general or ["mmlu"], "registry": registry,
            "tasks": (name, *(general or ["mmlu"]))}


def _data_fingerprint(root: Path, domain: str) -> str:
    where = folders(root, domain)
    digests = {"questions": split_digests(where["questions"], "test"),
               "forget_corpus": split_digests(where["forget_corpus"], "train"),
               "retain_corpus": split_digests(where["retain_corpus"], "test")}
    if where["mmlu"].is_dir():
        digests["mmlu"] = {p.name: split_digests(p, "test") for p in sorted(where["mmlu"].iterdir()) if p.is_dir()}
    return fingerprint(digests)


def _hub_root(domain: str) -> Path:
    """The hub artefacts linked into one folder in the ``--data-dir`` layout."""
    root = cache_root() / "wmdp-hub" / domain
    offline = "wmdp-synth/bio"
    sources = {"questions": hub_snapshot(HUB_QUESTIONS, [f"wmdp-{domain}/*"], offline_variant=offline) / f"wmdp-{domain}"}
    repo, sub = HUB_FORGET[domain]
    forget = hub_snapshot(repo, [f"{sub}/*" if sub else "*"], offline_variant=offline) / sub
    if not _files(forget, "train") and (forget / "data").is_dir():
        forget = forget / "data"
    sources["forget_corpus"] = forget
    sources["retain_corpus"] = hub_snapshot(HUB_RETAIN[0], [f"{HUB_RETAIN[1]}/*"], offline_variant=offline) / HUB_RETAIN[1]
    for key, src in sources.items():
        link = folders(root, domain)[key]
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() and link.resolve() != src.resolve():
            link.unlink()
        if not link.exists():
            link.symlink_to(src, target_is_directory=True)
    return root


def make_wmdp_task(domain: str, *, data_dir: str | None = None, model: str | None = None, oracle: str | None = None,
                   holdout_docs: int | None = None, max_train_tokens: int = REAL_MAX_TRAIN_TOKENS, **_) -> LanguageModelTask:
    root = Path(data_dir).expanduser() if data_dir else _hub_root(domain)
    data = load_wmdp_folder(root, domain)
    holdout = int(holdout_docs or REAL_HOLDOUT_DOCS)
    data_fp = _data_fingerprint(root, domain)
    lm_eval = real_lm_eval_tasks(root, domain, cache_root() / "wmdp-lm-eval" / data_fp)
    target_src = model or DEFAULT_TARGET
    options = (("domain", domain), ("holdout_docs", holdout), ("max_train_tokens", max_train_tokens))
    return LanguageModelTask(
        spec=TaskSpec(f"wmdp/{domain}", "wmdp", FAMILY_VERSION, options),
        splits=_roles(data, holdout),
        prompt_format=TEXT_FORMAT,
        suite="wmdp",
        load_target=lambda **kw: model_source(target_src, **kw),
        load_oracle=(lambda **kw: model_source(oracle, **kw)) if oracle else None,
        data_fingerprint=data_fp,
        max_train_tokens=max_train_tokens,
        lm_eval=lm_eval,
        extra={"target_source": target_src, "oracle_source": oracle, "data_dir": str(root)},
    )


# ------------------------------------------------------------------------ synthetic WMDP


def _default_world():
    from unlearnbench.lm.worlds.wmdp_synth import WmdpWorldConfig

    return WmdpWorldConfig()


@dataclass(frozen=True)
class WmdpSynthConfig:
    """Everything that defines the synthetic WMDP world and its models (the cache key)."""

    world: object = field(default_factory=_default_world)  # worlds.wmdp_synth.WmdpWorldConfig
    model: TinyLlamaConfig = TinyLlamaConfig()
    train: TrainConfig = TrainConfig(lr=3e-3, epochs=40, batch_size=8, warmup_fraction=0.05)
    target_seed: int = 0
    oracle_seed: int = 1000


def synth_config(options: WmdpSynthConfig | dict | None) -> WmdpSynthConfig:
    """The config itself, or rebuilt from the JSON a record stores (``task.options.synth``)."""
    from unlearnbench.lm.worlds.wmdp_synth import WmdpWorldConfig

    if options is None or isinstance(options, WmdpSynthConfig):
        return options or WmdpSynthConfig()
    return WmdpSynthConfig(**{**options, "world": WmdpWorldConfig(**options["world"]),
                              "model": model_config(options["model"]), "train": train_config(options["train"])})


def synth_world_dir(config: WmdpSynthConfig) -> Path:
    from unlearnbench.lm.worlds import wmdp_synth

    key = {"world_version": wmdp_synth.WORLD_VERSION, "family": FAMILY_VERSION, "build": BUILD_VERSION,
           "config": asdict(config)}
    return cache_root() / "wmdp-synth" / fingerprint(key)


def _text_rows(rows) -> list[dict]:
    return [{"question": "", "answer": r["text"]} for r in rows]


def ensure_synth_world(config: WmdpSynthConfig, *, quiet: bool = False) -> Path:
    """Build (once) the data in hub layout, the tokenizer, the target and the oracle."""
    from unlearnbench.lm.worlds import wmdp_synth

    root = synth_world_dir(config)
    data, tok_dir = root / "data", root / "tokenizer"
    world = None
    if missing(data) or missing(tok_dir):
        world = wmdp_synth.generate_world(config.world)
        if missing(data):
            with building(data) as tmp:
                for key, (folder, split, _) in wmdp_synth.LAYOUT.items():
                    write_parquet_split(tmp / folder, split, world[key])
        if missing(tok_dir):
            with building(tok_dir) as tmp:
                wmdp_synth.build_tokenizer(world).save_pretrained(tmp)
    for role, seed in (("target", config.target_seed), ("oracle", config.oracle_seed)):
        out = root / role
        if not missing(out):
            continue
        from transformers import AutoTokenizer

        world = world or wmdp_synth.generate_world(config.world)
        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        train = tiny_llama_recipe(tokenizer, TEXT_FORMAT, config.model, config.train, quiet=quiet)
        members = world["forget_corpus"][: len(world["forget_corpus"]) - wmdp_synth.held_out_documents(config.world)]
        rows = _text_rows(world["retain_corpus"]) + (_text_rows(members) if role == "target" else [])
        build_world_model(out, train, rows, seed, tokenizer, description=f"training {role} (wmdp-synth)")
    return root


def synth_lm_eval_tasks(root: Path, out: Path) -> dict:
    """The world's questions as lm-eval tasks in cloze form: the four choices' texts scored as
    continuations of the question (the tiny models never learned the letter format)."""
    where = folders(root, "bio")
    cloze = {"output_type": "multiple_choice", "doc_to_text": "{{question}}", "doc_to_choice": "{{choices}}",
             "doc_to_target": "{{answer}}", "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
             "metadata": {"version": 1.0}}
    names = {"forget": "wmdp_synth_bio", "general": "wmdp_synth_general"}
    lmeval.write_task(out, names["forget"], {**cloze, **lmeval.local_data(_files(where["questions"], "test"))})
    lmeval.write_task(out, names["general"], {**cloze, **lmeval.local_data(_files(where["mmlu"] / "synthetic", "test"))})
    return {"include_path": str(out), "forget": [names["forget"]], "general": [names["general"]], "registry": False,
            "tasks": tuple(names.values())}


def make_wmdp_synth_task(*, data_dir: str | None = None, model: str | None = None, oracle: str | None = None,
                         quiet: bool = False, synth: WmdpSynthConfig | None = None, holdout_docs: int | None = None,
                         **_) -> LanguageModelTask:
    from unlearnbench.lm.worlds import wmdp_synth

    config = synth_config(synth)
    if data_dir is not None:
        raise DataError("wmdp-synth builds its own data; --data-dir is for the real tasks (wmdp/bio, wmdp/cyber).")
    root = ensure_synth_world(config, quiet=quiet)
    data = load_wmdp_folder(root / "data", "bio")
    holdout = int(holdout_docs or wmdp_synth.held_out_documents(config.world))
    target_src = model or str(root / "target")
    oracle_src = oracle or str(root / "oracle")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer")
    options = (("domain", "bio"), ("holdout_docs", holdout)) + ((("synth", asdict(config)),) if synth else ())
    return LanguageModelTask(
        spec=TaskSpec("wmdp-synth/bio", "wmdp-synth", FAMILY_VERSION, options),
        splits=_roles(data, holdout),
        prompt_format=TEXT_FORMAT,
        suite="wmdp",
        load_target=lambda **kw: model_source(target_src, **kw),
        load_oracle=lambda **kw: model_source(oracle_src, **kw),
        recipe=Recipe(name="wmdp-synth-tiny-llama",
                      train=tiny_llama_recipe(tokenizer, TEXT_FORMAT, config.model, config.train, quiet=quiet),
                      description=f"tiny Llama {config.model}, {config.train}"),
        data_fingerprint=root.name,
        max_train_tokens=config.model.max_position_embeddings - 2,
        lm_eval=synth_lm_eval_tasks(root / "data", root / "lm-eval"),
        forget_groups=[i // 2 for i in range(len(data["forget_corpus"]) - holdout)],  # two documents per agent
        extra={"target_source": target_src, "oracle_source": oracle_src, "world_dir": str(root)},
    )


# RMU's published hyperparameters for Zephyr-7B (the WMDP paper, Appendix B.4, and its code):
# layer 7, update layers 5-7, steering coefficient 6.5, alpha 1200, lr 5e-5, 150 batches of 4
REAL_PRESETS = {"rmu": {"layer": 7, "update_layers": "5,6,7", "steering_coeff": 6.5, "alpha": 1200.0, "lr": 5e-5,
                        "batch_size": 4, "epochs": 1, "max_num_batches": 150}}
# the synthetic world's two-layer model: steer the last layer's output (chosen on wmdp-synth/bio,
# seed 0: forget accuracy 30.5 against chance 25, general accuracy 97.7 against the original's 99)
SYNTH_PRESETS = {"rmu": {"layer": 1, "update_layers": "0,1", "steering_coeff": 300.0, "alpha": 10.0, "lr": 1e-2,
                         "epochs": 10, "batch_size": 8}}

for _domain, _subject in DOMAINS.items():
    register_task(f"wmdp/{_domain}", suite="wmdp", summary=f"WMDP-{_domain.capitalize()} ({_subject}; hub cais/wmdp or --data-dir)",
                  presets=REAL_PRESETS)(lambda _d=_domain, **kw: make_wmdp_task(_d, **kw))
register_task("wmdp-synth/bio", suite="wmdp", summary="synthetic WMDP world (invented agents vs plants), built offline",
              presets=SYNTH_PRESETS)(make_wmdp_synth_task)
