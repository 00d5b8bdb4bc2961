"""The editor worker: its prompt, applying the model's edit blocks in a real directory, feeding failures
back in the same conversation, giving up after max_attempts, keeping the deadline, refusing hostile
paths — with a scripted ModelCalls, and once through a real Podium over the scripted provider."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from podium.client import Podium
from podium.config import load_settings
from podium.errors import BudgetExceededError, ProviderUnavailableError
from podium.providers.scripted import ScriptedProvider
from podium.types import ChatRequest, ChatResponse, Message
from podium.work.calls import DeadlineReached
from podium.work.contracts import Assignment, Role, Worker
from podium.work.editor import NO_BLOCKS, EditorWorker, first_prompt, repository_files
from podium.work.package import WorkPackage
from podium.work.plan import Subtask

Answer = str | BaseException | Callable[[list[Message]], str]


class FakeCalls:
    """A ModelCalls whose answers are written in advance; keeps every conversation it was sent."""

    def __init__(self, *answers: Answer, delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.prompts: list[list[Message]] = []
        self.asked: list[tuple[Role, str | None]] = []

    async def ask(self, role: Role, messages: list[Message], *, subtask: str | None = None,
                  avoid_provider: str | None = None, max_tokens: int | None = None,
                  temperature: float | None = None) -> ChatResponse:
        self.prompts.append(list(messages))
        self.asked.append((role, subtask))
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        text = answer(messages) if callable(answer) else answer
        return ChatResponse(text=text, model="fake-coder", provider="fakeco", cost=0.01)


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n```python\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


TEMPERATURE = '''def to_fahrenheit(celsius):
    return celsius * 9 / 5 + 32
'''


def repo(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    (root / "tests").mkdir(parents=True)
    (root / "temperature.py").write_text(TEMPERATURE)
    (root / "tests" / "test_temperature.py").write_text("from temperature import to_fahrenheit\n")
    return root


def assignment(root: Path, *, feedback: str = "", deadline: float | None = None, files: list[str] | None = None,
               instructions: str = "Add to_celsius(fahrenheit) to temperature.py.") -> Assignment:
    package = WorkPackage(path=root / "Arbeitspaket.md", title="Temperature converter",
                          text="# Temperature converter\n\nConvert both ways.\n", acceptance=("the tests pass",))
    subtask = Subtask(id="celsius", title="The inverse conversion", instructions=instructions,
                      files=files if files is not None else ["temperature.py", "new_module.py"],
                      acceptance=["to_celsius(32) == 0"])
    return Assignment(package=package, subtask=subtask, worktree=root, round=2 if feedback else 1,
                      feedback=feedback, deadline=deadline)


GOOD = block("temperature.py", "    return celsius * 9 / 5 + 32\n",
             "    return celsius * 9 / 5 + 32\n\n\ndef to_celsius(fahrenheit):\n    return (fahrenheit - 32) * 5 / 9\n")
BAD = block("temperature.py", "    return celsius * 1.8 + 32\n", "    return 0\n")


def text_of(message: Message) -> str:
    assert isinstance(message.content, str)
    return message.content


async def test_applies_the_blocks_and_reports(tmp_path: Path):
    root = repo(tmp_path)
    calls = FakeCalls(GOOD + block("new_module.py", "", "X = 1\n"))
    worker: Worker = EditorWorker(calls)
    result = await worker.work(assignment(root))
    assert worker.name == "editor"
    assert result.changed and result.error is None
    assert (result.model, result.provider, result.cost) == ("fake-coder", "fakeco", 0.01)
    assert "changed temperature.py, new_module.py; 2 blocks applied, 0 failed, in 1 answer" in result.summary
    assert "def to_celsius(fahrenheit):" in (root / "temperature.py").read_text()
    assert (root / "new_module.py").read_text() == "X = 1\n"
    assert calls.asked == [("worker", "celsius")]
    system, user = calls.prompts[0]
    assert system.role == "system" and "<<<<<<< SEARCH" in text_of(system) and "empty" in text_of(system)
    prompt = text_of(user)
    for expected in ("Temperature converter", "Convert both ways.", "Add to_celsius(fahrenheit)",
                     "- to_celsius(32) == 0", "### temperature.py\n```\n" + TEMPERATURE + "```",
                     "### new_module.py\n(does not exist yet"):
        assert expected in prompt
    assert "## The repository's files\ntemperature.py\ntests/test_temperature.py\n" in prompt
    assert "### tests/test_temperature.py" not in prompt  # listed, but its content is not shown: not named


async def test_a_partial_failure_is_fed_back_and_fixed(tmp_path: Path):
    root = repo(tmp_path)
    calls = FakeCalls(block("new_module.py", "", "X = 1\n") + BAD, GOOD)
    result = await EditorWorker(calls).work(assignment(root))
    assert result.changed and result.error is None and result.cost == pytest.approx(0.02)
    assert "2 blocks applied, 1 failed, in 2 answers" in result.summary
    second = calls.prompts[1]
    assert [m.role for m in second] == ["system", "user", "assistant", "user"]
    assert text_of(second[2]) == block("new_module.py", "", "X = 1\n") + BAD
    retry = text_of(second[3])
    assert "block 2 (temperature.py): the SEARCH section did not match" in retry
    assert "The other blocks (1) were applied; do not send them again." in retry
    assert "### temperature.py\n```\n" + TEMPERATURE + "```" in retry  # its current content
    assert "def to_celsius" in (root / "temperature.py").read_text()


async def test_gives_up_after_max_attempts(tmp_path: Path):
    root = repo(tmp_path)
    calls = FakeCalls(BAD)
    result = await EditorWorker(calls, max_attempts=2).work(assignment(root))
    assert len(calls.prompts) == 2 and not result.changed and result.cost == pytest.approx(0.02)
    assert result.error is not None and result.error.startswith("no edit block could be applied in 2 answers")
    assert "did not match" in result.error and "still failing: - block 1 (temperature.py)" in result.summary
    assert (root / "temperature.py").read_text() == TEMPERATURE


async def test_an_answer_without_blocks_is_a_failed_attempt(tmp_path: Path):
    root = repo(tmp_path)
    calls = FakeCalls("Sure! I would add a function to_celsius.", GOOD)
    result = await EditorWorker(calls).work(assignment(root))
    assert result.changed and len(calls.prompts) == 2
    assert text_of(calls.prompts[1][-1]) == NO_BLOCKS
    result = await EditorWorker(FakeCalls("no blocks"), max_attempts=1).work(assignment(repo(tmp_path / "b")))
    assert not result.changed and result.error is not None and "no edit block could be applied" in result.error


async def test_the_deadline_is_kept(tmp_path: Path):
    root = repo(tmp_path)
    slow = FakeCalls(GOOD, delay=30)
    started = time.monotonic()
    result = await EditorWorker(slow).work(assignment(root, deadline=time.monotonic() + 0.3))
    assert time.monotonic() - started < 3
    assert not result.changed and result.error is not None and "deadline" in result.error
    assert (root / "temperature.py").read_text() == TEMPERATURE
    past = FakeCalls(GOOD)
    result = await EditorWorker(past).work(assignment(root, deadline=time.monotonic() - 1))
    assert past.prompts == [] and result.error is not None and "deadline was reached before" in result.error
    # what applied before the deadline stays applied, and is said
    partial = FakeCalls(block("new_module.py", "", "X = 1\n") + BAD, GOOD, delay=0.2)
    result = await EditorWorker(partial).work(assignment(root, deadline=time.monotonic() + 0.3))
    assert result.changed and result.error is not None and "changed new_module.py" in result.error


async def test_the_runs_own_stops_propagate_and_a_failed_call_is_an_error(tmp_path: Path):
    root = repo(tmp_path)
    with pytest.raises(BudgetExceededError):
        await EditorWorker(FakeCalls(BudgetExceededError("the run's budget is spent"))).work(assignment(root))
    with pytest.raises(DeadlineReached):
        await EditorWorker(FakeCalls(DeadlineReached("past the run's deadline"))).work(assignment(root))
    result = await EditorWorker(FakeCalls(ProviderUnavailableError("every worker model is down"))).work(
        assignment(root))
    assert result.error == "the model call failed: every worker model is down; nothing was changed"


async def test_hostile_paths_are_refused(tmp_path: Path):
    root = repo(tmp_path)
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    answer = "".join(block(p, "", "pwned\n") for p in ("../outside/x.py", "/etc/passwd", ".git/config",
                                                        "link/x.py", "tests/../../outside/y.py"))
    calls = FakeCalls(answer)
    result = await EditorWorker(calls, max_attempts=2).work(assignment(root))
    assert not result.changed and result.error is not None
    assert list(outside.iterdir()) == [] and (root / ".git" / "config").read_text() == "[core]\n"
    retry = text_of(calls.prompts[1][-1])
    for reason in ("leaves the repository", "absolute", "inside .git", "outside the repository"):
        assert reason in retry


async def test_feedback_and_the_files_it_names_reach_the_prompt(tmp_path: Path):
    root = repo(tmp_path)
    feedback = ("The check command `pytest -q` failed:\n"
                f'  File "{root}/tests/test_temperature.py", line 1\n'
                "FAILED tests/test_temperature.py::test_celsius - assert 1.0 == 0")
    calls = FakeCalls(GOOD)
    await EditorWorker(calls).work(assignment(root, feedback=feedback))
    prompt = text_of(calls.prompts[0][1])
    assert "sent back (this is round 2)" in prompt and "assert 1.0 == 0" in prompt
    assert ("### tests/test_temperature.py (mentioned in the task)\n```\nfrom temperature import to_fahrenheit\n"
            in prompt)


def test_file_content_is_bounded_and_the_cut_is_said(tmp_path: Path):
    root = repo(tmp_path)
    (root / "big.py").write_text("".join(f"line_{i} = {i}\n" for i in range(20_000)))
    (root / "blob.bin").write_bytes(b"\x00\x01")
    prompt = text_of(first_prompt(assignment(root, files=["big.py", "temperature.py", "blob.bin"]),
                                  budget=5_000)[1])
    assert "[cut: lines" in prompt and "of big.py are not shown" in prompt
    assert "Not shown (over the 100,000-character budget for files): temperature.py" in prompt
    assert "### blob.bin\n(not shown: 'blob.bin' is a binary file" in prompt
    assert len(prompt) < 8_000


def test_the_file_list_skips_hidden_and_dependency_directories_and_is_bounded(tmp_path: Path):
    root = repo(tmp_path)
    for junk in (".git/config", ".venv/lib/x.py", "node_modules/a/index.js", "pkg/__pycache__/m.pyc"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("x")
    (root / "pkg" / "m.py").write_text("")
    assert repository_files(root) == ["temperature.py", "pkg/m.py", "tests/test_temperature.py"]
    assert repository_files(root, limit=2) == ["temperature.py", "pkg/m.py", "…"]


def test_a_file_with_fences_inside_gets_a_longer_fence(tmp_path: Path):
    root = repo(tmp_path)
    (root / "README.md").write_text("Use:\n```sh\nmake\n```\n")
    prompt = text_of(first_prompt(assignment(root, files=["README.md"]))[1])
    assert "### README.md\n````\nUse:\n```sh\nmake\n```\n````" in prompt


# --- through a real Podium over the scripted provider ------------------------------------------------------
class PodiumCalls:
    """The smallest ModelCalls over Podium: every role asks one model."""

    def __init__(self, podium: Podium, model: str) -> None:
        self.podium, self.model = podium, model

    async def ask(self, role: Role, messages: list[Message], *, subtask: str | None = None,
                  avoid_provider: str | None = None, max_tokens: int | None = None,
                  temperature: float | None = None) -> ChatResponse:
        return await self.podium.chat(ChatRequest(messages=messages, model=self.model, max_tokens=max_tokens,
                                                  temperature=temperature))


async def test_through_podium_with_scripted_models(tmp_path: Path):
    config: dict[str, Any] = {
        "providers": {"canned": {"kind": "scripted"}, "local": {"enabled": False}},
        "models": {"coder": {"provider": "canned", "context_window": 32_000, "input_price": 1.0,
                             "output_price": 2.0, "tier": "standard", "region": "eu",
                             "capabilities": ["chat", "code"]}},
        "resilience": {"retries": {"max_attempts": 1}},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
    }
    (tmp_path / "podium.yaml").write_text(json.dumps(config))
    podium = Podium(load_settings(tmp_path / "podium.yaml"))
    try:
        info = podium.settings.catalogue.get("coder")
        provider = podium.registry.get_provider(info.provider)
        assert isinstance(provider, ScriptedProvider)
        provider.set_script(info.model_id, [BAD, GOOD])
        root = repo(tmp_path)
        result = await EditorWorker(PodiumCalls(podium, "coder")).work(assignment(root))
        assert result.changed and result.error is None and result.provider == "canned"
        assert result.cost > 0 and "in 2 answers" in result.summary
        assert "def to_celsius" in (root / "temperature.py").read_text()
        requests = [request for _, request in provider.calls]
        assert len(requests) == 2
        second = requests[1].messages
        assert [m.role for m in second] == ["system", "user", "assistant", "user"]
        assert "did not match" in text_of(second[-1]) and "return celsius * 9 / 5 + 32" in text_of(second[-1])
    finally:
        await podium.aclose()
