"""What an outside review of ``podium work`` found, each a test: resume and plan mistakes are bad input,
retries start afresh and keep what they replace, and an agent retrying a budget refusal is stopped."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from podium.errors import ConfigError
from podium.work.package import load_package
from podium.work.plan import load_plan, plan_from_data
from podium.work.runner import RunOptions, WorkRun
from podium.work.state import StateStore
from work_sample import git, make_repo, podium_for


async def test_resume_needs_the_same_package_and_preset(tmp_path: Path):
    repo, package, plan = make_repo(tmp_path)
    podium = podium_for(tmp_path)
    await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=load_plan(plan))).run()
    other = tmp_path / "elsewhere" / "Arbeitspaket.md"  # same name, so the same run directory
    other.parent.mkdir()
    other.write_text(package.read_text().replace("check.py", "check.py # other"))
    with pytest.raises(ConfigError, match="resume it with that package file"):
        await WorkRun(podium, RunOptions(repo=repo, package=load_package(other), resume="latest")).run()
    with pytest.raises(ConfigError, match="ran with preset 'sample'"):
        await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), resume="latest",
                                         preset="budget")).run()
    await podium.aclose()


async def test_a_plan_for_another_package_or_with_a_bad_base_leaves_no_run(tmp_path: Path):
    repo, package, _ = make_repo(tmp_path)
    podium = podium_for(tmp_path)
    other = plan_from_data({"package": "Other.md", "subtasks": [{"id": "a", "title": "A", "instructions": "x"}]})
    with pytest.raises(ConfigError, match=r"the plan was made for Other\.md"):
        await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=other)).run()
    bad = plan_from_data({"package": "Arbeitspaket.md", "base": "deadbeef",
                          "subtasks": [{"id": "a", "title": "A", "instructions": "x"}]})
    with pytest.raises(ConfigError, match="base 'deadbeef' is not a commit"):
        await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=bad)).run()
    await podium.aclose()
    assert StateStore(repo / ".git" / "podium-work" / "arbeitspaket").runs() == []


async def test_a_missing_agent_is_bad_input_before_any_work(tmp_path: Path):
    repo, package, plan = make_repo(tmp_path)
    podium = podium_for(tmp_path, agents={"ghost": {"command": ["no-such-agent-xyz", "{message_file}"]}})
    with pytest.raises(ConfigError, match="'no-such-agent-xyz' is not installed"):
        await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=load_plan(plan),
                                         worker="ghost")).run()
    await podium.aclose()
    assert StateStore(repo / ".git" / "podium-work" / "arbeitspaket").runs() == []


async def test_retrying_a_conflict_starts_afresh_and_keeps_the_conflicting_commit(tmp_path: Path):
    repo, package, plan = make_repo(tmp_path)
    podium = podium_for(tmp_path)
    first = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=load_plan(plan))).run()
    loser = next(s for s in first.subtasks.values() if s.status == "conflict")
    old_commit = loser.commit
    again = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), resume=first.run_id,
                                             retry_failed=True)).run()
    await podium.aclose()
    sub = again.subtasks[loser.id]
    assert git(repo, "rev-parse", f"{loser.branch}-conflicted").strip() == old_commit
    assert sub.conflict_files in ([], ["README.md"])  # its new attempt's, not the old one's
    assert len(sub.verdicts) <= 1 and len(sub.checks) <= 1  # the old attempt's review and check are gone
    assert any(f"{loser.id}: tried again after it conflict" in n for n in again.notes)


AGENT = """
import json, os, time, urllib.error, urllib.request
url = os.environ["OPENAI_BASE_URL"] + "/chat/completions"
body = json.dumps({"model": "worker-m", "messages": [{"role": "user", "content": "TASK-CONVERT"}]}).encode()
for _ in range(600):  # a client that takes every 429 for a rate limit and retries: for minutes
    request = urllib.request.Request(url, body, {"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"],
                                                "Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=10).read()
    except urllib.error.HTTPError:
        pass
    time.sleep(0.2)
"""


async def test_an_agent_retrying_a_budget_refusal_is_stopped_and_the_run_is_over_budget(tmp_path: Path):
    repo, package, _ = make_repo(tmp_path)
    stub = tmp_path / "agent.py"
    stub.write_text(AGENT)
    podium = podium_for(tmp_path, agents={"retrier": {"command": [sys.executable, str(stub)], "timeout": 120}})
    plan = plan_from_data({"package": "Arbeitspaket.md", "subtasks": [
        {"id": "convert", "title": "C", "instructions": "TASK-CONVERT", "files": ["temperature.py"]}]})
    started = time.monotonic()
    record = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package), plan=plan,
                                              worker="retrier", budget=0.003)).run()
    elapsed = time.monotonic() - started
    await podium.aclose()
    assert record.status == "over_budget", record.subtasks["convert"].error
    assert "refused" in (record.subtasks["convert"].error or "")
    assert elapsed < 30  # the agent would have retried for two minutes
    assert 0 < record.costs.total <= 0.003 and record.costs.calls["worker"] >= 1  # its calls, counted
