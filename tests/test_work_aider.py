"""Real Aider (aider-chat 0.86.2, in its own virtual environment) as a work run's worker, through Podium's
run gateway, with a scripted model behind it that answers in Aider's diff edit format.

The virtual environment is made by ``scripts/aider-venv`` (cached in ~/.cache/podium, idempotent). If it
cannot be made (no network to PyPI, …) the test is skipped saying why — except under CI=true, where it
fails: CI must run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from podium.client import Podium
from podium.providers.scripted import Step
from podium.types import ChatRequest
from podium.work.agent import AIDER, AgentWorker
from podium.work.contracts import run_team
from podium.work.run_gateway import RunGateway
from test_work_agent import assignment, canned, git, ledger_rows, open_podium

ROOT = Path(__file__).resolve().parent.parent
INSTALL_SECONDS = 840  # a first install, from PyPI (about two minutes here); cached afterwards
pytestmark = pytest.mark.timeout(INSTALL_SECONDS + 300)  # the first test also waits for the install


@pytest.fixture(scope="session")
def aider_bin() -> Path:
    """The aider executable of scripts/aider-venv (installed on first use)."""
    try:
        done = subprocess.run(["bash", str(ROOT / "scripts" / "aider-venv")], capture_output=True, text=True,
                              timeout=INSTALL_SECONDS, check=False)
        found = Path(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else None
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
    except (OSError, subprocess.TimeoutExpired) as exc:
        found, why = None, f"{type(exc).__name__}: {exc}"
    if found is None or not found.exists():
        message = f"Aider could not be installed by scripts/aider-venv ({why})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


EDIT = '''hello.py
```python
<<<<<<< SEARCH
def greet():
    return "hello"
=======
def greet(name="world"):
    return f"hello, {name}"
>>>>>>> REPLACE
```
'''


def answer(request: ChatRequest) -> Step:
    """Aider's request has its system prompt, the file's content and our message: answer with one edit."""
    return Step(text="I will change greet.\n\n" + EDIT, input_tokens=1000, output_tokens=200)


@pytest.fixture
async def podium(tmp_path: Path) -> AsyncIterator[Podium]:
    client = await open_podium(tmp_path)
    yield client
    await client.aclose()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "hello.py").write_text('def greet():\n    return "hello"\n', encoding="utf-8")
    (root / "other.py").write_text("x = 1\n", encoding="utf-8")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "start")
    tree = tmp_path / "worktrees" / "greet"
    git(root, "worktree", "add", "-q", "-b", "podium/work/greet", str(tree))
    return tree


@pytest.fixture
async def outside(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[bytes]]:
    """Every proxy variable points at a listener that records who knocked: an agent that reaches for the
    network (model metadata, version checks, analytics) shows up here instead of passing unseen."""
    knocks: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            knocks.append(await asyncio.wait_for(reader.readline(), 2))
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    yield knocks
    server.close()
    await server.wait_closed()


async def test_real_aider_edits_a_file_through_the_run_gateway(aider_bin: Path, podium: Podium, tmp_path: Path,
                                                              repo: Path, outside: list[bytes]):
    canned(podium).set_script("coder-1", answer)
    config = AIDER.model_copy(update={"command": [str(aider_bin), *AIDER.command[1:]], "timeout": 240.0})
    async with RunGateway(podium, "aider1", budget=1.0) as gw:
        worker = AgentWorker("aider", config, gw, ["coder"])
        result = await worker.work(assignment(tmp_path, repo, files=["hello.py"]))
        key_id = gw.key_id("work-aider1-s1")
    assert result.error is None, result.summary
    assert (repo / "hello.py").read_text(encoding="utf-8") == \
        'def greet(name="world"):\n    return f"hello, {name}"\n'
    assert result.changed
    # Aider committed nothing and left nothing of its own in the worktree
    status = git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert status == [" M hello.py"], status
    assert git(repo, "log", "--oneline").count("\n") == 1
    # the gateway saw Aider's request: the model by Podium's name, Aider's prompt with the file and our message
    calls = [request for model_id, request in canned(podium).calls if model_id == "coder-1"]
    assert calls, "Aider's request never reached the scripted model"
    prompt = "\n".join(str(m.content) for m in calls[0].messages)
    assert "SEARCH" in prompt and 'return "hello"' in prompt and "Edit them" in prompt
    # in the ledger under the subtask's key and the run's team, with its cost (1000 in, 200 out at $100/M)
    rows = ledger_rows(tmp_path, "SELECT r.key_id, r.team, r.requested_model, c.cost FROM requests r "
                                 "JOIN calls c ON c.request_id = r.request_id")
    assert rows and all(row[:3] == (key_id, run_team("aider1"), "coder") for row in rows), rows
    assert result.cost == pytest.approx(sum(row[3] for row in rows))
    assert result.cost == pytest.approx(len(rows) * 1200 * 100 / 1e6)
    # and it needed no network but the gateway
    assert outside == []


def test_the_aider_template_is_aiders_own_options(aider_bin: Path):
    """Every option of the built-in template is one Aider 0.86.2 knows (its --help lists it)."""
    done = subprocess.run([str(aider_bin), "--help"], capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": os.environ.get("PATH", ""), "HOME": str(Path(sys.prefix)),
                               "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    assert done.returncode == 0, done.stderr
    for option in AIDER.command[1:]:
        if option.startswith("--"):
            assert option in done.stdout, option
