"""A cache that heals: every artefact carries its checksums; a damaged one is named, rebuilt
and reported; concurrent cold builds build once; ``unlearnbench cache verify|clear``.

Each test works on its own copy of a cache (never the session's shared one): the tiny TOFU
world is built once per module and copied."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from unlearnbench import cache


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory, tiny_synth):
    """A cache holding the tiny world and its reference scores, and the clean run's record."""
    from unlearnbench.runner import RunSpec, run

    folder = tmp_path_factory.mktemp("healing") / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNLEARNBENCH_CACHE", str(folder))
        clean = run(RunSpec(task="tofu-synth/forget10", method="original", task_options={"synth": tiny_synth},
                            out=tmp_path_factory.mktemp("clean-runs"), quiet=True))
    assert clean.record.status == "succeeded"
    return folder, clean.record


@pytest.fixture
def cache_copy(built_cache, tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    shutil.copytree(built_cache[0], folder)
    monkeypatch.setenv("UNLEARNBENCH_CACHE", str(folder))
    return folder


def _cli(*args):
    from typer.testing import CliRunner

    from unlearnbench.cli.app import app

    return CliRunner().invoke(app, list(args))


# ------------------------------------------------------------------------- checksums
def _artefact(folder: Path, files: dict[str, bytes]) -> Path:
    with cache.building(folder) as tmp:
        for name, data in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
    return folder


def test_a_built_artefact_carries_the_sha256_of_each_of_its_files(tmp_path):
    import hashlib

    folder = _artefact(tmp_path / "a", {"w.bin": b"weights", "sub/c.json": b"{}"})
    listed = json.loads((folder / cache.MANIFEST).read_text())["files"]
    assert listed == {"sub/c.json": {"size": 2, "sha256": hashlib.sha256(b"{}").hexdigest()},
                      "w.bin": {"size": 7, "sha256": hashlib.sha256(b"weights").hexdigest()}}
    assert cache.problem(folder) is None
    assert not (tmp_path / ".a.lock").exists()  # the lock goes with its build


@pytest.mark.parametrize("damage, why", [
    (lambda f: (f / "w.bin").write_bytes(b"weighty"), "w.bin does not match its checksum"),
    (lambda f: (f / "w.bin").write_bytes(b"w"), "w.bin has 1 bytes, 7 when it was built"),
    (lambda f: (f / "w.bin").unlink(), "w.bin is missing"),
    (lambda f: (f / "extra.bin").write_bytes(b"x"), "extra.bin was not there when it was built"),
    (lambda f: (f / cache.MANIFEST).write_text("{not json"), f"its {cache.MANIFEST} is unreadable"),
    (lambda f: (f / cache.MANIFEST).unlink(), f"it has no {cache.MANIFEST}"),
])
def test_a_damaged_artefact_says_what_is_wrong(tmp_path, damage, why):
    folder = _artefact(tmp_path / "a", {"w.bin": b"weights"})
    damage(folder)
    assert cache.problem(folder).startswith(why)


def test_an_artefact_is_hashed_once_per_process_unless_a_file_changes(tmp_path, monkeypatch):
    folder = _artefact(tmp_path / "a", {"w.bin": b"weights"})
    calls = []
    real = cache._sha256
    monkeypatch.setattr(cache, "_sha256", lambda path: calls.append(path) or real(path))
    cache._sound.pop(str(folder.absolute()), None)
    assert not cache.missing(folder) and not cache.missing(folder)
    assert len(calls) == 1
    (folder / "w.bin").write_bytes(b"WEIGHTS")  # same size, new time: hashed again, and found out
    assert cache.problem(folder) == "w.bin does not match its checksum"


def test_a_damaged_artefact_is_removed_and_reported_by_missing(tmp_path, capsys):
    folder = _artefact(tmp_path / "a", {"w.bin": b"weights"})
    (folder / "w.bin").write_bytes(b"")
    assert cache.missing(folder)
    err = capsys.readouterr().err
    assert f"cache: {folder} is damaged (w.bin has 0 bytes, 7 when it was built); removed, rebuilding it." in err
    assert not folder.exists()
    _artefact(folder, {"w.bin": b"weights"})  # missing() left the lock to the build
    assert not cache.missing(folder) and not cache._held


# ------------------------------------------------------------------------- runs heal
def test_a_truncated_safetensors_in_a_cached_world_is_named_rebuilt_and_the_run_succeeds(cache_copy, run_tiny, capsys):
    weights = next(cache_copy.glob("tofu-synth/*/target/model.safetensors"))
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:1000])
    capsys.readouterr()
    result = run_tiny("original")
    err = capsys.readouterr().err
    assert result.record.status == "succeeded"
    assert f"cache: {weights.parent} is damaged (model.safetensors has 1000 bytes, {size} when it was built)" in err
    assert weights.stat().st_size == size and cache.problem(weights.parent) is None


def test_an_altered_but_valid_reference_score_file_is_detected_and_recomputed(built_cache, cache_copy, run_tiny, capsys):
    def shifted(value):
        if isinstance(value, float):
            return value * 0.5 + 0.25
        if isinstance(value, list):
            return [shifted(v) for v in value]
        if isinstance(value, dict):
            return {k: shifted(v) for k, v in value.items()}
        return value

    run_tiny("original")  # the references this copy's runs use (whatever names its models' fingerprints give)
    scores = sorted(cache_copy.glob(f"scores/*/{cache.JSON_FILE}"))
    for path in scores:
        path.write_text(json.dumps(shifted(json.loads(path.read_text()))))
    capsys.readouterr()
    result = run_tiny("original")
    err = capsys.readouterr().err
    named = [p for p in scores if f"cache: {p.parent} is damaged ({cache.JSON_FILE} " in err]  # size or checksum
    assert len(named) == 2  # the original target's and the oracle's
    clean = built_cache[1]
    assert result.record.metrics["forget_quality"] == clean.metrics["forget_quality"]
    assert result.record.reference == clean.reference


# ------------------------------------------------------------------------- the commands
def test_cache_verify_names_a_damaged_artefact_and_exits_1(cache_copy):
    ok = _cli("cache", "verify")
    assert ok.exit_code == 0, ok.output
    assert "tofu-synth/" in ok.output and "damaged" not in ok.output
    config = next(cache_copy.glob("tofu-synth/*/oracle-forget10/config.json"))
    config.write_text(config.read_text().replace("64", "65"))
    bad = _cli("cache", "verify", "--task", "tofu-synth/forget10")
    assert bad.exit_code == 1
    assert f"damaged: {config.parent}: config.json does not match its checksum" in bad.output


def test_cache_clear_with_a_task_removes_that_tasks_artefacts_only(cache_copy):
    from unlearnbench.runner import prepare

    prepare("diabetes/random-5", quiet=True)
    diabetes = [p for p in cache.task_artefacts("diabetes/random-5") if p.exists()]
    tofu = [p for p in cache.task_artefacts("tofu-synth/forget10") if p.exists()]
    assert diabetes and tofu and not set(diabetes) & set(tofu)
    result = _cli("cache", "clear", "--task", "diabetes/random-5")
    assert result.exit_code == 0, result.output
    assert all(not p.exists() for p in diabetes) and all(p.exists() for p in tofu)
    assert all(f"removed {p}" in result.output for p in diabetes)
    assert _cli("cache", "verify").exit_code == 0


def test_cache_clear_removes_the_whole_cache_without_asking_when_there_is_no_terminal(cache_copy):
    result = _cli("cache", "clear")
    assert result.exit_code == 0, result.output
    assert "removed" in result.output and list(cache_copy.iterdir()) == []


def test_cache_commands_refuse_an_unknown_task_with_one_line():
    result = _cli("cache", "verify", "--task", "tofu-synth/forget11")
    assert result.exit_code == 2 and "Unknown task 'tofu-synth/forget11'" in result.output


# ------------------------------------------------------------------------- locks
BUILDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from unlearnbench.cache import building, missing

    final, marks, me, other = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    (marks / f"started-{me}").touch()
    if missing(final):
        with building(final) as tmp:
            while not (marks / f"started-{other}").exists():
                time.sleep(0.05)
            time.sleep(1.5)  # the other process is waiting for the lock by now
            with open(marks / "builds", "a") as fh:
                fh.write(me + "\\n")
            (tmp / "value.txt").write_text(me)
    print((final / "value.txt").read_text())
""")


def _python(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen([sys.executable, "-c", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def test_two_concurrent_cold_builds_build_once_and_the_second_waits(tmp_path):
    final = tmp_path / "world" / "target"
    procs = [_python(BUILDER, str(final), str(tmp_path), me, other) for me, other in (("a", "b"), ("b", "a"))]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    builds = (tmp_path / "builds").read_text().split()
    assert len(builds) == 1
    assert [out.strip() for out, _ in outs] == builds * 2  # both use the one build
    waited = [err for _, err in outs if "cache: waiting for " in err]  # pid N on host, or another process
    assert len(waited) == 1 and f"building {final}" in waited[0]
    assert cache.problem(final) is None


def test_a_killed_build_does_not_block_the_next(tmp_path):
    final = tmp_path / "target"
    holder = _python(textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from unlearnbench.cache import missing
        assert missing(Path(sys.argv[1]))
        print("holding", flush=True)
        time.sleep(600)
    """), str(final))
    assert holder.stdout.readline().strip() == "holding"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    nxt = _python("import sys; from pathlib import Path; from unlearnbench.cache import missing; "
                  "print(missing(Path(sys.argv[1])))", str(final))
    out, err = nxt.communicate(timeout=60)
    assert out.strip() == "True", err  # (a lock still held would hang it past the timeout)
