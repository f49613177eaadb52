"""The TOFU task family (Maini et al., 2024, "TOFU: A Task of Fictitious Unlearning for LLMs").

``tofu/forget01|05|10``: the real benchmark. Data from the hub (``locuslab/TOFU``) or from
``--data-dir`` holding the same files; target and oracle from ``--model`` / ``--oracle``
(hub ids or ``save_pretrained`` folders).

``tofu-synth/forget01|05|10``: a world this package builds offline and deterministically
(:mod:`unlearnbench.lm.worlds.tofu_synth`): the same splits and fields, a word-level tokenizer
and tiny Llama models trained here (the target on everything, the oracle on the retain split),
saved in hub layout under the user cache and loaded back through the very code that loads
the hub versions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from unlearnbench.cache import building, cache_root, fingerprint, missing
from unlearnbench.data import load_splits, split_digests, write_split
from unlearnbench.errors import DataError
from unlearnbench.lm import lmeval
from unlearnbench.lm.modeling import PromptFormat, TinyLlamaConfig, TrainConfig, model_config, tiny_llama_recipe, train_config
from unlearnbench.lm.worlds import build_world_model
from unlearnbench.registry import register_task
from unlearnbench.reproducible import BUILD_VERSION
from unlearnbench.task import LanguageModelTask, Recipe, TaskSpec, hub_snapshot, model_source

FAMILY_VERSION = "2"  # 2: the synthetic world's tokenizer knows its prompt words (Question, :, Answer)
FORGET_SPLITS = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
HUB_DATASET = "locuslab/TOFU"
# Published fine-tuned models (open-unlearning); each forget split has its own retain oracle.
HUB_TARGET = "open-unlearning/tofu_Llama-3.2-1B-Instruct_full"
HUB_ORACLE = "open-unlearning/tofu_Llama-3.2-1B-Instruct_{retain}"
QA = ("question", "answer")
PERTURBED = ("question", "answer", "paraphrased_answer", "perturbed_answer")
EVAL_FIELDS = ("question", "answer", "perturbed_answer")


def tofu_schema(forget: str) -> dict[str, tuple[str, ...]]:
    """Split -> required fields, for one forget split."""
    pct = forget.removeprefix("forget")
    return {
        forget: QA,
        FORGET_SPLITS[forget]: QA,
        f"holdout{pct}": QA,
        f"{forget}_perturbed": PERTURBED,
        "retain_perturbed": PERTURBED,
        "real_authors_perturbed": EVAL_FIELDS,
        "world_facts_perturbed": EVAL_FIELDS,
    }


def _roles(forget: str, splits: dict) -> dict:
    pct = forget.removeprefix("forget")
    return {
        "forget": splits[forget],
        "retain": splits[FORGET_SPLITS[forget]],
        "holdout": splits[f"holdout{pct}"],
        "forget_eval": splits[f"{forget}_perturbed"],
        "retain_eval": splits["retain_perturbed"],
        "real_authors_eval": splits["real_authors_perturbed"],
        "world_facts_eval": splits["world_facts_perturbed"],
    }


# ------------------------------------------------------------------------------ real TOFU


def make_tofu_task(forget: str, *, data_dir: str | None = None, model: str | None = None,
                   oracle: str | None = None, **_) -> LanguageModelTask:
    schema = tofu_schema(forget)
    if data_dir is None:
        folder = hub_snapshot(HUB_DATASET, [f"{s}.json" for s in schema], offline_variant="tofu-synth/...")
    else:
        folder = Path(data_dir)
    splits = load_splits(folder, schema, layout_name="TOFU", text=True)
    target_src = model or f"hub:{HUB_TARGET}"
    oracle_src = oracle or f"hub:{HUB_ORACLE.format(retain=FORGET_SPLITS[forget])}"
    spec = TaskSpec(f"tofu/{forget}", "tofu", FAMILY_VERSION, (("forget_split", forget),))
    # the bytes of each split's files (in name order), not how a library happens to load them
    data_fp = fingerprint({s: split_digests(folder, s) for s in splits})
    return LanguageModelTask(
        spec=spec,
        splits=_roles(forget, splits),
        prompt_format=None,  # the model's: --prompt-format auto picks the published models' preset (llama3-chat)
        suite="tofu",
        load_target=lambda **kw: model_source(target_src, **kw),
        load_oracle=lambda **kw: model_source(oracle_src, **kw),
        recipe=None,
        data_fingerprint=data_fp,
        forget_groups=[i // TOFU_QA_PER_AUTHOR for i in range(len(splits[forget]))],
        extra={"target_source": target_src, "oracle_source": oracle_src},
    )


# ------------------------------------------------------------------------- synthetic TOFU


@dataclass(frozen=True)
class SynthConfig:
    """Everything that defines a synthetic world and its models (the cache key)."""

    n_authors: int = 100
    n_holdout_authors: int = 10
    world_seed: int = 0
    model: TinyLlamaConfig = TinyLlamaConfig()
    train: TrainConfig = TrainConfig(lr=3e-3, epochs=20, batch_size=32, warmup_fraction=0.05)
    target_seed: int = 0
    oracle_seed: int = 1000  # the oracle is seeded apart from any run seed a user is likely to pick


def synth_config(options: SynthConfig | dict | None) -> SynthConfig:
    """The config itself, or rebuilt from the JSON a record stores (``task.options.synth``)."""
    if options is None or isinstance(options, SynthConfig):
        return options or SynthConfig()
    return SynthConfig(**{**options, "model": model_config(options["model"]), "train": train_config(options["train"])})


TOFU_QA_PER_AUTHOR = 20  # TOFU's forget splits list each author's 20 QA pairs together

SYNTH_FORMAT = PromptFormat(template="Question: {question}\nAnswer:", answer_prefix=" ")


def _synth_recipe(config: SynthConfig, tokenizer, extra_rows, quiet: bool):
    """Train a tiny Llama from scratch on QA rows plus the world's background knowledge."""
    return tiny_llama_recipe(tokenizer, SYNTH_FORMAT, config.model, config.train, extra_rows, quiet)


def synth_world_dir(config: SynthConfig) -> Path:
    from unlearnbench.lm.worlds import tofu_synth

    key = {"world_version": tofu_synth.WORLD_VERSION, "family": FAMILY_VERSION, "build": BUILD_VERSION,
           "config": asdict(config)}
    return cache_root() / "tofu-synth" / fingerprint(key)


def ensure_synth_world(config: SynthConfig, forget: str, *, quiet: bool = False) -> Path:
    """Build (once) the data, tokenizer, target and the oracle for ``forget``, in hub layout."""
    from unlearnbench.lm.worlds import tofu_synth

    root = synth_world_dir(config)
    data, tok_dir = root / "data", root / "tokenizer"
    if missing(data) or missing(tok_dir):
        world = tofu_synth.generate_world(
            tofu_synth.WorldConfig(n_authors=config.n_authors, n_holdout_authors=config.n_holdout_authors, seed=config.world_seed)
        )
        if missing(data):
            with building(data) as tmp:
                for split, rows in world.items():
                    write_split(tmp, split, rows)
        if missing(tok_dir):
            # the prompt format's own words too: without them the models see "<unk> <unk> question <unk> <unk>"
            texts = tofu_synth.world_texts(world) + list(tofu_synth.EVERYDAY_SENTENCES) + [SYNTH_FORMAT.prompt("")]
            with building(tok_dir) as tmp:
                tofu_synth.build_word_tokenizer(texts).save_pretrained(tmp)
    for role, split, seed in (("target", "full", config.target_seed), ("oracle-" + forget, FORGET_SPLITS[forget], config.oracle_seed)):
        out = root / role
        if not missing(out):
            continue
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        rows = load_splits(data, {split: QA, "pretraining": QA}, layout_name="TOFU", text=True)
        train = _synth_recipe(config, tokenizer, rows["pretraining"], quiet)
        build_world_model(out, train, rows[split], seed, tokenizer, description=f"training {role} (tofu-synth)")
    return root


LM_EVAL_TASKS = {"tofu_synth_world_facts": "world_facts_perturbed", "tofu_synth_real_authors": "real_authors_perturbed"}


def write_lm_eval_tasks(folder: Path, splits: dict) -> dict:
    """The world's general-knowledge questions as lm-eval multiple-choice tasks (JSONL and a
    configuration lm-eval reads): the answer among three of its perturbed answers, in an order
    fixed by the row. Returns what the lm-eval lens reads: the folder and the task names."""
    import random

    for name, split in LM_EVAL_TASKS.items():
        rows = []
        for i, row in enumerate(splits[split]):
            choices = [row["answer"], *list(row["perturbed_answer"])[:3]]
            order = list(range(len(choices)))
            random.Random(f"{name}/{i}").shuffle(order)
            rows.append({"question": row["question"], "choices": [choices[j] for j in order], "label": order.index(0)})
        lmeval.write_choice_task(folder, name, rows, doc_to_text="Question: {{question}}\nAnswer:")
    return {"include_path": str(folder), "tasks": tuple(LM_EVAL_TASKS)}


def make_tofu_synth_task(forget: str, *, data_dir: str | None = None, model: str | None = None,
                         oracle: str | None = None, quiet: bool = False, synth: SynthConfig | None = None,
                         **_) -> LanguageModelTask:
    config = synth_config(synth)
    if data_dir is not None:
        raise DataError("tofu-synth builds its own data; --data-dir is for the real task (tofu/...).")
    root = ensure_synth_world(config, forget, quiet=quiet)
    schema = tofu_schema(forget) | {"pretraining": QA}
    splits = load_splits(root / "data", schema, layout_name="TOFU", text=True)
    target_src = model or str(root / "target")
    oracle_src = oracle or str(root / f"oracle-{forget}")
    from transformers import AutoTokenizer

    from unlearnbench.lm.worlds import tofu_synth

    tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer")
    world = tofu_synth.WorldConfig(n_authors=config.n_authors, n_holdout_authors=config.n_holdout_authors, seed=config.world_seed)
    options = (("forget_split", forget),) + ((("synth", asdict(config)),) if synth else ())
    return LanguageModelTask(
        spec=TaskSpec(f"tofu-synth/{forget}", "tofu-synth", FAMILY_VERSION, options),
        splits=_roles(forget, splits),
        prompt_format=SYNTH_FORMAT,
        suite="tofu",
        load_target=lambda **kw: model_source(target_src, **kw),
        load_oracle=lambda **kw: model_source(oracle_src, **kw),
        recipe=Recipe(
            name="tofu-synth-tiny-llama",
            train=_synth_recipe(config, tokenizer, splits["pretraining"], quiet),
            description=f"tiny Llama {config.model}, {config.train}",
            background=list(splits["pretraining"]),
        ),
        data_fingerprint=root.name,
        concepts=tofu_synth.author_concepts(world, forget),
        probes=tofu_synth.attribute_probe(world, forget),
        forget_groups=tofu_synth.author_groups(world, forget, splits[forget]["question"]),
        lm_eval=write_lm_eval_tasks(root / "lm-eval", splits),
        extra={"target_source": target_src, "oracle_source": oracle_src, "world_dir": str(root)},
    )


# open-unlearning's TOFU recipe (configs/experiment/unlearn/tofu/default.yaml over its finetune
# trainer): lr 1e-5 with one warm-up epoch of ten then linear decay (the HF Trainer's default),
# weight decay 0.01, batch 8 x 4 accumulation steps (32 per step), gradient checkpointing
TOFU_PRESETS = {"*": {"lr": 1e-5, "epochs": 10, "batch_size": 8, "grad_accum": 4, "weight_decay": 0.01,
                      "warmup_fraction": 0.1, "schedule": "linear", "gradient_checkpointing": True},
                # open-unlearning's method configs and community runs (configs/trainer/*.yaml, community/methods/*/run.sh)
                "wga": {"epochs": 5, "beta": 1.0, "gamma": 1.0, "alpha": 1.0},
                "satimp": {"epochs": 5, "beta1": 5.0, "beta2": 1.0},
                "undial": {"lr": 1e-4, "batch_size": 4, "grad_accum": 4, "beta": 10.0, "alpha": 0.0},
                "ceu": {"ignore_first": 1},
                "pdu": {"gamma": 1.0, "alpha": 100.0, "retain_loss_eps": 0.3, "dual_step_size": 5.0,
                        "dual_warmup_epochs": 5},
                # FLAT's own TOFU config (UCSC-REAL/FLAT config/forget.yaml): 5 epochs, 16 x 4 per step
                "flat": {"epochs": 5, "batch_size": 16, "grad_accum": 4}}

for _forget in FORGET_SPLITS:
    register_task(f"tofu/{_forget}", suite="tofu", summary=f"TOFU {_forget} (hub locuslab/TOFU or --data-dir)", modes="-",
                  presets=TOFU_PRESETS)(
        lambda _f=_forget, **kw: make_tofu_task(_f, **kw)
    )
# The synthetic worlds' two-layer models: RMU steers the last layer's output (tuned on forget10:
# forget probability 0.999 -> 0.24, the oracle's 0.13; model utility 0.73 -> 0.68). The others
# tuned on forget10, seed 0 (oracle: forget probability 0.09, model utility 0.73): the highest
# forget quality that kept model utility near 0.66 or more; the forget-data-only methods (flat,
# ceu) lower retain as much as forget on this world, so theirs is where forget probability first
# reaches the oracle's; rl keeps the paper's forget-only loss
SYNTH_PRESETS = {"rmu": {"layer": 1, "update_layers": "0,1", "steering_coeff": 100.0, "alpha": 10.0, "lr": 1e-2,
                         "epochs": 5, "batch_size": 32},
                 "wga": {"lr": 5e-4, "epochs": 15},
                 "satimp": {"lr": 7e-4, "epochs": 20},
                 "undial": {"beta": 20.0, "alpha": 1.0, "epochs": 10},
                 "pdu": {"lr": 7e-4, "alpha": 50.0, "retain_loss_eps": 0.1, "dual_warmup_epochs": 1},
                 "flat": {"lr": 3e-4, "epochs": 4},
                 "ceu": {"lr": 1e-4, "epochs": 8},
                 "rl": {"epochs": 10}}

for _forget in FORGET_SPLITS:
    register_task(f"tofu-synth/{_forget}", suite="tofu", summary=f"synthetic TOFU world, {_forget}, built offline", modes="-",
                  presets=SYNTH_PRESETS)(
        lambda _f=_forget, **kw: make_tofu_synth_task(_f, **kw)
    )
