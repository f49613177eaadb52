"""The RunRecord is a typed, versioned model: its JSON Schema ships with the package, the records
on the board still read, submissions are validated by it, and --param goes through the same types."""

import base64
import copy
import dataclasses
import hashlib
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from pydantic import ValidationError

from unlearnbench.errors import UserError
from unlearnbench.leaderboard.submissions import SubmissionError, check_provenance, check_schema, harness_dirty
from unlearnbench.method import parse_params
from unlearnbench.records import (
    READABLE_SCHEMA_VERSIONS, SCHEMA_FILE, SCHEMA_VERSION, RunRecord, distribution_state, installed_distribution,
    json_schema_text, provenance,
)

REPO = Path(__file__).resolve().parent.parent
BOARD_RECORDS = sorted(REPO.glob("leaderboards/*/*/record.json"))
REGENERATE = "python -m unlearnbench.records --schema --write"


def board_record() -> dict:
    return json.loads(BOARD_RECORDS[0].read_text())


def runner_record() -> RunRecord:
    """A record built and changed the way the runner does it."""
    record = RunRecord(run_id="digits-random-10__ft__s0__0123456789", status="running", task={"name": "digits/random-10"},
                       method={"name": "ft", "params": {"lr": 0.01, "epochs": 1}},
                       model={"target": None, "oracle": None}, seed=0,
                       provenance={"packages": {"unlearnbench": "0.1.0"}, "git_sha": "0" * 40, "git_dirty": False},
                       mode="standard", lenses=["behavior"])
    record.task = {"name": "digits/random-10", "version": "1", "fingerprint": "f" * 16, "options": {"forget": "random-10"},
                   "suite": "classifier"}
    record.model = {"target": Path("/models/target"), "oracle": "recipe:digits-mlp",
                    "target_fingerprint": "a" * 16, "oracle_fingerprint": "b" * 16}
    record.reference = {"original": {}, "oracle": {}}
    record.reference["original"] = {"ua": np.float64(0.25)}
    record.reference.setdefault("oracle", {}).update(ua=0.5)
    record.method["info"] = {"stopped": "early"}
    record.metrics, record.ci = {"ua": np.float32(0.5), "n_forget": np.int64(18)}, {"ua": (0.25, 0.75)}
    record.status = "succeeded"
    return record


# ------------------------------------------------------------------------------- schema


def test_the_committed_json_schema_is_the_one_the_model_generates():
    assert SCHEMA_FILE == REPO / "unlearnbench" / "schema" / "record.schema.json"
    assert SCHEMA_FILE.read_text() == json_schema_text(), (
        f"{SCHEMA_FILE.relative_to(REPO)} is out of date with unlearnbench.records.RunRecord; regenerate it with "
        f"`{REGENERATE}` and commit it.")


def test_the_schema_command_prints_the_schema():
    out = subprocess.run([sys.executable, "-m", "unlearnbench.records", "--schema"], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout
    assert out == json_schema_text() and json.loads(out)["title"] == "RunRecord"


def test_the_schema_names_the_version_and_types_the_sections():
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    assert {"run_id", "status", "task", "method", "model", "seed"} <= set(schema["required"])
    for section in ("TaskInfo", "MethodInfo", "ModelInfo", "Provenance", "Distribution"):
        assert schema["$defs"][section]["additionalProperties"] is True  # extra keys records carry are kept


# ---------------------------------------------------------------------- reading records


@pytest.mark.parametrize("path", BOARD_RECORDS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name[:40]}")
def test_every_record_on_the_board_validates_and_writes_back_unchanged(path):
    data = json.loads(path.read_text())
    assert data["schema_version"] in READABLE_SCHEMA_VERSIONS
    record = RunRecord.model_validate(data, strict=True)
    expected = data | {"lenses": data.get("lenses", [])}  # schema-1 records made before lenses existed
    assert json.dumps(record.to_json()) == json.dumps(expected)  # same keys, same order, same values
    check_schema(data)


def test_a_record_reads_as_the_dicts_it_was_made_of():
    record = RunRecord.from_json(board_record())
    assert record.task["name"] == record.task.name and "suite" in record.task
    assert dict(record.model) == board_record()["model"] and record.model == board_record()["model"]
    assert record.method.get("info", {}) == board_record()["method"].get("info", {})
    assert record.provenance.git_dirty is False and record.provenance["git_sha"] == board_record()["provenance"]["git_sha"]


# ---------------------------------------------------------------------- writing records


def test_the_runner_s_record_writes_its_keys_in_the_order_it_always_did():
    out = runner_record().to_json()
    assert list(out) == ["schema_version", "run_id", "status", "task", "method", "model", "seed", "metrics", "ci",
                         "reference", "timing", "provenance", "error", "mode", "steps", "lenses"]
    assert list(out["task"]) == ["name", "version", "fingerprint", "options", "suite"]
    assert out["method"] == {"name": "ft", "params": {"lr": 0.01, "epochs": 1}, "info": {"stopped": "early"}}
    assert out["model"]["target"] == "/models/target"  # a folder is written as text
    assert out["metrics"] == {"ua": 0.5, "n_forget": 18} and type(out["metrics"]["n_forget"]) is int
    assert out["ci"] == {"ua": [0.25, 0.75]} and out["reference"] == {"original": {"ua": 0.25}, "oracle": {"ua": 0.5}}


def test_a_section_writes_only_the_keys_it_was_given_and_keeps_extra_ones():
    record = RunRecord(run_id="r", status="running", task={"name": "t", "world": "synth"}, method={"name": "ga"},
                       model={}, seed=0)
    out = record.to_json()
    assert out["task"] == {"name": "t", "world": "synth"} and out["method"] == {"name": "ga"} and out["model"] == {}
    assert out["provenance"] == {} and "suite" not in record.task and record.task.get("suite") is None


def test_a_record_survives_pickling_and_copying():
    record = runner_record()
    import pickle

    assert pickle.loads(pickle.dumps(record)).to_json() == record.to_json() == copy.deepcopy(record).to_json()


def test_a_metric_that_is_not_a_number_is_refused_at_once():
    record = runner_record()
    with pytest.raises(ValidationError, match="should be a number or null, not str"):
        record.metrics = {"ua": "high"}
    with pytest.raises(ValidationError, match="status"):
        record.status = "done"


# -------------------------------------------------------------------------- submissions


def submission_schema_message(edit) -> str:
    data = board_record()
    edit(data)
    with pytest.raises(SubmissionError) as info:
        check_schema(data)
    return str(info.value)


def test_a_submission_is_validated_by_the_model_naming_each_field():
    def edit(data):
        data["seed"] = "zero"
        data["task"]["options"] = []
        data["provenance"]["git_dirty"] = "no"
        data["ci"]["ua"] = ["low", 1.0]

    message = submission_schema_message(edit)
    assert "'seed' should be a int, not str" in message and "'task.options' should be a dict, not list" in message
    assert "'provenance.git_dirty' should be a bool, not str" in message and "'ci.ua[0]'" in message


def test_a_submitted_metric_that_is_not_a_number_is_named():
    message = submission_schema_message(lambda d: d["metrics"].update(l1_test="good"))
    assert "metric 'l1_test' is 'good', not a number" in message


def test_a_submission_without_the_task_fingerprint_or_a_reference_row_is_refused():
    def edit(data):
        del data["task"]["fingerprint"]
        del data["reference"]["oracle"]

    message = submission_schema_message(edit)
    assert "'task.fingerprint' is missing or not a string" in message and "'reference.oracle'" in message


def test_a_schema_version_that_is_a_bool_is_not_version_one():
    assert "schema version True" in submission_schema_message(lambda d: d.update(schema_version=True))


def distribution_record(**distribution) -> dict:
    data = board_record()
    for key in ("git_sha", "git_dirty"):
        del data["provenance"][key]
    data["provenance"]["distribution"] = {"name": "unlearnbench", "version": "0.1.0", "files_sha256": "c" * 64,
                                          "modified": False, "modified_files": [], **distribution}
    return data


def test_a_run_from_an_unmodified_installed_wheel_is_accepted():
    data = distribution_record()
    check_schema(data)
    check_provenance(data, allow_dirty=False)
    assert harness_dirty(data) is False


def test_a_run_from_a_modified_installed_wheel_is_refused_naming_the_files():
    data = distribution_record(modified=True, modified_files=["unlearnbench/tasks/digits.py"])
    check_schema(data)
    with pytest.raises(SubmissionError) as info:
        check_provenance(data, allow_dirty=False)
    message = str(info.value)
    assert "unlearnbench 0.1.0" in message and "modified" in message and "unlearnbench/tasks/digits.py" in message
    assert "--force-reinstall" in message and "--allow-dirty" in message
    check_provenance(data, allow_dirty=True)
    assert harness_dirty(data) is True


def test_a_distribution_block_without_its_file_hash_is_refused_by_the_schema():
    data = distribution_record(files_sha256="not-a-hash")
    with pytest.raises(SubmissionError, match="provenance.distribution.files_sha256"):
        check_schema(data)


def test_a_record_naming_neither_a_revision_nor_a_distribution_is_refused():
    data = board_record()
    data["provenance"]["git_sha"] = None
    with pytest.raises(SubmissionError, match="no git revision .* and no installed distribution"):
        check_provenance(data, allow_dirty=True)


# --------------------------------------------------------------------------- provenance


def test_in_a_checkout_provenance_names_the_git_revision():
    assert installed_distribution() is None  # the tests run from the checkout (an editable install)
    prov = provenance({"task": "t"}, "cpu")
    assert "distribution" not in prov and "git_sha" in prov and "git_dirty" in prov
    assert list(prov) == ["packages", "python", "platform", "git_sha", "git_dirty", "config_hash", "config", "device",
                          "date"]
    assert prov["config"] == {"task": "t"}


def _record_line(root: Path, relative: str) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256((root / relative).read_bytes()).digest()).rstrip(b"=").decode()
    return f"{relative},sha256={digest},{(root / relative).stat().st_size}"


@pytest.fixture
def fake_install(tmp_path):
    """A site-packages folder holding a two-file unlearnbench and its dist-info RECORD."""
    site = tmp_path / "site-packages"
    (site / "unlearnbench" / "__pycache__").mkdir(parents=True)
    (site / "unlearnbench" / "__init__.py").write_text("")
    (site / "unlearnbench" / "records.py").write_text("SCHEMA_VERSION = 1\n")
    (site / "unlearnbench" / "__pycache__" / "records.cpython-311.pyc").write_bytes(b"bytecode")
    info = site / "unlearnbench-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: unlearnbench\nVersion: 0.1.0\n")
    lines = [_record_line(site, p) for p in ("unlearnbench/__init__.py", "unlearnbench/records.py",
                                             "unlearnbench/__pycache__/records.cpython-311.pyc")]
    (info / "RECORD").write_text("\n".join(lines + ["unlearnbench-0.1.0.dist-info/RECORD,,"]) + "\n")
    return site, metadata.PathDistribution(info)


def test_an_unmodified_install_is_identified_by_its_file_hashes(fake_install):
    site, dist = fake_install
    state = distribution_state(dist)
    assert state["name"] == "unlearnbench" and state["version"] == "0.1.0"
    assert state["modified"] is False and state["modified_files"] == []
    (site / "unlearnbench" / "__pycache__" / "records.cpython-311.pyc").write_bytes(b"recompiled")  # derived: ignored
    assert distribution_state(dist) == state
    record = (site / "unlearnbench-0.1.0.dist-info" / "RECORD").read_text().splitlines()
    pairs = sorted("{}\t{}\n".format(*line.split(",")[:2]) for line in record[:2])  # the sources, not the bytecode
    assert state["files_sha256"] == hashlib.sha256("".join(pairs).encode()).hexdigest()


def test_a_changed_missing_or_added_file_marks_the_install_modified(fake_install):
    site, dist = fake_install
    before = distribution_state(dist)["files_sha256"]
    (site / "unlearnbench" / "records.py").write_text("SCHEMA_VERSION = 2\n")
    (site / "unlearnbench" / "__init__.py").unlink()
    (site / "unlearnbench" / "extra.py").write_text("")
    state = distribution_state(dist)
    assert state["modified"] is True
    assert state["modified_files"] == ["unlearnbench/__init__.py", "unlearnbench/extra.py", "unlearnbench/records.py"]
    assert state["files_sha256"] == before  # it names what was installed; `modified` says it changed since


# ------------------------------------------------------------------ --param, same types


class Mode:
    pass


@dataclasses.dataclass
class Params:
    epochs: int = 1
    lr: float = 1e-3
    stop: bool = False
    limit: int | None = None
    scope: Literal["all", "head"] = "all"
    layers: tuple[int, ...] = (64,)
    weights: dict[str, float] = dataclasses.field(default_factory=dict)
    out: Path = Path(".")
    mode: Mode | None = None


def test_params_of_every_annotation_are_converted_by_their_type():
    raw = {"epochs": "3", "lr": "0.5", "stop": "yes", "limit": "none", "scope": "head", "layers": "[32, 16]",
           "weights": '{"forget": 2}', "out": "/tmp/x"}
    assert parse_params(Params, raw) == Params(3, 0.5, True, None, "head", (32, 16), {"forget": 2.0}, Path("/tmp/x"))
    assert parse_params(Params, {"layers": "8, 4"}).layers == (8, 4)


@pytest.mark.parametrize("key, value, expected", [
    ("epochs", "many", "expected a int"),
    ("stop", "maybe", "expected true or false"),
    ("scope", "tail", "expected one of 'all', 'head' (Input should be 'all' or 'head')"),
    ("layers", "a,b", "expected a tuple of int (item 0: Input should be a valid integer"),
    ("weights", "{", "expected a dict of str to float (Invalid JSON"),
    ("mode", "fast", "expected a Mode (Input should be an instance of Mode)"),
])
def test_a_param_its_type_refuses_names_the_parameter_the_value_and_the_type(key, value, expected):
    with pytest.raises(UserError) as info:
        parse_params(Params, {key: value})
    assert f"Parameter {key}={value!r}" in str(info.value) and expected in str(info.value)
