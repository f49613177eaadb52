"""Language-model runs that outlive themselves or score what was made elsewhere, and the
prompt format as part of every cache key: on the tiny synthetic TOFU world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest



def test_two_prompt_formats_give_two_cached_reference_sets(run_tiny, monkeypatch, tmp_path):
    from unlearnbench import runner

    monkeypatch.setattr(runner, "cache_root", lambda: tmp_path / "cache")  # the score cache alone, fresh

    def cached() -> set[str]:
        return {p.parent.name for p in (tmp_path / "cache" / "scores").glob("*/data.json")}

    own = run_tiny("original")  # the world's own format ("Question: ... Answer:")
    first = cached()
    other = run_tiny("original", options={"prompt_format": "llama2-chat"})
    assert len(first) == 2 and len(cached() - first) == 2  # original and oracle again, under new keys
    assert own.record.model["prompt_format"]["template"] == "Question: {question}\nAnswer:"
    assert other.record.model["prompt_format"]["name"] == "llama2-chat"
    # the format asked for is part of the task's identity and of the run's
    assert other.record.task["options"]["prompt_format"] == "llama2-chat"
    assert other.record.task["fingerprint"] != own.record.task["fingerprint"] and other.record.run_id != own.record.run_id
    assert own.record.reference["original"]["forget_probability"] != other.record.reference["original"]["forget_probability"]
    again = run_tiny("original", options={"prompt_format": "llama2-chat"})  # found in the cache now
    assert len(cached()) == 4 and again.record.reference == other.record.reference


def test_a_saved_model_reloads_through_unlearned_and_reproduces_the_run(run_tiny, tiny_synth, tmp_path):
    made = run_tiny("ga", params={"epochs": "1"}, save_model=True)
    assert made.record.status == "succeeded"
    saved = made.record.model["unlearned"]
    folder = made.run_dir / saved["path"]
    assert saved["layout"] == "save_pretrained" and (folder / "model.safetensors").is_file()
    assert (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file()

    scored = run_tiny("external", unlearned=str(folder))
    record = scored.record
    assert record.status == "succeeded" and record.method["name"] == "external"
    assert record.method["params"]["source"] == str(folder)
    assert record.method["info"] == {"source": str(folder), "fingerprint": saved["fingerprint"]}
    assert record.model["target_fingerprint"] == made.record.model["target_fingerprint"]  # the task's own target
    expected = {k: v for k, v in made.record.metrics.items() if k != "rte"}
    assert {k: v for k, v in record.metrics.items() if k != "rte"} == pytest.approx(expected, rel=1e-9, abs=1e-12)
    on_disk = json.loads((scored.run_dir / "record.json").read_text())
    assert on_disk["method"]["name"] == "external"

    # the leaderboard takes it like any run: schema, fingerprint and every number re-checked
    from _tiny_runs import copy_run, tiny_loader

    from unlearnbench.leaderboard.submissions import submit

    stored = submit(copy_run(scored.run_dir, tmp_path / "external"), board=tmp_path / "board",
                    task_loader=tiny_loader(tiny_synth))
    assert json.loads((stored / "record.json").read_text())["method"]["info"]["fingerprint"] == saved["fingerprint"]


def test_a_lora_run_keeps_its_adapter_and_reloads_onto_the_target(run_tiny):
    pytest.importorskip("peft")
    made = run_tiny("ga", params={"epochs": "1", "lora_r": "4", "lr": "1e-2"}, save_model=True)
    assert made.record.status == "succeeded", made.record.error
    info = made.record.method["info"]["lora"]
    assert info["r"] == 4 and info["trainable_parameters"] > 0
    folder = made.run_dir / made.record.model["unlearned"]["path"]
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    assert not (folder / "model.safetensors").exists()  # the adapter alone, not the weights
    assert made.record.metrics["forget_probability"] != made.record.reference["original"]["forget_probability"]  # it trained
    scored = run_tiny("external", unlearned=str(folder))
    assert scored.record.status == "succeeded", scored.record.error
    expected = {k: v for k, v in made.record.metrics.items() if k != "rte"}
    assert {k: v for k, v in scored.record.metrics.items() if k != "rte"} == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_a_lora_adapter_starts_from_the_run_seed_whatever_ran_before_in_the_process(run_tiny, tmp_path):
    import torch

    pytest.importorskip("peft")
    params = {"epochs": "1", "lora_r": "4", "lr": "1e-2"}
    torch.manual_seed(123)
    first = run_tiny("ga", params=params, out=tmp_path / "a")
    torch.rand(1000)  # the global stream moved on, as after other jobs of a sweep
    second = run_tiny("ga", params=params, out=tmp_path / "b")
    assert first.record.status == second.record.status == "succeeded"
    assert first.record.metrics["forget_probability"] != first.record.reference["original"]["forget_probability"]
    assert second.record.metrics == first.record.metrics
    third = run_tiny("ga", params=params, seed=1, out=tmp_path / "c")  # another seed: another adapter
    assert third.record.metrics["forget_probability"] != first.record.metrics["forget_probability"]


def test_unlearned_with_another_method_or_a_missing_folder_is_refused(run_tiny, tmp_path):
    from unlearnbench.errors import UserError

    with pytest.raises(UserError, match="implies the method external"):
        run_tiny("npo", unlearned=str(tmp_path))
    with pytest.raises(UserError, match="no such folder"):
        run_tiny("external", unlearned=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="--unlearned"):
        run_tiny("external")
    with pytest.raises(UserError, match="one model"):
        run_tiny("external", unlearned=str(tmp_path), mode="sustainability")
    assert not any(Path(tmp_path).rglob("record.json"))


def test_the_cli_refuses_unlearned_with_a_method(tmp_path):
    from typer.testing import CliRunner

    from unlearnbench.cli.app import app

    result = CliRunner().invoke(app, ["evaluate", "--unlearned", str(tmp_path), "--method", "npo", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "external" in result.output


def test_presets_are_listed_per_task_and_recorded():
    from unlearnbench import registry
    from unlearnbench.runner import RunSpec, method_preset, plan

    entry = registry.get("task", "tofu/forget10")
    npo = registry.method("npo", "language_model").obj
    preset = method_preset(entry, "npo", npo.Params)
    assert preset["lr"] == 1e-5 and preset["batch_size"] * preset["grad_accum"] == 32 and preset["epochs"] == 10
    p = plan(RunSpec(task="tofu/forget10", method="npo", params={"lr": "2e-5"}))
    assert p.params.lr == 2e-5 and p.params.epochs == 10 and p.preset == preset  # --param wins over the preset
    synth = plan(RunSpec(task="tofu-synth/forget10", method="npo"))
    assert synth.preset == {} and synth.params == npo.Params()
