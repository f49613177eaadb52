"""The parametric and robustness lenses through the runner, on the tiny synthetic worlds.

What is checked: the lenses can be switched on and off (and switching privacy off really
skips its statistics), the record carries the lens metrics with reference rows for the
original and the oracle, the numbers are recomputable from the per-example scores (the
leaderboard accepts them and refuses a tampered one), the attacks never modify the model
they attack, and the probe's hidden states are the model's own."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from unlearnbench.errors import UnknownNameError
from unlearnbench.records import PER_EXAMPLE_FILE

ALL = ("behavior", "privacy", "utility", "parametric", "robustness")


@pytest.fixture(scope="module")
def lens_run(tiny_synth, tmp_path_factory):
    from unlearnbench.runner import RunSpec, run

    return run(RunSpec(task="tofu-synth/forget10", method="ga", lenses=ALL, out=tmp_path_factory.mktemp("runs"),
                       quiet=True, task_options={"synth": tiny_synth}))


def test_every_lens_reports_with_reference_rows(lens_run):
    record = lens_run.record
    assert record.status == "succeeded" and record.lenses == list(ALL)
    for name in ("forget_quality", "mia_min_k_auc", "model_utility", "concept_vectors", "answer_accuracy",
                 "relearn_recovery_auc", "quant_agreement_8bit", "quant_forget_probability_4bit"):
        assert name in record.metrics, name
    original, oracle = record.reference["original"], record.reference["oracle"]
    # quantizing the original reproduces the original's own codes; the oracle's differ
    assert original["quant_agreement_8bit"] == 1.0
    assert oracle["quant_agreement_8bit"] < 1.0
    # recovery is relative to the original: undefined for the original itself, defined for the oracle control
    assert "relearn_recovery_auc" not in original and "relearn_recovery_auc" in oracle
    assert {r.lens for r in lens_run.rows} == set(ALL)


def test_lens_numbers_are_recomputed_from_the_per_example_scores(lens_run):
    from unlearnbench.leaderboard.submissions import SubmissionError, check_recomputed

    record = json.loads((lens_run.run_dir / "record.json").read_text())
    per_example = json.loads((lens_run.run_dir / PER_EXAMPLE_FILE).read_text())
    assert set(per_example["lenses"]) == {"parametric", "robustness"}
    check_recomputed(record, per_example, record["task"]["suite"])
    # the answer accuracy is the share of forget probe rows whose true option has the lowest NLL
    probes = per_example["lenses"]["parametric"]["unlearned"]["probes"]
    assert record["metrics"]["answer_accuracy"] == pytest.approx(np.mean(probes["answer_correct"]))
    record["metrics"]["relearn_recovery_auc"] += 0.25
    with pytest.raises(SubmissionError, match="relearn_recovery_auc"):
        check_recomputed(record, per_example, record["task"]["suite"])


def test_default_run_leaves_the_model_lenses_out(run_tiny):
    record = run_tiny("original").record
    assert record.lenses == ["behavior", "privacy", "utility"]
    assert not any(name.startswith(("concept_", "probe_", "relearn_", "quant_")) for name in record.metrics)


def test_switching_privacy_off_skips_its_statistics(run_tiny):
    result = run_tiny("original", lenses=("behavior", "utility"))
    assert not any(name.startswith("mia_") for name in result.record.metrics)
    per_example = json.loads((result.run_dir / PER_EXAMPLE_FILE).read_text())
    assert "privacy" not in per_example["unlearned"]
    assert "gradnorm" not in result.token_counts["unlearned"]["by_kind"]  # no GradNorm pass was made


def test_an_unknown_lens_names_the_known_ones(run_tiny):
    with pytest.raises(UnknownNameError, match="parametric"):
        run_tiny("original", lenses=("behaviour",))


def test_relearning_splits_forget_by_entity_and_leaves_the_model_alone(tiny_task):
    from unlearnbench.lenses import robustness

    attack, measure = robustness.halves(tiny_task)
    groups = tiny_task.forget_groups
    assert attack and measure and not {groups[i] for i in attack} & {groups[i] for i in measure}
    assert sorted(attack + measure) == list(range(len(tiny_task.splits["forget"])))

    loaded = tiny_task.load_target()
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    ctx = robustness.Context(task=tiny_task, tokenizer=loaded.tokenizer, device=torch.device("cpu"),
                             original=loaded.model)
    curve = robustness.relearn_curve(ctx, loaded.model, "target")
    assert len(curve) == len(robustness.RELEARN_STEPS)
    robustness.quantization(ctx, loaded.model, "target")
    assert all(torch.equal(v, loaded.model.state_dict()[k]) for k, v in before.items())


def test_halves_without_groups_split_rows():
    task = SimpleNamespace(splits={"forget": [0] * 5}, forget_groups=None)
    from unlearnbench.lenses import robustness

    assert robustness.halves(task) == ([0, 1], [2, 3, 4])


def test_probe_states_are_the_models_own_hidden_states(tiny_task):
    from unlearnbench.lm.modeling import encode_prompt
    from unlearnbench.lm.scoring import ScoringEngine

    loaded = tiny_task.load_target()
    fmt, tok = tiny_task.prompt_format, loaded.tokenizer
    rows = tiny_task.probes["forget"][:3]
    engine = ScoringEngine(loaded.model, tok, fmt, torch.device("cpu"), quiet=True)
    states = engine.hidden_states([(r["question"], r["prefix"]) for r in rows])
    for row, state in zip(rows, states):
        ids = encode_prompt(tok, fmt, row["question"]) + tok(fmt.answer_prefix + row["prefix"], add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            reference = loaded.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        expected = np.stack([h[0, -1].numpy() for h in reference])
        np.testing.assert_allclose(state, expected, atol=1e-5)


def test_the_muse_world_feeds_the_same_lenses(run_muse):
    record = run_muse("ga", lenses=("behavior", "parametric", "robustness")).record
    assert record.status == "succeeded"
    assert "concept_vectors" in record.metrics and "quant_agreement_4bit" in record.metrics
    assert "knowmem_forget" in record.metrics and "privleak" not in record.metrics


def test_robustness_aggregate_by_hand():
    from unlearnbench.lenses import robustness

    steps = robustness.RELEARN_STEPS  # 0, 1, 2, 5, 10, 25, 50
    measured = [0.1, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]  # forget probability of the measured half after each step
    original = {"relearn": [[0.9, 0.9]] * len(steps), "quant": {"full": [0.9, 0.9], "q8": [0.9, 0.9], "q4": [0.9, 0.9],
                                                               "q8_agreement": 1.0, "q4_agreement": 1.0}}
    unlearned = {"relearn": [[m, m] for m in measured],
                 "quant": {"full": [0.1, 0.1], "q8": [0.1, 0.1], "q4": [0.5, 0.5], "q8_agreement": 0.2, "q4_agreement": 0.9}}
    metrics, _ = robustness.aggregate(unlearned, {"original": original})
    rr = [(m - 0.1) / (0.9 - 0.1) for m in measured]  # 0, 0, .125, .25, .5, .75, 1
    assert metrics["relearn_rr_50"] == pytest.approx(1.0) and metrics["relearn_rr_5"] == pytest.approx(0.25)
    area = sum((b - a) * (x + y) / 2 for a, b, x, y in zip(steps, steps[1:], rr, rr[1:])) / 50
    assert metrics["relearn_recovery_auc"] == pytest.approx(area)
    assert metrics["quant_recovery_4bit"] == pytest.approx(0.5) and metrics["quant_recovery_8bit"] == pytest.approx(0.0)
    assert metrics["quant_agreement_4bit"] == 0.9

    # a method that removed (almost) nothing has nothing to recover: no ratio at all
    barely = {"relearn": [[0.895, 0.895]] * len(steps), "quant": {**unlearned["quant"], "full": [0.895, 0.895]}}
    metrics, _ = robustness.aggregate(barely, {"original": original})
    assert not any(k.startswith(("relearn_", "quant_recovery")) for k in metrics)


def test_the_report_draws_the_relearning_attack(lens_run):
    from unlearnbench.report.runs import curves, load_run

    run = load_run(lens_run.run_dir)
    (title, x_label, series), *_ = curves(run)
    assert title.startswith("Relearning") and x_label == "relearning step"
    assert set(series) == {"forget probability, unlearned", "forget probability, original target",
                           "forget probability, oracle (control)"}
    xs, ys = series["forget probability, unlearned"]
    per_example = json.loads((lens_run.run_dir / PER_EXAMPLE_FILE).read_text())
    assert list(xs) == [0, 1, 2, 5, 10, 25, 50]
    assert ys[0] == pytest.approx(np.mean(per_example["lenses"]["robustness"]["unlearned"]["relearn"][0]))


def test_model_lenses_alone_skip_the_suite_and_the_board_refuses_them(run_tiny):
    from unlearnbench.leaderboard.submissions import SubmissionError, check_recomputed

    result = run_tiny("ga", lenses=("robustness",))
    assert result.record.status == "succeeded"
    assert set(result.record.metrics) and all(r.lens == "robustness" for r in result.rows)
    assert "unlearned" not in result.token_counts  # no scoring pass for the suite
    record = json.loads((result.run_dir / "record.json").read_text())
    per_example = json.loads((result.run_dir / PER_EXAMPLE_FILE).read_text())
    with pytest.raises(SubmissionError, match="behavior lens"):
        check_recomputed(record, per_example, record["task"]["suite"])


def test_a_concept_vectors_file_names_the_vectors_to_validate(tiny_synth, tmp_path):
    from unlearnbench.lm.concepts import read_concept_vectors
    from unlearnbench.errors import DataError
    from unlearnbench.runner import RunSpec, run

    entries = [{"Concept": "Harbor Lights", "Layer": 0, "Dim": 3, "QA": ["Where are the harbor lights?"],
                "wikipedia_content": "Harbor Lights is a novel. " * 40},
               {"Concept": "Quiet Hills", "Layer": 0, "Dim": 5, "QA": ["What are the Quiet Hills?"]}]
    path = tmp_path / "llama2-7b_concepts.json"
    path.write_text(json.dumps(entries))
    concepts = read_concept_vectors(str(path))
    assert [(c["name"], c["layer"], c["index"]) for c in concepts] == [("Harbor Lights", 0, 3), ("Quiet Hills", 0, 5)]
    assert len(concepts[0]["prompts"]) == 3 and concepts[1]["prompts"] == [("", "What are the Quiet Hills?")]

    result = run(RunSpec(task="tofu-synth/forget10", method="original", out=tmp_path / "runs", quiet=True,
                         lenses=("behavior", "parametric"), task_options={"synth": tiny_synth, "concepts": str(path)}))
    per_example = json.loads((result.run_dir / PER_EXAMPLE_FILE).read_text())
    tested = per_example["lenses"]["parametric"]["original"]["candidates"]
    assert [(c["concept"], c["layer"], c["index"]) for c in tested] == [("Harbor Lights", 0, 3), ("Quiet Hills", 0, 5)]
    assert result.record.metrics["concept_vectors"] == sum(c["valid"] for c in tested)

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"Concept": "x", "Layer": 0}]))
    with pytest.raises(DataError, match="Dim"):
        read_concept_vectors(str(bad))
