"""``kind: cli``: the real Gemini CLI and Claude Code against local wire-format servers, and a stub command
(a Python script this file writes) for every failure a tool can have: each error shape, garbage, a flood
of output, a hang, a cancelled request, a missing command, and hostile prompts that must arrive intact."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium import Podium, errors
from podium.catalogue import ModelInfo
from podium.config import ProviderSpec, load_settings
from podium.providers.cli.provider import CliProvider
from podium.providers.plugins import build_provider
from podium.types import ChatRequest, Message
from servers.http_server import Reply, Request, WireServer
from servers.wires import AnthropicWire, GeminiWire, Scenario

SECRET = "sk-ant-api03-SECRETSECRETSECRET1234"

STUB = r'''#!{python}
import json, os, subprocess, sys, time
argv = sys.argv[1:]
if argv == ["--version"]:
    print("stub 1.2.3"); sys.exit(0)
data = sys.stdin.read()
pids = [os.getpid()]
if os.environ.get("STUB_CHILD"):  # a grandchild that would outlive a careless kill
    pids.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"]).pid)
if os.environ.get("STUB_BACKGROUND"):  # left behind holding stdout and stderr: in the group, or its own session
    pids.append(subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL,
                                 start_new_session=os.environ["STUB_BACKGROUND"] == "session").pid)
with open(os.environ["STUB_LOG"], "w") as log:
    json.dump({{"argv": argv, "stdin": data, "pids": pids, "cwd": os.getcwd(),
               "tmp": os.environ.get("TMPDIR"), "env": dict(os.environ)}}, log)
if os.environ.get("STUB_HUGE"):
    chunk = "x" * 65536
    while True:
        sys.stdout.write(chunk)
for line in os.environ.get("STUB_LINES", "").split("\n") if os.environ.get("STUB_LINES") else []:
    print(line, flush=True)
    time.sleep(float(os.environ.get("STUB_LINE_DELAY", "0")))
sys.stdout.write(os.environ.get("STUB_OUT", ""))
if os.environ.get("STUB_OUT_FILE"):  # more than one variable may hold
    sys.stdout.write(open(os.environ["STUB_OUT_FILE"]).read())
sys.stderr.write(os.environ.get("STUB_ERR", ""))
sys.stdout.flush(); sys.stderr.flush()
time.sleep(float(os.environ.get("STUB_SLEEP", "0")))
sys.exit(int(os.environ.get("STUB_CODE", "0")))
'''


def model(model_id: str = "m-1") -> ModelInfo:
    return ModelInfo(name="cli-model", provider="cli-test", model_id=model_id, display_name="m",
                     context_window=100_000, input_price=0.0, output_price=0.0, tier="fast", region="us",
                     max_output_tokens=4096)


@pytest.fixture
def stub(tmp_path: Path) -> Path:
    path = tmp_path / "stub-tool"
    path.write_text(STUB.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)
    return path


def provider(stub: Path, tool: str = "claude", **options: Any) -> CliProvider:
    env = {"STUB_LOG": str(stub.parent / "stub.log"), **options.pop("env", {})}
    built = build_provider(ProviderSpec(name="cli-test", kind="cli", enabled=True, reason="test",
                                        options={"tool": tool, "command": str(stub), "env": env, **options}))
    assert isinstance(built, CliProvider)
    return built


def log(stub: Path) -> dict[str, Any]:
    return dict(json.loads((stub.parent / "stub.log").read_text(encoding="utf-8")))


def ask(text: str = "Say hello.") -> ChatRequest:
    return ChatRequest(messages=[Message.user(text)])


async def answer(p: CliProvider, streaming: bool) -> None:
    if streaming:
        [c async for c in p.stream(ask(), model())]
    else:
        await p.complete(ask(), model())


def empty_folder_and_gone_tmp(cwd: str, tmp: str) -> bool:
    return not any(Path(cwd).iterdir()) and not Path(tmp).exists()


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state


async def all_gone(pids: list[int], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(gone(p) for p in pids):
            return True
        await asyncio.sleep(0.05)
    return False


CLAUDE_OK = {"type": "result", "subtype": "success", "is_error": False, "result": "Paris.", "stop_reason": "end_turn",
             "total_cost_usd": 0.0123, "usage": {"input_tokens": 10, "cache_read_input_tokens": 30,
                                                 "cache_creation_input_tokens": 5, "output_tokens": 4,
                                                 "output_tokens_details": {"thinking_tokens": 2}}}
GEMINI_OK = {"session_id": "s", "response": "Lyon.", "stats": {"models": {
    "gemini-2.5-pro": {"tokens": {"input": 20, "prompt": 20, "candidates": 3, "total": 25, "cached": 4,
                                  "thoughts": 2, "tool": 0}},
    "gemini-2.5-flash-lite": {"tokens": {"prompt": 5, "candidates": 1, "total": 6, "cached": 0, "thoughts": 0}}}}}


# ------------------------------------------------------------------------------------------------ answers
async def test_claude_result_text_usage_and_cost(stub: Path):
    p = provider(stub, env={"STUB_OUT": json.dumps(CLAUDE_OK)})
    response = await p.complete(ask(), model("claude-sonnet-4-5"))
    assert response.text == "Paris." and response.cost == pytest.approx(0.0123)
    assert (response.usage.input_tokens, response.usage.cached_input_tokens, response.usage.output_tokens,
            response.usage.reasoning_tokens) == (45, 30, 4, 2)
    argv = log(stub)["argv"]
    assert argv[:3] == ["-p", "--output-format", "json"] and argv[-2:] == ["--model", "claude-sonnet-4-5"]


async def test_gemini_response_and_usage_summed_over_its_models(stub: Path):
    p = provider(stub, tool="gemini", env={"STUB_OUT": "Loaded cached credentials.\n" + json.dumps(GEMINI_OK)})
    response = await p.complete(ask(), model("gemini-2.5-pro"))
    assert response.text == "Lyon."
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.cached_input_tokens,
            response.usage.reasoning_tokens) == (25, 6, 4, 2)
    recorded = log(stub)
    assert recorded["argv"] == ["--skip-trust", "-p", "", "--output-format", "json", "-m", "gemini-2.5-pro"]
    assert recorded["stdin"] == "Say hello."


async def test_generic_tool_answers_its_stdout(stub: Path):
    p = provider(stub, tool="generic", args=["--quiet"], env={"STUB_OUT": "plain answer\n"})
    response = await p.complete(ask(), model())
    assert response.text == "plain answer" and response.usage.output_tokens > 0
    assert log(stub)["argv"] == ["--quiet"]


async def test_chat_is_flattened_with_roles_and_runs_in_a_private_folder(stub: Path):
    p = provider(stub, env={"STUB_OUT": json.dumps(CLAUDE_OK)})
    request = ChatRequest(messages=[Message.system("Be brief."), Message.user("Capital of France?"),
                                    Message(role="assistant", content="Paris."), Message.user("And of Italy?")])
    await p.complete(request, model())
    recorded = log(stub)
    assert recorded["stdin"] == ("[system]\nBe brief.\n\n[user]\nCapital of France?\n\n[assistant]\nParis.\n\n"
                                 "[user]\nAnd of Italy?\n\n[assistant]\n")
    assert Path(recorded["cwd"]) == p.state_dir / "work"
    assert empty_folder_and_gone_tmp(recorded["cwd"], recorded["tmp"])  # the run's TMPDIR goes with it


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
                    min_size=1, max_size=200).map(lambda t: "-" + t))
async def test_hostile_prompts_arrive_intact(stub: Path, text: str):
    p = provider(stub, env={"STUB_OUT": json.dumps(CLAUDE_OK)})
    await p.complete(ask(text), model())
    assert log(stub)["stdin"] == text


async def test_quotes_newlines_flags_and_a_megabyte_arrive_intact(stub: Path):
    p = provider(stub, env={"STUB_OUT": json.dumps(CLAUDE_OK)})
    for text in ['--help "quoted" \'single\' $(rm -rf /) `id`\n-p\n; echo pwned', "-" * 10 + "é" * (1 << 20)]:
        await p.complete(ask(text), model())
        assert log(stub)["stdin"] == text


# ------------------------------------------------------------------------------------------------ failures
def claude_error(status: int | None, kind: str | None, message: str, **extra: Any) -> str:
    return json.dumps({"type": "result", "subtype": "success", "is_error": True, "result": message,
                       "api_error_status": status, "api_error_type": kind, "terminal_reason": "api_error",
                       "total_cost_usd": 0, "usage": {"input_tokens": 0, "output_tokens": 0}, **extra})


def gemini_error(message: str, code: int) -> str:
    return "    at Turn.run (file:///x.js:1:1)\n" + json.dumps(
        {"session_id": "s", "error": {"type": "Error", "message": message, "code": code}}, indent=2)


API_KEY_BODY = json.dumps({"error": {"code": 400, "message": f"API key not valid. Please pass a valid API key. "
                                                             f"({SECRET})", "status": "INVALID_ARGUMENT",
                                     "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                                  "reason": "API_KEY_INVALID"}]}})
QUOTA_BODY = json.dumps({"error": {"code": 429, "message": "You exceeded your current quota.",
                                   "status": "RESOURCE_EXHAUSTED", "details": [
                                       {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "20s"}]}})

CASES = [  # (tool, env for the stub, the error expected, retry_after)
    ("claude", {"STUB_OUT": claude_error(401, "authentication_error", f"Invalid API key {SECRET} · Fix external "
                                                                      "API key"), "STUB_CODE": "1"},
     errors.AuthenticationError, None),
    ("claude", {"STUB_OUT": claude_error(429, "rate_limit_error", "API Error: Request rejected (429) · try again "
                                                                  "in 12s"), "STUB_CODE": "1"},
     errors.RateLimitedError, 12.0),
    ("claude", {"STUB_OUT": claude_error(529, "overloaded_error", "API Error: 529 Overloaded."), "STUB_CODE": "1"},
     errors.ProviderUnavailableError, None),
    ("claude", {"STUB_OUT": claude_error(400, "invalid_request_error", "Prompt is too long",
                                         terminal_reason="prompt_too_long"), "STUB_CODE": "1"},
     errors.ContextTooLongError, None),
    ("claude", {"STUB_OUT": json.dumps({"type": "result", "subtype": "error_max_turns", "is_error": True,
                                        "errors": ["Reached maximum number of turns (1)"]}), "STUB_CODE": "1"},
     errors.ProviderError, None),
    ("claude", {"STUB_ERR": "Not logged in · Please run /login", "STUB_CODE": "1"}, errors.AuthenticationError, None),
    ("gemini", {"STUB_ERR": gemini_error(API_KEY_BODY, 400), "STUB_CODE": "144"}, errors.AuthenticationError, None),
    ("gemini", {"STUB_ERR": gemini_error(QUOTA_BODY, 429), "STUB_CODE": "173"}, errors.RateLimitedError, 20.0),
    ("gemini", {"STUB_ERR": gemini_error("You exceeded your current quota.\nSuggested retry after 20s.", 429),
                "STUB_CODE": "173"}, errors.RateLimitedError, 20.0),
    ("gemini", {"STUB_ERR": gemini_error("Invalid auth method selected.", 41), "STUB_CODE": "41"},
     errors.AuthenticationError, None),
    ("gemini", {"STUB_ERR": gemini_error("The model is overloaded. Please try again later.", 503),
                "STUB_CODE": "247"}, errors.ProviderUnavailableError, None),
    ("gemini", {"STUB_ERR": gemini_error(json.dumps({"error": {"code": 400, "message": "The input token count "
                "(1200000) exceeds the maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}),
                                         400), "STUB_CODE": "144"}, errors.ContextTooLongError, None),
    ("gemini", {"STUB_ERR": gemini_error("models/gemini-9 is not found", 404), "STUB_CODE": "148"},
     errors.NotFoundError, None),
    ("generic", {"STUB_ERR": "fatal: something broke\n", "STUB_CODE": "3"}, errors.ProviderError, None),
]


@pytest.mark.parametrize(("tool", "env", "expected", "retry_after"), CASES,
                         ids=[f"{c[0]}-{c[2].__name__}-{i}" for i, c in enumerate(CASES)])
async def test_each_error_shape_becomes_its_podium_error(stub: Path, tool: str, env: dict[str, str],
                                                         expected: type[errors.PodiumError], retry_after: float | None):
    p = provider(stub, tool=tool, env={**env, "ANTHROPIC_API_KEY": SECRET})
    with pytest.raises(errors.PodiumError) as caught:
        await p.complete(ask(), model())
    assert type(caught.value) is expected, caught.value.message
    assert SECRET not in caught.value.message and caught.value.provider == "cli-test"
    if retry_after is not None:
        assert isinstance(caught.value, errors.RateLimitedError) and caught.value.retry_after == retry_after


async def test_a_secret_in_the_environment_is_redacted_even_when_it_has_no_key_shape(stub: Path):
    p = provider(stub, tool="generic", env={"STUB_ERR": "auth failed for token hunter2-plain", "STUB_CODE": "1",
                                            "MY_SERVICE_TOKEN": "hunter2-plain"})
    with pytest.raises(errors.PodiumError) as caught:
        await p.complete(ask(), model())
    assert "hunter2-plain" not in caught.value.message and "[REDACTED]" in caught.value.message


@pytest.mark.parametrize("tool", ["claude", "gemini"])
async def test_garbage_output_is_a_provider_error_with_a_short_excerpt(stub: Path, tool: str):
    p = provider(stub, tool=tool, env={"STUB_OUT": "<html>" + "oops " * 500 + SECRET})
    with pytest.raises(errors.ProviderError) as caught:
        await p.complete(ask(), model())
    assert type(caught.value) is errors.ProviderError and "<html>oops" in caught.value.message
    assert len(caught.value.message) < 500 and SECRET not in caught.value.message


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_flood_of_output_is_cut_off_and_the_tool_killed(stub: Path, streaming: bool):
    p = provider(stub, max_output_bytes=1 << 20, env={"STUB_HUGE": "1", "STUB_CHILD": "1"})
    started = time.monotonic()
    with pytest.raises(errors.ProviderError, match="max_output_bytes"):
        await answer(p, streaming)
    assert time.monotonic() - started < 10
    assert await all_gone(log(stub)["pids"])


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_hang_times_out_and_no_process_is_left(stub: Path, streaming: bool):
    p = provider(stub, timeout=1.0, env={"STUB_SLEEP": "300", "STUB_CHILD": "1"})
    started = time.monotonic()
    with pytest.raises(errors.TimeoutError, match=r"options\.timeout"):
        await answer(p, streaming)
    assert time.monotonic() - started < 5
    assert await all_gone(log(stub)["pids"])


async def test_a_tool_still_retrying_a_rate_limit_at_the_deadline_is_rate_limited(stub: Path):
    said = "Attempt 1 failed: You exceeded your current quota.\nSuggested retry after 20s.. Retrying after 21423ms..."
    p = provider(stub, tool="gemini", timeout=1.0, env={"STUB_ERR": said, "STUB_SLEEP": "300"})
    with pytest.raises(errors.RateLimitedError) as caught:
        await p.complete(ask(), model())
    assert caught.value.retry_after == 20.0


@pytest.mark.parametrize("streaming", [False, True])
async def test_cancelling_the_request_kills_the_tool(stub: Path, streaming: bool):
    p = provider(stub, env={"STUB_SLEEP": "300", "STUB_CHILD": "1"})

    task = asyncio.create_task(answer(p, streaming))
    log_file = stub.parent / "stub.log"
    for _ in range(200):
        if log_file.exists() and log_file.stat().st_size:
            break
        await asyncio.sleep(0.02)
    pids = log(stub)["pids"]
    assert len(pids) == 2 and not any(gone(pid) for pid in pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await all_gone(pids)


async def test_closing_a_stream_early_kills_the_tool(stub: Path):
    lines = "\n".join(json.dumps({"type": "message", "role": "assistant", "content": f"w{i} ", "delta": True})
                      for i in range(50))
    p = provider(stub, tool="gemini", env={"STUB_LINES": lines, "STUB_LINE_DELAY": "0.05", "STUB_CHILD": "1"})
    stream = p.stream(ask(), model())
    first = await anext(stream)  # type: ignore[arg-type]
    assert first.text == "w0 "
    await stream.aclose()  # type: ignore[attr-defined]
    assert await all_gone(log(stub)["pids"])


async def test_a_missing_command_names_the_install_command(tmp_path: Path):
    for tool, package in (("gemini", "@google/gemini-cli"), ("claude", "@anthropic-ai/claude-code")):
        p = build_provider(ProviderSpec(name="x", kind="cli", enabled=True, reason="t",
                                        options={"tool": tool, "command": str(tmp_path / "no-such-tool")}))
        with pytest.raises(errors.ProviderUnavailableError, match=f"npm install -g {package}"):
            await p.complete(ask(), model())
        health = await p.health()
        assert not health.ok and "not found" in health.detail


async def test_health_runs_version(stub: Path):
    health = await provider(stub).health()
    assert health.ok and health.detail == "stub 1.2.3"
    assert await provider(stub, models=["a", "b"]).list_models() == ["a", "b"]
    assert await provider(stub).list_models() == ["sonnet", "opus", "haiku"]


async def test_images_and_tools_are_refused_before_anything_runs(stub: Path):
    p = provider(stub)
    image = Message.model_validate({"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]})
    with pytest.raises(errors.BadRequestError, match="text only"):
        await p.complete(ChatRequest(messages=[image]), model())
    assert not (stub.parent / "stub.log").exists()


@pytest.mark.parametrize(("options", "key"), [
    ({"tool": "gemini", "colour": "red"}, "options.colour"),
    ({"tool": "cursor"}, "options.tool"),
    ({"tool": "generic"}, "options.command"),
    ({"tool": "claude", "timeout": 0}, "options.timeout"),
    ({"tool": "claude", "args": "--verbose"}, "options.args"),
    ({"tool": "claude", "env": {"A": ["x"]}}, "options.env"),
    ({"tool": "claude", "env": {"A": "x\x00y"}}, "options.env"),
    ({"tool": "claude", "env": {"A=B": "x"}}, "options.env"),
    ({"tool": "claude", "max_output_bytes": 10}, "options.max_output_bytes"),
    ({"tool": "claude", "tool_retries": -1}, "options.tool_retries"),
    ({"tool": "claude", "cwd": "/no/such/folder"}, "options.cwd"),
])
def test_config_mistakes_name_their_key(options: dict[str, Any], key: str):
    with pytest.raises(errors.ConfigError) as caught:
        build_provider(ProviderSpec(name="cc", kind="cli", enabled=True, reason="t", options=options))
    assert caught.value.key_path == f"providers.cc.{key}"


# ------------------------------------------------------------------------------------------------ streaming
async def test_claude_stream_json_arrives_piece_by_piece(stub: Path):
    def delta(text: str) -> str:
        return json.dumps({"type": "stream_event", "parent_tool_use_id": None, "event": {
            "type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}})
    lines = "\n".join([json.dumps({"type": "system", "subtype": "init"}), delta("Hel"), delta("lo"),
                       "not json at all", json.dumps({**CLAUDE_OK, "result": "Hello"})])
    p = provider(stub, env={"STUB_LINES": lines})
    chunks = [c async for c in p.stream(ask(), model())]
    assert [c.text for c in chunks[:-1]] == ["Hel", "lo"]
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is not None
    assert chunks[-1].usage.output_tokens == 4
    assert "--include-partial-messages" in log(stub)["argv"]


async def test_a_tool_that_lingers_after_its_result_is_not_waited_for(stub: Path, monkeypatch: pytest.MonkeyPatch):
    from podium.providers.cli import provider as module

    monkeypatch.setattr(module, "EXIT_GRACE", 0.3)
    lines = "\n".join([json.dumps({"type": "message", "role": "assistant", "content": "done", "delta": True}),
                       json.dumps({"type": "result", "status": "success", "stats": {"input_tokens": 3,
                                                                                   "output_tokens": 1}})])
    p = provider(stub, tool="gemini", timeout=30, env={"STUB_LINES": lines, "STUB_SLEEP": "300", "STUB_CHILD": "1"})
    started = time.monotonic()
    chunks = [c async for c in p.stream(ask(), model())]
    assert [c.text for c in chunks] == ["done", ""] and chunks[-1].usage is not None
    assert time.monotonic() - started < 5
    assert await all_gone(log(stub)["pids"])


async def test_gemini_stream_error_result_is_mapped(stub: Path):
    lines = "\n".join([json.dumps({"type": "init"}),
                       json.dumps({"type": "result", "status": "error", "error": {
                           "type": "Error", "message": "You exceeded your current quota", "code": 429}})])
    p = provider(stub, tool="gemini", env={"STUB_LINES": lines, "STUB_CODE": "173"})
    with pytest.raises(errors.RateLimitedError):
        [c async for c in p.stream(ask(), model())]


async def test_a_stream_that_ends_without_a_result_is_an_error(stub: Path):
    lines = json.dumps({"type": "message", "role": "assistant", "content": "half", "delta": True})
    p = provider(stub, tool="gemini", env={"STUB_LINES": lines, "STUB_CODE": "1", "STUB_ERR": "Segmentation fault"})
    with pytest.raises(errors.ProviderError, match="Segmentation fault"):
        [c async for c in p.stream(ask(), model())]


async def test_generic_tool_streams_its_whole_answer_then_the_end(stub: Path):
    p = provider(stub, tool="generic", env={"STUB_OUT": "all at once"})
    chunks = [c async for c in p.stream(ask(), model())]
    assert [c.text for c in chunks] == ["all at once", ""] and chunks[-1].finish_reason == "stop"


# ------------------------------------------------------------------------------------------------ real tools
NPM_TOOLS = Path.home() / ".cache" / "podium" / "npm-tools"
PACKAGES = ("@google/gemini-cli@0.61.0", "@anthropic-ai/claude-code@2.1.328")


@pytest.fixture(scope="session")
def npm_tools() -> Path:
    """The pinned npm packages, installed once into Podium's cache (scripts/npm-tools does the same)."""
    def unavailable(reason: str) -> Path:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the real command-line tools are needed under CI: {reason}")
        pytest.skip(reason)

    bins = NPM_TOOLS / "node_modules" / ".bin"
    wanted = {p.rsplit("@", 1)[0]: p.rsplit("@", 1)[1] for p in PACKAGES}

    def installed() -> bool:
        for name, version in wanted.items():
            manifest = NPM_TOOLS / "node_modules" / name / "package.json"
            if not manifest.exists() or json.loads(manifest.read_text())["version"] != version:
                return False
        return (bins / "gemini").exists() and (bins / "claude").exists()

    if not installed():
        npm = shutil.which("npm")
        if npm is None:
            return unavailable("npm is not installed (apt-get install nodejs npm)")
        NPM_TOOLS.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", str(NPM_TOOLS), *PACKAGES],
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not installed():
            return unavailable(f"npm install failed: {done.stderr[-500:]}")
    return bins


def _offline_env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1", "GEMINI_CLI_NO_RELAUNCH": "true",
            "NO_BROWSER": "true", "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache")}


@pytest.fixture
def wire_server() -> Iterator[tuple[WireServer, Scenario, list[str]]]:
    """One loopback server that speaks Gemini's and Anthropic's wires (by path), plus the calls the tools make
    besides the answer (count_tokens)."""
    scenario = Scenario(text="Hello from the wire.", input_tokens=21, output_tokens=6)
    seen: list[str] = []
    gemini, anthropic = GeminiWire(), AnthropicWire()

    def handle(request: Request) -> Reply:
        seen.append(f"{request.method} {request.path}")
        if request.path.endswith("/count_tokens") or request.path.endswith(":countTokens"):
            return Reply.json({"input_tokens": 10, "totalTokens": 10})
        if request.path.startswith("/v1beta"):
            return gemini.handle(request, scenario)
        return anthropic.handle(request, scenario)

    server = WireServer(handle).start()
    yield server, scenario, seen
    server.stop()


def _podium(tmp_path: Path, providers: dict[str, Any], models: dict[str, Any]) -> Podium:
    config = {"providers": providers, "models": models,
              "ledger": {"path": str(tmp_path / "ledger.sqlite3")}}
    path = tmp_path / "podium.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return Podium(load_settings(path))


def _row(model_id: str, name: str) -> dict[str, Any]:
    return {"provider": name, "model_id": model_id, "tier": "advanced", "region": "us", "context_window": 200000,
            "input_price": 0, "output_price": 0, "capabilities": ["chat", "code", "planning"]}


async def test_real_claude_code_through_podium(npm_tools: Path, wire_server: Any, tmp_path: Path):
    server, scenario, seen = wire_server
    home = tmp_path / "claude-home"
    home.mkdir()
    podium = _podium(tmp_path, {"claude-code": {
        "kind": "cli", "base_url": server.url, "api_key": SECRET,
        "options": {"tool": "claude", "command": str(npm_tools / "claude"), "timeout": 120,
                    "env": _offline_env(home)}}},
        {"claude-sonnet-cli": _row("claude-sonnet-4-5-20250929", "claude-code")})
    try:
        response = await podium.chat("Say hello -- and mind the \"quotes\".", model="claude-sonnet-cli")
        assert response.text == "Hello from the wire."
        assert response.usage.input_tokens == 21 and response.usage.output_tokens == 6
        assert response.trace is not None and [c.provider for c in response.trace.calls] == ["claude-code"]
        assert any(s == "POST /v1/messages" for s in seen)
        sent = [r.json for r in server.requests if r.path == "/v1/messages" and r.json.get("messages")]
        assert 'Say hello -- and mind the \\"quotes\\".' in json.dumps(sent[-1]["messages"])

        chunks = [c async for c in podium.stream("Say hello.", model="claude-sonnet-cli")]
        assert "".join(c.text for c in chunks) == "Hello from the wire." and len(chunks) > 2
        assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 6

        # the tool's own retries are off: the failure comes back at once (Podium's executor reports an upstream
        # AuthenticationError as a ProviderError naming the provider's credentials)
        scenario.error = "auth"
        started = time.monotonic()
        with pytest.raises(errors.ProviderError, match=r"refused Podium's credentials.*HTTP 401") as caught:
            await podium.chat("Say hello.", model="claude-sonnet-cli")
        assert time.monotonic() - started < 30 and SECRET not in caught.value.message
    finally:
        await podium.aclose()
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        rows = db.execute("SELECT provider, status, input_tokens, output_tokens FROM calls").fetchall()
    assert ("claude-code", "ok", 21, 6) in rows and any(r[1] == "error" for r in rows)


async def test_real_gemini_cli_through_podium(npm_tools: Path, wire_server: Any, tmp_path: Path):
    server, scenario, seen = wire_server
    home = tmp_path / "gemini-home"
    (home / ".gemini").mkdir(parents=True)
    # With GOOGLE_GEMINI_BASE_URL set, 0.61.0 picks its "gateway" auth type and then refuses it as "Invalid auth
    # method selected"; an API-key login chosen in its settings uses the same base URL and works.
    (home / ".gemini" / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}}, "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False}}), encoding="utf-8")
    podium = _podium(tmp_path, {"gemini-cli": {
        "kind": "cli", "base_url": server.url, "api_key": "AIzaDummyKeyForTheLocalServer0000000",
        "options": {"tool": "gemini", "command": str(npm_tools / "gemini"), "timeout": 120,
                    "env": _offline_env(home)}}},
        {"gemini-2.5-flash-cli": _row("gemini-2.5-flash", "gemini-cli")})
    try:
        response = await podium.chat("-p --yolo \"quoted\"\nsecond line", model="gemini-2.5-flash-cli")
        assert response.text == "Hello from the wire."
        assert response.usage.input_tokens == 21 and response.usage.output_tokens == 6
        assert response.trace is not None and [c.provider for c in response.trace.calls] == ["gemini-cli"]
        assert any("gemini-2.5-flash:streamGenerateContent" in s for s in seen)
        body = [r.json for r in server.requests if "streamGenerateContent" in r.path][-1]
        assert '-p --yolo \\"quoted\\"\\nsecond line' in json.dumps(body["contents"])

        chunks = [c async for c in podium.stream("Say hello.", model="gemini-2.5-flash-cli")]
        assert "".join(c.text for c in chunks) == "Hello from the wire." and len(chunks) > 2
        assert chunks[-1].usage is not None and chunks[-1].usage.input_tokens == 21

        scenario.error = "auth"
        with pytest.raises(errors.ProviderError, match=r"refused Podium's credentials.*API key not valid") as caught:
            await podium.chat("Say hello.", model="gemini-2.5-flash-cli")
        assert "AIzaDummyKey" not in caught.value.message
    finally:
        await podium.aclose()
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        rows = db.execute("SELECT provider, status, input_tokens, output_tokens FROM calls").fetchall()
    assert ("gemini-cli", "ok", 21, 6) in rows


async def test_real_gemini_cli_rate_limit_comes_back_without_its_own_retries(npm_tools: Path, wire_server: Any,
                                                                            tmp_path: Path):
    server, scenario, _ = wire_server
    home = tmp_path / "gemini-home"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}}}), encoding="utf-8")
    scenario.error = "rate_limit"
    p = build_provider(ProviderSpec(name="gemini-cli-rl", kind="cli", enabled=True, reason="t",
                                    base_url=server.url, api_key="dummy-key-1234",
                                    options={"tool": "gemini", "command": str(npm_tools / "gemini"),
                                             "timeout": 60, "env": _offline_env(home)}))
    started = time.monotonic()
    with pytest.raises(errors.RateLimitedError) as caught:
        await p.complete(ask(), model("gemini-2.5-flash"))
    assert time.monotonic() - started < 30  # maxAttempts 1: no minutes of backoff inside the tool
    assert caught.value.retry_after == 20.0



# ------------------------------------------------------------------------------------------------ security review
@pytest.mark.parametrize("streaming", [False, True])
async def test_a_child_left_holding_stdout_does_not_hold_the_answer(stub: Path, streaming: bool):
    p = provider(stub, timeout=30, env={"STUB_OUT": json.dumps(CLAUDE_OK), "STUB_BACKGROUND": "group"})
    started = time.monotonic()
    if streaming:
        chunks = [c async for c in p.stream(ask(), model())]
        assert "".join(c.text for c in chunks) == "Paris."
    else:
        assert (await p.complete(ask(), model())).text == "Paris."
    assert time.monotonic() - started < 5
    assert await all_gone(log(stub)["pids"])  # the child it left behind was killed with its group


async def test_a_generic_tool_that_forks_and_echoes_answers_at_once(stub: Path):
    p = provider(stub, tool="generic", timeout=30, env={"STUB_OUT": "forked\n", "STUB_BACKGROUND": "group"})
    started = time.monotonic()
    assert (await p.complete(ask(), model())).text == "forked"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_failing_tool_with_a_child_left_behind_fails_at_once(stub: Path, streaming: bool):
    p = provider(stub, tool="gemini", timeout=30,
                 env={"STUB_ERR": "Please log in", "STUB_CODE": "41", "STUB_BACKGROUND": "group"})
    started = time.monotonic()
    with pytest.raises(errors.AuthenticationError):
        await answer(p, streaming)
    assert time.monotonic() - started < 5


async def test_a_child_in_its_own_session_is_not_waited_for(stub: Path):
    """Beyond a process-group kill (documented): Podium stops reading and answers; the child lives on."""
    p = provider(stub, timeout=30, env={"STUB_OUT": json.dumps(CLAUDE_OK), "STUB_BACKGROUND": "session"})
    started = time.monotonic()
    try:
        assert (await p.complete(ask(), model())).text == "Paris."
        assert time.monotonic() - started < 5
    finally:
        for pid in log(stub)["pids"][1:]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)


async def test_podiums_credentials_do_not_reach_the_tool(stub: Path, monkeypatch: pytest.MonkeyPatch):
    for name, value in (("OPENAI_API_KEY", "sk-openai-podium"), ("PODIUM_ADMIN_KEY", "admin-podium"),
                        ("AWS_SECRET_ACCESS_KEY", "aws-podium"), ("GITHUB_TOKEN", "ghp-podium"),
                        ("ANTHROPIC_API_KEY", "sk-ant-podiums-own"), ("HARMLESS_SETTING", "kept")):
        monkeypatch.setenv(name, value)
    built = build_provider(ProviderSpec(
        name="cli-test", kind="cli", enabled=True, reason="test", base_url="http://127.0.0.1:9/x",
        api_key="sk-ant-for-the-tool", options={"tool": "claude", "command": str(stub), "env": {
            "STUB_LOG": str(stub.parent / "stub.log"), "STUB_OUT": json.dumps(CLAUDE_OK),
            "MY_SERVICE_TOKEN": "listed-on-purpose"}}))
    assert isinstance(built, CliProvider)
    await built.complete(ask(), model())
    env = log(stub)["env"]
    for name in ("OPENAI_API_KEY", "PODIUM_ADMIN_KEY", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN"):
        assert name not in env, name
    assert env["ANTHROPIC_API_KEY"] == "sk-ant-for-the-tool"  # the provider's own key for the tool
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9/x"
    assert env["MY_SERVICE_TOKEN"] == "listed-on-purpose" and env["HARMLESS_SETTING"] == "kept"
    assert "PATH" in env


async def test_without_a_configured_key_the_environments_key_is_not_passed(stub: Path,
                                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-podiums-own")
    await provider(stub, env={"STUB_OUT": json.dumps(CLAUDE_OK)}).complete(ask(), model())
    assert "ANTHROPIC_API_KEY" not in log(stub)["env"]  # the tool uses its own login


@pytest.mark.parametrize("tool", ["generic", "gemini", "claude"])
async def test_terminal_escapes_never_reach_an_error(stub: Path, tool: str):
    said = "\x1b]0;TITLE-PWNED\x07\x1b[2J\x1b[31mboom\x1b[0m\x07\x01\x9b2J\r\nsecond\tline\x1bc"
    p = provider(stub, tool=tool, env={"STUB_ERR": said, "STUB_OUT": said, "STUB_CODE": "1"})
    with pytest.raises(errors.PodiumError) as caught:
        await p.complete(ask(), model())
    message = caught.value.message
    assert "boom" in message and "TITLE-PWNED" not in message
    assert not any((ord(c) < 32 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f for c in message), repr(message)


@pytest.mark.parametrize("streaming", [False, True])
async def test_deeply_nested_json_from_the_tool_is_a_provider_error(stub: Path, streaming: bool):
    deep = stub.parent / "deep.json"
    deep.write_text('{"type": "result", "result": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    p = provider(stub, env={"STUB_OUT_FILE": str(deep)})
    with pytest.raises(errors.ProviderError, match="nested too deeply"):
        await answer(p, streaming)


async def test_deeply_nested_gemini_error_message_is_read_as_text(stub: Path):
    inner = "[" * 50_000
    err = json.dumps({"session_id": "s", "error": {"type": "x", "message": "{" + '"a":' + inner, "code": 1}})
    p = provider(stub, tool="gemini", env={"STUB_ERR": err, "STUB_CODE": "1"})
    with pytest.raises(errors.PodiumError) as caught:
        await p.complete(ask(), model())
    assert len(caught.value.message) < 600
