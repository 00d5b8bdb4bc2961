"""The ``cli`` provider: one run of a vendor's command-line tool per request, as a ``Provider``.

In podium.yaml::

    providers:
      gemini-cli: {kind: cli, options: {tool: gemini}}                 # the Gemini CLI, logged in by hand
      claude-code: {kind: cli, options: {tool: claude, timeout: 600}}  # Claude Code
    models:
      gemini-2.5-pro-cli: {provider: gemini-cli, model_id: gemini-2.5-pro, tier: advanced, region: us,
                           context_window: 1000000, input_price: 0, output_price: 0}

The chat is flattened to one text (system first, then the turns, each under its role) and written to the
tool's standard input: never a shell, never argv, so a prompt that starts with ``-`` or holds quotes,
newlines or megabytes arrives as it was. The config's ``base_url`` and key become the tool's own variables
(``GOOGLE_GEMINI_BASE_URL``/``GEMINI_API_KEY``, ``ANTHROPIC_BASE_URL``/``ANTHROPIC_API_KEY``). Every
value of a variable whose name says key, token or secret is redacted from every error. The tool's own
retries are off by default (``tool_retries: 0``): Podium's resilience layer retries and fails over.

``inherit_env: true`` (the default) passes Podium's environment on *without the variables that look like
credentials* (``podium.secrets_env``: ``OPENAI_API_KEY``, ``PODIUM_ADMIN_KEY``, ``*_TOKEN``, ``*SECRET*``
…): a vendor's tool gets no key of another vendor's, nor Podium's own. It gets the key and base URL the
provider's config sets for it, and whatever the ``env`` option lists by name. (So a tool that should
use a key from the environment rather than its own login needs ``api_key_env`` on the provider, or the
variable under ``env``.)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from podium import errors
from podium.catalogue import ModelInfo
from podium.config import ProviderSpec
from podium.errors import ConfigError, PodiumError, redact
from podium.providers.base import Health
from podium.providers.cli.process import Child, OutputTooLarge
from podium.providers.cli.tools import (
    NESTED_TOO_DEEPLY,
    TOOLS,
    Answer,
    Failure,
    Tool,
    ToolFailed,
    excerpt,
    kind_of,
    retry_after_in,
    stderr_message,
    to_error,
)
from podium.secrets_env import without_secrets
from podium.types import ChatRequest, ChatResponse, StreamChunk

OPTIONS = ("tool", "command", "args", "timeout", "env", "inherit_env", "cwd", "max_output_bytes", "tool_retries",
           "models")
DEFAULT_TIMEOUT = 300.0
DEFAULT_MAX_OUTPUT = 8 * 1024 * 1024
EXIT_GRACE = 5.0  # seconds a streaming tool may take to exit after its result event
GEMINI_STDIN_LIMIT = 8 * 1024 * 1024  # the Gemini CLI cuts its stdin there (readStdin's MAX_STDIN_SIZE)
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.I)


def flatten(request: ChatRequest) -> str:
    """The chat as one text. A lone user message is sent as it is; otherwise each message under its role."""
    for message in request.messages:
        if isinstance(message.content, list) and any(part.type != "text" for part in message.content):
            raise errors.BadRequestError("a command-line tool provider takes text only; this request holds an "
                                         "image or another non-text part: send it to an API provider instead")
    if request.tools:
        raise errors.BadRequestError("a command-line tool provider cannot return tool calls: send requests with "
                                     "tools to an API provider")
    if len(request.messages) == 1 and request.messages[0].role == "user":
        return request.messages[0].text
    systems = [m.text for m in request.messages if m.is_system]
    turns = [m for m in request.messages if not m.is_system]
    parts = [f"[system]\n{text}" for text in systems]
    for message in turns:
        label = "tool result" if message.role == "tool" else message.role
        parts.append(f"[{label}]\n{message.text}")
    parts.append("[assistant]\n")
    return "\n\n".join(parts)


def _cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("podium"))


class CliProvider:
    def __init__(self, name: str, tool: Tool, command: str, *, args: tuple[str, ...] = (),
                 timeout: float = DEFAULT_TIMEOUT, env: Mapping[str, str] | None = None, inherit_env: bool = True,
                 cwd: Path | None = None, max_output_bytes: int = DEFAULT_MAX_OUTPUT, tool_retries: int = 0,
                 models: tuple[str, ...] | None = None, state_dir: Path | None = None) -> None:
        self.name = name
        self.tool = tool
        self.command = command
        self.args = args
        self.timeout = timeout
        self.extra_env = dict(env or {})
        self.inherit_env = inherit_env
        self.cwd = cwd
        self.max_output_bytes = max_output_bytes
        self.tool_retries = tool_retries
        self.models = models if models is not None else tool.default_models
        self.state_dir = state_dir or _cache_dir() / "cli" / re.sub(r"[^\w.-]", "_", name)

    @classmethod
    def from_spec(cls, spec: ProviderSpec) -> CliProvider:
        where = f"providers.{spec.name}.options"
        options = spec.options
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown key (expected one of: {', '.join(OPTIONS)})", key_path=f"{where}.{unknown[0]}")
        tool_name = options.get("tool")
        if tool_name not in TOOLS:
            raise ConfigError(f"must name the tool: one of {', '.join(TOOLS)} (got {tool_name!r})",
                              key_path=f"{where}.tool")
        tool = TOOLS[tool_name]()
        command = options.get("command", tool.name if tool_name != "generic" else None)
        if not isinstance(command, str) or not command.strip():
            raise ConfigError("must be the tool's executable: a name on PATH or a path", key_path=f"{where}.command")
        args = options.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ConfigError("must be a list of strings (extra arguments for the tool)", key_path=f"{where}.args")
        timeout = options.get("timeout", spec.total_timeout or DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError(f"must be a number of seconds above 0 (got {timeout!r})", key_path=f"{where}.timeout")
        env = options.get("env", {})
        if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str | int | float)
                                                   and not isinstance(v, bool) for k, v in env.items()):
            raise ConfigError("must map variable names to strings", key_path=f"{where}.env")
        if any("\x00" in k or "=" in k or not k or "\x00" in str(v) for k, v in env.items()):
            raise ConfigError("a variable's name may not be empty or hold '=' or a NUL character, nor its value a "
                              "NUL character", key_path=f"{where}.env")
        inherit = options.get("inherit_env", True)
        if not isinstance(inherit, bool):
            raise ConfigError("must be true or false", key_path=f"{where}.inherit_env")
        cwd = options.get("cwd")
        if cwd is not None and (not isinstance(cwd, str) or not Path(cwd).expanduser().is_dir()):
            raise ConfigError(f"must be an existing folder (got {cwd!r})", key_path=f"{where}.cwd")
        limits: dict[str, int] = {}
        for key, default, least in (("max_output_bytes", DEFAULT_MAX_OUTPUT, 1024), ("tool_retries", 0, 0)):
            value = options.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"must be a whole number, {least} or more (got {value!r})", key_path=f"{where}.{key}")
            limits[key] = value
        models = options.get("models")
        if models is not None and (not isinstance(models, list) or not all(isinstance(m, str) for m in models)):
            raise ConfigError("must be a list of model ids", key_path=f"{where}.models")
        fixed = {k: str(v) for k, v in env.items()}
        if spec.base_url and tool.base_url_env:
            fixed.setdefault(tool.base_url_env, spec.base_url)
        if spec.api_key and tool.key_env:
            fixed.setdefault(tool.key_env, spec.api_key)
        return cls(spec.name, tool, command, args=tuple(args), timeout=float(timeout), env=fixed,
                   inherit_env=inherit, cwd=Path(cwd).expanduser() if cwd else None,
                   max_output_bytes=limits["max_output_bytes"], tool_retries=limits["tool_retries"],
                   models=tuple(models) if models is not None else None)

    # ------------------------------------------------------------------------------------------ running
    def _environment(self, tmp: Path) -> tuple[dict[str, str], list[str]]:
        """The tool's environment, and the values of credentials left out of it (still redacted from errors,
        should the tool find them some other way)."""
        if self.inherit_env:
            env, dropped = without_secrets(os.environ)
        else:
            env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
            dropped = []
        env.update(self.tool.env(self.tool_retries, self.state_dir))
        env["TMPDIR"] = str(tmp)  # the tool's crash reports and scratch files go with the run
        env.update(self.extra_env)  # the config's env, base URL and key: passed whatever their names
        return env, dropped

    def _secrets(self, env: Mapping[str, str], dropped: list[str]) -> list[str]:
        named = [value for name, value in env.items() if _SECRET_NAME.search(name)]
        return [value for value in (*named, *dropped) if len(value) >= 4]

    def _executable(self, env: Mapping[str, str]) -> str:
        found = shutil.which(self.command, path=env.get("PATH"))
        if found is None:
            how = f" Install it with:  {self.tool.install}" if self.tool.install else ""
            raise errors.ProviderUnavailableError(
                f"the {self.tool.name} command '{self.command}' was not found (set options.command to its path, "
                f"or put it on PATH).{how}", provider=self.name)
        return found

    def _prepare(self, request: ChatRequest, model: ModelInfo, stream: bool) -> tuple[list[str], bytes]:
        prompt = flatten(request)
        data = prompt.encode("utf-8")
        if self.tool.name == "gemini" and len(data) > GEMINI_STDIN_LIMIT:
            raise errors.ContextTooLongError(f"the prompt is {len(data)} bytes; the Gemini CLI reads at most "
                                             f"{GEMINI_STDIN_LIMIT} bytes of input", provider=self.name,
                                             model=model.name)
        model_id = model.model_id if model.model_id and model.model_id != "default" else None
        return [*self.tool.argv(model_id, stream), *self.args], data

    async def _start(self, argv: list[str], data: bytes, tmp: Path, model: str | None) -> tuple[Child, list[str]]:
        env, dropped = self._environment(tmp)
        executable = self._executable(env)
        cwd = self.cwd or self.state_dir / "work"
        cwd.mkdir(parents=True, exist_ok=True)
        try:
            child = await Child.start([executable, *argv], data, env, cwd, self.max_output_bytes)
        except OSError as exc:
            raise errors.ProviderUnavailableError(f"could not start '{self.command}': {exc.strerror or exc}",
                                                  provider=self.name, model=model) from exc
        return child, self._secrets(env, dropped)

    def _run_dir(self) -> tempfile.TemporaryDirectory[str]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "tmp").mkdir(exist_ok=True)
        return tempfile.TemporaryDirectory(dir=self.state_dir / "tmp", ignore_cleanup_errors=True)

    def _timed_out(self, child: Child, model: ModelInfo, secrets: list[str]) -> PodiumError:
        """A run past its deadline; a tool that spent it retrying a rate limit says so on stderr."""
        said = stderr_message(child.stderr)
        if kind_of(said) == "rate_limited":
            return to_error(Failure(f"still rate-limited after {self.timeout:g}s of the tool's own retries: {said}",
                                    kind="rate_limited", retry_after=retry_after_in(said)),
                            tool=self.tool.name, provider=self.name, model=model.name, secrets=secrets)
        return errors.TimeoutError(f"{self.tool.name} gave no answer within {self.timeout:g}s (options.timeout)",
                                   provider=self.name, model=model.name)

    def _too_large(self, model: ModelInfo) -> PodiumError:
        return errors.ProviderError(f"{self.tool.name} printed more than {self.max_output_bytes} bytes "
                                    "(options.max_output_bytes); it was stopped", provider=self.name,
                                    model=model.name)

    def _response(self, answer: Answer, model: ModelInfo) -> ChatResponse:
        return ChatResponse(text=answer.text, model=model.name, provider=self.name, usage=answer.usage,
                            cost=answer.cost or 0.0, finish_reason=answer.finish_reason)

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        argv, data = self._prepare(request, model, stream=False)
        deadline = asyncio.get_running_loop().time() + self.timeout
        with self._run_dir() as tmp:
            child, secrets = await self._start(argv, data, Path(tmp), model.name)
            async with child:
                try:
                    async with asyncio.timeout_at(deadline):
                        stdout = await child.read_all()
                        code = await child.wait()
                except TimeoutError:
                    raise self._timed_out(child, model, secrets) from None
                except OutputTooLarge:
                    raise self._too_large(model) from None
            try:
                answer = self.tool.parse(stdout.decode("utf-8", "replace"), child.stderr, code,
                                         data.decode("utf-8"))
            except ToolFailed as failed:
                raise to_error(failed.failure, tool=self.tool.name, provider=self.name, model=model.name,
                               secrets=secrets) from None
            return self._response(answer, model)

    async def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        if not self.tool.streams:  # the whole answer, then the end with its usage
            response = await self.complete(request, model)
            if response.text:
                yield StreamChunk(text=response.text, model=model.name, provider=self.name)
            yield StreamChunk(finish_reason=response.finish_reason, usage=response.usage, model=model.name,
                              provider=self.name)
            return
        argv, data = self._prepare(request, model, stream=True)
        deadline = asyncio.get_running_loop().time() + self.timeout
        decoder = self.tool.decoder()
        with self._run_dir() as tmp:
            child, secrets = await self._start(argv, data, Path(tmp), model.name)
            async with child:
                lines = child.lines()
                while True:
                    try:
                        async with asyncio.timeout_at(deadline):
                            line = await anext(lines, None)
                    except TimeoutError:
                        raise self._timed_out(child, model, secrets) from None
                    except OutputTooLarge:
                        raise self._too_large(model) from None
                    if line is None:
                        break
                    try:
                        event = _event(line)
                    except RecursionError:
                        raise errors.ProviderError(f"{self.tool.name} failed: {NESTED_TOO_DEEPLY}",
                                                   provider=self.name, model=model.name) from None
                    if event is None:
                        continue
                    text = decoder.feed(event)
                    if text:
                        yield StreamChunk(text=text, model=model.name, provider=self.name)
                    if decoder.done:
                        break
                # once the result is in, a tool slow to exit gets a few seconds, then the group is killed
                grace = deadline if not decoder.done else min(deadline, asyncio.get_running_loop().time() + EXIT_GRACE)
                try:
                    async with asyncio.timeout_at(grace):
                        code = await child.wait()
                except TimeoutError:
                    if not decoder.done:
                        raise self._timed_out(child, model, secrets) from None
                    code = 0
            failure = decoder.failure
            if failure is None and decoder.answer is None:
                try:  # no result event: what the tool said on exit (its JSON error on stderr, or why it died)
                    self.tool.parse("", child.stderr, code if code else 1, "")
                    failure = Failure(f"stream ended without a result event (exit status {code})")
                except ToolFailed as failed:
                    failure = failed.failure
            if failure is not None:
                raise to_error(failure, tool=self.tool.name, provider=self.name, model=model.name, secrets=secrets)
            assert decoder.answer is not None
            yield StreamChunk(finish_reason=decoder.answer.finish_reason, usage=decoder.answer.usage,
                              model=model.name, provider=self.name)

    async def health(self) -> Health:
        started = time.perf_counter()
        try:
            with self._run_dir() as tmp:
                child, secrets = await self._start([*self.tool.version_args], b"", Path(tmp), None)
                async with child:
                    async with asyncio.timeout(30):
                        out = await child.read_all()
                        code = await child.wait()
        except PodiumError as exc:
            return Health(False, exc.message)
        except (TimeoutError, OutputTooLarge):
            return Health(False, f"'{self.command} --version' did not answer within 30s")
        latency = (time.perf_counter() - started) * 1000
        said = excerpt(redact(out.decode("utf-8", "replace").strip() or child.stderr, *secrets), 120)
        if code != 0:
            return Health(False, f"'{self.command} --version' exited with status {code}: {said}", latency)
        return Health(True, said or "ok", latency)

    async def list_models(self) -> list[str]:
        return list(self.models)

    async def aclose(self) -> None:
        return None


def _event(line: bytes) -> dict[str, Any] | None:
    """One JSON event of a stream; other lines (a tool's log output) are skipped. An event nested too deeply
    for the parser raises RecursionError (the caller's ProviderError)."""
    text = line.decode("utf-8", "replace").strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None

