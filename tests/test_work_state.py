"""A work run's saved state: JSON round trips of every record (Hypothesis), strict reading of damaged, foreign
and newer files, atomic saves that survive SIGKILL, the one-run-per-package lock, and what a resume does."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.errors import ConfigError
from podium.work.contracts import CheckResult, RoleCosts, RunRecord, SubtaskRecord, SubtaskStatus, Verdict
from podium.work.git import open_repo
from podium.work.plan import Subtask, WorkPlan
from podium.work.state import (
    MARKER,
    STATE_VERSION,
    RunLock,
    RunLockedError,
    StateError,
    StateStore,
    new_run_id,
    record_from_json,
    record_to_json,
    resume_plan,
)

SRC = str(Path(__file__).resolve().parents[1] / "src")

text = st.text(st.characters(blacklist_categories=()), max_size=30)  # surrogates included
num = st.floats(allow_nan=False, allow_infinity=False, width=64)  # a state with neither loads
opt_text = st.none() | text
checks = st.builds(CheckResult, command=text, passed=st.booleans(), exit_code=st.none() | st.integers(-255, 255),
                   seconds=num, output=text, timed_out=st.booleans())
verdicts = st.builds(Verdict, approved=st.booleans(), reasons=st.lists(text, max_size=3).map(tuple),
                     changes=st.lists(text, max_size=3).map(tuple), model=opt_text, provider=opt_text, cost=num)
statuses: st.SearchStrategy[SubtaskStatus] = st.sampled_from(get_args(SubtaskStatus))
role_dict = st.dictionaries(st.sampled_from(["conductor", "worker", "reviewer"]), num)
ids = st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}", fullmatch=True)


@st.composite
def subtask_records(draw: st.DrawFn, sid: str) -> SubtaskRecord:
    return SubtaskRecord(
        id=sid, status=draw(statuses), branch=draw(text), worktree=draw(text), commit=draw(opt_text),
        rounds=draw(st.integers(0, 10)), checks=draw(st.lists(checks, max_size=3)),
        verdicts=draw(st.lists(verdicts, max_size=3)), worker_notes=draw(st.lists(text, max_size=3)),
        worker_model=draw(opt_text), diffstat=draw(text), conflict_files=draw(st.lists(text, max_size=3)),
        error=draw(opt_text), cost=draw(role_dict), seconds=draw(num))


@st.composite
def run_records(draw: st.DrawFn) -> RunRecord:
    sub_ids = draw(st.lists(ids, max_size=5, unique=True))
    costs = RoleCosts(cost=draw(role_dict), calls=draw(st.dictionaries(text, st.integers(0, 10**6))),
                      seconds=draw(role_dict), tokens=draw(st.dictionaries(text, st.integers(0, 10**9))))
    return RunRecord(
        run_id=draw(ids), package=draw(text), repo=draw(text), base=draw(text), integration_branch=draw(text),
        preset=draw(text), worker=draw(text), max_parallel=draw(st.integers(1, 16)), started_at=draw(num),
        plan_file=draw(text), finished_at=draw(st.none() | num),
        status=draw(st.sampled_from(["running", "done", "failed", "interrupted", "over_budget", "past_deadline"])),
        subtasks={sid: draw(subtask_records(sid)) for sid in sub_ids}, costs=costs,
        baseline_cost=draw(st.none() | num), integration_check=draw(st.none() | checks),
        budget=draw(st.none() | num), notes=draw(st.lists(text, max_size=3)))


def a_record(run_id: str = "20250101-000000-abcd", **subs: str) -> RunRecord:
    return RunRecord(run_id=run_id, package="Arbeitspaket.md", repo="/r", base="abc",
                     integration_branch=f"podium/work/p/{run_id}/integration", preset="budget", worker="editor",
                     max_parallel=2, started_at=1.5,
                     subtasks={k: SubtaskRecord(id=k, status=v) for k, v in subs.items()})  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_records())
def test_every_record_survives_a_round_trip(record: RunRecord) -> None:
    text_ = record_to_json(record)
    assert text_.isascii()
    assert record_from_json(text_, "state.json") == record
    with tempfile.TemporaryDirectory() as d:
        store = StateStore(Path(d))
        store.save(record)
        assert store.load(record.run_id) == record
        store.save(record)  # twice: replaced
        assert store.runs() == [record.run_id]


def test_nested_types_come_back_as_their_types(tmp_path: Path) -> None:
    record = a_record(s1="approved")
    record.subtasks["s1"].checks.append(CheckResult("pytest", False, None, 3.0, "boom", timed_out=True))
    record.subtasks["s1"].verdicts.append(Verdict(False, ("too big",), ("split it",), "m", "p", 0.25))
    record.integration_check = CheckResult("pytest", True, 0, 1, "ok")
    record.costs.add("worker", 0.5, 2.0, 100)
    store = StateStore(tmp_path)
    store.save(record)
    back = store.load(record.run_id)
    assert back == record
    assert isinstance(back.subtasks["s1"], SubtaskRecord)
    assert isinstance(back.subtasks["s1"].verdicts[0], Verdict)
    assert back.subtasks["s1"].verdicts[0].reasons == ("too big",)
    assert isinstance(back.costs, RoleCosts) and back.costs.total == 0.5
    assert isinstance(back.integration_check, CheckResult) and back.integration_check.seconds == 1.0
    assert not (tmp_path / record.run_id / ".git").exists()


def _write(store: StateStore, run_id: str, content: bytes) -> Path:
    path = store.state_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _valid(run_id: str = "r1") -> dict[str, object]:
    return json.loads(record_to_json(a_record(run_id, s1="merged")))  # type: ignore[no-any-return]


@pytest.mark.parametrize(("content", "why"), [
    (b"", "not JSON"),
    (b'{"podium_work_state": 1, "record": {"run_id": "r1", ', "not JSON"),
    (b"\xff\xfe garbage", "not UTF-8"),
    (b'{"hello": "world"}', "not a Podium work run"),
    (b"[1, 2, 3]", "not a Podium work run"),
    (b'{"podium_work_state": "one", "record": {}}', "damaged"),
    (b'{"podium_work_state": 1, "record": []}', "expected an object"),
    (b'{"podium_work_state": 1, "record": {"run_id": "r1"}}', "missing field"),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON|not a Podium|nested"),
])
def test_a_damaged_or_foreign_state_names_the_file_and_the_fix(tmp_path: Path, content: bytes, why: str) -> None:
    store = StateStore(tmp_path)
    path = _write(store, "r1", content)
    with pytest.raises(StateError, match=why) as info:
        store.load("r1")
    assert str(path) in info.value.message
    assert "without --resume" in info.value.message and str(path.parent) in info.value.message


def test_newer_version_unknown_field_bad_values(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    newer = {**_valid(), MARKER: STATE_VERSION + 1}
    _write(store, "r1", json.dumps(newer).encode())
    with pytest.raises(StateError, match=r"newer Podium.*upgrade"):
        store.load("r1")

    def mutate(change: str) -> None:
        data = _valid()
        record = data["record"]
        assert isinstance(record, dict)
        sub = record["subtasks"]["s1"]
        if change == "unknown":
            record["surprise"] = 1
        elif change == "status":
            sub["status"] = "exploded"
        elif change == "rounds":
            sub["rounds"] = "3"
        elif change == "bool-int":
            sub["rounds"] = True
        elif change == "checks":
            sub["checks"] = [{"command": "x"}]
        elif change == "id":
            sub["id"] = "other"
        elif change == "run":
            record["run_id"] = "r2"
        _write(store, "r1", json.dumps(data).encode())

    for change, why in (("unknown", "unknown field surprise"), ("status", "exploded"), ("rounds", "integer"),
                        ("bool-int", "integer"), ("checks", "missing field"), ("id", "records id"),
                        ("run", "records run")):
        mutate(change)
        with pytest.raises(StateError, match=why):
            store.load("r1")


def test_a_state_from_before_a_field_was_added_loads_with_its_default(tmp_path: Path) -> None:
    data = _valid()
    record = data["record"]
    assert isinstance(record, dict)
    del record["notes"], record["budget"], record["subtasks"]["s1"]["seconds"]
    store = StateStore(tmp_path)
    _write(store, "r1", json.dumps(data).encode())
    back = store.load("r1")
    assert back.notes == [] and back.budget is None and back.subtasks["s1"].seconds == 0.0


def test_missing_run_and_hostile_run_ids(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with pytest.raises(StateError, match="no saved run"):
        store.load("r1")
    with pytest.raises(StateError, match=r"no run of package .* to resume"):
        store.load(store.latest())
    for bad in ("../x", "..", "a/b", "", "X", "r1\n", "-r", "a" * 41):
        with pytest.raises(ConfigError, match="not a run id"):
            store.load(bad)
        with pytest.raises(ConfigError, match="not a run id"):
            store.save(a_record(bad))
    assert list(tmp_path.iterdir()) == []


def test_runs_latest_and_new_run_ids(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "pkg")
    assert store.runs() == [] and store.latest() is None and store.latest_record() is None
    for rid in ("20250102-000000-0000", "20250101-000000-ffff", "20250103-000000-1234"):
        store.save(a_record(rid))
    (store.root / "20250104-000000-0000").mkdir()  # a run dir with no state yet does not count
    (store.root / "lock").write_text("")
    assert store.runs() == ["20250101-000000-ffff", "20250102-000000-0000", "20250103-000000-1234"]
    assert store.latest() == "20250103-000000-1234"
    latest = store.latest_record()
    assert latest is not None and latest.run_id == "20250103-000000-1234"
    rid = new_run_id()
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", rid)
    assert rid > "20250103-000000-1234"  # made now: sorts after runs of the past
    made = {store.new_run() for _ in range(300)}  # same second, many runs: no two share a directory
    assert len(made) == 300 and all((store.root / r).is_dir() for r in made)


def test_the_store_lives_in_the_git_dir_beside_the_worktrees(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    for args in (["init", "-q"], ["-c", "user.name=T", "-c", "user.email=t@l", "commit", "-q", "--allow-empty",
                                  "-m", "start"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, timeout=30)
    repo = asyncio.run(open_repo(root))
    store = StateStore.for_package(repo, "arbeitspaket")
    assert store.root == (root / ".git" / "podium-work" / "arbeitspaket").resolve()
    assert store.worktrees_dir("r1").parent == repo.run_dir("arbeitspaket", "r1")
    assert repo.worktree_path("arbeitspaket", "r1", "s").parent == store.worktrees_dir("r1")
    assert store.write_report("r1", "# Report\n") == store.run_dir("r1") / "report.md"
    assert (store.run_dir("r1") / "report.md").read_text() == "# Report\n"
    with pytest.raises(ConfigError, match="cannot name a branch"):
        StateStore.for_package(repo, "../../x")


def test_the_plan_is_kept_beside_the_state(tmp_path: Path) -> None:
    plan = WorkPlan(package="Arbeitspaket.md", title="T", base="abc", subtasks=[
        Subtask(id="one", title="One", instructions="line 1\nline 2\n", files=["a.py"]),
        Subtask(id="two", title="Two", instructions="x", depends_on=["one"])])
    store = StateStore(tmp_path)
    path = store.save_plan("r1", plan)
    assert path == tmp_path / "r1" / "plan.yaml"
    assert store.load_plan("r1") == plan


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from podium.work.contracts import RunRecord, SubtaskRecord
    from podium.work.state import StateStore
    store = StateStore(Path(sys.argv[1]))
    i = 0
    while True:
        i += 1
        record = RunRecord(run_id="r1", package="p", repo="/r", base="b", integration_branch="i", preset="p",
                           worker="editor", max_parallel=2, started_at=float(i),
                           notes=["x" * 2000] * (50 + i % 50),
                           subtasks={f"s{k}": SubtaskRecord(id=f"s{k}", rounds=i) for k in range(12)})
        store.save(record)
        if i == 1:
            print("saved", flush=True)
""")


def test_a_save_killed_at_any_moment_leaves_a_readable_state(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    seen: list[float] = []
    for attempt in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == b"saved"
            time.sleep(0.05 + 0.037 * attempt)  # mid-loop, at a different moment each time
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        record = StateStore(tmp_path).load("r1")
        assert record.run_id == "r1" and len(record.subtasks) == 12
        assert all(s.rounds == int(record.started_at) for s in record.subtasks.values())
        seen.append(record.started_at)
    assert max(seen) > 1  # the writer did get past its first save before the kills
    (tmp_path / "r1" / ".state-killed.tmp").write_text("{half")  # as a kill mid-write leaves it
    StateStore(tmp_path).lock().release()  # the next run to take the lock clears what the killed ones left
    assert [p.name for p in (tmp_path / "r1").iterdir()] == ["state.json"]


HOLDER = textwrap.dedent("""
    import subprocess, sys, time
    from pathlib import Path
    from podium.work.state import StateStore
    lock = StateStore(Path(sys.argv[1])).lock()
    child = subprocess.Popen(["sleep", "60"], close_fds=False)  # a check command the run started
    print(child.pid, flush=True)
    time.sleep(60)
""")


def test_a_second_run_is_refused_with_the_pid_and_a_killed_run_frees_the_lock(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "pkg")
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(store.root)], stdout=subprocess.PIPE, env=env)
    child = 0
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        with pytest.raises(RunLockedError, match=rf"pid {proc.pid}\b.*wait for it") as info:
            store.lock()
        assert info.value.pid == proc.pid
        assert "pkg" in info.value.message
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    try:
        os.kill(child, 0)  # the holder's own child lives on, and does not hold the lock
        with store.lock() as lock:
            assert lock.held
            assert (store.root / "lock").read_text().strip() == str(os.getpid())
        assert not lock.held
    finally:
        os.kill(child, signal.SIGKILL)


def test_the_lock_in_one_process(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "pkg")
    with RunLock(store) as held:
        assert held.held
        with pytest.raises(RunLockedError), RunLock(store):
            pass
    assert not held.held
    first = store.lock()
    with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
        store.lock()
    other = StateStore(tmp_path / "another-package").lock()  # another package: its own lock
    first.release()
    first.release()  # twice: nothing
    again = store.lock()
    again.release()
    other.release()


def test_resume_plan() -> None:
    record = a_record(a="merged", b="approved", c="working", d="checking", e="reviewing", f="failed",
                      g="rejected", h="conflict", i="blocked", j="pending")
    assert resume_plan(record) == {"a": "skip", "b": "merge", "c": "restart", "d": "restart", "e": "restart",
                                   "f": "skip", "g": "skip", "h": "skip", "i": "skip", "j": "run"}
    again = resume_plan(record, retry_failed=True)
    assert {k for k, v in again.items() if v == "retry"} == {"f", "g", "h", "i"}
    assert again["a"] == "skip" and again["b"] == "merge" and again["j"] == "run"


# --- non-finite numbers and the fix the errors point to (security review, issue 14) ---------------------------
@pytest.mark.parametrize(("where", "value"), [
    ("sub.seconds", "Infinity"), ("sub.seconds", "-Infinity"), ("sub.seconds", "NaN"), ("budget", "NaN"),
    ("started_at", "1e400"), ("cost", "Infinity"), ("sub.rounds", "1" + "0" * 30),
])
def test_non_finite_numbers_are_refused_at_load_naming_the_field(tmp_path: Path, where: str, value: str) -> None:
    store = StateStore(tmp_path)
    data = _valid()
    record = data["record"]
    assert isinstance(record, dict)
    marker = "__X__"
    if where == "sub.seconds":
        record["subtasks"]["s1"]["seconds"] = marker
        field = "seconds"
    elif where == "sub.rounds":
        record["subtasks"]["s1"]["rounds"] = marker
        field = "rounds"
    elif where == "cost":
        record["costs"]["cost"] = {"worker": marker}
        field = "costs.cost.worker"
    else:
        record[where] = marker
        field = where
    path = _write(store, "r1", json.dumps(data).replace(f'"{marker}"', value).encode())
    with pytest.raises(StateError) as info:
        store.load("r1")
    message = info.value.message
    assert str(path) in message and field in message and ("finite" in message or "range" in message), message


def test_an_integer_with_too_many_digits_is_damaged_not_a_traceback(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    data = _valid()
    record = data["record"]
    assert isinstance(record, dict)
    record["max_parallel"] = "__X__"
    _write(store, "r1", json.dumps(data).replace('"__X__"', "9" * 5000).encode())
    with pytest.raises(StateError, match="damaged"):
        store.load("r1")


def test_state_errors_point_to_fixes_that_exist(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    _write(store, "r1", b"garbage")
    with pytest.raises(StateError) as info:
        store.load("r1")
    message = info.value.message
    assert "--fresh" not in message and "podium work runs" not in message
    assert str(tmp_path / "r1") in message and "without --resume" in message
    with pytest.raises(ConfigError) as bad_id:
        store.load("../etc")
    assert "podium work runs" not in bad_id.value.message and "--resume latest" in bad_id.value.message
