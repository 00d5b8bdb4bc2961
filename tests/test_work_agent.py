"""The run's own gateway (``podium.work.run_gateway``) and external agents as workers (``podium.work.agent``).

Real parts only: the gateway is uvicorn on a loopback port, the agent a real subprocess (a small Python
script standing in for Aider and co.) that calls the gateway over HTTP with the key it was given, in a
real git worktree. The model behind the gateway is scripted.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.client import Podium
from podium.config import load_settings
from podium.config.schema import WorkAgentConfig, WorkConfig
from podium.errors import BudgetExceededError, ConfigError
from podium.providers.scripted import ScriptedProvider, Step
from podium.work.agent import AIDER, AgentWorker, agent_config, expand_command, fill, message_for, safe_file_arg
from podium.work.contracts import Assignment, WorkerResult, run_team
from podium.work.package import WorkPackage
from podium.work.plan import Subtask
from podium.work.run_gateway import RunGateway

PRICE = 100.0  # USD per million tokens, in and out: one scripted answer (10 in, 100 out) costs $0.011


def podium_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "providers": {"canned": {"kind": "scripted", "options": {"answers": {"coder-1": "ok", "other-1": "ok"}}},
                      "local": {"enabled": False}},
        "models": {name: {"provider": "canned", "model_id": f"{name}-1", "context_window": 8000,
                          "input_price": PRICE, "output_price": PRICE, "tier": "standard", "region": "us",
                          "max_output_tokens": 100, "capabilities": ["chat", "code"]}
                   for name in ("coder", "other")},
        "routing": {"default": "coder"},
        "resilience": {"retries": {"max_attempts": 1}},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
    }


async def open_podium(tmp_path: Path) -> Podium:
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(podium_config(tmp_path)))
    return Podium(load_settings(path))


def canned(podium: Podium) -> ScriptedProvider:
    found = podium.registry.get_provider("canned")
    assert isinstance(found, ScriptedProvider)
    return found


def ledger_rows(tmp_path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
async def podium(tmp_path: Path) -> AsyncIterator[Podium]:
    client = await open_podium(tmp_path)
    canned(client).set_script("coder-1", Step(text="done", input_tokens=10, output_tokens=100))
    yield client
    await client.aclose()


def chat_body(model: str = "coder") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}


# --- the run's gateway ---------------------------------------------------------------------------------------
async def test_the_gateway_serves_on_loopback_and_leaves_no_port_task_or_thread(podium: Podium):
    threads_before = {t.ident for t in threading.enumerate()}
    tasks_before = asyncio.all_tasks()
    async with RunGateway(podium, "r1", budget=1.0) as gw:
        assert gw.base_url.startswith("http://127.0.0.1:") and gw.base_url.endswith("/v1")
        port = gw.port
        key = await gw.key_for("s1", ["coder"])
        async with httpx.AsyncClient() as http:
            answer = await http.post(gw.base_url + "/chat/completions", json=chat_body(),
                                     headers={"authorization": f"Bearer {key}"})
            refused = await http.post(gw.base_url + "/chat/completions", json=chat_body())
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == "done"
        assert refused.status_code == 401  # auth is required on the run's gateway
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    await asyncio.sleep(0)
    assert {t for t in asyncio.all_tasks() if not t.done()} - tasks_before - {asyncio.current_task()} == set()
    # the loop's default executor (asyncio_N: the test's own HTTP client resolves names there) is the loop's
    assert {t.name for t in threading.enumerate() if t.ident not in threads_before
            and not t.name.startswith("asyncio_")} == set()
    # the run owns its Podium: still open after the gateway stopped
    assert (await podium.chat("again", model="coder")).text == "done"


async def test_a_key_is_scoped_to_the_worker_models_and_auto_in_the_runs_team(podium: Podium, tmp_path: Path):
    async with RunGateway(podium, "r2") as gw:
        key = await gw.key_for("s1", ["coder"])
        assert await gw.key_for("s1", ["coder"]) == key  # the same subtask's next round: the same key
        assert await gw.key_for("s2", ["coder"]) != key
        async with httpx.AsyncClient() as http:
            other = await http.post(gw.base_url + "/chat/completions", json=chat_body("other"),
                                    headers={"authorization": f"Bearer {key}"})
            routed = await http.post(gw.base_url + "/chat/completions",
                                     json={**chat_body(), "model": "auto"}, headers={"x-api-key": key})
        assert other.status_code == 403
        assert routed.status_code == 200, routed.text
        key_id = gw.key_id("work-r2-s1")
        assert key_id is not None
        spent = await gw.spent("work-r2-s1")
    assert spent == pytest.approx(110 * PRICE / 1e6)
    rows = ledger_rows(tmp_path, "SELECT key_id, team FROM requests WHERE status = 'ok'")
    assert rows == [(key_id, run_team("r2"))]


async def test_agent_calls_and_the_runs_own_calls_draw_from_one_budget(podium: Podium):
    budget = 0.015  # room for one call's worst case (about $0.0101), not two
    async with RunGateway(podium, "r3", budget=budget) as gw:
        key = await gw.key_for("s1", ["coder"])
        async with httpx.AsyncClient() as http:
            first = await http.post(gw.base_url + "/chat/completions", json=chat_body(),
                                    headers={"authorization": f"Bearer {key}"})
        assert first.status_code == 200, first.text
        assert await gw.state.spent(f"team:{run_team('r3')}:total") == pytest.approx(0.011)
        policy = podium.policies.build(podium.prepare("next", {"model": "coder", "max_tokens": 100}),
                                       team=run_team("r3"), budgets=gw.budget_slots(), counters=gw.state)
        with pytest.raises(BudgetExceededError, match="budget"):
            await podium.chat("next", model="coder", max_tokens=100, policy=policy)


async def test_the_runs_own_call_spends_the_budget_an_agent_then_cannot(podium: Podium):
    async with RunGateway(podium, "r4", budget=0.015) as gw:
        policy = podium.policies.build(podium.prepare("plan", {"model": "coder", "max_tokens": 100}),
                                       team=run_team("r4"), budgets=gw.budget_slots(), counters=gw.state)
        await podium.chat("plan", model="coder", max_tokens=100, policy=policy)
        key = await gw.key_for("s1", ["coder"])
        async with httpx.AsyncClient() as http:
            refused = await http.post(gw.base_url + "/chat/completions", json=chat_body(),
                                      headers={"authorization": f"Bearer {key}"})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "budget_exceeded"


async def test_a_resumed_run_starts_its_budget_from_the_ledger(podium: Podium):
    async with RunGateway(podium, "r5", budget=0.015) as gw:
        key = await gw.key_for("s1", ["coder"])
        async with httpx.AsyncClient() as http:
            assert (await http.post(gw.base_url + "/chat/completions", json=chat_body(),
                                    headers={"authorization": f"Bearer {key}"})).status_code == 200
    async with RunGateway(podium, "r5", budget=0.015) as again:  # the same run, a new process's gateway
        assert await again.state.spent(f"team:{run_team('r5')}:total") == pytest.approx(0.011)


async def test_keys_need_a_running_gateway_and_known_models(podium: Podium):
    gw = RunGateway(podium, "r6")
    with pytest.raises(Exception, match="not running"):
        await gw.key_for("s1", ["coder"])
    async with gw:
        with pytest.raises(Exception, match="not known"):
            await gw.key_for("s1", ["no-such-model"])
    await gw.stop()  # idempotent


# --- command templates ---------------------------------------------------------------------------------------
def test_the_builtin_aider_template_is_used_unless_the_config_names_its_own():
    assert agent_config(WorkConfig(), "aider") is AIDER
    mine = WorkAgentConfig(command=["my-aider", "{files}"])
    assert agent_config(WorkConfig(agents={"aider": mine}), "aider") is mine
    assert agent_config(WorkConfig(), "nobody") is None


def test_a_template_with_a_misspelt_placeholder_or_an_embedded_files_is_refused(podium: Podium):
    gw = RunGateway(podium, "t")
    with pytest.raises(ConfigError, match=r"command\[1\].*unknown placeholder \{modle\}"):
        AgentWorker("x", WorkAgentConfig(command=["x", "{modle}"]), gw, ["coder"])
    with pytest.raises(ConfigError, match=r"\{files\} must be an argument of its own"):
        AgentWorker("x", WorkAgentConfig(command=["x", "--files={files}"]), gw, ["coder"])
    with pytest.raises(ConfigError, match=r"env.KEY.*\{token\}"):
        AgentWorker("x", WorkAgentConfig(command=["x"], env={"KEY": "{token}"}), gw, ["coder"])
    with pytest.raises(ConfigError, match="at least one model"):
        AgentWorker("x", WorkAgentConfig(command=["x"]), gw, [])


names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(files=st.lists(names, max_size=6), model=names, message=names)
def test_placeholders_are_filled_once_and_files_stay_one_argument_each(files: list[str], model: str, message: str):
    command = ["agent", "--model", "x/{model}", "-f", "{message_file}", "{files}", "--end"]
    argv = expand_command(command, {"model": model, "message_file": message}, files)
    assert argv[:2] == ["agent", "--model"]
    assert argv[2] == "x/" + model  # a value holding "{message_file}" stays as it is
    assert argv[4] == message
    assert argv[5:-1] == [safe_file_arg(f) for f in files]
    assert argv[-1] == "--end"
    assert not any(a.startswith("-") for a in argv[5:-1])


def test_fill_never_expands_a_value_again():
    assert fill("{a}{b}", {"a": "{b}", "b": "{a}"}) == "{b}{a}"
    assert fill("{unknown} {a}", {"a": "1"}) == "{unknown} 1"


# --- the agent as a worker ---------------------------------------------------------------------------------
STUB = textwrap.dedent('''
    """A stand-in coding agent: records what it was given, asks the gateway once, edits the first file."""
    import json, os, subprocess, sys, time, urllib.request
    args = sys.argv[1:]
    mode = os.environ.get("STUB_MODE", "edit")
    record = {"argv": args, "cwd": os.getcwd(), "env": {k: os.environ.get(k) for k in (
        "OPENAI_API_BASE", "OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
        "HOME", "TMPDIR", "EXTRA", "VIRTUAL_ENV", "GIT_DIR", "SECRET_OF_PARENT", "NO_PROXY")}}
    message_file = args[args.index("--message") + 1]
    record["message"] = open(message_file, encoding="utf-8").read()
    for where in (os.environ["HOME"], os.environ["TMPDIR"]):
        with open(os.path.join(where, "scratch.txt"), "w") as f:
            f.write("agent scratch")
    if mode in ("edit", "commit", "child-left"):
        base = os.environ.get("OPENAI_BASE_URL") or os.environ["ANTHROPIC_BASE_URL"] + "/v1"
        body = json.dumps({"model": args[args.index("--model") + 1], "max_tokens": 100,
                           "messages": [{"role": "user", "content": "write it"}]}).encode()
        request = urllib.request.Request(base + "/chat/completions", body, {
            "content-type": "application/json",
            "authorization": "Bearer " + (os.environ.get("OPENAI_API_KEY") or os.environ["ANTHROPIC_API_KEY"])})
        record["answer"] = json.loads(urllib.request.urlopen(request, timeout=10).read())["choices"][0]["message"]
    files = args[args.index("--files") + 1:]
    record["files"] = files
    with open(".agent-record.json", "w", encoding="utf-8") as f:
        json.dump(record, f)
    if files and mode != "noop":
        with open(files[0], "a", encoding="utf-8") as f:
            f.write("edited by the agent\\n")
    print("agent says: key is " + (os.environ.get("OPENAI_API_KEY") or ""))
    if mode == "commit":
        subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qam", "agent"], check=True)
    if mode in ("sleep", "child-left"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open(".agent-pids", "w") as f:
            f.write(f"{os.getpid()} {child.pid}")
        if mode == "sleep":
            time.sleep(120)
    if mode == "flood":
        sys.stdout.write("x" * 3_000_000 + "\\nthe end\\n")
    if mode == "fail":
        print("something broke", file=sys.stderr)
        sys.exit(3)
''')


def git(cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True).stdout


HOSTILE = ["-rf", "a b.txt", "it's \"quoted\".py", "{model}.py", "dir/--help"]


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    """A repository with one commit, and a worktree of it on a branch (its path with a space and braces)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for name in HOSTILE:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("start\n", encoding="utf-8")
    (repo / ".gitignore").write_text(".agent-pids\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "start")
    tree = tmp_path / "work tree {model}"
    git(repo, "worktree", "add", "-q", "-b", "podium/work/s1", str(tree))
    return tree


def package(tmp_path: Path) -> WorkPackage:
    return WorkPackage(path=tmp_path / "Arbeitspaket.md", title="Tidy the files",
                       text="Make every file say it was edited.", acceptance=("every file is edited",))


def assignment(tmp_path: Path, tree: Path, files: list[str] | None = None, **fields: Any) -> Assignment:
    subtask = Subtask(id="s1", title="Edit them", instructions="Append a line to the first file.",
                      files=HOSTILE if files is None else files, acceptance=["the first file is edited"])
    return Assignment(package=package(tmp_path), subtask=subtask, worktree=tree, **fields)


def stub_agent(tmp_path: Path, mode: str = "edit", *, timeout: float = 30.0, api: str = "openai",
               env: dict[str, str] | None = None) -> WorkAgentConfig:
    script = tmp_path / "stub_agent.py"
    script.write_text(STUB, encoding="utf-8")
    return WorkAgentConfig(command=[sys.executable, str(script), "--model", "{model}", "--message",
                                   "{message_file}", "--worktree", "{worktree}", "--files", "{files}"],
                           api=api, timeout=timeout, env={"STUB_MODE": mode, **(env or {})})  # type: ignore[arg-type]


async def run_stub(gw: RunGateway, tmp_path: Path, tree: Path, mode: str) -> WorkerResult:
    return await AgentWorker("stub", stub_agent(tmp_path, mode), gw, ["coder"]).work(assignment(tmp_path, tree))


def gone_and_outside(paths: list[str], tree: Path) -> bool:
    return not any(Path(p).exists() or Path(p).is_relative_to(tree) for p in paths)


def same_dir(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def record_of(tree: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tree / ".agent-record.json").read_text(encoding="utf-8"))
    return data


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent (or init) is not running
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


async def eventually_dead(*pids: int) -> None:
    for _ in range(100):
        if not any(alive(p) for p in pids):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"still running: {[p for p in pids if alive(p)]}")


async def test_an_agent_edits_its_worktree_through_the_gateway_with_its_own_key(
        podium: Podium, tmp_path: Path, worktree: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SECRET_OF_PARENT", "do-not-pass")
    monkeypatch.setenv("GIT_DIR", "/nowhere")  # a parent's git variables must not steer the agent's git
    home_before = sorted(os.listdir(Path.home()))
    async with RunGateway(podium, "a1", budget=1.0) as gw:
        worker = AgentWorker("stub", stub_agent(tmp_path, env={"EXTRA": "{base_url}|{model}"}), gw, ["coder"])
        result = await worker.work(assignment(tmp_path, worktree, feedback="The tests failed: add a newline.",
                                              round=2))
        key_id, base_url = gw.key_id("work-a1-s1"), gw.base_url
    assert result.error is None, result.summary
    assert result.changed
    assert (result.model, result.provider) == ("coder", "canned")
    assert result.cost == pytest.approx(0.011)
    assert "changed: -rf" in result.summary
    seen = record_of(worktree)
    # argv: one argument per file, a leading '-' made harmless, nothing expanded twice
    assert seen["files"] == ["./-rf", "a b.txt", "it's \"quoted\".py", "{model}.py", "dir/--help"]
    assert seen["argv"][seen["argv"].index("--worktree") + 1] == str(worktree)
    assert seen["argv"][seen["argv"].index("--model") + 1] == "coder"
    assert same_dir(seen["cwd"], worktree)
    env = seen["env"]
    assert env["OPENAI_API_BASE"] == env["OPENAI_BASE_URL"] == base_url
    assert env["OPENAI_API_KEY"].startswith("pk-")
    assert env["EXTRA"].endswith("/v1|coder")
    assert env["SECRET_OF_PARENT"] is None and env["GIT_DIR"] is None and env["VIRTUAL_ENV"] is None
    assert "127.0.0.1" in env["NO_PROXY"]
    assert env["OPENAI_API_KEY"] not in result.summary  # the key is redacted from the agent's output
    # the message: the package, the subtask, its files and criteria, and why it came back
    message = seen["message"]
    for part in ("Tidy the files", "Make every file say", "Append a line", "- a b.txt", "the first file is edited",
                 "every file is edited", "round 2", "add a newline", "Do not commit"):
        assert part in message
    assert not message_for(assignment(tmp_path, worktree)).count("sent back")
    # nothing outside the worktree: HOME, TMPDIR and the message file were private and are gone
    assert gone_and_outside([env["HOME"], env["TMPDIR"], seen["argv"][seen["argv"].index("--message") + 1]],
                            worktree)
    assert sorted(os.listdir(Path.home())) == home_before
    status = git(worktree, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert sorted(line[3:] for line in status) == ["-rf", ".agent-record.json"]
    # the call is in the ledger under the subtask's key and the run's team, with its cost
    rows = ledger_rows(tmp_path, "SELECT r.key_id, r.team, c.cost FROM requests r JOIN calls c "
                                 "ON c.request_id = r.request_id")
    assert rows == [(key_id, run_team("a1"), pytest.approx(0.011))]


async def test_an_anthropic_agent_gets_the_gateways_root_and_its_key(podium: Podium, tmp_path: Path,
                                                                      worktree: Path):
    async with RunGateway(podium, "a2") as gw:
        worker = AgentWorker("claude", stub_agent(tmp_path, api="anthropic"), gw, ["coder"])
        result = await worker.work(assignment(tmp_path, worktree))
    assert result.error is None, result.summary
    env = record_of(worktree)["env"]
    assert env["ANTHROPIC_BASE_URL"] == gw_root(env["ANTHROPIC_BASE_URL"])
    assert env["ANTHROPIC_API_KEY"].startswith("pk-") and env["OPENAI_API_KEY"] is None


def gw_root(url: str) -> str:
    assert url.startswith("http://127.0.0.1:") and not url.endswith("/v1")
    return url


async def test_a_timeout_kills_the_agent_and_everything_it_started(podium: Podium, tmp_path: Path,
                                                                   worktree: Path):
    async with RunGateway(podium, "a3") as gw:
        worker = AgentWorker("stub", stub_agent(tmp_path, "sleep", timeout=2.0), gw, ["coder"])
        started = time.monotonic()
        result = await worker.work(assignment(tmp_path, worktree))
    assert time.monotonic() - started < 10
    assert result.error is not None and "did not finish within 2 s" in result.error
    assert "timed out" in result.summary
    pids = [int(p) for p in (worktree / ".agent-pids").read_text().split()]
    await eventually_dead(*pids)
    assert result.changed  # what it did before it was stopped is still there for the gate to judge


async def test_the_runs_deadline_shortens_the_agents_time(podium: Podium, tmp_path: Path, worktree: Path):
    async with RunGateway(podium, "a4") as gw:
        worker = AgentWorker("stub", stub_agent(tmp_path, "sleep", timeout=600), gw, ["coder"])
        result = await worker.work(assignment(tmp_path, worktree, deadline=time.monotonic() + 1.5))
        assert result.error is not None and "did not finish" in result.error
        late = await worker.work(assignment(tmp_path, worktree, deadline=time.monotonic() - 1))
    assert late.error is not None and "deadline" in late.error and not late.changed


async def test_cancelling_the_round_kills_the_agents_process_group(podium: Podium, tmp_path: Path, worktree: Path):
    async with RunGateway(podium, "a5") as gw:
        worker = AgentWorker("stub", stub_agent(tmp_path, "sleep"), gw, ["coder"])
        task = asyncio.create_task(worker.work(assignment(tmp_path, worktree)))
        pid_file = worktree / ".agent-pids"
        for _ in range(200):
            if pid_file.exists() and len(pid_file.read_text().split()) == 2:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    await eventually_dead(*[int(p) for p in pid_file.read_text().split()])


async def test_what_an_agent_leaves_running_after_it_exits_is_killed(podium: Podium, tmp_path: Path,
                                                                     worktree: Path):
    async with RunGateway(podium, "a6") as gw:
        result = await run_stub(gw, tmp_path, worktree, "child-left")
    assert result.error is None, result.summary
    await eventually_dead(*[int(p) for p in (worktree / ".agent-pids").read_text().split()])


async def test_a_non_zero_exit_is_an_error_naming_the_status_and_the_last_output(
        podium: Podium, tmp_path: Path, worktree: Path):
    async with RunGateway(podium, "a7") as gw:
        result = await run_stub(gw, tmp_path, worktree, "fail")
    assert result.error is not None
    assert "exited with status 3" in result.error and "something broke" in result.error


async def test_a_command_that_is_not_installed_is_an_error_saying_so(podium: Podium, tmp_path: Path,
                                                                     worktree: Path):
    async with RunGateway(podium, "a8") as gw:
        worker = AgentWorker("aider", WorkAgentConfig(command=["podium-no-such-agent", "{files}"]), gw, ["coder"])
        result = await worker.work(assignment(tmp_path, worktree))
    assert result.error is not None and "was not found" in result.error and "work.agents.aider.command" in result.error
    assert not result.changed


async def test_an_agent_that_commits_anyway_is_noted_and_counts_as_a_change(
        podium: Podium, tmp_path: Path, worktree: Path):
    head = git(worktree, "rev-parse", "HEAD").strip()
    async with RunGateway(podium, "a9") as gw:
        result = await run_stub(gw, tmp_path, worktree, "commit")
    assert result.changed and result.error is None
    assert "committed on its own" in result.summary and head[:10] in result.summary


async def test_a_file_already_changed_and_changed_again_counts_as_a_change(podium: Podium, tmp_path: Path,
                                                                         worktree: Path):
    (worktree / "a b.txt").write_text("dirty before the round\n")  # `git status` says " M" before and after
    async with RunGateway(podium, "b1") as gw:
        result = await AgentWorker("stub", stub_agent(tmp_path), gw, ["coder"]).work(
            assignment(tmp_path, worktree, files=["a b.txt"]))
    assert result.changed
    assert "changed: .agent-record.json, a b.txt" in result.summary


async def test_an_agent_that_changes_nothing_in_a_dirty_worktree_changed_nothing(podium: Podium, tmp_path: Path,
                                                                                 worktree: Path):
    (worktree / "a b.txt").write_text("dirty before the round\n")
    (worktree / "new.txt").write_text("untracked before the round\n")
    async with RunGateway(podium, "b4") as gw:
        idle = WorkAgentConfig(command=[sys.executable, "-c", "print('nothing to do')"])
        result = await AgentWorker("idle", idle, gw, ["coder"]).work(assignment(tmp_path, worktree))
    assert not result.changed and result.error is None and result.cost == 0.0
    assert "changed no file" in result.summary and "nothing to do" in result.summary


async def test_the_agents_output_is_bounded_and_its_tail_kept(podium: Podium, tmp_path: Path, worktree: Path):
    async with RunGateway(podium, "b2") as gw:
        result = await run_stub(gw, tmp_path, worktree, "flood")
    assert result.summary.rstrip().endswith("the end")
    assert len(result.summary) < 5_000


async def test_a_file_outside_the_worktree_is_refused_before_the_agent_runs(podium: Podium, tmp_path: Path,
                                                                            worktree: Path):
    (worktree / "escape").symlink_to(tmp_path)
    async with RunGateway(podium, "b3") as gw:
        worker = AgentWorker("stub", stub_agent(tmp_path), gw, ["coder"])
        with pytest.raises(ConfigError, match="outside the worktree"):
            await worker.work(assignment(tmp_path, worktree, files=["escape/podium.yaml"]))
    assert not (worktree / ".agent-record.json").exists()


async def test_the_documented_codex_and_claude_templates_expand_as_the_docs_say(podium: Podium, tmp_path: Path):
    codex = WorkAgentConfig(command=[
        "codex", "exec", "--full-auto", "--model", "{model}", "-c", "model_provider=podium", "-c",
        'model_providers.podium={name="Podium", base_url="{base_url}", env_key="PODIUM_API_KEY", '
        'wire_api="responses"}', "Read {message_file} and carry out the task it describes in this repository."],
        api="responses", env={"PODIUM_API_KEY": "{api_key}"})
    claude = WorkAgentConfig(command=["claude", "-p", "Read {message_file} and carry out the task.", "--model",
                                      "{model}"], api="anthropic", env={"ANTHROPIC_SMALL_FAST_MODEL": "{model}"})
    async with RunGateway(podium, "docs") as gw:
        argv = AgentWorker("codex", codex, gw, ["coder"]).argv(tmp_path / "m.md", tmp_path, [])
        assert argv[8] == ('model_providers.podium={name="Podium", base_url="' + gw.base_url +
                           '", env_key="PODIUM_API_KEY", wire_api="responses"}')
        assert argv[9].startswith(f"Read {tmp_path / 'm.md'} and")
        env = AgentWorker("codex", codex, gw, ["coder"]).environment("pk-x", tmp_path)
        assert env["PODIUM_API_KEY"] == "pk-x" and env["OPENAI_BASE_URL"] == gw.base_url
        assert "OPENAI_API_BASE" not in env
        env = AgentWorker("claude", claude, gw, ["coder"]).environment("pk-y", tmp_path)
        assert env["ANTHROPIC_BASE_URL"] == gw.root_url and env["ANTHROPIC_SMALL_FAST_MODEL"] == "coder"
