"""A work run's saved state, so ``podium work run`` can stop (Ctrl-C, a crash, a killed machine) and resume.

Each package has a directory inside the repository's git dir — never in the user's work tree — with one
directory per run::

    <git-common-dir>/podium-work/<package>/
        lock                      held (flock) by the one run of this package in this repository
        <run-id>/state.json       the RunRecord, rewritten after every step
        <run-id>/plan.yaml        the plan this run follows (as edited by the user, or the conductor's)
        <run-id>/wt/<subtask>     worktrees (``podium.work.git``)

``state.json`` is replaced atomically (a temporary file in the same directory, fsync, ``os.replace``, fsync of
the directory), so a kill at any instant leaves either the previous state or the new one, never a torn file.
It is checked strictly when read: a file that is damaged, not Podium's, or from a newer Podium is an error
naming the file and what to do (delete the run's directory, or start a new run without ``--resume``), not a
half-read record. Numbers must be finite (JSON's ``NaN``/``Infinity`` and ``1e400`` are refused, naming the
field) and integers within 64 bits, so a hand-edited state cannot crash the report later.

The lock is ``flock`` on ``lock``: the kernel drops it when the process ends, however it ends, so a crashed
run never leaves a stale lock. Python opens files close-on-exec, so a worker or check command the run started
does not inherit (and keep holding) it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import re
import secrets
import tempfile
import time
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin, get_type_hints

from podium.errors import ConfigError, PodiumError
from podium.work.contracts import RunRecord
from podium.work.plan import WorkPlan, dump_plan, load_plan

if TYPE_CHECKING:
    from podium.work.git import Repo

STATE_VERSION = 1
STATE_FILE = "state.json"
PLAN_FILE = "plan.yaml"
REPORT_FILE = "report.md"
WORKTREES = "wt"
LOCK_FILE = "lock"
MARKER = "podium_work_state"
MAX_STATE_BYTES = 32 * 1024 * 1024
_RUN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
_TMP_PREFIX = ".state-"
MAX_INT = 2**63  # no count, size or exit code in a record comes near it


class StateError(ConfigError):
    """A run's state file cannot be used: damaged, not Podium's, or from a newer version."""


class RunLockedError(PodiumError):
    """Another ``podium work run`` holds this package's lock in this repository."""

    error_type = "work_error"

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message, code="run_locked")
        self.pid = pid


def new_run_id() -> str:
    """Short, sortable by start time, unique: ``20250314-093015-7f3a`` (UTC, then 16 random bits)."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ConfigError(f"'{str(run_id)[:60]}' is not a run id (a-z, 0-9 and '-', at most 40): give the id "
                          "a run printed when it started (the directory names under the repository's "
                          ".git/podium-work/<package>/), or --resume latest")
    return run_id


# --- dataclasses ↔ JSON data --------------------------------------------------------------------------------------

def to_data(value: Any) -> Any:
    """A record as JSON data: dataclasses as objects, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    return value


class _Bad(Exception):
    def __init__(self, where: str, what: str) -> None:
        super().__init__(f"{where}: {what}")


def from_data(kind: Any, data: Any, where: str = "record") -> Any:
    """``data`` (from ``to_data``) as ``kind``, checked against the type hints all the way down. Keys a record
    does not know are refused (a newer or foreign file); missing keys with a default get it (a state written
    before a field was added)."""
    origin = get_origin(kind)
    if kind is Any:
        return data
    if kind is type(None):
        if data is not None:
            raise _Bad(where, f"expected null, got {type(data).__name__}")
        return None
    if origin is typing.Union or origin is types.UnionType:
        options = get_args(kind)
        if data is None and type(None) in options:
            return None
        errors: list[str] = []
        for option in options:
            if option is type(None):
                continue
            try:
                return from_data(option, data, where)
            except _Bad as exc:
                errors.append(str(exc))
        raise _Bad(where, f"matches none of {kind} ({'; '.join(errors)[:200]})")
    if origin is Literal:
        if not any(type(data) is type(a) and data == a for a in get_args(kind)):
            raise _Bad(where, f"{str(data)[:40]!r} is not one of {', '.join(map(str, get_args(kind)))}")
        return data
    if kind is bool:
        if not isinstance(data, bool):
            raise _Bad(where, f"expected true or false, got {type(data).__name__}")
        return data
    if kind is int:
        if not isinstance(data, int) or isinstance(data, bool):
            raise _Bad(where, f"expected an integer, got {type(data).__name__}")
        if not -MAX_INT < data < MAX_INT:
            raise _Bad(where, "an integer out of range")
        return data
    if kind is float:
        if not isinstance(data, int | float) or isinstance(data, bool):
            raise _Bad(where, f"expected a number, got {type(data).__name__}")
        try:
            number = float(data)
        except OverflowError:
            raise _Bad(where, "a number out of range") from None
        if not math.isfinite(number):
            raise _Bad(where, f"{data!r} is not a finite number")
        return number
    if kind is str:
        if not isinstance(data, str):
            raise _Bad(where, f"expected a string, got {type(data).__name__}")
        return data
    if origin is list or origin is tuple:
        if not isinstance(data, list):
            raise _Bad(where, f"expected a list, got {type(data).__name__}")
        args = get_args(kind)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(data):
                raise _Bad(where, f"expected {len(args)} items, got {len(data)}")
            return tuple(from_data(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data, strict=True)))
        items = [from_data(args[0], v, f"{where}[{i}]") for i, v in enumerate(data)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(data, dict):
            raise _Bad(where, f"expected an object, got {type(data).__name__}")
        key_kind, value_kind = get_args(kind)
        return {from_data(key_kind, k, where): from_data(value_kind, v, f"{where}.{k}") for k, v in data.items()}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise _Bad(where, f"expected an object, got {type(data).__name__}")
        hints = get_type_hints(kind)
        fields = {f.name: f for f in dataclasses.fields(kind) if f.init}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise _Bad(where, f"unknown field {', '.join(map(str, unknown))[:80]}")
        values: dict[str, Any] = {}
        for name, f in fields.items():
            if name in data:
                values[name] = from_data(hints[name], data[name], f"{where}.{name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _Bad(where, f"missing field {name}")
        return kind(**values)
    raise _Bad(where, f"cannot read a {kind}")


def record_to_json(record: RunRecord) -> str:
    # ASCII with escapes: a lone surrogate in a worker's note cannot make the state unwritable
    return json.dumps({MARKER: STATE_VERSION, "record": to_data(record)}, ensure_ascii=True, indent=1)


def _fix(run_dir: Path | str) -> str:
    return f"delete the run's directory {run_dir} to drop it, or start a new run without --resume"


def record_from_json(text: str, where: str) -> RunRecord:
    """The record in ``text`` (read from the file ``where``), checked strictly; StateError saying what is wrong
    and what to do."""
    fix = _fix(Path(where).parent)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also an integer of more digits than Python converts
        raise StateError(f"{where} is damaged (not JSON); {fix}") from None
    if not isinstance(data, dict) or MARKER not in data:
        raise StateError(f"{where} is not a Podium work run's state; {fix}")
    version = data[MARKER]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StateError(f"{where} is damaged (state version {str(version)[:20]!r}); {fix}")
    if version > STATE_VERSION:
        raise StateError(f"{where} was written by a newer Podium (state version {version}; this one reads "
                         f"{STATE_VERSION}); upgrade Podium to resume it, or start a new run without --resume")
    if set(data) != {MARKER, "record"}:
        raise StateError(f"{where} is damaged (unexpected keys); {fix}")
    try:
        record: RunRecord = from_data(RunRecord, data["record"])
    except _Bad as exc:
        raise StateError(f"{where} is damaged ({str(exc)[:300]}); {fix}") from None
    except RecursionError:
        raise StateError(f"{where} is damaged (nested too deeply); {fix}") from None
    for key, sub in record.subtasks.items():
        if sub.id != key:
            raise StateError(f"{where} is damaged (subtask {key[:40]!r} records id {sub.id[:40]!r}); {fix}")
    return record


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a kill at any point leaves the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- the store --------------------------------------------------------------------------------------------------

class RunLock:
    """This package's lock in this repository: ``with RunLock(store): …`` or ``store.lock()``; held until
    ``release`` (or the process ends, however it ends)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.path = store.root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or RunLockedError naming the pid that holds it."""
        if self._fd is None:
            self._fd = self.store._take_lock(self.path)
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class StateStore:
    """The runs of one package in one repository: ``StateStore(repo.git_dir / "podium-work" / package_slug)``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_package(cls, repo: Repo, package_slug: str) -> StateStore:
        """The store of one package in one repository: inside its git dir, never in the work tree."""
        from podium.work.git import WORK_DIR, check_name

        return cls(repo.git_dir / WORK_DIR / check_name("package", package_slug))

    def worktrees_dir(self, run_id: str) -> Path:
        return self.run_dir(run_id) / WORKTREES

    def report_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / REPORT_FILE

    def run_dir(self, run_id: str) -> Path:
        return self.root / check_run_id(run_id)

    def state_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / STATE_FILE

    def plan_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / PLAN_FILE

    def new_run(self) -> str:
        """A fresh run id (``new_run_id``) whose directory this call created, so no two runs share one."""
        self.root.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            run_id = new_run_id()
            try:
                (self.root / run_id).mkdir()
            except FileExistsError:
                continue
            return run_id
        raise StateError(f"could not make a new run directory under {self.root}")

    def runs(self) -> list[str]:
        """Run ids that have a saved state, oldest first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if _RUN_ID.fullmatch(p.name) and (p / STATE_FILE).is_file())

    def latest(self) -> str | None:
        """The newest run's id (None: no run yet). Load it with ``load``: a damaged newest state is then an
        error, not skipped — resuming an older run instead would surprise."""
        ids = self.runs()
        return ids[-1] if ids else None

    def latest_record(self) -> RunRecord | None:
        run_id = self.latest()
        return None if run_id is None else self.load(run_id)

    def load(self, run_id: str | None) -> RunRecord:
        """The saved record of ``run_id``; None (what ``latest`` gives when there is no run) is an error that says
        so."""
        if run_id is None:
            raise StateError(f"no run of package {self.root.name} to resume in this repository; start one "
                             "without --resume")
        path = self.state_path(run_id)
        try:
            with path.open("rb") as f:
                data = f.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            raise StateError(f"no saved run {run_id} at {path}; start a new run (without --resume)") from None
        except OSError as exc:
            raise StateError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
        if len(data) > MAX_STATE_BYTES:
            raise StateError(f"{path} is larger than {MAX_STATE_BYTES:,} bytes; {_fix(path.parent)}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise StateError(f"{path} is damaged (not UTF-8); {_fix(path.parent)}") from None
        record = record_from_json(text, str(path))
        if record.run_id != run_id:
            raise StateError(f"{path} is damaged (it records run {record.run_id[:40]!r}); {_fix(path.parent)}")
        return record

    def save(self, record: RunRecord) -> Path:
        """Write the record atomically; the previous state stays readable until the new one is complete."""
        path = self.state_path(record.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, record_to_json(record))
        return path

    def save_plan(self, run_id: str, plan: WorkPlan) -> Path:
        """Keep the plan the run follows beside its state (the file a resume reads, whatever happens to the
        user's copy)."""
        path = self.plan_path(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, dump_plan(plan))
        return path

    def load_plan(self, run_id: str) -> WorkPlan:
        return load_plan(self.plan_path(run_id))

    def write_report(self, run_id: str, text: str) -> Path:
        path = self.report_path(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
        return path

    def lock(self) -> RunLock:
        """Take this package's lock in this repository, or RunLockedError naming the pid that holds it."""
        return RunLock(self).acquire()

    def _take_lock(self, path: Path) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            who = f"pid {pid}" if pid is not None else "another process"
            raise RunLockedError(f"another podium work run ({who}) is running package {self.root.name} in this "
                                 f"repository; wait for it to finish or stop it (lock: {path})", pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        # whoever wrote here before is gone now: clear the temporary files of saves it was killed in
        for stale in self.root.glob(f"*/{_TMP_PREFIX}*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
        return fd


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


# --- resuming ---------------------------------------------------------------------------------------------------

ResumeAction = Literal["skip", "merge", "restart", "retry", "run"]


def resume_plan(record: RunRecord, *, retry_failed: bool = False) -> dict[str, ResumeAction]:
    """What a resumed run does with each subtask of ``record``, by the status it was left in:

    - ``merged`` → ``skip``: its work is in the integration branch.
    - ``approved`` → ``merge``: it passed checks and review; merge it (again). If the run stopped after the
      merge but before saving, git finds the branch merged already and the merge is a no-op.
    - ``working``, ``checking``, ``reviewing`` → ``restart``: it was interrupted. Its worktree is put back to
      its branch's last commit (what a worker had not committed is lost) and the round it was in runs again;
      rounds already finished count.
    - ``failed``, ``rejected``, ``conflict``, ``blocked`` → ``retry`` with ``retry_failed=True`` (it runs again
      from its branch's last commit with a fresh allowance of revisions; ``blocked`` runs once the subtasks
      it depends on merged; ``conflict`` should start from the integration branch as it is now), else
      ``skip``: the result stands and the report shows it.
    - ``pending`` → ``run``: it never started.
    """
    actions: dict[str, ResumeAction] = {}
    for sid, sub in record.subtasks.items():
        status = sub.status
        if status == "merged":
            actions[sid] = "skip"
        elif status == "approved":
            actions[sid] = "merge"
        elif status in ("working", "checking", "reviewing"):
            actions[sid] = "restart"
        elif status in ("failed", "rejected", "conflict", "blocked"):
            actions[sid] = "retry" if retry_failed else "skip"
        else:
            actions[sid] = "run"
    return actions
