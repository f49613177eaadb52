"""The lm-eval lens runs lm-evaluation-harness itself, offline, on the world's own tasks."""

from __future__ import annotations

import pytest

lm_eval = pytest.importorskip("lm_eval")

NAME = "lm_eval_tofu_synth_world_facts_acc"


def test_the_lens_records_lm_evals_own_numbers_for_all_three_models(run_tiny, tiny_task):
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    result = run_tiny("ga", params={"epochs": "1"}, lenses=("behavior", "lm-eval"))
    record = result.record
    assert record.status == "succeeded", record.error
    for where in (record.metrics, record.reference["original"], record.reference["oracle"]):
        assert 0.0 <= where[NAME] <= 1.0 and "lm_eval_tofu_synth_real_authors_acc" in where
    low, high = record.ci[NAME]
    assert low <= record.metrics[NAME] <= high
    assert any(row.name == NAME and row.lens == "lm-eval" for row in result.rows)
    kept = record.provenance["lenses"]["lm-eval"]
    assert kept["lm_eval_version"] == lm_eval.__version__ and "tofu_synth_world_facts" in kept["task_versions"]

    # lm-eval called directly on the same model and task gives the same number
    target = tiny_task.load_target()
    direct = lm_eval.simple_evaluate(
        model=HFLM(pretrained=target.model, tokenizer=target.tokenizer, batch_size=16, device="cpu"),
        tasks=["tofu_synth_world_facts"], log_samples=False, verbosity="ERROR",
        task_manager=TaskManager(include_path=tiny_task.lm_eval["include_path"], include_defaults=False))
    assert record.reference["original"][NAME] == direct["results"]["tofu_synth_world_facts"]["acc,none"]


def test_the_news_world_ships_its_retain_event_questions(run_muse, tiny_muse):
    from unlearnbench.lm.worlds import muse_synth

    record = run_muse("original", lenses=("lm-eval",)).record
    assert record.status == "succeeded", record.error
    name = "lm_eval_muse_synth_retain_events_acc"
    assert 0.0 <= record.metrics[name] <= 1.0 and name in record.reference["oracle"]
    rows = muse_synth.retain_choice_questions(tiny_muse.world)
    assert rows and all(r["choices"][r["label"]] in {q["answer"] for q in muse_synth.generate_world(tiny_muse.world)
                                                      ["knowmem"]["retain_qa"]} for r in rows)


def test_a_task_without_offline_lm_eval_tasks_is_refused_before_any_model(run_muse, monkeypatch):
    from unlearnbench.errors import UserError
    from unlearnbench.tasks import muse

    monkeypatch.setattr(muse, "synth_lm_eval_tasks", lambda config, folder: None)
    with pytest.raises(UserError, match="--lm-eval-tasks"):
        run_muse("original", lenses=("lm-eval",))
