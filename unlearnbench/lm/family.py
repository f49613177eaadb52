"""The language-model family: TOFU, MUSE and their synthetic worlds.

Tasks yield ``datasets.Dataset`` splits by role; targets and oracles are causal LMs with their
tokenizer; a method gets :class:`unlearnbench.method.UnlearnData` (forget and retain rows,
chunked to the task's training window for text corpora); the suite scores a model through
the :class:`unlearnbench.lm.scoring.ScoringEngine`.
"""

from __future__ import annotations

from typing import Any

from unlearnbench.family import Family, Option
from unlearnbench.registry import register_family


@register_family("language_model", summary="causal language models (TOFU, MUSE and their synthetic worlds)")
class LanguageModelFamily(Family):
    kind = "language_model"
    description = "causal language models: QA pairs or text corpora, scored by the scoring engine"
    options = (
        Option("concepts", "a ConceptVectors JSON file (or hub:<owner>/<dataset>/<file>) naming the concept vectors "
                           "the parametric lens validates and compares"),
    )

    def load_task(self, factory, *, data_dir, model, oracle, quiet, task_options, device="auto"):
        task = super().load_task(factory, data_dir=data_dir, model=model, oracle=oracle, quiet=quiet,
                                 task_options=task_options, device=device)
        source = task_options.get("concepts")
        if source:  # a ConceptVectors file names the concept vectors of a real model
            from unlearnbench.lm.concepts import read_concept_vectors

            task.concepts = read_concept_vectors(str(source))
        return task

    def describe(self, task) -> dict[str, Any]:
        rows = {role: len(split) for role, split in task.splits.items()}
        return {"rows by split": rows, "forget rows": rows.get("forget"), "retain rows": rows.get("retain"),
                "prompt template": task.prompt_format.template,
                "concepts": len(task.concepts or ()), "probe questions": len((task.probes or {}).get("forget", ()))}

    def method_data(self, task, forget_role: str, target) -> Any:
        from unlearnbench.lm.modeling import chunk_text_rows
        from unlearnbench.method import UnlearnData

        forget, retain = task.splits[forget_role], task.splits["retain"]
        if task.max_train_tokens:
            forget = chunk_text_rows(target.tokenizer, forget, task.max_train_tokens)
            retain = chunk_text_rows(target.tokenizer, retain, task.max_train_tokens)
        return UnlearnData(forget=forget, retain=retain, tokenizer=target.tokenizer, prompt_format=task.prompt_format,
                           concepts=task.concepts)

    def copy_model(self, model, device):
        from unlearnbench.lm.modeling import clone_model

        return clone_model(model)  # the method moves it to ctx.device (its frozen reference follows)

    def scorer(self, model, target, task, device, *, quiet: bool, label: str):
        from unlearnbench.lm.scoring import ScoringEngine

        return ScoringEngine(model, target.tokenizer, task.prompt_format, device, quiet=quiet, label=label)

    def counts(self, scorer) -> dict[str, Any]:
        c = scorer.counter
        return {"forwarded": c.forwarded, "unique": c.unique, "by_kind": {k: list(v) for k, v in c.by_kind.items()}}
