"""``podium work run`` end to end on the example package, with scripted models of two providers.

The five subtasks take every path (examples/work-package/scripted_team.py): one passes, one fails its check
and is fixed, one waits for two others and is rejected by review, two conflict at the merge. Real git,
real check commands, a real SQLite ledger; the user's checkout is compared byte for byte afterwards.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from pathlib import Path

import pytest

from podium.work.contracts import RunRecord
from podium.work.package import load_package
from podium.work.plan import load_plan
from podium.work.runner import RunOptions, WorkRun
from work_sample import git, make_repo, podium_for


def snapshot(repo: Path) -> tuple[str, str, str, dict[str, bytes]]:
    files = {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*")
             if p.is_file() and ".git" not in p.relative_to(repo).parts}
    return git(repo, "rev-parse", "HEAD"), git(repo, "symbolic-ref", "HEAD"), git(repo, "status", "--porcelain"), files


async def run(tmp_path: Path, *, planned: bool = True, **options: object) -> tuple[RunRecord, Path]:
    repo, package, plan = make_repo(tmp_path)
    podium = podium_for(tmp_path)
    try:
        record = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package),
                                                  plan=load_plan(plan) if planned else None,
                                                  **options)).run()  # type: ignore[arg-type]
    finally:
        await podium.aclose()
    return record, repo


async def test_the_sample_package_runs_every_path(tmp_path: Path):
    repo, package, plan = make_repo(tmp_path)
    (repo / "notes.txt").write_text("uncommitted work of the user\n")  # the user's checkout is dirty
    (repo / "README.md").write_text("# Sample (edited, not committed)\n")
    before = snapshot(repo)
    podium = podium_for(tmp_path)
    events: list[str] = []
    record = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=load_plan(plan)),
                           lambda _r, message: events.append(message)).run()
    await podium.aclose()
    subs = record.subtasks
    assert record.status == "done"
    assert subs["convert"].status == "merged" and subs["convert"].rounds == 1
    assert subs["kelvin"].status == "merged" and subs["kelvin"].rounds == 2
    assert [c.passed for c in subs["kelvin"].checks] == [False, True]
    assert "273.15" in subs["kelvin"].checks[0].output
    assert subs["usage"].status == "rejected" and subs["usage"].rounds == 3  # 1 + max_revisions (2)
    assert all(not v.approved for v in subs["usage"].verdicts)
    titles = {subs["title-a"].status, subs["title-b"].status}
    assert titles == {"merged", "conflict"}
    conflicted = subs["title-a"] if subs["title-a"].status == "conflict" else subs["title-b"]
    assert conflicted.conflict_files == ["README.md"]
    # the integration branch holds what merged, and its check passes
    assert record.integration_check is not None and record.integration_check.passed
    branch = record.integration_branch
    assert "def c_to_f" in git(repo, "show", f"{branch}:temperature.py")
    assert "273.15" in git(repo, "show", f"{branch}:kelvin.py")
    assert "USAGE.md" not in git(repo, "ls-tree", "--name-only", branch)
    # the reviewer came from the other provider; every role is costed, and the saving is against the conductor
    assert all(v.provider == "euro" for s in subs.values() for v in s.verdicts)
    assert set(record.costs.cost) == {"worker", "reviewer"}  # the plan was given: no conductor call
    assert record.baseline_cost is not None and record.baseline_cost > record.costs.total > 0
    # nothing of the user's changed; no worktree left behind
    assert snapshot(repo) == before
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert any("kelvin: checking" in e for e in events)
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        roles = {r[0] for r in db.execute("SELECT task_type FROM requests WHERE team = ?",
                                          (f"work-{record.run_id}",))}
    assert roles == {"work-worker", "work-reviewer"}


async def test_the_conductor_plans_when_no_plan_is_given(tmp_path: Path):
    record, _repo = await run(tmp_path, planned=False, max_parallel=1)
    assert set(record.subtasks) == {"convert", "kelvin", "usage", "title-a", "title-b"}
    assert record.costs.calls.get("conductor") == 1
    assert record.plan_file.endswith("plan.yaml")


async def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path):
    repo, package, plan = make_repo(tmp_path)
    podium = podium_for(tmp_path, latency=0.05)
    options = RunOptions(repo=repo, package=load_package(package), plan=load_plan(plan), max_parallel=1)
    stop = asyncio.Event()

    def listen(record: RunRecord, message: str) -> None:
        if record.subtasks["convert"].status == "merged":
            stop.set()

    task = asyncio.create_task(WorkRun(podium, options, listen).run())
    await asyncio.wait_for(stop.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    worker_calls = sum(1 for _, r in podium.registry.get_provider("acme").calls  # type: ignore[attr-defined]
                       if "TASK-CONVERT" in str(r.messages[-1].content))
    record = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), resume="latest")).run()
    await podium.aclose()
    assert record.status == "done" and record.subtasks["convert"].status == "merged"
    assert record.subtasks["kelvin"].status == "merged"
    again = sum(1 for _, r in podium.registry.get_provider("acme").calls  # type: ignore[attr-defined]
                if "TASK-CONVERT" in str(r.messages[-1].content))
    assert again == worker_calls  # the merged subtask was not worked on again
    assert any("resumed" in n for n in record.notes)


@pytest.mark.parametrize("budget", [0.0016, 0.003])
async def test_a_spent_budget_stops_new_work_and_keeps_what_merged(tmp_path: Path, budget: float):
    # the whole package costs ~$0.0015, but each call first holds its worst case (~$0.0019 for a worker call)
    record, repo = await run(tmp_path, budget=budget, max_parallel=1)
    subs = record.subtasks.values()
    assert record.status == "over_budget"
    assert sum((s.error or "").startswith("over budget:") for s in subs) == 1  # one refusal; nothing after it
    assert record.costs.total <= budget
    if budget == 0.0016:  # the first worker call is refused: nothing else starts
        assert sum("not started: the run stopped (over budget)" in (s.error or "") for s in subs) == 3
    else:
        assert [s.id for s in subs if s.status == "merged"] == ["convert", "kelvin", "title-a"]
        assert "def c_to_f" in git(repo, "show", f"{record.integration_branch}:temperature.py")


def test_the_check_and_branches_never_touch_the_users_checkout_even_on_a_failed_plan(tmp_path: Path):
    repo, _package, _plan = make_repo(tmp_path)
    assert subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                          text=True).stdout == ""


async def test_the_deadline_stops_new_calls_and_keeps_what_merged(tmp_path: Path):
    repo, package, plan = make_repo(tmp_path)
    podium = podium_for(tmp_path, latency=0.4)
    started = asyncio.get_running_loop().time()
    record = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=load_plan(plan),
                                              deadline=2.5)).run()
    elapsed = asyncio.get_running_loop().time() - started
    await podium.aclose()
    assert record.status == "past_deadline"
    assert elapsed < 10  # the calls in flight end at the deadline; nothing new starts after it
    assert any("deadline" in (s.error or "") for s in record.subtasks.values())
    assert record.subtasks["convert"].status == "merged"  # 2 calls: done before the deadline
