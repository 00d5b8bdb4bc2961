"""``podium work`` on the embedded local models (smollm2-135m, gemma3-270m): the machinery, not the quality.

No provider is configured, so the built-in preset resolves every role to the local models; generation is
capped (``defaults.max_tokens``) and there is one round per subtask, so a run stays within a couple of
minutes on two cores. What a 135M model writes is not judged; what is checked is that the run ends with an
exit code of its contract, a report with the cost per role ($0.0000: local), ledger rows for the worker and
reviewer roles under the run's team, no worktree left behind, and the user's checkout untouched.

A model this small rarely writes a SEARCH/REPLACE block that applies, so the reviewer would seldom be
reached. One subtask therefore goes to a stub agent (a work.agents command): it asks the local model once
through the run's own gateway, then writes a correct kelvin.py whatever the answer, so its check passes
and the local reviewer always reads a diff. The other subtask uses Podium's editor on the local model.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_local
from podium.work.plan import load_plan
from podium.work.state import StateStore
from work_sample import git, make_repo

pytestmark = [needs_local, pytest.mark.timeout(900)]

STEP_TIMEOUT = 420  # seconds one `podium work` command may take on a loaded 2-core machine

STUB_AGENT = '''"""A stub coding agent: one call to the run's gateway, then a fixed edit."""
import json, os, sys, urllib.request

model, message_file = sys.argv[1], sys.argv[2]
request = urllib.request.Request(
    os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions",
    data=json.dumps({"model": model, "max_tokens": 8, "messages": [
        {"role": "user", "content": open(message_file, encoding="utf-8").read()[:1500]}]}).encode(),
    headers={"authorization": "Bearer " + os.environ["OPENAI_API_KEY"], "content-type": "application/json"})
with urllib.request.urlopen(request, timeout=300) as response:
    answer = json.load(response)
with open("kelvin.py", "w", encoding="utf-8") as f:
    f.write('"""Kelvin."""\\n\\n\\ndef c_to_k(celsius):\\n'
            '    """Celsius to Kelvin."""\\n    return celsius + 273.15\\n')
print("wrote kelvin.py after", answer["usage"]["completion_tokens"], "tokens from", answer["model"])
'''

PLAN = """version: 1
package: Arbeitspaket.md
title: Temperature conversions
subtasks:
- id: convert
  title: Celsius to Fahrenheit
  instructions: "Add c_to_f(celsius) to temperature.py, with a docstring."
  files: [temperature.py]
  acceptance: ["c_to_f(100) == 212"]
  tier: fast
- id: kelvin
  title: Kelvin module
  instructions: "Create kelvin.py with c_to_k(celsius), with a docstring."
  files: [kelvin.py]
  acceptance: ["c_to_k(0) == 273.15"]
  tier: fast
  worker: stub
"""

ENV = {k: v for k, v in os.environ.items()
       if not k.endswith(("_API_KEY", "_AUTH_TOKEN", "_BASE_URL")) and not k.startswith("PODIUM_")}
ENV["NO_COLOR"] = "1"


def setup(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    repo, package, _ = make_repo(tmp_path)
    agent = tmp_path / "stub_agent.py"
    agent.write_text(STUB_AGENT)
    plan = tmp_path / "two.yaml"
    plan.write_text(PLAN)
    config = tmp_path / "podium.yaml"
    config.write_text(json.dumps({  # no providers: the built-in preset falls to the local models
        "defaults": {"max_tokens": 96},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
        "work": {"max_revisions": 0, "max_edit_attempts": 1, "max_parallel": 1,
                 "agents": {"stub": {"command": [sys.executable, str(agent), "{model}", "{message_file}"],
                                     "timeout": 300}}},
    }))
    return repo, package, plan, config


def podium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "podium.cli", "work", *args], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=STEP_TIMEOUT)


def snapshot(repo: Path) -> tuple[str, str, str, dict[str, bytes]]:
    files = {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*")
             if p.is_file() and ".git" not in p.relative_to(repo).parts}
    return git(repo, "rev-parse", "HEAD"), git(repo, "symbolic-ref", "HEAD"), git(repo, "status", "--porcelain"), files


def test_a_run_on_the_local_models_ends_with_a_report_and_ledger_rows(tmp_path: Path) -> None:
    repo, package, plan, config = setup(tmp_path)
    before = snapshot(repo)
    report = tmp_path / "out.md"
    result = podium(tmp_path, "run", str(package), "--repo", str(repo), "--plan", str(plan), "--config",
                    str(config), "--report", str(report))
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    text = report.read_text()
    assert "## Cost per role" in text
    for role in ("worker", "reviewer"):  # local models cost nothing
        line = next(line for line in text.splitlines() if line.startswith(f"| {role} |"))
        assert "$0.0000" in line, line
    record = StateStore(repo / ".git" / "podium-work" / "arbeitspaket").latest_record()
    assert record is not None and record.status == "done"
    kelvin = record.subtasks["kelvin"]
    assert [c.passed for c in kelvin.checks] == [True] and len(kelvin.verdicts) == 1  # the local reviewer read it
    assert record.subtasks["convert"].worker_model  # the editor asked a local model
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        rows = db.execute("SELECT task_type, provider, cost FROM requests WHERE team = ?",
                          (f"work-{record.run_id}",)).fetchall()
    roles = {r[0] for r in rows}
    assert {"work-worker", "work-reviewer"} <= roles, rows
    assert {r[1] for r in rows} == {"local"} and all((r[2] or 0.0) == 0.0 for r in rows), rows
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert snapshot(repo) == before


def test_plan_on_the_local_models_writes_a_valid_plan(tmp_path: Path) -> None:
    repo, package, _, config = setup(tmp_path)
    out = tmp_path / "conductor.plan.yaml"
    result = podium(tmp_path, "plan", str(package), "--repo", str(repo), "--config", str(config), "--out", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert str(out) in result.stdout
    plan = load_plan(out)  # whatever the conductor wrote, the file is a plan `podium work run` accepts
    assert 1 <= len(plan.subtasks) <= 6
