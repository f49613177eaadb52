"""The wheel holds the whole harness, and an installed wheel runs, names itself in the record's
provenance and is accepted by the board, unless its files were changed after installing.

The wheel is built offline (``python -m build --wheel --no-isolation``) from a copy of the
files git knows (tracked or not ignored), so nothing left in ``build/`` by an earlier build can
slip into it, and the checkout gets no ``build/`` or egg-info from the test. It is installed with ``pip --no-deps --no-index`` into a fresh venv whose
dependencies come from this venv's site-packages through a ``.pth`` file; the editable
install's finder there is itself a ``.pth``, which Python does not process in a folder added
that way, so the fresh venv imports the wheel's unlearnbench and nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # builds and installs a wheel, then runs two evaluations (a minute or two)


def run(cmd: list, cwd: Path, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("the wheel is built from the files of a git checkout")
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO)
    assert listed.returncode == 0, explain(listed)
    src = tmp_path_factory.mktemp("source")
    for name in filter(None, listed.stdout.split("\0")):
        path = REPO / name
        if name.startswith(("leaderboards/", "tests/")):  # not packaged; the boards alone are 20 MB
            continue
        if path.is_file() and not path.is_symlink():  # a deleted, still-tracked file is not there
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out]
    if importlib.util.find_spec("wheel") is None:
        # [build-system] lists "wheel", but setuptools >= 70.1 builds wheels itself, so without the
        # package the build still works; only build's up-front check of the requirements would refuse.
        cmd.append("--skip-dependency-check")
    built = run(cmd, src)
    assert built.returncode == 0, explain(built)
    [path] = out.glob("unlearnbench-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed and this venv's packages importable."""
    root = tmp_path_factory.mktemp("venv") / "env"
    made = run([sys.executable, "-m", "venv", "--without-pip", root], root.parent)
    assert made.returncode == 0, explain(made)
    python = root / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root).stdout.strip())
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "unlearnbench-test-deps.pth").write_text("".join(f"{p}\n" for p in ours))
    installed = run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
                     "--disable-pip-version-check", wheel], root)
    assert installed.returncode == 0, explain(installed)
    return root


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """Offline, the tests' model cache, no path that could reach the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", UNLEARNBENCH_QUIET="1",
               COLUMNS="200", UNLEARNBENCH_CACHE=os.environ.get("UNLEARNBENCH_CACHE")
               or str(tmp_path_factory.mktemp("unlearnbench-cache")))
    return env


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A working folder outside the repository, so no git checkout is found from it."""
    return tmp_path_factory.mktemp("outside")


def site_packages(venv: Path) -> Path:
    [site] = (venv / "lib").glob("python*/site-packages")
    return site


def evaluate(venv: Path, env: dict, cwd: Path, out: str, seed: int) -> dict:
    proc = run([venv / "bin" / "unlearnbench", "evaluate", "--task", "digits/random-10", "--method", "ft", "--quiet",
                "--seed", seed, "--out", cwd / out], cwd, env)
    assert proc.returncode == 0, explain(proc)
    [record] = (cwd / out).glob("*/record.json")
    return json.loads(record.read_text()) | {"_dir": str(record.parent)}


def submit(venv: Path, env: dict, cwd: Path, run_dir: str) -> subprocess.CompletedProcess:
    return run([venv / "bin" / "unlearnbench", "submit", run_dir, "--leaderboard", cwd / "board"], cwd, env)


# -------------------------------------------------------------------------------- tests


def test_the_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())

    def sources(folder: str, pattern: str, prefix: str) -> set[str]:
        return {f"{prefix}/{p.relative_to(REPO / folder).as_posix()}" for p in (REPO / folder).rglob(pattern)
                if "__pycache__" not in p.parts}

    expected = (sources("unlearnbench", "*.py", "unlearnbench") | sources("tasks", "*.py", "unlearnbench/tasks")
                | sources("methods", "*.py", "unlearnbench/methods") | sources("unlearnbench", "*.txt", "unlearnbench"))
    assert not expected - names, f"missing from the wheel: {sorted(expected - names)}"
    assert "unlearnbench/schema/record.schema.json" in names
    assert any(n.startswith("unlearnbench/lm/") and n.endswith(".py") for n in names)
    assert "unlearnbench/lm/idk_answers.txt" in names
    stale = {n for n in names if n.endswith(".py")} - expected
    assert not stale, f"in the wheel but not in the sources (left over from an earlier build?): {sorted(stale)}"


def test_the_fresh_venv_imports_the_installed_wheel(venv, env, outside):
    proc = run([venv / "bin" / "python", "-c", "import unlearnbench, pydantic; print(unlearnbench.__file__)"], outside, env)
    assert proc.returncode == 0, explain(proc)
    assert Path(proc.stdout.strip()).resolve().is_relative_to(site_packages(venv).resolve())


def test_the_installed_cli_lists_the_methods(venv, env, outside):
    proc = run([venv / "bin" / "unlearnbench", "list", "methods"], outside, env)
    assert proc.returncode == 0, explain(proc)
    assert "ga" in proc.stdout.split() and "npo" in proc.stdout.split()


def test_a_run_of_the_installed_wheel_names_the_distribution_and_is_accepted(venv, env, outside):
    record = evaluate(venv, env, outside, "runs", seed=0)
    assert record["status"] == "succeeded"
    dist = record["provenance"]["distribution"]
    assert dist["name"] == "unlearnbench" and dist["version"] == record["provenance"]["packages"]["unlearnbench"]
    assert len(dist["files_sha256"]) == 64 and dist["modified"] is False and dist["modified_files"] == []
    assert "git_sha" not in record["provenance"]
    proc = submit(venv, env, outside, record["_dir"])
    assert proc.returncode == 0, explain(proc)
    assert "accepted" in proc.stdout
    [stored] = (outside / "board").glob("*/*/submission.json")
    assert json.loads(stored.read_text())["dirty"] is False


def test_a_run_of_a_modified_install_is_refused_naming_the_modified_file(venv, env, outside):
    changed = site_packages(venv) / "unlearnbench" / "tasks" / "digits.py"
    original = changed.read_bytes()
    changed.write_bytes(original + b"\n# changed after installing\n")
    try:
        record = evaluate(venv, env, outside, "runs-modified", seed=1)
    finally:
        changed.write_bytes(original)
    assert record["provenance"]["distribution"]["modified_files"] == ["unlearnbench/tasks/digits.py"]
    proc = submit(venv, env, outside, record["_dir"])
    assert proc.returncode == 2, explain(proc)
    message = " ".join(proc.stderr.split())
    assert "had been modified" in message and "unlearnbench/tasks/digits.py" in message
    assert "--force-reinstall" in message and "--allow-dirty" in message
