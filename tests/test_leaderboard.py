"""Submissions are validated before they are accepted; boards are rendered from them, deterministically."""

import json
import os
from pathlib import Path

import pytest
from _tiny_runs import copy_run, tiny_loader, tiny_runs
from typer.testing import CliRunner

from unlearnbench.leaderboard import boards
from unlearnbench.cli.app import app
from unlearnbench.leaderboard.submissions import SUBMISSION_FILE, SubmissionError, task_folder
from unlearnbench.leaderboard.ranking import Criterion, Ranking, rank, ranking_for
from unlearnbench.records import PER_EXAMPLE_FILE, RECORD_FILE

REPO = Path(__file__).resolve().parent.parent
cli = CliRunner()


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    return tiny_runs(tiny_synth, tmp_path_factory)


def refused(accept, run_dir, **kw) -> str:
    with pytest.raises(SubmissionError) as info:
        accept(run_dir, **kw)
    return str(info.value)


# ------------------------------------------------------------------------- accepted


def test_a_valid_run_is_accepted_and_stored_as_plain_json_files(runs, accept, tmp_path):
    stored = accept(copy_run(runs["ga"], tmp_path / "ga"))
    assert stored.parent == accept.board / "tofu-synth__forget10"
    assert sorted(p.name for p in stored.iterdir()) == [PER_EXAMPLE_FILE, RECORD_FILE, SUBMISSION_FILE]
    record = json.loads((stored / RECORD_FILE).read_text())
    assert record == json.loads((runs["ga"] / RECORD_FILE).read_text()) | {"provenance": record["provenance"]}
    meta = json.loads((stored / SUBMISSION_FILE).read_text())
    assert meta["dirty"] is False and meta["suite"] == "tofu" and len(meta["per_example_sha256"]) == 64


def test_a_record_file_can_be_submitted_instead_of_its_folder(runs, accept, tmp_path):
    run = copy_run(runs["original"], tmp_path / "original")
    assert accept(run / RECORD_FILE).name == json.loads((run / RECORD_FILE).read_text())["run_id"]


def test_every_method_run_of_the_existing_task_is_accepted_and_ranked(runs, accept, tmp_path):
    for method, run in runs.items():
        accept(copy_run(run, tmp_path / method))
    boards.build(accept.board)
    [board] = boards.task_boards(boards.collect(accept.board))
    assert sorted(r["method"]["name"] for _, _, r in board.ranked) == sorted(runs)
    assert [c.metric for c in board.ranking.criteria] == ["forget_quality", "model_utility"]


# -------------------------------------------------------------------------- refused


def test_a_record_made_on_different_data_is_refused_naming_the_fingerprint(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["task"].update(fingerprint="0123456789abcdef"))
    message = refused(accept, run)
    assert "fingerprint '0123456789abcdef' differs from the registry's" in message and "different data" in message


def test_a_record_of_another_task_version_is_refused_naming_the_version(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["task"].update(version="0"))
    from unlearnbench.tasks.tofu import FAMILY_VERSION

    assert f"version '0' differs from the registry's '{FAMILY_VERSION}'" in refused(accept, run)


def test_a_record_of_an_unregistered_task_is_refused_with_the_known_tasks(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["task"].update(name="tofu-synth/forget11"))
    message = refused(accept, run)
    assert "Unknown task 'tofu-synth/forget11'" in message and "tofu-synth/forget10" in message


def test_a_tampered_metric_is_refused_naming_the_metric(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["metrics"].update(forget_quality=0.99))
    message = refused(accept, run)
    assert "metric 'forget_quality' is 0.99 in the record" in message and "recomputed" in message


def test_a_tampered_reference_row_is_refused_naming_it(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["reference"]["oracle"].update(model_utility=0.5))
    assert "reference.oracle: metric 'model_utility'" in refused(accept, run)


def test_a_tampered_confidence_interval_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["ci"].update(forget_probability=[0.0, 1.0]))
    assert "the CI of metric 'forget_probability'" in refused(accept, run)


def test_per_example_scores_that_do_not_give_the_record_are_refused(runs, accept, tmp_path):
    def lower_truth_ratios(scores):
        scores["unlearned"]["forget"]["truth_ratio"] = [v * 0.5 for v in scores["unlearned"]["forget"]["truth_ratio"]]

    run = copy_run(runs["ga"], tmp_path / "ga", per_example=lower_truth_ratios)
    assert "metric 'forget_truth_ratio'" in refused(accept, run)


def test_a_metric_the_suite_does_not_compute_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["metrics"].update(secret_sauce=1.0))
    assert "'secret_sauce' is in the record but the suite does not compute it" in refused(accept, run)


def test_another_schema_version_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r.update(schema_version=99))
    assert "schema version 99" in refused(accept, run)


def test_a_record_missing_fields_is_refused_listing_them(runs, accept, tmp_path):
    def strip(record):
        del record["metrics"]
        record["seed"] = "zero"

    message = refused(accept, copy_run(runs["ga"], tmp_path / "ga", record=strip))
    assert "'metrics' is missing" in message and "'seed' should be a int, not str" in message


def test_a_failed_run_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r.update(status="failed"))
    assert "status 'failed'" in refused(accept, run)


def test_missing_per_example_scores_are_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga")
    (run / PER_EXAMPLE_FILE).unlink()
    assert "per-example scores" in refused(accept, run) and "does not exist" in refused(accept, run)


def test_a_record_without_package_versions_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["provenance"].pop("packages"))
    assert "no package versions" in refused(accept, run)


def test_a_record_without_git_revision_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["provenance"].update(git_sha=None))
    assert "no git revision" in refused(accept, run)


def test_a_dirty_harness_is_refused_without_allow_dirty(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["provenance"].update(git_dirty=True))
    message = refused(accept, run)
    assert "uncommitted changes" in message and "--allow-dirty" in message


def test_allow_dirty_accepts_a_dirty_run_and_marks_it_on_the_boards(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["provenance"].update(git_dirty=True))
    stored = accept(run, allow_dirty=True)
    assert json.loads((stored / SUBMISSION_FILE).read_text())["dirty"] is True
    files = boards.build(accept.board)
    assert "| ga † |" in files["README.md"] and "uncommitted changes" in files["README.md"]
    assert "†" in files["index.html"]


def test_a_run_already_on_the_board_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga")
    accept(run)
    assert "already on the board" in refused(accept, run)


def test_a_renamed_copy_of_a_run_on_the_board_is_refused(runs, accept, tmp_path):
    accept(copy_run(runs["ga"], tmp_path / "ga"))
    renamed = copy_run(runs["ga"], tmp_path / "renamed", record=lambda r: r.update(run_id="my-own-name"))
    assert "run_id 'my-own-name' is not the id of this task, method, seed and config hash" in refused(accept, renamed)


def test_a_run_id_with_path_traversal_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r.update(run_id="../../outside"))
    assert "not a safe name" in refused(accept, run)
    assert not (tmp_path / "outside").exists()


def test_task_names_become_safe_folder_names():
    assert task_folder("tofu-synth/forget10") == "tofu-synth__forget10"
    for name in ("../../etc", "/abs/path", "a/../../b", ".hidden"):
        folder = task_folder(name)
        assert "/" not in folder and "\\" not in folder and not folder.startswith(".")  # one plain path component


def test_symbolic_links_are_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga")
    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink(run / RECORD_FILE, linked / RECORD_FILE)
    os.symlink(run / PER_EXAMPLE_FILE, linked / PER_EXAMPLE_FILE)
    assert "symbolic link" in refused(accept, linked)


def test_a_pickle_is_never_loaded(runs, accept, tmp_path):
    import pickle

    run = copy_run(runs["ga"], tmp_path / "ga")
    (run / PER_EXAMPLE_FILE).write_bytes(pickle.dumps({"unlearned": {}}))
    assert "not valid JSON" in refused(accept, run)


def test_a_bare_nan_in_a_record_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga")
    text = (run / RECORD_FILE).read_text().replace('"forget_quality": ', '"forget_quality": NaN, "x": ', 1)
    (run / RECORD_FILE).write_text(text)
    assert "NaN is not JSON" in refused(accept, run)


def test_stored_runs_are_readable_by_everyone(runs, accept, tmp_path):
    stored = accept(copy_run(runs["ga"], tmp_path / "ga"))
    assert stored.stat().st_mode & 0o755 == 0o755


def test_the_cli_refuses_with_exit_code_2_and_says_why(runs, tiny_synth, tmp_path, monkeypatch):
    monkeypatch.setattr("unlearnbench.leaderboard.submissions.registry_task", tiny_loader(tiny_synth))
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["metrics"].update(model_utility=0.75))
    result = cli.invoke(app, ["submit", str(run), "--leaderboard", str(tmp_path / "board")])
    assert result.exit_code == 2
    assert "submission refused" in result.stderr and "'model_utility'" in result.stderr


def test_the_cli_accepts_rebuilds_and_tells_the_rank(runs, tiny_synth, tmp_path, monkeypatch):
    monkeypatch.setattr("unlearnbench.leaderboard.submissions.registry_task", tiny_loader(tiny_synth))
    board = tmp_path / "board"
    result = cli.invoke(app, ["submit", str(copy_run(runs["ga"], tmp_path / "ga")), "--leaderboard", str(board)])
    assert result.exit_code == 0, result.output
    assert "accepted" in result.stdout and "rank 1 of 1 on tofu-synth/forget10" in result.stdout
    assert (board / "README.md").is_file() and (board / "index.html").is_file()


# --------------------------------------------------------------------------- boards


@pytest.fixture
def board(runs, accept, tmp_path):
    for method, run in runs.items():
        accept(copy_run(run, tmp_path / method))
    boards.build(accept.board)
    return accept.board


def test_the_readme_board_has_a_table_per_task_with_the_reference_rows(board):
    text = (board / "README.md").read_text()
    assert "## tofu-synth/forget10" in text
    assert "| # | method | check | params | seed | forget_quality ↑ | model_utility ↑ | mean rank | run |" in text
    assert "| ref | *original* |" in text and "| ref | *oracle* |" in text
    assert "TOFU (Maini et al., 2024)" in text


def test_the_html_board_is_one_self_contained_page(board):
    page = (board / "index.html").read_text()
    assert page.count('<table class="board sortable-table"') == 1
    assert 'data-reference="original"' in page and 'data-reference="oracle"' in page
    assert "<svg" in page and "<script>" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page


def test_building_twice_gives_the_same_bytes_wherever_the_board_lives(board, tmp_path):
    import shutil

    first = {name: (board / name).read_bytes() for name in boards.BOARD_FILES}
    copy = tmp_path / "elsewhere" / "leaderboards"
    shutil.copytree(board, copy)
    boards.build(copy)
    assert {name: (copy / name).read_bytes() for name in boards.BOARD_FILES} == first


def test_the_check_fails_when_a_board_is_stale(board):
    assert boards.stale_files(board) == []
    (board / "README.md").write_text("edited by hand\n")
    assert boards.stale_files(board) == ["README.md"]
    result = cli.invoke(app, ["leaderboard", "build", "--check", "--leaderboard", str(board)])
    assert result.exit_code == 1 and "out of date" in result.stderr


def test_leaderboard_show_prints_the_ranking(board):
    result = cli.invoke(app, ["leaderboard", "show", "--task", "tofu-synth/forget10", "--leaderboard", str(board)])
    assert result.exit_code == 0
    assert "forget_quality" in result.stdout and "ga" in result.stdout and "oracle" in result.stdout


def test_leaderboard_show_names_the_tasks_on_the_board_for_an_unknown_one(board):
    result = cli.invoke(app, ["leaderboard", "show", "--task", "muse/news", "--leaderboard", str(board)])
    assert result.exit_code == 2 and "tofu-synth/forget10" in result.stderr


def test_the_committed_board_is_what_build_produces_from_the_committed_submissions():
    stale = boards.stale_files(REPO / "leaderboards")
    assert stale == [], f"leaderboards/{stale} out of date: run `unlearnbench leaderboard build` and commit."


# -------------------------------------------------------------------------- ranking


def _record(run_id, metrics, oracle=None):
    return {"run_id": run_id, "metrics": metrics, "reference": {"oracle": oracle or {}}}


def test_tofu_ranks_by_mean_rank_of_forget_quality_and_model_utility():
    ranking = ranking_for("tofu", [], {"forget_quality", "model_utility", "forget_probability"})
    records = [_record("a", {"forget_quality": 0.9, "model_utility": 0.1}),
               _record("b", {"forget_quality": 0.5, "model_utility": 0.5}),
               _record("c", {"forget_quality": 0.1, "model_utility": 0.9}),
               _record("d", {"forget_quality": 0.01, "model_utility": 0.01})]
    ranked = rank(records, ranking)
    assert [r["run_id"] for _, _, r in ranked] == ["a", "b", "c", "d"]  # equal mean rank: forget quality decides
    assert [position for position, _, _ in ranked] == [1, 1, 1, 4] and ranked[-1][1] == 4.0


def test_muse_ranks_its_four_criteria_with_privleak_closest_to_zero():
    ranking = ranking_for("muse", [], {"verbmem_forget", "knowmem_forget", "privleak", "knowmem_retain"})
    assert [(c.metric, c.goal) for c in ranking.criteria] == [
        ("verbmem_forget", "lower"), ("knowmem_forget", "lower"), ("privleak", "zero"), ("knowmem_retain", "higher")]
    near_zero = _record("near", {"verbmem_forget": 10, "knowmem_forget": 10, "privleak": -2, "knowmem_retain": 50})
    far = _record("far", {"verbmem_forget": 10, "knowmem_forget": 10, "privleak": 1.5e2, "knowmem_retain": 50})
    assert [r["run_id"] for _, _, r in rank([far, near_zero], ranking)] == ["near", "far"]


@pytest.fixture
def toy_suite():
    """Registers a suite "toy" (rows and ranking set per test) and removes it afterwards."""
    from unlearnbench import registry
    from unlearnbench.suites.base import Suite

    class Toy(Suite):
        name = "toy"
        table: list = []

        def rows(self):
            return self.table

        def score(self, scorer, ctx):
            return {}

        def aggregate(self, per_example, oracle_per_example, *, seed=0):
            return {}, {}

    registry.entries("suite")  # built-ins first, so the toy is not mistaken for a half-loaded registry
    registry.register_suite("toy")(Toy)
    yield Toy
    registry.unregister("suite", "toy")


def test_a_suite_without_a_declared_ranking_is_ranked_by_its_rows_directions(toy_suite):
    from unlearnbench.suites import MetricRow

    rows = [MetricRow("forget_error", "higher", "behavior", ""), MetricRow("test_error", "lower", "utility", ""),
            MetricRow("n", "info", "behavior", "")]
    toy_suite.table = rows
    ranking = ranking_for("toy", rows, {"forget_error", "test_error", "n"})
    assert ranking.criteria == (Criterion("forget_error", "higher"), Criterion("test_error", "lower"))
    assert (ranking.x, ranking.y) == (None, "forget_error")


def test_a_suite_can_declare_its_own_ranking(toy_suite):
    toy_suite.ranking = {"criteria": [("gap", "lower")], "source": "toy paper"}
    assert ranking_for("toy", [], {"gap", "other"}) == Ranking((Criterion("gap", "lower"),), source="toy paper")


def test_closest_to_the_oracle_ranks_by_distance_to_the_oracle_value():
    ranking = Ranking((Criterion("mia_loss_auc", "oracle"),))
    close = _record("close", {"mia_loss_auc": 0.52}, {"mia_loss_auc": 0.5})
    far = _record("far", {"mia_loss_auc": 0.3}, {"mia_loss_auc": 0.5})
    missing = _record("missing", {})
    assert [r["run_id"] for _, _, r in rank([missing, far, close], ranking)] == ["close", "far", "missing"]
