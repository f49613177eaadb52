"""Trust under attack and faults (issue 19): what a crafted submission, a corrupted cache, an
interrupted rerun or a bad input can and cannot do. One section per finding."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _tiny_runs import copy_run, tiny_runs
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


# ------------------------------------------- finding 8: one clear line and exit 2, before any work


def _evaluate(tmp_path, *args, task="digits/class-3", method="ga"):
    """``unlearnbench evaluate`` on a cache that must stay empty (nothing may be built)."""
    return cli.invoke(app, ["evaluate", "--task", task, "--method", method, "--quiet",
                            "--out", str(tmp_path / "runs"), *args])


def _one_clear_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stderr.startswith("error:")
    return result.stderr


BAD_RUN_INPUTS = {
    "negative lr": (["--param", "lr=-1"], "lr must be a learning rate > 0"),
    "lr nan": (["--param", "lr=nan"], "expected a finite number"),
    "lr inf": (["--param", "lr=inf"], "expected a finite number"),
    "negative epochs": (["--param", "epochs=-3"], "epochs must be a number of epochs >= 0"),
    "negative seed": (["--seed", "-1"], "a seed is a whole number from 0"),
    "a cuda device this machine lacks": (["--device", "cuda:99"], "--device cuda:99"),
}


@pytest.mark.parametrize("probe", BAD_RUN_INPUTS)
def test_finding8_a_bad_run_input_fails_with_one_line_before_any_work(probe, tmp_path, monkeypatch):
    args, message = BAD_RUN_INPUTS[probe]
    cache = tmp_path / "cache"
    monkeypatch.setenv("UNLEARNBENCH_CACHE", str(cache))
    assert message in _one_clear_line(_evaluate(tmp_path, *args))
    assert not cache.exists() and not (tmp_path / "runs").exists()  # no world built, no record left


def test_finding8_nan_and_inf_would_not_share_a_run_id():
    from unlearnbench.records import make_run_id

    config = {"task": "t", "method": "m", "seed": 0}
    ids = {make_run_id(config | {"params": {"lr": value}}) for value in (float("nan"), float("inf"), float("-inf"))}
    assert len(ids) == 3


def test_finding8_an_out_folder_that_is_a_file_or_read_only_fails_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNBENCH_CACHE", str(tmp_path / "cache"))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out, message in ((a_file, "is a file, not a folder"), (a_file / "runs", "is a file"),
                         (Path("/proc/unlearnbench-runs"), "is not writable")):
        result = cli.invoke(app, ["evaluate", "--task", "digits/class-3", "--method", "ga", "--out", str(out)])
        assert message in _one_clear_line(result)
    assert not (tmp_path / "cache").exists()


def test_finding8_report_and_submit_into_read_only_folders_fail_with_one_line(runs, tmp_path):
    read_only = "/proc/unlearnbench-board"
    report = cli.invoke(app, ["report", str(runs["ga"]), "--out", f"{read_only}/report.html"])
    assert "is not writable" in _one_clear_line(report)
    submitted = cli.invoke(app, ["submit", str(runs["ga"]), "--leaderboard", read_only])
    assert "--leaderboard" in _one_clear_line(submitted) and "is not writable" in submitted.stderr


def _tofu_data(tiny_task, tmp_path) -> Path:
    import shutil

    data = tmp_path / "TOFU"
    shutil.copytree(Path(tiny_task.extra["world_dir"]) / "data", data)
    return data


def test_finding8_a_tofu_answer_that_is_a_number_is_named(tiny_task, tmp_path):
    data = _tofu_data(tiny_task, tmp_path)
    path = data / "forget10.json"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[2]["answer"] = 1984
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = _evaluate(tmp_path, "--data-dir", str(data), task="tofu/forget10", method="ga")
    stderr = _one_clear_line(result)
    assert "forget10.json: row 2" in stderr and "'answer'" in stderr and "must be text" in stderr


def test_finding8_a_split_file_that_is_not_utf8_is_named(tiny_task, tmp_path):
    data = _tofu_data(tiny_task, tmp_path)
    path = data / "retain90.json"
    path.write_bytes(path.read_bytes().replace(b"e", b"\xe9", 1))
    stderr = _one_clear_line(_evaluate(tmp_path, "--data-dir", str(data), task="tofu/forget10"))
    assert "retain90.json: not UTF-8 text" in stderr


def test_finding8_a_header_only_csv_is_refused_naming_the_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNBENCH_CACHE", str(tmp_path / "cache"))
    table = tmp_path / "t.csv"
    table.write_text("a,b,y\n")
    result = _evaluate(tmp_path, "--data-file", str(table), "--target", "y", task="tabular-regression", method="ft")
    assert "has 0 row(s)" in _one_clear_line(result)


def test_finding8_a_forget_index_too_large_for_int64_is_out_of_range(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNBENCH_CACHE", str(tmp_path / "cache"))
    index = tmp_path / "forget.json"
    index.write_text(json.dumps({"version": 1, "task": "digits/class-3", "indices": [1, 2**63]}))
    result = _evaluate(tmp_path, "--forget-indices", str(index), method="original")
    assert f"out of range: {2**63}" in _one_clear_line(result)


# ------------------------------------------------------------------ finding 9: the smaller ones


def test_finding9_a_per_example_file_too_costly_to_parse_is_refused_before_parsing(runs, accept, tmp_path, monkeypatch):
    from unlearnbench.leaderboard import submissions
    from unlearnbench.records import PER_EXAMPLE_FILE

    run = copy_run(runs["ga"], tmp_path / "ga")
    raw = (run / PER_EXAMPLE_FILE).read_bytes()
    monkeypatch.setattr(submissions, "MAX_PARSE_BYTES", submissions.parse_cost(raw) - 1)
    assert "of memory to parse" in refused(accept, run)


def test_finding9_parse_cost_grows_with_the_objects_a_file_holds_not_only_its_bytes():
    from unlearnbench.leaderboard.submissions import parse_cost

    floats = b"[" + b"0.123456789012," * 1000 + b"0]"
    objects = b"[" + b"{}," * (len(floats) // 3) + b"{}]"
    assert parse_cost(objects) > 5 * parse_cost(floats) and abs(len(objects) - len(floats)) < 10


def test_finding9_a_forget_index_file_of_another_task_is_refused(tmp_path, monkeypatch):
    from unlearnbench.vision.classifier import write_forget_indices

    monkeypatch.setenv("UNLEARNBENCH_CACHE", str(tmp_path / "cache"))
    index = write_forget_indices(tmp_path / "f.json", [1, 2, 3], task="diabetes/random-10", strategy="manual", size=3)
    result = _evaluate(tmp_path, "--forget-indices", str(index), method="original")
    assert "was made for 'diabetes/random-10'" in _one_clear_line(result)


def test_finding9_a_forget_index_file_of_other_data_is_refused(tmp_path):
    from unlearnbench.errors import DataError
    from unlearnbench.tasks.digits import make_digits_task
    from unlearnbench.vision.classifier import write_forget_indices

    index = write_forget_indices(tmp_path / "f.json", [1, 2, 3], task="digits/random-1", strategy="manual", size=3,
                                 data="0" * 16)
    with pytest.raises(DataError, match="on other data"):
        make_digits_task("random-1", forget_indices=str(index), quiet=True)


def test_finding9_a_run_records_the_forget_indices_not_the_file_s_path(tmp_path):
    from unlearnbench.runner import RunSpec, plan
    from unlearnbench.vision.classifier import write_forget_indices

    ids = []
    for name in ("a.json", "b.json"):  # the same indices in two files: the same run
        index = write_forget_indices(tmp_path / name, [5, 1, 3], task="digits/random-1", strategy="manual", size=3)
        p = plan(RunSpec(task="digits/random-1", method="original", options={"forget_indices": str(index)}))
        assert str(tmp_path) not in json.dumps(p.config)
        ids.append(p.config)
    assert ids[0] == ids[1]


def test_finding9_a_constant_regression_target_is_refused(tmp_path):
    from unlearnbench.errors import DataError
    from unlearnbench.tasks.tabular import tabular_arrays

    table = tmp_path / "t.csv"
    table.write_text("a,y\n" + "".join(f"{i},7\n" for i in range(30)))
    with pytest.raises(DataError, match="same value \\(7\\) in every row"):
        tabular_arrays(table, "y")


def test_finding9_an_unreachable_hub_is_asked_from_the_local_cache_only(monkeypatch):
    import socket

    import huggingface_hub

    from unlearnbench import task as task_module
    from unlearnbench.errors import DataError

    asked = {}

    def no_network(*args, **kwargs):
        raise socket.timeout("timed out")

    def snapshot_download(repo_id, **kwargs):
        asked.update(kwargs)
        raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")

    task_module.hub_unreachable.cache_clear()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    try:
        with pytest.raises(DataError, match="Could not fetch dataset"):
            task_module.hub_snapshot("locuslab/TOFU", ["*.json"], offline_variant="tofu-synth/...")
    finally:
        task_module.hub_unreachable.cache_clear()
    assert asked["local_files_only"] is True  # no round of network retries


def test_finding9_a_sigterm_is_recorded_as_a_sigterm(run_tiny, monkeypatch, tmp_path):
    from unlearnbench.errors import Terminated
    from unlearnbench.methods.lm.ga import GradientAscent

    def terminated(*args, **kwargs):
        raise Terminated("SIGTERM")

    monkeypatch.setattr(GradientAscent, "unlearn", terminated)
    with pytest.raises(Terminated):
        run_tiny("ga", out=tmp_path / "runs")
    (run_dir,) = (tmp_path / "runs").iterdir()
    saved = json.loads((run_dir / RECORD_FILE).read_text())
    assert saved["status"] == "interrupted" and "SIGTERM" in saved["error"] and "Ctrl-C" not in saved["error"]
    assert "process" not in saved["provenance"]


def test_finding9_the_cli_turns_sigterm_into_terminated():
    import signal

    from unlearnbench.cli.app import _terminate
    from unlearnbench.errors import Terminated

    with pytest.raises(Terminated) as caught:
        _terminate(signal.SIGTERM, None)
    assert caught.value.signal_name == "SIGTERM" and isinstance(caught.value, KeyboardInterrupt)


def _left_running(run_tiny, tmp_path, pid: int) -> Path:
    """A run whose record says 'running' by process ``pid`` on this host (as a SIGKILL leaves it)."""
    from unlearnbench.records import this_process

    result = run_tiny("original", out=tmp_path / "runs")
    record = json.loads((result.run_dir / RECORD_FILE).read_text())
    record["status"] = "running"
    record["provenance"]["process"] = this_process() | {"pid": pid}
    (result.run_dir / RECORD_FILE).write_text(json.dumps(record))
    return result.run_dir


def test_finding9_a_record_left_running_by_a_killed_process_is_reported_and_replaced(run_tiny, tmp_path, capsys):
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    run_dir = _left_running(run_tiny, tmp_path, gone.pid)
    result = run_tiny("original", out=tmp_path / "runs", quiet=False)
    assert result.record.status == "succeeded" and result.run_dir == run_dir
    assert f"left 'running' by process {gone.pid}" in capsys.readouterr().err


def test_finding9_a_record_running_in_a_live_process_is_not_run_over(run_tiny, tmp_path):
    import subprocess

    from unlearnbench.errors import UserError

    alive = subprocess.Popen(["sleep", "60"])
    try:
        run_dir = _left_running(run_tiny, tmp_path, alive.pid)
        with pytest.raises(UserError, match=f"already running \\(process {alive.pid}"):
            run_tiny("original", out=tmp_path / "runs")
        assert json.loads((run_dir / RECORD_FILE).read_text())["status"] == "running"
    finally:
        alive.kill()
        alive.wait()


# ------------------------------------------------- finding 3: reruns never destroy a succeeded run


def _files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}


@pytest.mark.parametrize("fault", ["diverged", "interrupted", "terminated"])
def test_finding3_a_rerun_that_fails_leaves_the_succeeded_run_as_it_was(fault, run_tiny, monkeypatch, tmp_path):
    from unlearnbench.errors import Terminated, TrainingDivergedError
    from unlearnbench.methods.lm.ga import GradientAscent
    from unlearnbench.runner import ATTEMPTS_DIR

    first = run_tiny("ga", params={"epochs": "1"}, out=tmp_path / "runs")
    before = _files(first.run_dir)
    error = {"diverged": TrainingDivergedError("ga", 3, float("nan")), "interrupted": KeyboardInterrupt(),
             "terminated": Terminated("SIGTERM")}[fault]

    def fails(*args, **kwargs):
        raise error

    monkeypatch.setattr(GradientAscent, "unlearn", fails)
    if fault == "diverged":
        again = run_tiny("ga", params={"epochs": "1"}, out=tmp_path / "runs")
        assert again.record.status == "failed" and again.kept == first.run_dir
    else:
        with pytest.raises(KeyboardInterrupt):
            run_tiny("ga", params={"epochs": "1"}, out=tmp_path / "runs")
    assert _files(first.run_dir) == before  # record, per-example scores and log untouched
    assert json.loads(before[RECORD_FILE])["status"] == "succeeded"
    (attempt,) = (tmp_path / "runs" / ATTEMPTS_DIR / first.run_dir.name).iterdir()
    assert json.loads((attempt / RECORD_FILE).read_text())["status"] in ("failed", "interrupted")


def test_finding3_a_rerun_that_succeeds_replaces_the_run_and_leaves_no_attempt(run_tiny, tmp_path):
    from unlearnbench.runner import ATTEMPTS_DIR

    first = run_tiny("original", out=tmp_path / "runs")
    again = run_tiny("original", out=tmp_path / "runs")
    assert again.run_dir == first.run_dir and again.record.status == "succeeded"
    assert not (tmp_path / "runs" / ATTEMPTS_DIR).exists()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [first.run_dir.name]


# ------------------------------------------------------- finding 2: a submission is data only


def _as_task(name: str, options: dict):
    """A record edit: the run claims another task and its options (id kept consistent)."""
    def edit(record):
        digest = record["provenance"]["config_hash"]
        record["task"].update(name=name, options=options)
        record["run_id"] = f"{name.replace('/', '-')}__{record['method']['name']}__s{record['seed']}__{digest[:10]}"
        record["provenance"].pop("config")
    return edit


@pytest.fixture
def guarded_open(monkeypatch):
    """Fails the test when anything opens one of the paths added to the returned set."""
    import builtins
    import os

    guarded: set[str] = set()
    real_open, real_os_open = builtins.open, os.open

    def check(path):
        if str(path) in guarded:
            pytest.fail(f"{path} was opened")

    monkeypatch.setattr(builtins, "open", lambda file, *a, **k: (check(file), real_open(file, *a, **k))[1])
    monkeypatch.setattr(os, "open", lambda path, *a, **k: (check(path), real_os_open(path, *a, **k))[1])
    return guarded


def test_finding2_a_file_named_by_a_submission_is_never_opened_nor_echoed(runs, tmp_path, guarded_open):
    secret = tmp_path / "secret.csv"
    secret.write_text("secret_column,other\n" + "".join(f"{i},hunter2\n" for i in range(30)))
    guarded_open.add(str(secret))
    run = copy_run(runs["ga"], tmp_path / "ga", record=_as_task(
        "tabular-regression", {"forget": "random-10", "data_file": str(secret), "target": "secret_column"}))
    with pytest.raises(SubmissionError) as caught:
        submit(run, board=tmp_path / "board")  # the registry's own loader: what a real board runs
    message = str(caught.value)
    assert "never opens a file a submission names" in message and "data_file" in message
    assert "secret_column" not in message and "hunter2" not in message


def test_finding2_forget_indices_given_as_a_path_are_refused_unopened(runs, tmp_path, guarded_open):
    guarded_open.add("/etc/passwd")
    run = copy_run(runs["ga"], tmp_path / "ga", record=_as_task(
        "digits/class-3", {"forget": "class-3", "forget_indices": "/etc/passwd"}))
    with pytest.raises(SubmissionError, match="never as the path of a file"):
        submit(run, board=tmp_path / "board")


def test_finding2_only_declared_portable_options_reach_the_task():
    from unlearnbench.leaderboard.submissions import portable_options

    assert list(portable_options("digits/class-3")) == ["forget_indices"]
    assert list(portable_options("tabular-regression")) == ["forget_indices"]  # not data_file, target
    assert portable_options("tofu-synth/forget10") == {}


@pytest.mark.parametrize("where", ["top", "task", "provenance", "distribution"])
def test_finding2_a_field_the_schema_does_not_declare_is_refused(where, runs, accept, tmp_path):
    def add(record):
        target = {"top": record, "task": record["task"], "provenance": record["provenance"],
                  "distribution": record["provenance"].setdefault(
                      "distribution", {"name": "unlearnbench", "version": "0", "files_sha256": "0" * 64})}[where]
        target["payload"] = "<script>alert(1)</script>"

    message = refused(accept, copy_run(runs["ga"], tmp_path / "ga", record=add))
    assert "payload' is not a field of the RunRecord schema" in message


def test_finding2_params_that_are_not_the_method_s_are_refused(runs, accept, tmp_path):
    def edit(record):
        record["method"]["params"]["evil"] = "<b>x</b>"
        record["provenance"].pop("config")
    assert "method.params are not ga's" in refused(accept, copy_run(runs["ga"], tmp_path / "ga", record=edit))


def test_finding2_a_free_form_section_is_bounded(runs, accept, tmp_path):
    edit = lambda r: r["method"].setdefault("info", {}).update(blob="x" * (100 << 10))  # noqa: E731
    assert "'method.info' is over 64 KB" in refused(accept, copy_run(runs["ga"], tmp_path / "ga", record=edit))


# ------------------------------------------ finding 1 (identity): run id, config hash and config


def test_finding1_a_record_edited_after_the_run_disagrees_with_its_config(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["method"]["params"].update(lr=0.5))
    assert "params differ(s) from its config" in refused(accept, run)


def test_finding1_a_config_that_does_not_hash_to_the_config_hash_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r["provenance"]["config"].update(seed=1))
    assert "does not hash to its config_hash" in refused(accept, run)


def test_finding1_a_run_id_that_is_not_made_from_the_config_hash_is_refused(runs, accept, tmp_path):
    run = copy_run(runs["ga"], tmp_path / "ga", record=lambda r: r.update(run_id=r["run_id"][:-1] + "0"))
    assert "is not the id of this task, method, seed and config hash" in refused(accept, run)
