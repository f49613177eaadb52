"""The language-model family: TOFU, MUSE and their synthetic worlds.

Tasks yield ``datasets.Dataset`` splits by role; targets and oracles are causal LMs with their
tokenizer, loaded in the run's dtype (``--dtype``); the prompt format is resolved once the
target's tokenizer is known (``--prompt-format``, :mod:`unlearnbench.lm.prompts`); a method
gets :class:`unlearnbench.method.UnlearnData` (forget and retain rows, chunked to the task's
training window for text corpora); the suite scores a model through the
:class:`unlearnbench.lm.scoring.ScoringEngine`.

Memory: models load on the CPU; the scoring engine moves a model to the device while it scores
it, and :meth:`LanguageModelFamily.offload` moves the references back once their scores are
cached, so the GPU holds the model being trained (and its optimiser state) alone.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from unlearnbench.errors import UserError
from unlearnbench.family import FULL_TASK, SPLIT, Family, Option, split_option, unsliced, validation_mask
from unlearnbench.registry import register_family

ADAPTER_FILE = "adapter_config.json"  # peft's: a --save-model folder of a LoRA run holds the adapter only


def _format_names() -> tuple[str, ...]:
    from unlearnbench.lm.prompts import format_names

    return format_names()


@register_family("language_model", summary="causal language models (TOFU, MUSE and their synthetic worlds)")
class LanguageModelFamily(Family):
    kind = "language_model"
    description = "causal language models: QA pairs or text corpora, scored by the scoring engine"
    options = (
        Option("concepts", "a ConceptVectors JSON file (or hub:<owner>/<dataset>/<file>) naming the concept vectors "
                           "the parametric lens validates and compares"),
        Option("prompt_format", "how a question becomes the model's prompt: auto (the task's own format, else the "
                                "preset of the model's published family, else its chat template, else plain), "
                                "chat-template, or a preset (see `unlearnbench list formats`)", choices=_format_names),
        Option("system_prompt", "the system message of a chat-template prompt format"),
        Option("dtype", "weights for loading, training and scoring: auto (bf16 on a GPU that supports it, fp32 "
                        "elsewhere), bf16, fp16 or fp32", default="auto", task=False,
               choices=("auto", "bf16", "fp16", "fp32"), in_run_id=True),
        Option("score_batch_tokens", "tokens per scoring batch (lower it if scoring runs out of GPU memory)",
               type=int, default=16384, task=False),
        Option("score_padding", "the largest share of padding in a scoring batch (0: equal lengths only; the scores "
                                "are the same within 1e-5)", type=float, default=0.25, task=False),
        Option("gradnorm_params", "the parameters GradNorm differentiates: auto (all up to 2B parameters, the last "
                                  "decoder block above), all, last-block, head or re:<pattern>", default="auto",
               task=False, in_run_id=True),
        Option("gradnorm_norm", "GradNorm's size of a gradient: mean-tensor (the mean of each parameter tensor's L2 "
                                "norm, as MIMIR and open-unlearning take it) or global (one L2 norm over all)",
               default="mean-tensor", task=False, choices=("mean-tensor", "global"), in_run_id=True),
        Option("holdout_docs", "documents at the end of the forget corpus held out of unlearning as the privacy "
                               "lens's non-members (default: 200; wmdp-synth: its held-out agents)", type=int,
               tasks=("wmdp/bio", "wmdp/cyber", "wmdp-synth/bio")),
        split_option(),
    )

    # ---------------------------------------------------------------- task and models
    def load_task(self, factory, *, data_dir, model, oracle, quiet, task_options, device="auto"):
        task_options = dict(task_options)
        requested = {k: task_options.pop(k) for k in ("prompt_format", "system_prompt") if k in task_options}
        if requested.get("prompt_format") == "auto":
            requested.pop("prompt_format")
        task = super().load_task(factory, data_dir=data_dir, model=model, oracle=oracle, quiet=quiet,
                                 task_options=task_options, device=device)
        source = task_options.get("concepts")
        if source:  # a ConceptVectors file names the concept vectors of a real model
            from unlearnbench.lm.concepts import read_concept_vectors

            task.concepts = read_concept_vectors(str(source))
        if requested:  # a format asked for is part of the task's identity (fingerprint, record, cache keys)
            task.spec = replace(task.spec, options=task.spec.options + tuple(sorted(requested.items())))
        task.format_request = requested
        return task

    def split_task(self, task, split: str):
        """Validation or test rows of every scored split: a row is a validation row when its
        question (its text, for a corpus; its prompt, for a verbatim-memorisation row) hashes into the validation quarter
        (:func:`unlearnbench.family.validation_mask`), so a question is on one side in every
        split that asks it (TOFU's forget and forget_eval). The method still unlearns the whole
        forget set and trains on the whole retain set."""
        from dataclasses import replace as replace_fields

        import numpy as np

        splits, masks = {}, {}
        for role, rows in task.splits.items():
            field = next((f for f in ("question", "text", "prompt") if f in rows.column_names), None)
            keys = rows[field] if field else [f"{role}/{i}" for i in range(len(rows))]
            masks[role] = validation_mask(keys, f"{task.spec.name} {role}")
            keep = masks[role] if split == "validation" else ~masks[role]
            splits[role] = rows.select(np.nonzero(keep)[0])
        groups = task.forget_groups
        if groups is not None and "forget" in masks:
            keep = masks["forget"] if split == "validation" else ~masks["forget"]
            groups = [g for g, k in zip(groups, keep) if k]
        return replace_fields(task, spec=replace(task.spec, options=task.spec.options + ((SPLIT, split),)),
                              splits=splits, forget_groups=groups, extra={**task.extra, FULL_TASK: unsliced(task)})

    def describe(self, task) -> dict[str, Any]:
        rows = {role: len(split) for role, split in task.splits.items()}
        fmt = task.prompt_format
        return {"rows by split": rows, "forget rows": rows.get("forget"), "retain rows": rows.get("retain"),
                "prompt format": (fmt.name or "the task's own") + ("" if fmt.chat_template else f": {fmt.template!r}")
                if fmt is not None else "auto: chosen from the model (--prompt-format)",
                "concepts": len(task.concepts or ()), "probe questions": len((task.probes or {}).get("forget", ()))}

    def load_models(self, task, *, device=None, options: dict | None = None):
        import torch

        from unlearnbench.lm.modeling import dtype_name, resolve_dtype
        from unlearnbench.lm.prompts import resolve

        # the declared defaults, for callers that give no (or only some) run options
        options = {o.name: o.default for o in self.options if not o.task} | (options or {})
        dtype = resolve_dtype(options["dtype"], device or torch.device("cpu"))
        target = task.load_target(dtype=dtype)
        oracle = task.load_oracle(dtype=dtype) if task.load_oracle is not None else None
        requested = getattr(task, "format_request", {})
        names = (target.source, getattr(target.model.config, "_name_or_path", None))
        task.prompt_format = resolve(requested.get("prompt_format"), task_format=task.prompt_format,
                                     tokenizer=target.tokenizer, model_names=names,
                                     system_prompt=requested.get("system_prompt"))
        task.dtype = dtype_name(dtype)
        task.scoring = {"max_batch_tokens": int(options["score_batch_tokens"]), "max_padding": float(options["score_padding"]),
                        "gradnorm_params": options["gradnorm_params"], "gradnorm_norm": options["gradnorm_norm"]}
        return target, oracle

    def offload(self, *loaded) -> None:
        """Move reference models back to the CPU (their scores are cached) and free the GPU cache."""
        import torch

        for model in loaded:
            if model is not None:
                model.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def score_key(self, task, device, options: dict) -> dict[str, Any]:
        return {"prompt_format": task.prompt_format.to_json(), "dtype": getattr(task, "dtype", "fp32"),
                "device": getattr(device, "type", "cpu"), **getattr(task, "scoring", {})}

    def model_info(self, task) -> dict[str, Any]:
        return {"dtype": getattr(task, "dtype", None), "prompt_format": task.prompt_format.to_json(),
                "scoring": dict(getattr(task, "scoring", {}))}

    # ------------------------------------------------------------------------ unlearning
    def method_data(self, task, forget_role: str, target) -> Any:
        from unlearnbench.lm.modeling import chunk_text_rows
        from unlearnbench.method import UnlearnData

        whole = unsliced(task)  # on a split run too, the method unlearns the whole forget set
        forget, retain = whole.splits[forget_role], whole.splits["retain"]
        if task.max_train_tokens:
            forget = chunk_text_rows(target.tokenizer, forget, task.max_train_tokens)
            retain = chunk_text_rows(target.tokenizer, retain, task.max_train_tokens)
        return UnlearnData(forget=forget, retain=retain, tokenizer=target.tokenizer, prompt_format=task.prompt_format,
                           concepts=task.concepts)

    def copy_model(self, model, device):
        from unlearnbench.lm.modeling import clone_model

        return clone_model(model)  # on the CPU, where the target rests; the method moves it to ctx.device

    # ------------------------------------------------------------ models that outlive a run
    def save_model(self, model, folder, *, task, target, artifacts: dict) -> dict[str, Any]:
        """``save_pretrained`` layout (safetensors) with the tokenizer; a LoRA run keeps its
        adapter only (peft's ``adapter_config.json`` + ``adapter_model.safetensors``), to be
        applied to the task's target when it is loaded back."""
        from transformers.utils import logging as hf_logging

        from unlearnbench.cache import building, folder_fingerprint

        hf_logging.disable_progress_bar()  # "Writing model shards": the run's own output says where it went
        folder = Path(folder)
        adapter = artifacts.get("lora")
        with building(folder) as tmp:
            if adapter is not None:
                adapter.save_pretrained(tmp)
                (Path(tmp) / "unlearnbench-base.json").write_text(json.dumps(
                    {"target": target.source, "target_fingerprint": target.fingerprint}, indent=2) + "\n")
            else:
                model.save_pretrained(tmp, safe_serialization=True)
                target.tokenizer.save_pretrained(tmp)
        return {"layout": "peft-lora-adapter" if adapter is not None else "save_pretrained",
                "fingerprint": folder_fingerprint(folder)}

    def load_unlearned(self, source: str, task, target, *, device, options: dict):
        """A ``save_pretrained`` folder or hub id (the tokenizer must be the target's: the
        scores compare token by token), or a LoRA adapter folder applied to the target."""
        from unlearnbench.cache import fingerprint, folder_fingerprint
        from unlearnbench.lm.modeling import clone_model, resolve_dtype
        from unlearnbench.task import LoadedModel, model_source

        path = Path(source.removeprefix("hub:")).expanduser()
        if path.is_dir() and (path / ADAPTER_FILE).exists():
            try:
                from peft import PeftModel
            except ImportError:
                raise UserError(f"{source} holds a LoRA adapter; loading it needs peft (pip install peft).") from None
            base = path / "unlearnbench-base.json"
            if base.exists():
                saved_for = json.loads(base.read_text()).get("target_fingerprint")
                if saved_for and saved_for != target.fingerprint:
                    raise UserError(f"The adapter in {source} was trained on another target (fingerprint {saved_for}, "
                                    f"this task's is {target.fingerprint}). Pass --model with that target.")
            model = PeftModel.from_pretrained(clone_model(target.model), str(path)).merge_and_unload()
            for p in model.parameters():  # trainable again, as the target is (GradNorm, relearning)
                p.requires_grad_(True)
            return LoadedModel(model.eval(), target.tokenizer, source, folder_fingerprint(path))
        dtype = resolve_dtype(options.get("dtype"), device)
        loaded = model_source(source, dtype=dtype)
        if loaded.tokenizer.get_vocab() != target.tokenizer.get_vocab():
            raise UserError(f"The model in {source} has another tokenizer than the task's target ({target.source}): "
                            "its scores would not compare token by token. Save it with the target's tokenizer.")
        return LoadedModel(loaded.model, target.tokenizer, source,
                           folder_fingerprint(path) if path.is_dir() else fingerprint({"hub": source}))

    # --------------------------------------------------------------------------- scoring
    def scorer(self, model, target, task, device, *, quiet: bool, label: str):
        from unlearnbench.lm.scoring import ScoringEngine

        return ScoringEngine(model, target.tokenizer, task.prompt_format, device, quiet=quiet, label=label,
                             **getattr(task, "scoring", {}))

    def counts(self, scorer) -> dict[str, Any]:
        c = scorer.counter
        return {"forwarded": c.forwarded, "unique": c.unique, "by_kind": {k: list(v) for k, v in c.by_kind.items()},
                "calls": dict(c.calls), "seconds": dict(c.seconds)}
