"""Verified submissions (issue 19, finding 1): a forged run cannot reach rank 1.

The forgery of the issue: a run's unlearned per-example scores replaced by the oracle's, every
number recomputed with the suite's own aggregate. Recomputation alone accepts it; the board's
own reference scores refuse it when its references were touched too, and when they were not it
is marked *recomputed* and ranks below every run the board *verified* from its saved weights.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import pytest
from _tiny_runs import copy_run, tiny_loader, tiny_runs
from typer.testing import CliRunner

from unlearnbench.cli.app import app
from unlearnbench.leaderboard import boards
from unlearnbench.leaderboard.ranking import Criterion, Ranking, rank_tiers
from unlearnbench.leaderboard.submissions import SUBMISSION_FILE, SubmissionError
from unlearnbench.leaderboard.verify import MODEL_DIR, first_difference
from unlearnbench.records import PER_EXAMPLE_FILE, RECORD_FILE

cli = CliRunner()


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    return tiny_runs(tiny_synth, tmp_path_factory)


@pytest.fixture(scope="module")
def saved(tiny_synth, tmp_path_factory) -> Path:
    """A ga run on the tiny world that kept its weights (--save-model)."""
    from unlearnbench.runner import RunSpec, run

    result = run(RunSpec(task="tofu-synth/forget10", method="ga", params={"epochs": "1", "lr": "2e-3"}, quiet=True,
                         out=tmp_path_factory.mktemp("saved"), task_options={"synth": tiny_synth}, save_model=True))
    assert result.record.status == "succeeded" and (result.run_dir / MODEL_DIR).is_dir()
    return result.run_dir


def with_weights(run: Path, dest: Path, **edits) -> Path:
    copy_run(run, dest, **edits)
    shutil.copytree(run / MODEL_DIR, dest / MODEL_DIR)
    return dest


def _finite(value):
    """What a record writes: non-finite numbers as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def forge(run: Path, dest: Path, *, touch_oracle: bool = False) -> Path:
    """The issue's forgery: the unlearned scores are the oracle's, and every metric, CI and
    reference row is recomputed with the suite's own aggregate, so recomputation finds nothing.
    ``touch_oracle`` also moves one oracle score (a forger who edits the references too)."""
    from unlearnbench.suites import get_suite

    record = json.loads((run / RECORD_FILE).read_text())
    scores = json.loads((run / PER_EXAMPLE_FILE).read_text())
    # what only the unlearned model has (a classifier's rte_s, its unlearning time) is kept
    scores["unlearned"] = {**scores["unlearned"], **copy.deepcopy(scores["oracle"])}
    if touch_oracle:
        scores["oracle"]["forget"]["truth_ratio"][3] += 0.25
    aggregate = get_suite(record["task"]["suite"]).aggregate
    metrics, ci = aggregate(scores["unlearned"], scores["oracle"], seed=record["seed"])

    def edit(r):
        r["metrics"] = _finite({k: metrics[k] for k in r["metrics"]})
        r["ci"] = _finite({k: list(ci[k]) for k in r["ci"]})
        for which in ("original", "oracle"):
            row = aggregate(scores[which], scores["oracle"], seed=r["seed"])[0]
            r["reference"][which] = _finite({k: row[k] for k in r["reference"][which]})

    copy_run(run, dest, record=edit)
    (dest / PER_EXAMPLE_FILE).write_text(json.dumps(_finite(scores)))
    return dest


def meta(stored: Path) -> dict:
    return json.loads((stored / SUBMISSION_FILE).read_text())


# ------------------------------------------------------------------------- the forgery


def test_finding1_the_forged_run_passes_recomputation_alone(runs, tmp_path):
    """The precondition of the finding: the forgery is consistent with its own scores."""
    from unlearnbench.leaderboard.submissions import check_recomputed, read_json

    run = forge(runs["original"], tmp_path / "forged")
    record = read_json(run / RECORD_FILE, 1 << 24, "record")
    check_recomputed(record, read_json(run / PER_EXAMPLE_FILE, 1 << 28, "scores"), "tofu")
    assert record["metrics"]["forget_quality"] == pytest.approx(1.0)  # as good as the oracle: rank 1 by numbers


def test_finding1_a_forged_run_whose_references_differ_is_refused_naming_the_example(runs, accept, tmp_path):
    with pytest.raises(SubmissionError) as caught:
        accept(forge(runs["original"], tmp_path / "forged", touch_oracle=True))
    message = str(caught.value)
    assert "oracle model's per-example scores are not the ones this task's oracle gives here" in message
    assert "first difference: oracle.forget.truth_ratio[3]" in message
    assert not (accept.board / "tofu-synth__forget10").exists() or not any((accept.board / "tofu-synth__forget10").iterdir())


def test_finding1_a_forged_run_with_scores_only_is_recomputed_and_ranks_below_a_verified_run(runs, saved, accept,
                                                                                             tmp_path):
    verified = accept(with_weights(saved, tmp_path / "ga"), verify=True)
    forged = accept(forge(runs["original"], tmp_path / "forged"))
    assert meta(verified)["verification"] == "verified" and meta(forged)["verification"] == "recomputed"
    assert meta(forged)["references"] == "board"  # its references are the task's: only its own scores are unproven
    [board] = boards.task_boards(boards.collect(accept.board))
    order = [(position, r["run_id"]) for position, _, r in board.ranked]
    assert order == [(1, verified.name), (2, forged.name)]
    forged_metrics = json.loads((forged / RECORD_FILE).read_text())["metrics"]
    verified_metrics = json.loads((verified / RECORD_FILE).read_text())["metrics"]
    assert forged_metrics["forget_quality"] > verified_metrics["forget_quality"]  # better numbers, ranked below
    readme = boards.build(accept.board, write=False)["README.md"]
    row = next(line for line in readme.splitlines() if forged.name in line)
    assert row.startswith("| 2 | original | recomputed |")
    assert "| 1 | ga | verified |" in readme
    assert boards.placement(accept.board, forged.name).startswith("rank 2 of 2")


def test_the_html_and_terminal_boards_show_the_mark(runs, saved, accept, tmp_path):
    from rich.console import Console

    accept(with_weights(saved, tmp_path / "ga"), verify=True)
    accept(copy_run(runs["original"], tmp_path / "original"))
    page = boards.build(accept.board, write=False)["index.html"]
    assert page.count('<td class="text check">verified</td>') == 1
    assert page.count('<td class="text check">recomputed</td>') == 1
    [board] = boards.task_boards(boards.collect(accept.board))
    console = Console(width=400, record=True)
    console.print(boards.rich_table(board))
    text = console.export_text()
    assert "verified" in text and "recomputed" in text


# ------------------------------------------------------------------------- submit --verify


def test_submit_verify_marks_a_genuine_saved_model_verified(saved, tiny_synth, tmp_path, monkeypatch):
    monkeypatch.setattr("unlearnbench.leaderboard.submissions.registry_task", tiny_loader(tiny_synth))
    board = tmp_path / "board"
    result = cli.invoke(app, ["submit", str(with_weights(saved, tmp_path / "ga")), "--leaderboard", str(board),
                              "--verify"])
    assert result.exit_code == 0, result.output
    assert "accepted (verified)" in result.stdout
    [stored] = (board / "tofu-synth__forget10").iterdir()
    notes = meta(stored)
    assert notes["verification"] == "verified" and notes["weights"] == "model/" and len(notes["weights_sha256"]) == 64
    assert not (stored / MODEL_DIR).exists()  # the board keeps what it checked, not the weights


def test_submit_verify_refuses_a_saved_model_whose_scores_are_not_the_submitted_ones(saved, accept, tmp_path):
    forged = forge(saved, tmp_path / "forged")  # the oracle's scores sent beside the run's genuine weights
    shutil.copytree(saved / MODEL_DIR, forged / MODEL_DIR)
    with pytest.raises(SubmissionError) as caught:
        accept(forged, verify=True)
    message = str(caught.value)
    assert "unlearned per-example scores are not what the run's weights (model/) give" in message
    assert "first difference: unlearned." in message


def test_submit_verify_without_weights_says_how_to_keep_them(runs, accept, tmp_path):
    with pytest.raises(SubmissionError, match="re-run it with --save-model"):
        accept(copy_run(runs["ga"], tmp_path / "ga"), verify=True)


@pytest.mark.parametrize("planted", ["pytorch_model.bin", "modeling_evil.py", "link"])
def test_a_saved_model_folder_holding_other_than_data_files_is_refused(planted, saved, accept, tmp_path):
    run = with_weights(saved, tmp_path / "ga")
    if planted == "link":
        (run / MODEL_DIR / "extra.json").symlink_to("/etc/passwd")
    else:
        (run / MODEL_DIR / planted).write_bytes(b"import os")
    with pytest.raises(SubmissionError, match="symbolic link|not a file a saved model holds"):
        accept(run, verify=True)


def test_references_the_board_cannot_score_are_marked_unverified_and_rank_below(runs, saved, accept, tmp_path):
    from unlearnbench.errors import ModelSourceError

    def hub_out_of_reach(spec, task, **kw):
        raise ModelSourceError("Could not fetch hub:org/target (offline)")

    verified = accept(with_weights(saved, tmp_path / "ga"), verify=True)
    unverified = accept(copy_run(runs["original"], tmp_path / "original"), scores=hub_out_of_reach)
    notes = meta(unverified)
    assert notes["verification"] == "recomputed" and notes["references"] == "unverified"
    assert "could not load the task's models" in notes["references_note"] and "offline" in notes["references_note"]
    with pytest.raises(SubmissionError, match="--verify could not score the run here .*offline"):
        accept(with_weights(saved, tmp_path / "ga2"), verify=True, scores=hub_out_of_reach,
               board=tmp_path / "other-board")
    [board] = boards.task_boards(boards.collect(accept.board))
    assert [r["run_id"] for _, _, r in board.ranked] == [verified.name, unverified.name]
    assert "| recomputed, references unverified |" in boards.build(accept.board, write=False)["README.md"]


# ------------------------------------------------------------------------ the pieces


def test_first_difference_names_the_first_example_beyond_the_tolerance():
    ours = {"forget": {"nll": [1.0, 2.0, 3.0], "generation": ["a", "b"]}, "retain": {"nll": [0.5]}}
    close = {"forget": {"nll": [1.0 + 1e-7, 2.0, 3.0], "generation": ["a", "b"]}, "retain": {"nll": [0.5]}}
    assert first_difference(close, ours, "oracle") is None
    moved = copy.deepcopy(ours)
    moved["forget"]["nll"][2] = 3.01
    assert first_difference(moved, ours, "oracle") == "oracle.forget.nll[2]: 3.01 submitted, 3.0 here"
    moved = copy.deepcopy(ours)
    moved["forget"]["generation"][1] = "c"
    assert first_difference(moved, ours, "x") == "x.forget.generation[1]: 'c' submitted, 'b' here"
    assert first_difference({"forget": ours["forget"]}, ours, "x") == "x.retain: missing from the submission"
    assert first_difference({**ours, "evil": 1}, ours, "x") == "x.evil: not a score this task's suite gives"
    short = copy.deepcopy(ours)
    short["retain"]["nll"] = []
    assert first_difference(short, ours, "x") == "x.retain.nll: 0 submitted, 1 examples here"
    assert first_difference({"v": None}, {"v": float("nan")}, "x") is None  # records write nan as null
    # wall-clock seconds (rte_s, sampling_s) are this machine's timing: present on both sides, never compared
    timed = {"probs": [0.5], "sampling_s": 2.9, "rte_s": 30.0}
    assert first_difference({**timed, "sampling_s": 2.7, "rte_s": 31.0}, timed, "x") is None
    assert first_difference({"probs": [0.5], "rte_s": 30.0}, timed, "x") == "x.sampling_s: missing from the submission"


def test_rank_tiers_never_ranks_a_later_tier_above_an_earlier_one():
    ranking = Ranking((Criterion("gap", "lower"),))
    records = [{"run_id": "a", "metrics": {"gap": 0.0}, "tier": 1}, {"run_id": "b", "metrics": {"gap": 5.0}, "tier": 0},
               {"run_id": "c", "metrics": {"gap": 1.0}, "tier": 0}, {"run_id": "d", "metrics": {"gap": 0.5}, "tier": 1}]
    ranked = rank_tiers(records, ranking, lambda r: r["tier"])
    assert [(position, r["run_id"]) for position, _, r in ranked] == [(1, "c"), (2, "b"), (3, "a"), (4, "d")]


def test_a_run_stored_before_the_marks_existed_is_recomputed(tmp_path):
    from unlearnbench.leaderboard.verify import mark

    assert mark({"_submission": {}}) == "recomputed"
    assert mark({"_submission": {"verification": "verified", "references": "unverified"}}).startswith("recomputed")
    assert mark({"_submission": {"verification": "verified", "references": "board"}}) == "verified"
