"""``podium work run --worker aider``: real Aider as every subtask's worker, through the run's own gateway.

The example's scripted team answers Aider's requests (its edit format is the same search/replace blocks);
the runner starts the gateway, gives each subtask its key in the run's team, commits what Aider changed,
runs the check and the review, merges, and counts Aider's calls for the worker role from the ledger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.work.agent import AIDER
from podium.work.package import load_package
from podium.work.plan import plan_from_data
from podium.work.runner import RunOptions, WorkRun
from test_work_aider import INSTALL_SECONDS, aider_bin  # noqa: F401 (the fixture)
from work_sample import git, make_repo, podium_for

pytestmark = pytest.mark.timeout(INSTALL_SECONDS + 600)

PLAN = {"package": "Arbeitspaket.md", "subtasks": [
    {"id": "convert", "title": "Celsius to Fahrenheit", "files": ["temperature.py"],
     "instructions": "TASK-CONVERT: add c_to_f(celsius) to temperature.py, with a docstring."},
    {"id": "kelvin", "title": "Kelvin module", "files": ["kelvin.py"],
     "instructions": "TASK-KELVIN: create kelvin.py with c_to_k(celsius), with a docstring."}]}


async def test_a_run_with_aider_as_the_worker(aider_bin: Path, tmp_path: Path):  # noqa: F811
    repo, package, _plan = make_repo(tmp_path)
    config_before = (repo / ".git" / "config").read_bytes()  # no identity: Aider would write one here
    command = [str(aider_bin), *AIDER.command[1:]]
    podium = podium_for(tmp_path, worker="aider", agents={"aider": {"command": command, "timeout": 240}})
    try:
        record = await WorkRun(podium, RunOptions(repo=repo, package=load_package(package),
                                                  plan=plan_from_data(PLAN))).run()
    finally:
        await podium.aclose()
    subs = record.subtasks
    assert subs["convert"].status == "merged", (subs["convert"].error, subs["convert"].worker_notes)
    assert subs["kelvin"].status == "merged" and subs["kelvin"].rounds == 2  # its check failed once, then fixed
    assert record.integration_check is not None and record.integration_check.passed
    assert "def c_to_f" in git(repo, "show", f"{record.integration_branch}:temperature.py")
    # Aider's calls, made through the gateway, are the worker role's: counted from the ledger, priced
    assert record.costs.calls["worker"] >= 3 and record.costs.cost["worker"] > 0
    assert sum(s.cost.get("worker", 0.0) for s in subs.values()) == pytest.approx(record.costs.cost["worker"])
    assert record.baseline_cost is not None and record.baseline_cost > record.costs.total
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / ".git" / "config").read_bytes() == config_before  # the user's git config is not the agent's
