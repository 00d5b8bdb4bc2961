"""An external command-line coding agent as a worker, its model endpoint set to the run's own gateway.

Podium does not drive the agent's conversation: it writes the round's message to a file, runs the agent's
command in the subtask's worktree with the gateway's address and a key of its own, and looks at what
changed. Every call the agent makes goes through ``RunGateway`` (routed, held to the run's budget and
preset, in the ledger under the run's team and the subtask's key), so its cost is known from the ledger.

    command   an argv list from ``work.agents.<name>.command`` (no shell): {model}, {message_file}, {worktree},
              {base_url} are replaced inside an argument, once (a value is never expanded again);
              {files} must be an argument of its own and becomes one argument per file (``./-x`` for a
              file named ``-x``, so no file name is read as an option)
    env       a minimal copy of this process's (PATH, locale, proxies with loopback exempted), HOME and
              TMPDIR in a private temp dir removed after the round, the endpoint for the agent's API
              (openai: OPENAI_API_BASE/OPENAI_BASE_URL/OPENAI_API_KEY · anthropic: ANTHROPIC_BASE_URL/
              ANTHROPIC_API_KEY · responses: OPENAI_BASE_URL/OPENAI_API_KEY), then
              ``env`` from the config ({base_url}, {api_key} and {model} filled in)
    time      min(``timeout``, what is left before the assignment's deadline); on timeout or cancellation
              the agent's whole process group is killed (TERM, then KILL), and after a normal exit too
              (whatever it left running in the background)
    result    changed: the worktree's files differ from before (``git status`` plus each listed file's
              content, and HEAD); an agent that committed anyway is noted (the runner keeps its commits
              and commits the rest); cost: what its key spent this round; error: a non-zero exit, a
              timeout, a command that could not start

``aider`` is built in (``AIDER``; a ``work.agents.aider`` entry replaces it): Aider 0.86 with auto-commits
off, no repository map, no version check, no analytics, no history files in the worktree, and Aider's
model metadata for the model written to its private HOME, so it needs no network but the gateway.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from podium.config.schema import WorkAgentConfig, WorkConfig
from podium.errors import BudgetExceededError, ConfigError
from podium.process_group import Tail, exited, pump, signal_group, stop_group
from podium.work.contracts import Assignment, WorkerResult
from podium.work.run_gateway import RunGateway

AIDER = WorkAgentConfig(
    command=["aider", "--model", "openai/{model}", "--weak-model", "openai/{model}",
             "--editor-model", "openai/{model}", "--message-file", "{message_file}", "--edit-format", "diff",
             "--yes-always", "--no-auto-commits", "--no-dirty-commits", "--no-gitignore", "--no-check-update",
             "--no-show-release-notes", "--no-show-model-warnings", "--no-check-model-accepts-settings",
             "--no-analytics", "--no-pretty", "--no-stream", "--no-fancy-input", "--no-restore-chat-history",
             "--chat-history-file", "/dev/null", "--input-history-file", "/dev/null", "--map-tokens", "0",
             "--no-suggest-shell-commands", "--no-detect-urls", "--disable-playwright", "--no-auto-lint",
             "--no-auto-test", "--encoding", "utf-8", "{files}"],
    api="openai",
    env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "AIDER_CHECK_UPDATE": "false", "AIDER_ANALYTICS": "false"},
)

PLACEHOLDERS = ("model", "message_file", "files", "worktree", "base_url")
ENV_PLACEHOLDERS = ("base_url", "api_key", "model")
OUTPUT_LIMIT = 64 * 1024  # bytes of stdout and of stderr kept (the last ones)
SUMMARY_TAIL = 1500  # characters of the agent's output in the summary
KILL_GRACE = 2.0  # seconds between TERM and KILL
_WORD = re.compile(r"\{([a-z_]+)\}")
_PASSED = ("PATH", "LANG", "LANGUAGE", "TZ", "USER", "LOGNAME", "SSL_CERT_FILE", "SSL_CERT_DIR",
           "REQUESTS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
_LOOPBACK = "127.0.0.1,localhost,::1"


def agent_config(work: WorkConfig, name: str) -> WorkAgentConfig | None:
    """The agent named ``name``: ``work.agents`` first, then the built-in ones (``aider``); None if neither."""
    found = work.agents.get(name)
    if found is not None:
        return found
    return AIDER if name == "aider" else None


def check_template(name: str, command: Sequence[str], env: Mapping[str, str]) -> None:
    """A ``ConfigError`` naming the argument when a template has a misspelt placeholder or a {files} that
    is not an argument of its own (it could not become one argument per file)."""
    if not command or not command[0].strip():
        raise ConfigError("the command is empty", key_path=f"work.agents.{name}.command")
    for index, arg in enumerate(command):
        for word in _WORD.findall(arg):
            if word not in PLACEHOLDERS:
                raise ConfigError(f"unknown placeholder {{{word}}} (one of: {', '.join(PLACEHOLDERS)})",
                                  key_path=f"work.agents.{name}.command[{index}]")
        if "{files}" in arg and arg != "{files}":
            raise ConfigError("{files} must be an argument of its own (it becomes one argument per file)",
                              key_path=f"work.agents.{name}.command[{index}]")
    for variable, value in env.items():
        for word in _WORD.findall(value):
            if word not in ENV_PLACEHOLDERS:
                raise ConfigError(f"unknown placeholder {{{word}}} (one of: {', '.join(ENV_PLACEHOLDERS)})",
                                  key_path=f"work.agents.{name}.env.{variable}")


def fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{name}`` of ``values`` replaced, in one pass: a value is never expanded again."""
    return _WORD.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def safe_file_arg(path: str) -> str:
    """A file as a command-line argument that no program reads as an option."""
    return "./" + path if path.startswith("-") else path


def expand_command(command: Sequence[str], values: Mapping[str, str], files: Sequence[str]) -> list[str]:
    """The argv for one run: placeholders filled, {files} one argument per file."""
    argv: list[str] = []
    for arg in command:
        if arg == "{files}":
            argv.extend(safe_file_arg(f) for f in files)
        else:
            argv.append(fill(arg, values))
    return argv


def message_for(assignment: Assignment) -> str:
    """What the agent is asked to do this round, as Markdown."""
    package, subtask = assignment.package, assignment.subtask
    parts = [f"# Work package: {package.title}", "", package.text.strip(), "",
             f"## Your subtask: {subtask.title} ({subtask.id})", "", subtask.instructions.strip()]
    if subtask.files:
        parts += ["", "## Files", *(f"- {f}" for f in subtask.files)]
    criteria = [*subtask.acceptance, *package.acceptance]
    if criteria:
        parts += ["", "## Acceptance criteria", *(f"- {c}" for c in criteria)]
    if assignment.feedback.strip():
        parts += ["", f"## Why your previous attempt was sent back (this is round {assignment.round})", "",
                  assignment.feedback.strip()]
    parts += ["", "## Rules", "Change only files in this repository (your current directory). Do not commit, "
              "push or switch branches: your changes are committed for you."]
    return "\n".join(parts) + "\n"


# --- the worktree, before and after ---------------------------------------------------------------------
def _git_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | {"GIT_OPTIONAL_LOCKS": "0"}


async def _git(worktree: Path, *args: str) -> bytes:
    proc = await asyncio.create_subprocess_exec("git", *args, cwd=worktree, env=_git_env(),
                                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                stderr=subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return out if proc.returncode == 0 else b""


@dataclass(frozen=True)
class Snapshot:
    head: str
    files: dict[str, str]  # path (as git lists it) → its status and a hash of its content


async def snapshot(worktree: Path) -> Snapshot:
    """The worktree's state: HEAD and every changed or untracked file with a hash of its content (a file
    changed again while already changed shows the same ``git status`` line, but not the same hash)."""
    head = (await _git(worktree, "rev-parse", "--verify", "-q", "HEAD")).decode().strip()
    raw = await _git(worktree, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    entries = raw.split(b"\0")
    files: dict[str, str] = {}
    index = 0
    while index < len(entries):
        entry = entries[index]
        index += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2].decode(errors="replace"), entry[3:].decode(errors="surrogateescape")
        if status[0] in "RC":  # a rename or copy: the next entry is where it came from
            index += 1
        files[path] = status + ":" + await asyncio.to_thread(_digest, worktree / path)
    return Snapshot(head, files)


def _digest(path: Path) -> str:
    try:
        if path.is_symlink():
            return "link:" + os.readlink(path)
        if path.is_dir():
            return "dir"
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return "missing"


# --- the process ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ran:
    exit_code: int | None  # None: killed at the timeout
    seconds: float
    stdout: str
    stderr: str
    timed_out: bool = False


async def run_process(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], seconds: float) -> Ran:
    """Run ``argv`` in its own process group, output bounded; the group is killed at the timeout, on
    cancellation, and once the agent has exited (what it left behind). OSError if it cannot start."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                start_new_session=True)
    out, err = Tail(OUTPUT_LIMIT), Tail(OUTPUT_LIMIT)
    readers = [asyncio.create_task(pump(proc.stdout, out)), asyncio.create_task(pump(proc.stderr, err))]
    timed_out = False
    try:
        if not await exited(proc, seconds):
            timed_out = True
            await stop_group(proc, KILL_GRACE)
    except BaseException:  # cancelled: nothing of the agent may outlive the round
        signal_group(proc.pid, signal.SIGKILL)
        for reader in readers:
            reader.cancel()
        raise
    finally:
        signal_group(proc.pid, signal.SIGKILL)  # children it left running in its group
    # a child that left the group may still hold the pipes open: the output is read for a moment, no longer
    _, pending = await asyncio.wait(readers, timeout=1.0)
    for reader in pending:
        reader.cancel()
    return Ran(None if timed_out else proc.returncode, time.monotonic() - started, out.text(), err.text(), timed_out)


# --- the worker ---------------------------------------------------------------------------------------
def base_env() -> dict[str, str]:
    """The part of this process's environment an agent gets: what finds programs, the locale, proxies."""
    env = {k: v for k, v in os.environ.items() if k in _PASSED or k.startswith("LC_")}
    exempt = ",".join(x for x in (os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or "", _LOOPBACK) if x)
    env["NO_PROXY"] = env["no_proxy"] = exempt  # the gateway is on loopback: never through a proxy
    env.setdefault("PATH", os.defpath)
    return env


class AgentWorker:
    """The ``Worker`` that runs an external coding agent from a command template (see the module's doc)."""

    def __init__(self, name: str, config: WorkAgentConfig, gateway: RunGateway, models: list[str]) -> None:
        if not models:
            raise ConfigError(f"agent '{name}' needs at least one model for the worker role", key_path="work.presets")
        check_template(name, config.command, config.env)
        self.name, self.config, self.gateway, self.models = name, config, gateway, list(models)

    @property
    def model(self) -> str:
        return self.models[0]

    def _provider(self) -> str | None:
        found = self.gateway.podium.settings.catalogue.find(self.model)
        return found.provider if found is not None else None

    def environment(self, key: str, home: Path) -> dict[str, str]:
        gw = self.gateway
        api = self.config.api
        base_url = gw.root_url if api == "anthropic" else gw.base_url
        env = base_env() | {"HOME": str(home), "TMPDIR": str(home / "tmp"), "TERM": "dumb", "NO_COLOR": "1",
                            "PYTHONUNBUFFERED": "1"}
        if api == "anthropic":
            env |= {"ANTHROPIC_BASE_URL": gw.root_url, "ANTHROPIC_API_KEY": key}
        else:
            env |= {"OPENAI_BASE_URL": gw.base_url, "OPENAI_API_KEY": key}
            if api == "openai":
                env["OPENAI_API_BASE"] = gw.base_url
        values = {"base_url": base_url, "api_key": key, "model": self.model}
        env |= {name: fill(value, values) for name, value in self.config.env.items()}
        return env

    def argv(self, message_file: Path, worktree: Path, files: Sequence[str]) -> list[str]:
        api = self.config.api
        base_url = self.gateway.root_url if api == "anthropic" else self.gateway.base_url
        values = {"model": self.model, "message_file": str(message_file), "worktree": str(worktree),
                  "base_url": base_url}
        return expand_command(self.config.command, values, files)

    def _prime_home(self, argv0: str, home: Path) -> None:
        """The agent's private HOME gets a git identity (``~/.gitconfig``): an agent that finds none writes
        one into the repository's shared ``.git/config`` — Aider does, at start — which is the user's file,
        and two agents at once then fail on its lock. Aider also looks up its model's context window and
        prices on the network unless it knows the model: Podium's catalogue tells it, in
        ``~/.aider.model.metadata.json``."""
        (home / ".gitconfig").write_text("[user]\n\tname = Podium agent\n\temail = podium-agent@localhost\n",
                                         "utf-8")
        if not Path(argv0).name.startswith("aider"):
            return
        info = self.gateway.podium.settings.catalogue.find(self.model)
        if info is None:
            return
        meta = {"max_input_tokens": info.context_window, "max_tokens": info.max_output_tokens or 4096,
                "max_output_tokens": info.max_output_tokens or 4096, "litellm_provider": "openai", "mode": "chat",
                "input_cost_per_token": info.input_price / 1e6, "output_cost_per_token": info.output_price / 1e6}
        (home / ".aider.model.metadata.json").write_text(json.dumps({f"openai/{self.model}": meta}), "utf-8")

    def _files(self, assignment: Assignment) -> list[str]:
        """The subtask's files, each checked to stay inside the worktree."""
        root = assignment.worktree.resolve()
        files = []
        for name in assignment.subtask.files:
            target = (root / name).resolve()
            if target != root and root not in target.parents:
                raise ConfigError(f"subtask '{assignment.subtask.id}': file '{name}' is outside the worktree")
            files.append(name)
        return files

    async def work(self, assignment: Assignment) -> WorkerResult:
        model, provider = self.model, self._provider()
        timeout = self.config.timeout
        if assignment.deadline is not None:
            timeout = min(timeout, assignment.deadline - time.monotonic())
        if timeout <= 0:
            return WorkerResult(False, f"{self.name} was not started: the run's deadline has passed", model,
                                provider, error="no time left before the run's deadline")
        files = self._files(assignment)
        key = await self.gateway.key_for(assignment.subtask.id, self.models)
        spent_before = await self.gateway.spent(key)
        scratch = Path(tempfile.mkdtemp(prefix=f"podium-agent-{self.name[:20]}-"))
        try:
            home = scratch / "home"
            (home / "tmp").mkdir(parents=True)
            message_file = scratch / "message.md"
            message_file.write_text(message_for(assignment), "utf-8")
            argv = self.argv(message_file, assignment.worktree, files)
            self._prime_home(argv[0], home)
            before = await snapshot(assignment.worktree)
            try:
                ran = await self._run_watched(argv, assignment.worktree, self.environment(key, home), timeout)
            except OSError as exc:
                cost = await self._cost(key, spent_before)
                why = "was not found (is it installed and on PATH?)" if isinstance(exc, FileNotFoundError) \
                    else f"could not be run ({exc.strerror or type(exc).__name__})"
                return WorkerResult(False, f"{self.name} could not start", model, provider, cost,
                                    error=f"{self.name}: '{argv[0]}' {why}; set work.agents.{self.name}.command")
            after = await snapshot(assignment.worktree)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        cost = await self._cost(key, spent_before)
        return self._result(ran, before, after, key, model, provider, cost, timeout)

    async def _run_watched(self, argv: list[str], cwd: Path, env: dict[str, str], seconds: float) -> Ran:
        """The agent's process, stopped as soon as the run's gateway refuses a call of the run for budget (its
        client would take the 429 for a rate limit and retry): BudgetExceededError then, as for the run's own
        calls."""
        if self.gateway.budget_refused.is_set():
            raise BudgetExceededError("the run's budget is spent (the run's gateway refused a call for budget)")
        run = asyncio.create_task(run_process(argv, cwd=cwd, env=env, seconds=seconds))
        refused = asyncio.create_task(self.gateway.budget_refused.wait())
        try:
            await asyncio.wait({run, refused}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            refused.cancel()
            if not run.done():
                run.cancel()  # run_process kills the agent's process group
                await asyncio.gather(run, return_exceptions=True)
        if run.cancelled():
            raise BudgetExceededError(f"the run's budget is spent: the run's gateway refused {self.name}'s call "
                                      "for budget, and the agent was stopped")
        return run.result()

    async def _cost(self, key: str, before: float) -> float:
        return max(0.0, await self.gateway.spent(key) - before)

    def _result(self, ran: Ran, before: Snapshot, after: Snapshot, key: str, model: str, provider: str | None,
                cost: float, timeout: float) -> WorkerResult:
        changed_files = sorted(p for p in set(before.files) | set(after.files)
                               if before.files.get(p) != after.files.get(p))
        committed = bool(after.head) and after.head != before.head
        changed = bool(changed_files) or committed
        how = f"timed out after {timeout:.0f} s (killed)" if ran.timed_out else \
            f"exited with status {ran.exit_code} after {ran.seconds:.1f} s"
        lines = [f"{self.name} ({model}) {how}; cost ${cost:.6f}"]
        if changed_files:
            shown = ", ".join(changed_files[:20]) + (f" and {len(changed_files) - 20} more"
                                                     if len(changed_files) > 20 else "")
            lines.append(f"changed: {shown}")
        elif not committed:
            lines.append("changed no file")
        if committed:
            lines.append(f"note: {self.name} committed on its own (HEAD {before.head[:10] or 'none'} → "
                         f"{after.head[:10]}); its commits are kept and the rest is committed by the run")
        output = (ran.stdout + ("\n" + ran.stderr if ran.stderr.strip() else "")).replace(key, "pk-…").strip()
        if output:
            lines += ["output (last part):", output[-SUMMARY_TAIL:]]
        summary = "\n".join(lines)
        error = None
        if ran.timed_out:
            error = f"{self.name} did not finish within {timeout:.0f} s and was stopped (work.agents timeout, " \
                    "or the run's deadline)"
        elif ran.exit_code != 0:
            last = [line for line in output.splitlines() if line.strip()][-3:]
            error = f"{self.name} exited with status {ran.exit_code}" + (": " + " | ".join(last)[-400:] if last
                                                                           else "")
        return WorkerResult(changed, summary, model, provider, cost, error)
