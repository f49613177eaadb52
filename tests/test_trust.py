"""Trust under attack and faults (issue 19): what a crafted submission, a corrupted cache, an
interrupted rerun or a bad input can and cannot do. One section per finding."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _tiny_runs import copy_run, tiny_loader, tiny_runs
from typer.testing import CliRunner

from unlearnbench.cli.app import app
from unlearnbench.leaderboard import boards
from unlearnbench.leaderboard.submissions import SubmissionError, submit
from unlearnbench.records import RECORD_FILE

cli = CliRunner()
EVIL_NAME = 'evil[/]<img src=x onerror=alert(1)>[x](javascript:alert(1))'
EVIL_PARAMS = {"<b>key</b>": "[link=https://evil.example]v[/link]", "k": "<script>alert(1)</script>"}


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    return tiny_runs(tiny_synth, tmp_path_factory)


@pytest.fixture
def accept(tiny_synth, tmp_path):
    board = tmp_path / "board"
    loader = tiny_loader(tiny_synth)

    def _submit(run_dir, **kw):
        kw.setdefault("board", board)
        return submit(run_dir, task_loader=loader, **kw)

    _submit.board = board
    return _submit


def refused(accept, run_dir, **kw) -> str:
    with pytest.raises(SubmissionError) as info:
        accept(run_dir, **kw)
    return str(info.value)


def _stored(board: Path, method: str, params: dict, run_id: str = "t__m__s0__0123456789") -> Path:
    """A record placed on a board by hand (as a hostile pull request could): the renderers
    must show it as text whatever it holds."""
    run = board / "toy__task" / run_id
    run.mkdir(parents=True)
    record = {"run_id": run_id, "status": "succeeded", "seed": 0, "mode": "standard",
              "task": {"name": "toy/task", "version": "1", "fingerprint": "0123456789abcdef", "suite": "classifier"},
              "method": {"name": method, "params": params},
              "metrics": {"avg_gap": 1.0}, "reference": {"original": {"avg_gap": 2.0}, "oracle": {"avg_gap": 0.0}},
              "provenance": {"git_sha": "0" * 40, "git_dirty": False}}
    (run / RECORD_FILE).write_text(json.dumps(record))
    return run


# ------------------------------------------------- finding 4: rich output is never markup


def test_finding4_a_name_with_rich_markup_is_shown_as_text_by_leaderboard_show(tmp_path):
    _stored(tmp_path / "board", "evil[/]", {"k": "[link=x]v[/link]"})
    result = cli.invoke(app, ["leaderboard", "show", "--leaderboard", str(tmp_path / "board")])
    assert result.exit_code == 0, result.output
    assert "evil[/]" in result.stdout and "k=[link=x]v[/link]" in result.stdout


def test_finding4_an_error_message_holding_markup_is_printed_as_it_is(tmp_path):
    result = cli.invoke(app, ["leaderboard", "show", "--task", "x[/]y", "--leaderboard", str(tmp_path)])
    assert result.exit_code == 2 and "x[/]y" in result.stderr


# ------------------------------------- finding 5: Markdown and HTML boards escape everything


def test_finding5_the_markdown_board_holds_no_html_and_no_link_from_a_record(tmp_path):
    _stored(tmp_path / "board", EVIL_NAME, EVIL_PARAMS)
    text = boards.build(tmp_path / "board", write=False)["README.md"]
    row = next(line for line in text.splitlines() if "evil" in line)
    assert "<img" not in row and "<b>" not in row and "<script" not in row
    assert not re.search(r"(?<!\\)\]\(javascript", row)  # "](" only escaped: no link
    assert "&lt;img src=x onerror=alert(1)&gt;" in row and "\\[x\\](javascript:alert(1))" in row
    header = next(line for line in text.splitlines() if line.startswith("| # |"))
    assert row.count(" | ") == header.count(" | ")  # no cell bar came from the record: the table keeps its shape


def test_finding5_markdown_escaping_leaves_plain_names_and_snake_case_as_they_are():
    assert boards._md("batch_size=32, lora_targets=q_proj") == "batch_size=32, lora_targets=q_proj"
    assert boards._md("digits-class-3__ga__s0") == "digits-class-3__ga__s0"
    assert boards._md("_emph_ *b* `c` a|b") == "\\_emph\\_ \\*b\\* \\`c\\` a\\|b"


def test_finding5_the_html_board_escapes_names_and_params(tmp_path):
    _stored(tmp_path / "board", EVIL_NAME, EVIL_PARAMS)
    page = boards.build(tmp_path / "board", write=False)["index.html"]
    assert "<img src=x" not in page and "<script>alert" not in page and "<b>key" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_finding5_a_submitted_method_name_that_is_not_a_name_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["method"].update(name=EVIL_NAME))
    assert "is not a method name" in refused(accept, run)


def test_finding5_a_submitted_method_unknown_to_the_registry_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["method"].update(name="my-secret-method"))
    message = refused(accept, run)
    assert "not one this unlearnbench knows" in message and "my-secret-method" in message
