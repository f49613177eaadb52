"""The user cache: worlds, trained models and reference scores, keyed by fingerprint.

``UNLEARNBENCH_CACHE`` overrides the location (tests point it at a temporary folder).
Every artefact is a folder, built by :func:`building` in a temporary sibling and renamed into
place, so an interrupted build never leaves a half-written artefact that a later run would
trust. It carries the sha256 of each of its files (:data:`MANIFEST`, written before the
rename); :func:`missing` checks them before an artefact is used, and an artefact that does
not match (a truncated weight file, an edited score file, one built before checksums) is
named on stderr, removed and rebuilt. A file lock beside the artefact (``.<name>.lock``)
makes concurrent cold runs build it once: the second waits, then uses the first's.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from unlearnbench.data import file_sha256

try:
    import fcntl
except ImportError:  # not POSIX: builds are not locked (concurrent cold runs may build twice)
    fcntl = None

MANIFEST = "unlearnbench-checksums.json"
JSON_FILE = "data.json"  # what :func:`cached_json` keeps in its artefact

# Per process: artefacts hashed and found sound, by path -> (name, size, mtime) of their files,
# so each is hashed once per process (again only if a file's size or time changes); and the
# build locks this process holds (from :func:`missing` to the end of :func:`building`).
_sound: dict[str, tuple] = {}
_held: dict[str, int] = {}
_using: contextvars.ContextVar[set | None] = contextvars.ContextVar("unlearnbench_cache_using", default=None)


def cache_root() -> Path:
    env = os.environ.get("UNLEARNBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("unlearnbench"))


def fingerprint(obj: Any, length: int = 16) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


# ----------------------------------------------------------------------------- checksums
def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


_sha256 = file_sha256  # the one chunked file hash (unlearnbench.data); a name of its own here, so tests can count calls


def checksums(folder: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` of every file in ``folder`` but the manifest."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in _files(folder)}


def _signature(folder: Path) -> tuple:
    return tuple((str(p), st.st_size, st.st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()
                 for st in (p.stat(),))


def _check(folder: Path) -> str | None:
    if not folder.is_dir():
        return "it is not a folder"
    try:
        listed = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
        assert isinstance(listed, dict)
    except FileNotFoundError:
        return f"it has no {MANIFEST} (built before unlearnbench kept checksums)"
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        return f"its {MANIFEST} is unreadable"
    present = {p.relative_to(folder).as_posix(): p for p in _files(folder)}
    for name, entry in listed.items():
        path = present.get(name)
        if path is None:
            return f"{name} is missing"
        try:
            size = path.stat().st_size
            if isinstance(entry, dict) and size != entry.get("size"):
                return f"{name} has {size} bytes, {entry.get('size')} when it was built"
            if not isinstance(entry, dict) or _sha256(path) != entry.get("sha256"):
                return f"{name} does not match its checksum"
        except OSError as exc:
            return f"{name} cannot be read ({exc.strerror or exc})"
    extra = sorted(set(present) - set(listed))
    if extra:
        return f"{extra[0]} was not there when it was built"
    return None


def problem(folder: Path) -> str | None:
    """What is wrong with the artefact ``folder`` (None when every file matches its checksum).
    Hashes its files once per process; later calls compare sizes and times only."""
    folder = Path(folder)
    key = str(folder.absolute())
    try:
        signature = _signature(folder)
    except OSError as exc:
        return f"it cannot be read ({exc.strerror or exc})"
    if _sound.get(key) == signature:
        return None
    why = _check(folder)
    if why is None:
        _sound[key] = signature
    else:
        _sound.pop(key, None)
    return why


def _say(message: str) -> None:
    from unlearnbench.progress import stderr_console

    stderr_console().print(message, markup=False, highlight=False, soft_wrap=True)


def _discard(folder: Path, why: str) -> None:
    """Remove an unsound artefact, saying which and why (it is rebuilt by the caller)."""
    _say(f"cache: {folder} is damaged ({why}); removed, rebuilding it.")
    aside = folder.with_name(f".{folder.name}.damaged-{os.getpid()}")
    try:
        os.replace(folder, aside)  # gone from its place at once, whatever rmtree meets
    except OSError:
        aside = folder
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink(missing_ok=True)
    _sound.pop(str(folder.absolute()), None)


# ----------------------------------------------------------------------------- build locks
def _lock_file(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _acquire(path: Path) -> int:
    """Hold the lock beside ``path`` (waiting, with a message, while another process holds it).
    The kernel drops a lock when its process dies, so a killed build never blocks the next."""
    lock = _lock_file(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    told = False
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not told:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                _say(f"cache: waiting for {holder} building {path}")
                told = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # the holder removes the lock file as it lets go: ours must still be the one there
            current = os.stat(lock)
            mine = os.fstat(fd)
            same = (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev)
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
            return fd
        os.close(fd)


def _release(path: Path, fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_lock_file(path))
    os.close(fd)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the lock beside ``path`` for the block (e.g. to rewrite a shared file)."""
    path = Path(path)
    fd = _acquire(path)
    try:
        yield
    finally:
        _release(path, fd)


# ----------------------------------------------------------------------------- artefacts
def missing(final: Path) -> bool:
    """True when the artefact ``final`` must be built: it is absent, or it does not match its
    checksums (it is then named on stderr and removed). When True, this process holds the
    artefact's build lock until :func:`building` for it ends; when another process is
    building it, this waits for that build and returns False."""
    final = Path(final)
    key = str(final.absolute())
    _note(final)
    if key not in _held and final.exists() and problem(final) is None:
        return False
    if key not in _held:
        _held[key] = _acquire(final)
    if final.exists():
        why = problem(final)
        if why is None:  # built by the process we waited for
            _release(final, _held.pop(key))
            return False
        _discard(final, why)
    return True


@contextlib.contextmanager
def building(final: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success its checksums are written into it and it becomes
    ``final`` atomically. The build lock is held throughout (taken here unless :func:`missing`
    took it)."""
    final = Path(final)
    key = str(final.absolute())
    final.parent.mkdir(parents=True, exist_ok=True)
    fd = _held.pop(key, None)
    if fd is None:
        fd = _acquire(final)
    _note(final)
    try:
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.building-"))
        try:
            yield tmp
            (tmp / MANIFEST).write_text(json.dumps({"version": 1, "files": checksums(tmp)}, indent=1) + "\n")
            if final.exists() and problem(final) is None:
                shutil.rmtree(tmp)  # someone else finished first; theirs is as good as ours
            else:
                if final.exists():
                    _discard(final, problem(final) or "it was replaced")
                os.replace(tmp, final)
                _sound[key] = _signature(final)  # just hashed: the first use need not hash it again
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        _release(final, fd)


def cached_json(folder: Path, compute: Callable[[], Any]) -> Any:
    """``compute()``, kept as JSON in the artefact ``folder`` (checksummed and locked like any
    other); later calls read it back, and a damaged copy is computed again."""
    from unlearnbench.records import write_json_atomic

    folder = Path(folder)
    if not missing(folder):
        return json.loads((folder / JSON_FILE).read_text(encoding="utf-8"))
    with building(folder) as tmp:
        data = compute()
        write_json_atomic(tmp / JSON_FILE, data)
    return data


# ----------------------------------------------------------------------------- which task uses what
TASKS_FOLDER = "tasks"  # cache_root()/tasks/<task>.json: the artefacts each task's runs used


def task_index(task: str) -> Path:
    slug = "".join(c if c.isalnum() or c in "._-" else "_" for c in task)
    return cache_root() / TASKS_FOLDER / f"{slug}-{fingerprint(task, 8)}.json"


def _note(final: Path) -> None:
    seen = _using.get()
    if seen is not None:
        seen.add(Path(final).absolute())


@contextlib.contextmanager
def used_by(task: str) -> Iterator[None]:
    """Record the artefacts used in the block as ``task``'s (what ``unlearnbench cache verify|clear
    --task`` act on). Build locks taken in the block and still held at its end (a build that
    failed between :func:`missing` and :func:`building`) are let go."""
    seen: set[Path] = set()
    held_before = set(_held)
    token = _using.set(seen)
    try:
        yield
    finally:
        _using.reset(token)
        outer = _using.get()
        if outer is not None:
            outer |= seen
        for key in set(_held) - held_before:  # a build that failed before building(): let the others in
            _release(Path(key), _held.pop(key))
        root = cache_root().absolute()
        inside = {p.relative_to(root).as_posix() for p in seen if p.is_relative_to(root)}
        if inside:
            with contextlib.suppress(OSError):  # the index is a convenience; never fail a run over it
                _add_to_index(task, inside)


def _add_to_index(task: str, artefacts: set[str]) -> None:
    from unlearnbench.records import write_json_atomic

    index = task_index(task)
    with locked(index):
        known = set(task_artefacts(task, relative=True))
        if not artefacts <= known:
            write_json_atomic(index, {"task": task, "artefacts": sorted(known | artefacts)})


def task_artefacts(task: str, *, relative: bool = False) -> list:
    """The artefacts recorded as used by ``task`` (paths inside the cache), absent ones included."""
    try:
        listed = json.loads(task_index(task).read_text(encoding="utf-8")).get("artefacts", [])
    except (OSError, ValueError, AttributeError):
        return []
    root = cache_root()
    names = [n for n in listed if isinstance(n, str) and n and ".." not in Path(n).parts and not Path(n).is_absolute()]
    return names if relative else [root / n for n in names]


def folder_fingerprint(path: Path) -> str:
    """Cheap identity of a model folder: names, sizes and modification times of its files."""
    path = Path(path)
    entries = sorted(
        (str(p.relative_to(path)), p.stat().st_size, int(p.stat().st_mtime))
        for p in path.rglob("*") if p.is_file()
    )
    return fingerprint({"folder": str(path.resolve()), "files": entries})
