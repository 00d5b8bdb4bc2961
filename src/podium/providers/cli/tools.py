"""What differs per command-line tool: its flags, the JSON it prints, and how it says it failed.

Each tool is a ``Tool``: the argv for one request (the prompt always goes on standard input, never in
argv, so it can start with ``-`` and have any length), the environment it reads its endpoint and key
from, a parser of its whole answer and a ``Decoder`` of its streamed events. A failure is first read
into a neutral ``Failure`` (an HTTP-like status, a kind, the tool's message, a wait); ``to_error`` maps
that onto ``podium.errors`` the same way for every tool.

What a tool prints is not trusted: the text taken from it into an error has its terminal escape sequences
and control characters removed (``clean``: a tool's ``ESC ] 0;title BEL`` or ``ESC [2J`` must not reach
the user's terminal or a log), and JSON nested deeper than Python's parser recurses is "the tool's answer
is nested too deeply" (a ``ProviderError``), never a ``RecursionError``.

The shapes were read from the tools' own source and checked against the pinned npm packages
(``@google/gemini-cli@0.61.0``, ``@anthropic-ai/claude-code@2.1.328``):

- Gemini CLI ``--output-format json`` prints ``{"session_id", "response", "stats": {"models": {<model>:
  {"tokens": {"prompt", "candidates", "cached", "thoughts", …}}}}}`` on stdout; a failure prints
  ``{"session_id", "error": {"type", "message", "code"}}`` on *stderr* and exits with ``code`` (an HTTP
  status or one of its own exit codes: 41 authentication, 42 input, 52 config, 130 cancelled) modulo 256.
  ``message`` is often the API's own JSON error body as a string. ``stream-json`` prints one event per
  line: ``init``, ``message`` (``role: assistant, delta: true`` carries text), ``result`` (``status``,
  ``stats.input_tokens/output_tokens/cached``, ``error``).
- Claude Code ``--output-format json`` prints one ``{"type": "result", "subtype", "is_error", "result",
  "total_cost_usd", "usage": {"input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
  "output_tokens"}, "api_error_status", "api_error_type", "terminal_reason", "stop_reason"}`` on stdout,
  also on failure (exit 1, ``is_error: true``, the message in ``result``). ``stream-json`` (with
  ``--verbose --include-partial-messages``) prints ``stream_event`` lines wrapping the Messages API's
  events, then the same ``result`` object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from podium import errors
from podium.catalogue import approximate_tokens
from podium.errors import PodiumError, redact
from podium.types import FinishReason, Usage

EXCERPT = 300  # characters of a tool's own output quoted in an error
NESTED_TOO_DEEPLY = "the tool's answer is nested too deeply to read"
_ESCAPES = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: ESC ] … BEL or ST (a window title, a hyperlink)
    r"|\x1b[P^_X][^\x1b]*(?:\x1b\\)?"  # DCS, PM, APC, SOS strings
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: ESC [ … final byte (colours, cursor, clear screen)
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI as one C1 character
    r"|\x1b[ -/]*[0-~]?"  # any other escape (ESC c resets the terminal)
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but \t and \n


@dataclass(frozen=True)
class Answer:
    text: str
    usage: Usage
    cost: float | None = None  # what the tool itself reported (Claude Code's total_cost_usd)
    finish_reason: FinishReason = "stop"
    usage_reported: bool = True


@dataclass(frozen=True)
class Failure:
    """A failure as the tool reported it, before it becomes a ``PodiumError``."""

    message: str
    status: int | None = None  # an HTTP status, where the tool passes the API's on
    kind: str | None = None  # auth, permission, not_found, rate_limited, unavailable, timeout, context, bad_request
    retry_after: float | None = None


class ToolFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


# ------------------------------------------------------------------------------------------------ mapping
_KIND_BY_STATUS = {400: "bad_request", 401: "auth", 403: "permission", 404: "not_found", 408: "timeout",
                   413: "context", 429: "rate_limited", 500: "provider_error", 502: "provider_error",
                   503: "unavailable", 504: "timeout", 529: "unavailable"}
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("context", re.compile(r"prompt is too long|context (?:length|window)|too many tokens|exceeds the maximum "
                           r"number of tokens|input token count|prompt_too_long", re.I)),
    ("auth", re.compile(r"api[ _]?key not valid|invalid api key|api_key_invalid|authentication|not logged in|"
                        r"please run /login|please log ?in|unauthori[sz]ed|invalid (?:auth|credentials)|"
                        r"auth method|must specify the GEMINI_API_KEY|invalid_grant", re.I)),
    ("rate_limited", re.compile(r"quota|rate.?limit|too many requests|resource.?exhausted|usage limit", re.I)),
    ("unavailable", re.compile(r"overloaded|service unavailable|temporarily unavailable|try again later", re.I)),
    ("permission", re.compile(r"permission denied|permission_denied|not allowed to|forbidden", re.I)),
)
_RETRY = re.compile(r"(?:retry (?:after|in)|try again in|retryDelay\"?:?\s*\"?)\s*(\d+(?:\.\d+)?)\s*(ms|s)\b", re.I)


def kind_of(message: str) -> str | None:
    """The kind a tool's message names, for failures that come without a status."""
    for kind, pattern in _PATTERNS:
        if pattern.search(message):
            return kind
    return None


def retry_after_in(text: str) -> float | None:
    match = _RETRY.search(text)
    if not match:
        return None
    value = float(match.group(1))
    return value / 1000 if match.group(2).lower() == "ms" else value


def to_error(failure: Failure, *, tool: str, provider: str, model: str | None,
             secrets: Sequence[str] = ()) -> PodiumError:
    """The ``podium.errors`` type a failure means; the message is the tool's, redacted and cut short."""
    kind = failure.kind or _KIND_BY_STATUS.get(failure.status or 0)
    if kind in (None, "bad_request", "provider_error"):
        kind = kind_of(failure.message) or kind
    message = excerpt(redact(failure.message, *secrets)) or "no message"
    text = f"{tool} failed" + (f" (HTTP {failure.status})" if failure.status else "") + f": {message}"
    where: dict[str, str | None] = {"provider": provider, "model": model}
    if kind == "auth":
        return errors.AuthenticationError(f"{text} — log the tool in (run it once by hand) or set its API key",
                                          **where)
    if kind == "rate_limited":
        wait = failure.retry_after if failure.retry_after is not None else retry_after_in(failure.message)
        return errors.RateLimitedError(text, retry_after=wait, **where)
    classes: dict[str, Callable[..., PodiumError]] = {
        "permission": errors.PermissionDeniedError, "not_found": errors.NotFoundError,
        "unavailable": errors.ProviderUnavailableError, "timeout": errors.TimeoutError,
        "context": errors.ContextTooLongError, "content_filtered": errors.ContentFilteredError,
        "bad_request": errors.BadRequestError}
    return classes.get(kind or "", errors.ProviderError)(text, **where)


def clean(text: str) -> str:
    """``text`` without terminal escape sequences and control characters (tabs and newlines stay)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text.replace("\r\n", "\n")))


def excerpt(text: str, limit: int = EXCERPT) -> str:
    text = " ".join(clean(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def stderr_message(stderr: str) -> str:
    """The lines of a tool's stderr that say something: no stack frames, no terminal warnings, no escapes."""
    keep = [line for line in clean(stderr).splitlines()
            if line.strip() and not line.startswith("    at ") and not line.startswith(("Warning:", "Ripgrep "))]
    return "\n".join(keep[-8:])


def last_json_object(text: str) -> dict[str, Any] | None:
    """The last JSON object in ``text`` that starts a line (a tool's final report after its logs)."""
    starts = [m.start() for m in re.finditer(r"(?m)^\{", text)]
    decoder = json.JSONDecoder()
    for start in reversed(starts):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        except RecursionError:
            raise ToolFailed(Failure(NESTED_TOO_DEEPLY, kind="provider_error")) from None
        if isinstance(value, dict):
            return value
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# ------------------------------------------------------------------------------------------------ decoders
@dataclass
class Decoder:
    """A tool's stream: one JSON event (a line of its stdout) in, text pieces out; the last event sets
    ``answer`` (usage, cost) or ``failure``."""

    parse_result: Callable[[dict[str, Any]], Answer]
    text_of: Callable[[dict[str, Any]], str | None]
    is_result: Callable[[dict[str, Any]], bool]
    answer: Answer | None = None
    failure: Failure | None = None
    said: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.answer is not None or self.failure is not None

    def feed(self, event: dict[str, Any]) -> str | None:
        if self.is_result(event):
            try:
                self.answer = self.parse_result(event)
            except ToolFailed as failed:
                self.failure = failed.failure
                return None
            if not self.said and self.answer.text:  # a tool that streamed nothing: its answer in one piece
                self.said.append(self.answer.text)
                return self.answer.text
            return None
        text = self.text_of(event)
        if text:
            self.said.append(text)
        return text or None


# ------------------------------------------------------------------------------------------------ tools
class Tool:
    """The generic tool: stdout is the answer, usage is estimated; a non-zero exit is a failure whose
    kind is read from stderr."""

    name = "generic"
    install: str | None = None  # how to get the command, for the error when it is missing
    base_url_env: str | None = None
    key_env: str | None = None
    default_models: tuple[str, ...] = ()
    streams = False
    version_args: tuple[str, ...] = ("--version",)

    def argv(self, model_id: str | None, stream: bool) -> list[str]:
        return []

    def env(self, retries: int, state: Path) -> dict[str, str]:
        """Variables the tool reads, set for every run (the config's ``env`` can still override them);
        ``state`` is a private folder of the provider's for files the tool needs."""
        return {}

    def parse(self, stdout: str, stderr: str, returncode: int, prompt: str) -> Answer:
        if returncode != 0:
            raise ToolFailed(self.exit_failure(stderr, returncode))
        text = stdout.strip("\n")
        return Answer(text, Usage(input_tokens=approximate_tokens(prompt), output_tokens=approximate_tokens(text)),
                      usage_reported=False)

    def exit_failure(self, stderr: str, returncode: int) -> Failure:
        message = stderr_message(stderr) or f"exited with status {returncode} and said nothing on stderr"
        return Failure(message, kind=kind_of(message))

    def decoder(self) -> Decoder:
        raise NotImplementedError  # only tools with ``streams = True`` have one


class Gemini(Tool):
    name = "gemini"
    install = "npm install -g @google/gemini-cli"
    base_url_env = "GOOGLE_GEMINI_BASE_URL"
    key_env = "GEMINI_API_KEY"
    default_models = ("gemini-2.5-pro", "gemini-2.5-flash")
    streams = True
    _EXIT_KINDS: ClassVar[dict[int, str]] = {41: "auth", 42: "bad_request", 52: "provider_error",
                                             53: "provider_error", 130: "provider_error"}

    def argv(self, model_id: str | None, stream: bool) -> list[str]:
        # -p "" turns on non-interactive mode; the prompt is read from stdin (gemini joins stdin and -p).
        # --skip-trust: the working directory is Podium's own (an empty folder unless the config names one).
        args = ["--skip-trust", "-p", "", "--output-format", "stream-json" if stream else "json"]
        return args + (["-m", model_id] if model_id else [])

    def env(self, retries: int, state: Path) -> dict[str, str]:
        # Its retry count is a setting only (general.maxAttempts, 10 by default, minutes of backoff on a 429):
        # set it in a system-defaults file, the lowest layer, which the user's own settings still override.
        # The CLI ignores the file when a parent folder is writable by others (so never under /tmp).
        path = state / "gemini-system-defaults.json"
        text = json.dumps({"general": {"maxAttempts": retries + 1}})
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        return {"GEMINI_CLI_SYSTEM_DEFAULTS_PATH": str(path)}

    def parse(self, stdout: str, stderr: str, returncode: int, prompt: str) -> Answer:
        report = last_json_object(stdout)
        if report is None or "response" not in report:
            report = last_json_object(stderr) or report
        if report is not None and isinstance(report.get("error"), dict):
            raise ToolFailed(self.error_failure(report["error"]))
        if returncode != 0:
            raise ToolFailed(self.exit_failure(stderr, returncode))
        if report is None or not isinstance(report.get("response"), str | None):
            raise ToolFailed(Failure(f"printed no JSON answer: {excerpt(stdout) or '(nothing)'}"))
        return Answer(report.get("response") or "", self.usage(report.get("stats")))

    @staticmethod
    def usage(stats: Any) -> Usage:
        """The sum over the models the run used (the CLI may call a small model besides the main one)."""
        total = Usage()
        models = stats.get("models") if isinstance(stats, dict) else None
        for entry in (models or {}).values() if isinstance(models, dict) else ():
            tokens = entry.get("tokens") if isinstance(entry, dict) else None
            if not isinstance(tokens, dict):
                continue
            thoughts = _int(tokens.get("thoughts"))
            total = total + Usage(input_tokens=_int(tokens.get("prompt")),
                                  output_tokens=_int(tokens.get("candidates")) + thoughts,
                                  cached_input_tokens=_int(tokens.get("cached")), reasoning_tokens=thoughts)
        return total

    def error_failure(self, error: Mapping[str, Any]) -> Failure:
        message = str(error.get("message") or error.get("type") or "unknown error")
        code = error.get("code")
        status = code if isinstance(code, int) and 100 <= code <= 599 else None
        kind = self._EXIT_KINDS.get(code) if isinstance(code, int) else None
        inner = None
        if message.lstrip().startswith("{"):  # the API's own error body, passed on as a string
            try:
                inner = json.loads(message)
            except (ValueError, RecursionError):  # not JSON, or too deep to read: kept as text
                inner = None
        if isinstance(inner, dict) and isinstance(inner.get("error"), dict):
            body = inner["error"]
            message = str(body.get("message") or message)
            status = body.get("code") if isinstance(body.get("code"), int) else status
            reasons = " ".join(str(d.get("reason", "")) for d in body.get("details") or [] if isinstance(d, dict))
            if "API_KEY_INVALID" in reasons:
                kind = "auth"
            delays = [str(d.get("retryDelay")) for d in body.get("details") or []
                      if isinstance(d, dict) and d.get("retryDelay")]
            return Failure(message, status=status, kind=kind, retry_after=retry_after_in(f"retryDelay {delays[0]}")
                           if delays else None)
        return Failure(message, status=status, kind=kind)

    def decoder(self) -> Decoder:
        def text_of(event: dict[str, Any]) -> str | None:
            if event.get("type") == "message" and event.get("role") == "assistant":
                content = event.get("content")
                return content if isinstance(content, str) else None
            return None

        def parse_result(event: dict[str, Any]) -> Answer:
            if event.get("status") != "success":
                error = event.get("error")
                raise ToolFailed(self.error_failure(error if isinstance(error, dict) else {"message": str(event)}))
            stats = event.get("stats") if isinstance(event.get("stats"), dict) else {}
            assert isinstance(stats, dict)
            return Answer("", Usage(input_tokens=_int(stats.get("input_tokens")),
                                    output_tokens=_int(stats.get("output_tokens")),
                                    cached_input_tokens=_int(stats.get("cached"))))

        return Decoder(parse_result, text_of, lambda event: event.get("type") == "result")


class Claude(Tool):
    name = "claude"
    install = "npm install -g @anthropic-ai/claude-code"
    base_url_env = "ANTHROPIC_BASE_URL"
    key_env = "ANTHROPIC_API_KEY"
    default_models = ("sonnet", "opus", "haiku")
    streams = True
    _KINDS: ClassVar[dict[str, str]] = {
        "authentication_error": "auth", "permission_error": "permission", "not_found_error": "not_found",
        "rate_limit_error": "rate_limited", "overloaded_error": "unavailable", "api_error": "provider_error",
        "invalid_request_error": "bad_request", "request_too_large": "context"}
    _FINISH: ClassVar[dict[str, FinishReason]] = {"max_tokens": "length", "refusal": "content_filter"}

    def argv(self, model_id: str | None, stream: bool) -> list[str]:
        # -p with no prompt argument reads the prompt from stdin. No tools: a provider answers, it does not
        # act; no session files; stream-json needs --verbose, and partial messages give the text as it comes.
        fmt = ["stream-json", "--verbose", "--include-partial-messages"] if stream else ["json"]
        args = ["-p", "--output-format", *fmt, "--no-session-persistence", "--tools", ""]
        return args + (["--model", model_id] if model_id else [])

    def env(self, retries: int, state: Path) -> dict[str, str]:
        return {"CLAUDE_CODE_MAX_RETRIES": str(retries)}  # Podium's resilience layer retries, not the tool

    def parse(self, stdout: str, stderr: str, returncode: int, prompt: str) -> Answer:
        report = last_json_object(stdout)
        if report is None or report.get("type") != "result":
            if returncode != 0:
                raise ToolFailed(self.exit_failure(stderr or stdout, returncode))
            raise ToolFailed(Failure(f"printed no JSON result: {excerpt(stdout) or '(nothing)'}"))
        return self.result(report)

    def result(self, report: dict[str, Any]) -> Answer:
        text = report.get("result")
        if report.get("is_error") or report.get("subtype") not in ("success", None):
            status = report.get("api_error_status")
            kind = self._KINDS.get(str(report.get("api_error_type")))
            if report.get("terminal_reason") == "prompt_too_long":
                kind = "context"
            message = text if isinstance(text, str) and text else \
                "; ".join(str(e) for e in report.get("errors") or []) or str(report.get("subtype"))
            raise ToolFailed(Failure(message, status=status if isinstance(status, int) else None, kind=kind))
        usage = report.get("usage") if isinstance(report.get("usage"), dict) else {}
        assert isinstance(usage, dict)
        cached = _int(usage.get("cache_read_input_tokens"))
        details = usage.get("output_tokens_details")
        thinking = _int(details.get("thinking_tokens")) if isinstance(details, dict) else 0
        cost = report.get("total_cost_usd")
        finish = self._FINISH.get(str(report.get("stop_reason")), "stop")
        if finish == "content_filter" and not text:
            raise ToolFailed(Failure("the model refused to answer", kind="content_filtered"))
        return Answer(text if isinstance(text, str) else "",
                      Usage(input_tokens=_int(usage.get("input_tokens")) + cached
                            + _int(usage.get("cache_creation_input_tokens")),
                            output_tokens=_int(usage.get("output_tokens")), cached_input_tokens=cached,
                            reasoning_tokens=thinking),
                      cost=float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
                      finish_reason=finish)

    def decoder(self) -> Decoder:
        def text_of(event: dict[str, Any]) -> str | None:
            if event.get("type") != "stream_event" or event.get("parent_tool_use_id"):
                return None
            inner = event.get("event")
            delta = inner.get("delta") if isinstance(inner, dict) else None
            if isinstance(inner, dict) and inner.get("type") == "content_block_delta" and isinstance(delta, dict) \
                    and delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                return str(delta["text"])
            return None

        return Decoder(self.result, text_of, lambda event: event.get("type") == "result")


TOOLS: dict[str, type[Tool]] = {"gemini": Gemini, "claude": Claude, "generic": Tool}
